"""Running a session to its end on a recorded (or synthetic) source: what `gazeqwen-edge replay` and `make demo` do."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from gazeqwen_edge.errors import ConfigError
from gazeqwen_edge.runtime.questions import AnswerRecord, QuestionsFile, ScheduledQuestion, load_questions
from gazeqwen_edge.runtime.session import Session, SessionConfig, SessionStats
from gazeqwen_edge.runtime.sinks import Sink

# the slowest and fastest paced replay (times real time): 1/20 plays a 10 min recording in 200 min; past 1000x the
# pacing is no pacing (use max)
MIN_SPEED, MAX_SPEED = 0.05, 1000.0


def parse_speed(text: str) -> float | None:
    """'max' (or 0) -> None (as fast as the model allows, in lockstep); a number in [MIN_SPEED, MAX_SPEED] -> that
    many times real time. Raises ConfigError (a tiny positive speed would replay for ever: refused too)."""
    t = str(text).strip().lower()
    if t == "max":
        return None
    message = f"--speed must be 'max' (or 0) or a number from {MIN_SPEED:g} to {MAX_SPEED:g} like 1 or 4, got {text!r}"
    try:
        v = float(t.rstrip("x"))
    except ValueError:
        raise ConfigError(message) from None
    if v == 0:  # 0, 0.0, 0x: 'max'
        return None
    if not (math.isfinite(v) and MIN_SPEED <= v <= MAX_SPEED):
        raise ConfigError(message)
    return v


@dataclass
class ReplayResult:
    """What a replay did: its stats, the session directory, the problems of the questions file, wall seconds, every
    answer record in the order they were answered, and every alert of its watches (runtime.watches.Alert) in order."""

    stats: SessionStats
    out_dir: Path | None
    problems: list[tuple[int, str]]
    wall_s: float
    records: list[AnswerRecord] = field(default_factory=list)
    interrupted: bool = False
    alerts: list = field(default_factory=list)
    not_asked: int = 0  # scheduled questions whose time the replay never reached (stopped with Ctrl-C first)


class _Keep(Sink):
    def __init__(self):
        self.records: list[AnswerRecord] = []
        self.alerts: list = []

    def answered(self, record: AnswerRecord) -> None:
        self.records.append(record)

    def alert(self, alert) -> None:
        self.alerts.append(alert)


def replay(
    source,
    gq,
    config: SessionConfig,
    out_dir: str | Path | None,
    questions: str | Path | QuestionsFile | list[ScheduledQuestion] | None = None,
    speed: float | None = None,
    sinks: list[Sink] = (),
    wearer: str | None = None,
    spec: str = "",
    label: str = "replay",
    timeout_s: float | None = None,
    voice=None,
    setup=None,
) -> ReplayResult:
    """Replay `source` through a Session at `speed` (None: lockstep, as fast as the model goes) with the questions of
        a questions file (a path, a loaded QuestionsFile, or a list), writing the session directory `out_dir`. Unusable
        lines of the questions file are reported to the sinks as notices and skipped. Returns when the source has ended and
        every question is answered, after `timeout_s` wall seconds (a live source, which never ends: the questions already
    asked are still answered), or at Ctrl-C (`interrupted`: what was recorded and answered is kept)."""
    if isinstance(questions, str | Path):
        questions = load_replay_questions(questions, source)
    if isinstance(questions, QuestionsFile):
        scheduled, problems = questions.questions, questions.problems
    else:
        scheduled, problems = list(questions or []), []
    if speed is None:
        config.lockstep = True
    t0 = time.perf_counter()
    keep = _Keep()
    session = Session(
        source,
        gq,
        config,
        out_dir,
        [*sinks, keep],
        wearer=wearer,
        speed=speed,
        scheduled=scheduled,
        spec=spec,
        label=label,
    )
    start_ns = getattr(source, "start_ns", None)  # told before the first record: stamped at the source's start, not 0
    for line, why in problems:
        session.notice("bad_question", f"questions file line {line} skipped: {why}", start_ns)
    if voice is not None:
        session.voice = voice(session)
    if setup is not None:
        setup(session)
    interrupted = False
    try:
        session.start()
        session.wait(timeout_s)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        session.stop()
    wall_s = time.perf_counter() - t0
    return ReplayResult(
        session.stats, session.out_dir, problems, wall_s, keep.records, interrupted, keep.alerts, len(session.scheduled)
    )


def load_replay_questions(path: str | Path, source) -> QuestionsFile:
    """The questions file of a replay of `source` (a StreamGaze QA file only for the StreamGaze item of its video)."""
    video = getattr(source, "video_path", None)
    return load_questions(path, None if video is None else Path(video).name)
