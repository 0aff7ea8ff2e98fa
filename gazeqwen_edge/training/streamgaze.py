"""StreamGaze for training and evaluation (REFERENCE.md sections 1, 2): QA files as `QAItem`s, the scanpath an item
sees, and splits by video.

`load_streamgaze(qa_path, videos_dir, fixations_dir)` reads one QA file (a JSON list of {"video_path",
"response_time", "questions": [...]}) into an `ItemSet`: one item per multiple-choice question, one Yes/No item per
test point of a proactive question. Every question that cannot be used (its video missing or unreadable, no fixation
CSV, a malformed time stamp, an unknown task type, an answer that is not one of its options' letters, a time past the
video's end, ...) becomes a `Problem` naming it and why; none is dropped silently.

`item_scanpath(item, protocol)` gives the fixations an item sees as rows [x, y, mid_t, dur] (x, y normalised to the
frame; mid_t and dur in seconds, mid_t counted FROM THE START OF THE ITEM'S WINDOW), under one of two protocols:
- "reference": the released GazeQwen code: every fixation whose midpoint lies in [window start, window end], whole.
  A fixation still in progress at the question time is left out when its midpoint falls after it, and one whose
  midpoint is in the window keeps the part after the window's end. (The released code keeps mid_t in seconds of the
  video and looks the gaze up at clip_start + t * 2 / fps; relative times plus the window start give the same
  look-up.)
- "stream": what the live runtime sees: every fixation that started before the window's end and ends after its start,
  cut to the window (the one in progress at the question time ends at it, one begun before the window starts at the
  window's start), its mid_t and dur those of the part inside.

`split_videos` / `write_split_file` / `read_split_file` / `select_split`: a train/val/test split by video (the
released code trains on a 70/15/15 split of StreamGaze by video). The split file is the released code's own format
(its `splits/gazelens_split.json`): {"train": [...], "val": [...], "test": [...]}, sorted video file names.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gazeqwen_edge.device._io import probe_video, read_json, read_text
from gazeqwen_edge.device.streamgaze import fixation_csv_candidates, parse_mmss, read_fixation_csv
from gazeqwen_edge.errors import InputError, check_text
from gazeqwen_edge.model.gazeqwen import lettered_options, option_letters
from gazeqwen_edge.training.tasks import (
    ALL_TASKS,
    YES_NO,
    ItemSet,
    Problem,
    QAItem,
    clip_sampling_fps,
    clip_window,
    is_proactive,
)

PROTOCOLS = ("reference", "stream")
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)  # the released code's split by video (REFERENCE.md section 1)
# A proactive test point's clip may end this much after its `realtime` (rounding of the two fields to whole seconds)
CLIP_TOLERANCE_S = 0.5
# The released code frames a proactive question as an alert decision (kept in meta["reference_question"])
REFERENCE_ALERT_SUFFIX = " Based on the video so far, should the alert be triggered?"
QA_HINT = (
    'a StreamGaze QA file is a JSON list of {"video_path": ..., "response_time": "[MM:SS - MM:SS]", "questions": '
    '[{"question", "time_stamp": "MM:SS", "options": ["A. ...", ...], "answer": "A", "task_type"}]} (REFERENCE.md 2)'
)
# Question fields the loader reads itself; any other field of a question (or of its item) is kept in the item's meta
_QUESTION_FIELDS = {"question", "time_stamp", "options", "answer", "task_type", "test_info"}
_ENTRY_FIELDS = {"video_path", "questions"}


class _Skip(Exception):
    """A question (or test point) that cannot be used; its message is the Problem's reason."""


@dataclass
class _Video:
    """A QA file's video, resolved once: its file, where its video ends (s: the last frame's time plus one frame
    period), its fixation CSV and the other candidates left aside; or `reason` why its questions cannot be used."""

    name: str
    path: Path | None = None
    end_s: float = 0.0
    fixation_csv: Path | None = None
    also_found: list[str] = field(default_factory=list)
    reason: str = ""


def _seconds(v: Any, what: str) -> float:
    """A time in seconds of the video: a number >= 0, or a StreamGaze time stamp string (parse_mmss). _Skip."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        if math.isfinite(v) and v >= 0:
            return float(v)
    elif isinstance(v, str):
        try:
            return parse_mmss(v)
        except ValueError:
            pass
    raise _Skip(f"malformed {what} {v!r}")


class _Loader:
    def __init__(self, qa: Path, videos_dir: Path, fixations_dir: Path | None):
        self.qa, self.videos_dir, self.fixations_dir = qa, videos_dir, fixations_dir
        self.items: list[QAItem] = []
        self.problems: list[Problem] = []
        self._videos: dict[str, _Video] = {}

    def video(self, video_path: str) -> _Video:
        """The video a QA item's video_path names, probed once per file (two spellings of one file: one probe)."""
        name = Path(video_path).name
        tried = [self.videos_dir / video_path]
        if tried[0] != self.videos_dir / name:
            tried.append(self.videos_dir / name)
        found = next((p for p in tried if p.is_file()), None)
        if found is None:
            return _Video(name, reason="video not found: " + " nor ".join(str(p) for p in tried))
        key = str(found.resolve())
        if key not in self._videos:
            self._videos[key] = self._probe(found)
        return self._videos[key]

    def _probe(self, found: Path) -> _Video:
        v = _Video(found.name, path=found)
        try:
            info = probe_video(found)
        except InputError as e:
            v.reason = f"video cannot be read: {e.message}"
            return v
        if info.last_frame_s is None:
            v.reason = f"video has no frames: {found}"
            return v
        v.end_s = float(info.last_frame_s) + 1.0 / (info.fps or 30.0)
        where = self.fixations_dir if self.fixations_dir is not None else found.parent
        cands = fixation_csv_candidates(found, where)
        if not cands:
            stem = found.stem
            v.reason = (
                f"no fixation CSV for {found.name} in {where} (looked for {stem}_fixation_filtered.csv, {stem}.csv, "
                f"{stem}_fixation*.csv with StreamGaze's fixation columns)"
            )
            return v
        try:
            fixations(cands[0])
        except InputError as e:
            v.reason = f"fixation CSV cannot be used: {e.message}"
            return v
        v.fixation_csv, v.also_found = cands[0], [c.name for c in cands[1:]]
        return v

    def entry(self, i: int, entry: Any) -> None:
        if not isinstance(entry, dict):
            self.problems.append(Problem(f"{self.qa.name} item {i}", f"an item must be a JSON object, got {entry!r}"))
            return
        questions, vp = entry.get("questions"), entry.get("video_path")
        if not isinstance(questions, list):
            self.problems.append(Problem(f"{self.qa.name} item {i}", "item without a 'questions' list"))
            return
        if not isinstance(vp, str) or not vp.strip():
            for j in range(1, len(questions) + 1):
                self.problems.append(Problem(f"{self.qa.name} item {i}.{j}", f"item has no video_path (got {vp!r})"))
            return
        extra = {k: v for k, v in entry.items() if k not in _ENTRY_FIELDS}
        for j, q in enumerate(questions, 1):
            base = f"{Path(vp).stem}/{i}.{j}"
            where = f"{self.qa.name} {base}"
            try:
                self.question(q, base, where, vp, {"qa_file": str(self.qa), "item": i, "question": j, **extra})
            except _Skip as e:
                self.problems.append(Problem(where, str(e), Path(vp).name))

    def question(self, q: Any, base: str, where: str, vp: str, meta: dict[str, Any]) -> None:
        if not isinstance(q, dict):
            raise _Skip(f"a question must be a JSON object, got {q!r}")
        text = q.get("question")
        if not isinstance(text, str) or not text.strip():
            raise _Skip("question without text")
        options = q.get("options")
        try:
            check_text(text, "the question")
            for k, o in enumerate(options if isinstance(options, list) else []):
                if isinstance(o, str):
                    check_text(o, f"option {k + 1}")
        except ValueError as e:
            raise _Skip(str(e)) from None
        task = q.get("task_type")
        if not isinstance(task, str) or task not in ALL_TASKS:
            raise _Skip(f"unknown task type {task!r}")
        meta = {**meta, "video_path": vp, **{k: v for k, v in q.items() if k not in _QUESTION_FIELDS}}
        if is_proactive(task):
            self.proactive(q, text.strip(), task, base, where, vp, meta)
            return
        ts = q.get("time_stamp")
        if ts is None:
            raise _Skip("question without a time stamp")
        try:
            t = parse_mmss(ts)
        except ValueError:
            raise _Skip(f"malformed time stamp {ts!r}") from None
        if not isinstance(options, list) or not options or not all(isinstance(o, str) and o.strip() for o in options):
            raise _Skip(f"options must be a non-empty list of non-empty texts, got {options!r}")
        try:
            letters, lettered = option_letters(options), lettered_options(options)
        except InputError as e:
            raise _Skip(e.problem) from None
        answer = q.get("answer")
        if not isinstance(answer, str) or answer.strip() not in letters:
            raise _Skip(f"answer {answer!r} is not among the options' letters ({', '.join(letters)})")
        answer = answer.strip()
        v = self.video(vp)
        if v.reason:
            raise _Skip(v.reason)
        if t > v.end_s + 1e-6:
            raise _Skip(f"time stamp {ts} ({t:g} s) is past the end of the video {v.path} ({v.end_s:.2f} s)")
        window = clip_window(task, t)
        self.items.append(
            QAItem(
                item_id=base,
                video=v.path,  # type: ignore[arg-type]
                fixation_csv=v.fixation_csv,
                question=text.strip(),
                options=lettered,
                answer=answer,
                task_type=task,
                time_s=t,
                window=window,
                sampling_fps=clip_sampling_fps(window),
                truth=lettered[letters.index(answer)][2:].strip(),
                meta={**meta, "time_stamp": ts, "fixation_csvs_left_aside": v.also_found},
            )
        )

    def proactive(self, q: dict, text: str, task: str, base: str, where: str, vp: str, meta: dict) -> None:
        points = q.get("test_info")
        if not isinstance(points, list) or not points:
            raise _Skip("proactive question without test_info (a list of test points)")
        v = self.video(vp)
        if v.reason:
            raise _Skip(v.reason)
        meta = {**meta, "reference_question": text + REFERENCE_ALERT_SUFFIX, "fixation_csvs_left_aside": v.also_found}
        for k, tp in enumerate(points, 1):
            try:
                self.items.append(self.test_point(tp, k, text, task, base, v, meta))
            except _Skip as e:
                self.problems.append(Problem(f"{where}/p{k}", str(e), v.name))

    def test_point(self, tp: Any, k: int, text: str, task: str, base: str, v: _Video, meta: dict) -> QAItem:
        if not isinstance(tp, dict):
            raise _Skip(f"a test point must be a JSON object, got {tp!r}")
        kind = tp.get("type")
        if isinstance(kind, bool) or kind not in (0, 1) or not isinstance(kind, int):
            raise _Skip(f"test point type {kind!r} is not 0 (no alert) or 1 (alert)")
        realtime = _seconds(tp.get("realtime"), "realtime")
        clip = tp.get("input_video_clip")
        if not isinstance(clip, list | tuple) or len(clip) != 2:
            raise _Skip(f"test point without an input_video_clip [start, end] (got {clip!r})")
        a, b = _seconds(clip[0], "input_video_clip start"), _seconds(clip[1], "input_video_clip end")
        if not a <= b <= realtime + CLIP_TOLERANCE_S:
            raise _Skip(f"input_video_clip [{a:g}, {b:g}] s is not a span ending by its realtime {realtime:g} s")
        if realtime > v.end_s + 1e-6:
            raise _Skip(f"realtime {realtime:g} s is past the end of the video {v.path} ({v.end_s:.2f} s)")
        answer = "A" if kind == 1 else "B"
        return QAItem(
            item_id=f"{base}/p{k}",
            video=v.path,  # type: ignore[arg-type]
            fixation_csv=v.fixation_csv,
            question=text,
            options=list(YES_NO),
            answer=answer,
            task_type=task,
            time_s=realtime,
            window=(a, b),
            sampling_fps=clip_sampling_fps((a, b)),
            test_point=k - 1,
            truth=YES_NO[0 if kind == 1 else 1][2:].strip(),
            meta={**meta, **{key: val for key, val in tp.items() if key not in ("type", "input_video_clip")}},
        )


def load_streamgaze(qa_path: str | Path, videos_dir: str | Path, fixations_dir: str | Path | None = None) -> ItemSet:
    """Read a StreamGaze QA file (REFERENCE.md section 2) into QAItems.

    Videos are `videos_dir / video_path`, else `videos_dir / <its file name>`; each is probed once (its end: the last
    frame's time plus one frame period). Fixation CSVs are looked for in `fixations_dir`, else beside the video:
    `<stem>_fixation_filtered.csv` (what GazeQwen reads, used when the dataset file is there too), `<stem>.csv`, then
    `<stem>_fixation*.csv` (`device.streamgaze.fixation_csv_candidates`); each is read and checked once. Item ids are
    "<video stem>/<item>.<question>" and, for the test points of a proactive question, ".../p<k>" (all 1-based;
    QAItem.test_point is the 0-based index into its test_info). time_s and windows are in seconds of the video:
    multiple-choice items use tasks.clip_window, proactive test points their input_video_clip. Fields the loader
    does not use (target_object, first_appearance, response_time, ...) are kept in meta.

    Questions that cannot be used are returned as Problems (a file with no usable question is returned too: the
    caller decides). Raises InputError for a QA file that is missing, unreadable, not a JSON list, an empty list or a
    list without a single object, and for a videos_dir / fixations_dir that is not a folder."""
    qa = Path(qa_path)
    if qa.is_dir():
        raise InputError(qa, "is a folder, not a StreamGaze QA file", hint=QA_HINT)
    text = read_text(qa)  # missing, unreadable, not UTF-8, Git LFS pointer: InputError
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(qa, f"is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})", hint=QA_HINT) from None
    if not isinstance(data, list):
        raise InputError(qa, f"is not a StreamGaze QA file: a JSON {type(data).__name__}, not a list", hint=QA_HINT)
    if data and not any(isinstance(e, dict) for e in data):  # checked before the folders: the file is what is wrong
        kinds = sorted({type(e).__name__ for e in data})
        raise InputError(
            qa, f"is not a StreamGaze QA file: a JSON list of {', '.join(kinds)}, not of objects", hint=QA_HINT
        )
    if not data:
        raise InputError(qa, "is an empty list: no question to use", hint=QA_HINT)
    vdir = Path(videos_dir)
    if not vdir.is_dir():
        raise InputError(
            vdir,
            "is a file, not a videos folder" if vdir.exists() else "videos folder not found",
            hint="the folder holding the QA file's video_path files",
        )
    fdir = None if fixations_dir is None else Path(fixations_dir)
    if fdir is not None and not fdir.is_dir():
        raise InputError(
            fdir,
            "is a file, not a fixations folder" if fdir.exists() else "fixations folder not found",
            hint="the folder of <video stem>_fixation_filtered.csv",
        )
    loader = _Loader(qa, vdir, fdir)
    for i, entry in enumerate(data, 1):
        loader.entry(i, entry)
    return ItemSet(loader.items, loader.problems)


# ------------------------------------------------------------------------------------------------------- scanpaths
@lru_cache(maxsize=4096)
def _fixations_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    f = read_fixation_csv(Path(path))
    f = f[np.argsort(f[:, 2], kind="stable")]
    f.setflags(write=False)
    return f


def fixations(path: str | Path) -> np.ndarray:
    """A fixation CSV's rows [x, y, start_s, end_s] (float64, (N, 4), read-only), ordered by start. Each file is read
    and checked once (`device.streamgaze.read_fixation_csv`; cached by path, size and modification time).
    InputError for a missing or unusable file."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise InputError(p, "fixation CSV is missing") from None
    return _fixations_cached(str(p.resolve()), st.st_mtime_ns, st.st_size)


def item_scanpath(item: QAItem, protocol: str) -> np.ndarray:
    """The fixations `item` sees: float32 (N, 4) rows [x, y, mid_t, dur], x and y normalised to the frame, mid_t in
    seconds from the start of item.window, dur in seconds, in order of start. `protocol`: "reference" (fixations whose
    midpoint is in the window, whole: the released code) or "stream" (every fixation overlapping the window, cut to
    it: what the live runtime sees); see the module docstring. An item without a fixation CSV has an empty scanpath.
    ValueError for an unknown protocol; InputError for an unusable fixation CSV."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown scanpath protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    if item.fixation_csv is None:
        return np.zeros((0, 4), np.float32)
    x, y, s, e = fixations(item.fixation_csv).T
    w0, w1 = float(item.window[0]), float(item.window[1])
    if protocol == "reference":
        mid = (s + e) / 2
        keep = (mid >= w0) & (mid <= w1)
        rows = [x[keep], y[keep], mid[keep] - w0, (e - s)[keep]]
    else:
        keep = (s < w1) & (e > w0)
        a, b = np.maximum(s[keep], w0), np.minimum(e[keep], w1)
        rows = [x[keep], y[keep], (a + b) / 2 - w0, b - a]
    return np.stack(rows, axis=1).astype(np.float32).reshape(-1, 4)


# ---------------------------------------------------------------------------------------------------------- splits
def video_names(itemset: ItemSet) -> list[str]:
    """The file names of the videos an ItemSet is about (its items' and its problems'), sorted: the input of
    `split_videos`."""
    return sorted({it.video.name for it in itemset.items} | {p.video for p in itemset.problems if p.video})


def _split_counts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    by_remainder = sorted(range(3), key=lambda k: (-(raw[k] - counts[k]), k))
    for k in by_remainder[: n - sum(counts)]:
        counts[k] += 1
    if n >= 3:  # every split asked for gets a video
        for k in range(3):
            if counts[k] == 0 and fractions[k] > 0:
                counts[max(range(3), key=lambda m: counts[m])] -= 1
                counts[k] = 1
    return counts


def split_videos(
    videos: Iterable[str | Path], fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[str, list[str]]:
    """Split videos (file names or paths; split by file name, duplicates counted once) into {"train", "val", "test"}:
    each video in exactly one split, each list sorted, counts by largest remainder of n * fraction, and every split
    whose fraction is > 0 non-empty when there are >= 3 videos. Deterministic for a seed on every machine and numpy
    version: videos are ordered by sha256("<seed>:<name>") and cut into consecutive runs. InputError for fractions
    that are not three numbers >= 0 summing to 1."""
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or not all(math.isfinite(f) and f >= 0 for f in fr) or abs(sum(fr) - 1) > 1e-6:
        raise InputError(None, f"split fractions must be three numbers >= 0 summing to 1 (train, val, test), got {fr}")
    names = sorted({Path(v).name for v in videos})
    order = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:{n}".encode()).hexdigest())
    counts = _split_counts(len(order), fr)  # type: ignore[arg-type]
    out, at = {}, 0
    for which, c in zip(SPLITS, counts, strict=True):
        out[which] = sorted(order[at : at + c])
        at += c
    return out


def _check_split(split: Any, path: Path | None) -> dict[str, list[str]]:
    if not isinstance(split, dict):
        raise InputError(path, f"a split is a JSON object {{{', '.join(SPLITS)}}}, got {type(split).__name__}")
    out: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for which in SPLITS:
        names = split.get(which)
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise InputError(path, f"split '{which}' must be a list of video file names, got {names!r}")
        out[which] = sorted({Path(n).name for n in names})
        for n in out[which]:
            if n in seen:
                raise InputError(path, f"video {n} is in both the '{seen[n]}' and the '{which}' split")
            seen[n] = which
    return out


def write_split_file(path: str | Path, split: dict[str, list[str]]) -> None:
    """Write a split as JSON {"train": [...], "val": [...], "test": [...]} of sorted video file names (the released
    GazeQwen code's split file format). InputError for a split that is not three disjoint lists of names, or a path
    that cannot be written."""
    p = Path(path)
    checked = _check_split(split, None)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(checked, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise InputError(p, f"split file cannot be written ({e.strerror or e})") from None


def read_split_file(path: str | Path) -> dict[str, list[str]]:
    """Read a split file: JSON {"train": [...], "val": [...], "test": [...]} of video file names (ours, and the
    released GazeQwen code's `splits/gazelens_split.json`); paths are reduced to file names, other keys ignored.
    InputError for a missing/unreadable file, invalid JSON, a missing split, or a video in two splits."""
    p = Path(path)
    return _check_split(read_json(p), p)


def select_split(itemset: ItemSet, split: dict[str, list[str]], which: str) -> ItemSet:
    """The items (and problems) of `itemset` whose video's file name is in `split[which]`; items of videos in no split
    are in none. InputError for `which` not one of train/val/test."""
    if which not in SPLITS:
        raise InputError(None, f"unknown split {which!r}; one of {', '.join(SPLITS)}")
    names = set(split.get(which, []))
    return ItemSet(
        [it for it in itemset.items if it.video.name in names],
        [p for p in itemset.problems if p.video in names],
    )
