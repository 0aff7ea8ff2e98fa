"""Questions (from any input: typed, a file, speech, a watch) and answers (to any sink: terminal, JSONL, speech, a web
page), the records that pass between them, and the questions files `replay --questions` reads.

A questions file is either JSONL, one `{"t": seconds from the start of the source, "question": "...", "options":
[...]}` per line (options optional: "A. box" as StreamGaze writes them, or plain texts lettered A, B, ... in order),
or a StreamGaze QA JSON (REFERENCE.md section 2) whose questions are asked at their time stamps (a proactive item at
each of its test points, as a Yes/No question).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gazeqwen_edge.device.streamgaze import parse_mmss
from gazeqwen_edge.errors import InputError, check_no_control, check_text, json_line

QUESTION_SOURCES = ("typed", "file", "voice", "watch")
MAX_QUESTION_CHARS = 2000  # a spoken or typed question is a sentence or two; a page of text is a mistake
MAX_OPTIONS = 26  # one letter each, A..Z


def check_question_text(text: Any) -> str:
    """A question's text, stripped: a non-empty string of at most MAX_QUESTION_CHARS characters that is valid text
    without control characters (check_text, check_no_control; line breaks and tabs allowed). ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a question must be a non-empty text")
    text = check_no_control(check_text(text.strip(), "the question"), "the question")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"a question has at most {MAX_QUESTION_CHARS} characters, this one {len(text)}")
    return text


@dataclass
class Question:
    """One question to the session.

    text: the question; t_ns: when it was asked, on the device clock (unix ns; for speech, when the speech started);
    source: typed | file | voice | watch; options: multiple-choice options ("A. box" or plain texts) or None for a
    generated answer; meta: free data carried into the answer record (e.g. a file's ground truth, task type);
    arrived_s: when the session received it (`time.perf_counter()` seconds, this machine's monotonic clock: the start of
    its time to first token).
    """

    text: str
    t_ns: int
    source: str = "typed"
    options: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    id: int = 0
    arrived_s: float = 0.0


@dataclass
class AnswerRecord:
    """One line of `answers.jsonl`: the question, when it was asked (`t` seconds from the session's first record, `t_ns`
    unix ns on the device clock), the answer (generated text, or the chosen letter with every letter's logit), time
    to first token (`ttft_ms`: from the question's arrival at the session to its first token, or to the chosen letter,
    the wait for the model and the question's prefill included), the part of it spent waiting for the model
    (`queued_ms`: the chunk in flight, or in lockstep the chunks ahead) with the stage times the model spent meanwhile
    (`queue_stages_ms`), per-stage times (ms) spent on it, the KV cache length before its prefill (`context_tokens`:
    system turn + video; streamed sessions only), the fixations it saw (rows [x, y, mid_t, dur], mid_t in seconds from the session's first record), the span of
    video in the model's context (seconds), the WAV file the answer was spoken to (`speech`: a name in the directory
    of `--speak-to`), and an error message when it could not be answered. A spoken question (`source` "voice") has
    its transcript as `question` and the start of the speech as `t` / `t_ns`."""

    id: int
    question: str
    t: float
    t_ns: int
    source: str
    answer: str = ""
    options: list[str] | None = None
    scores: dict[str, float] | None = None
    ttft_ms: float | None = None
    queued_ms: float | None = None
    queue_stages_ms: dict[str, float] = field(default_factory=dict)
    stages_ms: dict[str, float] = field(default_factory=dict)
    context_tokens: int | None = None
    n_tokens: int = 0
    fixations: list[list[float]] = field(default_factory=list)
    video_s: list[float] | None = None
    speech: str | None = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """One strict JSON line (errors.json_line: a value that is not finite is written as null)."""
        return json_line(asdict(self))


@dataclass
class ScheduledQuestion:
    """A question of a questions file: asked `t_s` seconds after the start of the source."""

    t_s: float
    text: str
    options: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class QuestionsFile:
    """The questions of a file, in time order, and the lines that could not be used (line number, reason)."""

    questions: list[ScheduledQuestion]
    problems: list[tuple[int, str]]


def check_options(options: Any) -> list[str] | None:
    """Multiple-choice options: None, or 2..26 non-empty strings of valid text without control characters
    (check_text, check_no_control) whose letters ("A. box", or A, B, ... by position) are distinct, and whose texts
    are too (compared without letters, case or extra spaces). ValueError."""
    if options is None:
        return None
    if not isinstance(options, list) or not options or not all(isinstance(o, str) and o.strip() for o in options):
        raise ValueError("options must be a non-empty list of non-empty strings")
    if len(options) > MAX_OPTIONS:
        raise ValueError(f"at most {MAX_OPTIONS} options (one letter each), got {len(options)}")
    if len(options) < 2:
        raise ValueError(f"a multiple-choice question needs at least 2 options, got {len(options)}")
    for i, o in enumerate(options):
        check_no_control(check_text(o, f"option {i + 1}"), f"option {i + 1}")
    from gazeqwen_edge.errors import InputError
    from gazeqwen_edge.model.gazeqwen import option_letters, option_texts

    try:
        option_letters(options)
    except InputError as e:
        raise ValueError(e.problem) from None
    seen: dict[str, int] = {}
    for i, text in enumerate(option_texts(options)):  # the same option twice: no answer could be right alone
        j = seen.setdefault(" ".join(text.casefold().split()), i)
        if j != i:
            raise ValueError(f"options {j + 1} and {i + 1} are the same ({text!r})")
    return options


# A question later than this (s from the source's start: 11.6 days) is no time of any recording; refused where the
# file is read, before a replay (t x 1e9 ns of a float as large as 1e308 is no integer at all).
MAX_QUESTION_T_S = 1e6


def _check_time(t: float) -> float:
    if t > MAX_QUESTION_T_S:
        raise ValueError(f"its time {t:.6g} s is later than any recording ({MAX_QUESTION_T_S:g} s)")
    return float(t)


def _from_jsonl(lines: list[str]) -> QuestionsFile:
    out, problems = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("a line must be a JSON object")
            missing = [k for k in ("t", "question") if k not in obj]
            if missing:  # (not "'t' must be a number, got None" for a line written with other names)
                raise ValueError(
                    f"a line needs {' and '.join(repr(k) for k in missing)}; this one has {sorted(obj) or 'no keys'}"
                )
            t = obj.get("t")
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
                raise ValueError(f"'t' must be a number of seconds >= 0, got {t!r}")
            _check_time(t)
            q = check_question_text(obj.get("question"))
            extra = {k: v for k, v in obj.items() if k not in ("t", "question", "options")}
            out.append(ScheduledQuestion(float(t), q, check_options(obj.get("options")), extra))
        except (json.JSONDecodeError, ValueError) as e:
            problems.append((n, str(e)))
    return QuestionsFile(sorted(out, key=lambda q: q.t_s), problems)


def _from_streamgaze(items: Any, video: str | None) -> QuestionsFile:
    """A StreamGaze QA JSON: items of `video` (matched by file name stem; every item when video is None)."""
    from gazeqwen_edge.model.gazeqwen import option_letters

    out, problems = [], []
    if not isinstance(items, list):
        raise ValueError("a StreamGaze QA file is a JSON list of items")
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("questions"), list):
            problems.append((i, "item without a 'questions' list"))
            continue
        if video is not None and Path(str(item.get("video_path", ""))).stem != Path(video).stem:
            continue
        for j, q in enumerate(item["questions"], 1):
            where = i if len(item["questions"]) == 1 else f"{i}.{j}"
            try:
                text, task = check_question_text(q.get("question")), q.get("task_type", "")
                meta = {"task_type": task, "answer": q.get("answer"), "item": i}
                if q.get("test_info"):  # proactive: one Yes/No question per test point
                    for k, tp in enumerate(q["test_info"]):
                        meta_k = {**meta, "test_point": k, "answer": "A" if tp.get("type") == 1 else "B"}
                        t = _check_time(parse_mmss(tp["realtime"]))
                        out.append(ScheduledQuestion(t, text, ["A. Yes", "B. No"], meta_k))
                else:
                    opts = check_options(q.get("options"))
                    truth = q.get("answer")
                    if opts and truth is not None and truth not in option_letters(opts):
                        raise ValueError(f"its answer {truth!r} is not one of the options' letters")
                    out.append(ScheduledQuestion(_check_time(parse_mmss(q["time_stamp"])), text, opts, meta))
            except (KeyError, TypeError, ValueError) as e:
                problems.append((where, f"{type(e).__name__}: {e}" if isinstance(e, KeyError) else str(e)))  # type: ignore[arg-type]
    return QuestionsFile(sorted(out, key=lambda q: q.t_s), problems)


def _one_json_value(text: str) -> bool:
    """Whether `text` is one JSON value (e.g. a pretty-printed object), not JSON lines."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def load_questions(path: str | Path, video: str | None = None) -> QuestionsFile:
    """Read a questions file: JSONL, or a StreamGaze QA JSON (one JSON list) whose items about `video` (the replayed
    StreamGaze item's video file name) are kept. Lines or items that cannot be used are returned in `problems` (the
    others are still asked). Raises InputError for a missing, unreadable or empty file, one with no usable question,
    and a StreamGaze QA file given for a source that is not one of its videos (its questions and ground truth are
    about those videos only)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(p, "is a directory, not a questions file")
    if not p.exists():
        raise InputError(p, "questions file not found")
    if not p.is_file():  # a pipe (/dev/stdin, <(...)), a device: read at once, it would hold no questions to come
        raise InputError(
            p,
            "is not a regular file (a pipe or a device); a questions file is read whole before the session",
            hint="write the questions to a file first; to ask as you go, type them on `run`'s stdin",
        )
    try:
        text = p.read_text(encoding="utf-8-sig")  # a byte-order mark (Notepad) is not part of the first line
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot be read as UTF-8 text ({e})") from e
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(p, f"not a StreamGaze QA file ({e})") from e
        videos = (
            sorted({str(i.get("video_path")) for i in items if isinstance(i, dict)}) if isinstance(items, list) else []
        )
        if not (isinstance(items, list) and any(isinstance(i, dict) and "questions" in i for i in items)):
            raise InputError(
                p,
                "is a JSON list but neither a questions file nor a StreamGaze QA file (a list of items with 'questions')",
                hint='a questions file has one JSON object per line: {"t": 2.5, "question": "What am I looking at?"}',
            )
        if video is None:
            raise InputError(
                p,
                "is a StreamGaze QA file: its questions (and their ground truth) are about its own videos",
                hint=f"replay the StreamGaze item it names (video + fixation CSV): {', '.join(videos[:3])}",
            )
        try:
            qf = _from_streamgaze(items, video)
        except ValueError as e:
            raise InputError(p, f"not a StreamGaze QA file ({e})") from e
        if not qf.questions and not qf.problems:
            raise InputError(
                p,
                f"holds no question about the video {video}",
                hint=f"its questions are about {', '.join(videos[:3]) or 'other videos'}",
            )
    elif stripped.startswith("{") and "\n" not in stripped.strip() and '"questions"' in stripped:
        raise InputError(p, "is one JSON object; a StreamGaze QA file is a JSON list of items, a questions file JSONL")
    elif stripped.startswith("{") and "\n" in stripped.strip() and _one_json_value(text):
        raise InputError(  # read as JSONL, each of its lines was an unusable question
            p,
            "is one JSON object written over several lines; a questions file has one JSON object per line",
            hint='one JSON object per line: {"t": 12.5, "question": "What am I looking at?"} (jq -c . FILE > NEW)',
        )
    else:
        qf = _from_jsonl(text.splitlines())
    if not qf.questions:
        why = "holds no usable question"
        if qf.problems:
            n, first = qf.problems[0]
            why += f"; {len(qf.problems)} unusable, the first: line {n}: {first}"
        raise InputError(p, why, hint='one JSON object per line: {"t": 12.5, "question": "What am I looking at?"}')
    return qf
