"""StreamGaze's gaze-triggered alerts (GTA) evaluated through the runtime's own watch path (issue #12).

`gazeqwen-edge eval` scores a proactive question the way the benchmark does: one Yes/No decision per test point, each
on its own clip. A wearer gets something else: a watch ("tell me when I look at the stove") that the streaming
session scores after every video chunk and debounces into alerts (runtime/watches.py). This module replays each video
of a QA file through `runtime.replay.replay`, with one watch per GTA question registered when it is asked, and
measures what the wearer would have heard:

- test points (the benchmark's decision, taken from the watch path): the decision at a test point at t is the watch's
  last score at or before t (the chunk ending at or before t), "alert" when it is >= the watch threshold; precision /
  recall / F1 with the alerting (type 1) points as positives, as StreamGaze counts them;
- alerts (the debounced events the wearer hears): per watch, the first alert against the first gaze at the target:
  the start of the first fixation on it where the generator knows it (a synthetic benchmark, `apply_truth`), else
  the question's `first_appearance` (whole seconds in StreamGaze's files: that moment floored). "On time" when it
  fires at or after that moment and at most `delay_s` after it (1.5 s: the issue's must-show), "early" when before it
  (a false alarm: nothing was looked at yet), "late" after that, "missed" when a watch whose target is looked at (a
  type-1 test point) never fires; a watch with no type-1 point that fires is a "false" one, one that stays silent is
  "silent". On a synthetic benchmark each video also gets a control watch per object on screen that the wearer never
  fixates, which must stay silent. Delays are first alert minus that moment, in seconds of video.

The session learns the fixations as a live one does (FIXATION_MODES "detector", the default): the CSV's fixations
are replayed as gaze samples through its online detector, so a check sees a fixation 105 ms after it begins; "source"
reads them as `replay` does a StreamGaze item, each once it has ended.

Only GTA goes through watches: appearance alerts (OAA) ask "when X appears", which no runtime watch does; they are
counted as left out. Results: `OUT/videos.jsonl` (one line per replayed video; a rerun skips the videos there, so the
evaluation resumes), then `OUT/results.json` and `OUT/results.md`.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gazeqwen_edge.device.streamgaze import parse_mmss
from gazeqwen_edge.errors import ConfigError, InputError, write_bytes_atomic, write_error
from gazeqwen_edge.runtime.watches import DEFAULT_HOLD_S

# StreamGaze's task type of gaze-triggered alerts (training/tasks.py TASKS; the runtime does not import training, a
# test checks the two agree). Items are training.tasks.QAItem (duck-typed here: item_id, video, fixation_csv, answer,
# task_type, time_s, test_point, meta).
GTA_TASK = "proactive_gaze_triggered_alert"
DEFAULT_DELAY_S = 1.5  # an alert is on time within this many seconds of the first gaze at the target (issue #12)
RESULTS_FORMAT = "gazeqwen-edge-alerts"
RESULTS_VERSION = 1
LOG_FILE = "videos.jsonl"
OUTCOMES = ("on_time", "early", "late", "missed", "false", "silent")
# How the session learns the fixations of a StreamGaze item. "detector" (the default): as a wearer's live session
# does, from its online fixation detector, fed the CSV's fixations as gaze samples on each one's centre at Neon's
# 200 Hz (StreamGazeSource gaze_hz), so a fixation is known settle_ns (105 ms) after it begins. "source": the CSV's
# fixations as `replay` reads a StreamGaze item, each known only once it has ended.
FIXATION_MODES = ("detector", "source")
GAZE_HZ = 200.0
# What the newest fixation the session knew at a check (a chunk's last frame, or a new fixation) landed on, from the
# generator's truth
# (a synthetic benchmark): the watch's target, another object, the background, or no fixation known yet. results.md
# breaks the checks' yes rate and the early and false alerts down by it (where does the model say yes wrongly?).
GAZE_AT = ("target", "other", "background", "none")
# When a check knows a fixation: "detector", DETECTOR_SETTLE_S after it begins (OnlineScanpath.settle_ns at the
# default FixationParams; a test checks the two agree); "source", once it has ended.
DETECTOR_SETTLE_S = 0.105


def _check_fixation_mode(fixations: str) -> None:
    """ConfigError unless `fixations` is one of FIXATION_MODES."""
    if fixations not in FIXATION_MODES:
        raise ConfigError(f"fixations must be one of {', '.join(FIXATION_MODES)}, got {fixations!r}")


@dataclass
class WatchCase:
    """One GTA question as a watch: its id ("<video stem>/<item>.<question>"), target object, the time it is asked
    (video s), first_appearance (video s, None when the file has none) and its test points [(t_s, alert_expected)].
    With the generator's truth (synthetic benchmarks, `apply_truth`): `first_gaze_s`, the start of the first fixation
    on the target (video s; first_appearance is it floored to a whole second). A control watch (`control`, id
    "<video stem>/never.<k>") is on an object on screen that the wearer never fixates: no test points, it must stay
    silent."""

    case_id: str
    target: str
    asked_s: float
    first_appearance_s: float | None
    points: list[tuple[float, bool]] = field(default_factory=list)
    first_gaze_s: float | None = None
    control: bool = False


@dataclass
class VideoCases:
    """The watches of one video (its file and fixation CSV)."""

    video: Path
    fixation_csv: Path | None
    cases: list[WatchCase] = field(default_factory=list)
    # the generator's fixations [(start_s, end_s, object or None)] (apply_truth; None: not known)
    fixations: list[tuple[float, float, str | None]] | None = None


def watch_cases(items: Sequence) -> tuple[list[VideoCases], int]:
    """Group the GTA test points of `items` into watches per video (videos and watches in first-seen order). Returns
    them and the number of other proactive test points left out (appearance alerts: no runtime watch asks that).
    A GTA question without a target_object is an InputError naming it."""
    videos: dict[Path, VideoCases] = {}
    by_id: dict[str, WatchCase] = {}
    left_out = 0
    for it in items:
        if it.test_point is None:
            continue
        if it.task_type != GTA_TASK:
            left_out += 1
            continue
        case_id = it.item_id.rsplit("/p", 1)[0]
        case = by_id.get(case_id)
        if case is None:
            target = str(it.meta.get("target_object") or "").strip()
            if not target:
                raise InputError(
                    None, f"GTA question {case_id} has no target_object", hint="StreamGaze's GTA items name it"
                )
            case = WatchCase(case_id, target, _asked_s(it), _first_appearance_s(it))
            by_id[case_id] = case
            videos.setdefault(Path(it.video), VideoCases(Path(it.video), it.fixation_csv)).cases.append(case)
        case.points.append((float(it.time_s), it.answer == "A"))
    for v in videos.values():
        for c in v.cases:
            c.points.sort()
    return list(videos.values()), left_out


def apply_truth(vc: VideoCases, truth) -> None:
    """Give the watches of one video the generator's truth (`training.synthetic_benchmark.WatchTruth`, duck-typed:
    first_fixation_s {object: s}, never_fixated [object]): each watch's first_gaze_s, and one control watch, asked at
    0 s, per object never fixated in the video. None: nothing changes (StreamGaze's own files). InputError when a
    watch's first_appearance is not its first_gaze_s floored (the truth is another scene's)."""
    if truth is None:
        return
    vc.fixations = list(getattr(truth, "fixations", None) or []) or None
    for c in vc.cases:
        if not c.control:
            c.first_gaze_s = truth.first_fixation_s.get(c.target)
            fa = c.first_appearance_s
            if fa is not None and (c.first_gaze_s is None or math.floor(c.first_gaze_s + 1e-9) != fa):
                raise InputError(
                    vc.video,
                    f"the generator's truth does not match the QA file: {c.case_id} says the {c.target} is first "
                    f"looked at in second {fa:g}, the scene rebuilt from manifest.json "
                    + ("never fixates it" if c.first_gaze_s is None else f"at {c.first_gaze_s:.3f} s"),
                    hint="eval-alerts --truth first-appearance measures from the QA file's first_appearance instead",
                )
    if not any(c.control for c in vc.cases):
        vc.cases += [
            WatchCase(f"{vc.video.stem}/never.{k}", name, 0.0, None, control=True)
            for k, name in enumerate(truth.never_fixated)
        ]


def _first_appearance_s(it) -> float | None:
    """The question's first_appearance in video s; None when it has none or it is not a MM:SS time."""
    try:
        return parse_mmss(str(it.meta["first_appearance"]).strip())
    except (KeyError, ValueError):
        return None


def _asked_s(it) -> float:
    """When a proactive question is asked (video s): its time_stamp, else the start of its response_time span
    ("[00:00 - 00:08]"), else 0 (StreamGaze asks its GTA questions at 00:00)."""
    for text in (it.meta.get("time_stamp"), str(it.meta.get("response_time") or "").strip("[]").split("-")[0]):
        try:
            if text not in (None, ""):
                return parse_mmss(str(text).strip())
        except (ValueError, InputError):
            continue
    return 0.0


def gaze_at_check(
    fixations: Sequence[tuple[float, float, str | None]], target: str, t_s: float, mode: str = "detector"
) -> str:
    """GAZE_AT of a check at video time t_s (s) for a watch on `target`: what the newest of `fixations` ((start_s,
    end_s, object or None), time order) known at t_s landed on. Known: `mode` "detector", DETECTOR_SETTLE_S after it
    begins; "source", once it has ended (FIXATION_MODES)."""
    _check_fixation_mode(mode)
    known = [f for f in fixations if (f[0] + DETECTOR_SETTLE_S if mode == "detector" else f[1]) <= t_s + 1e-6]
    if not known:
        return "none"
    name = known[-1][2]
    return "background" if name is None else ("target" if name == target else "other")


def decisions(checks: Sequence[tuple[float, float]], points: Sequence[tuple[float, bool]], threshold: float):
    """The watch path's decision at each test point: [(t_s, expected, predicted, score or None)]. `checks` are the
    watch's (chunk end s, p(Yes)) in time order; a point takes the last check at or before it (none yet: no alert)."""
    times = [t for t, _ in checks]
    out = []
    for t, expected in points:
        k = bisect.bisect_right(times, t + 1e-6) - 1
        score = checks[k][1] if k >= 0 else None
        out.append((t, expected, score is not None and score >= threshold, score))
    return out


def alert_outcome(alerts_s: Sequence[float], case: WatchCase, delay_s: float) -> tuple[str, float | None]:
    """(outcome, delay s or None) of a watch's alerts (video s, time order) against the first gaze at its target
    (first_gaze_s where the generator gave it, else first_appearance) and its test points (see the module
    docstring). A watch without either but with type-1 points is judged against its first type-1 point."""
    looked = any(expected for _, expected in case.points)
    if not looked:
        return ("false" if alerts_s else "silent"), None
    truth = case.first_gaze_s if case.first_gaze_s is not None else case.first_appearance_s
    if truth is None:
        truth = min(t for t, expected in case.points if expected)
    if not alerts_s:
        return "missed", None
    d = alerts_s[0] - truth
    if d < 0:
        return "early", d
    return ("on_time" if d <= delay_s + 1e-9 else "late"), d


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall, F1 (None where undefined) and the counts."""
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else (0.0 if p == 0 or r == 0 else None)
    return {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def summarise(video_records: Sequence[dict], delay_s: float, threshold: float | None = None) -> dict:
    """Test-point P/R/F1 and alert outcomes over the replayed videos' records (`replay_video` output). With
    `threshold` and records that know what each check looked at (`gaze_at`, a synthetic benchmark): "by_gaze", per
    GAZE_AT the checks, how many said yes (score >= threshold) and how many early or false first alerts came from
    such a check."""
    tp = fp = fn = tn = 0
    outcomes = dict.fromkeys(OUTCOMES, 0)
    delays = []
    by_gaze = {g: {"checks": 0, "yes": 0, "early_or_false": 0} for g in GAZE_AT}
    for v in video_records:
        for w in v["watches"]:
            gaze_at = w.get("gaze_at")
            if threshold is not None and gaze_at is not None:
                for (t, score), g in zip(w["checks"], gaze_at, strict=True):
                    by_gaze[g]["checks"] += 1
                    by_gaze[g]["yes"] += score >= threshold
                    if w["outcome"] in ("early", "false") and w["alerts_s"] and abs(t - w["alerts_s"][0]) < 1e-3:
                        by_gaze[g]["early_or_false"] += 1
            for _, expected, predicted, _ in w["decisions"]:
                tp += expected and predicted
                fp += (not expected) and predicted
                fn += expected and not predicted
                tn += (not expected) and not predicted
            outcomes[w["outcome"]] += 1
            if w["outcome"] in ("on_time", "late"):
                delays.append(w["delay_s"])
    n_watches = sum(outcomes.values())
    looked = outcomes["on_time"] + outcomes["early"] + outcomes["late"] + outcomes["missed"]
    known = any(b["checks"] for b in by_gaze.values())
    return {
        "videos": len(video_records),
        "watches": n_watches,
        "controls": sum(1 for v in video_records for w in v["watches"] if w.get("control")),
        "test_points": {**prf(tp, fp, fn), "tn": tn, "accuracy": (tp + tn) / max(1, tp + fp + fn + tn)},
        "alerts": {
            **outcomes,
            "on_time_rate": outcomes["on_time"] / looked if looked else None,
            "delay_s_median": statistics.median(delays) if delays else None,
            "delay_s_max": max(delays) if delays else None,
            "delay_window_s": delay_s,
        },
        **({"by_gaze": by_gaze} if known else {}),
    }


def replay_video(
    gq,
    vc: VideoCases,
    config,
    *,
    threshold: float,
    hold_s: float,
    rearm_s: float,
    delay_s: float,
    fixations: str = "detector",
    source=None,
) -> dict:
    """Replay one video (StreamGazeSource: its frames and fixation CSV) through the streaming session in lockstep,
    with a watch per case added when it is asked; returns its record: per watch the checks [(s, p(Yes))], alerts
    (video s), decisions at the test points, outcome and delay. `fixations`: FIXATION_MODES (how the session learns
    the fixations; it overrides config.fixations). `source`: another Source to replay instead of the video's
    (benchmarks/watch_scenes.py: a synthetic scene with its own noisy gaze; "detector" then reads that gaze, "source"
    its own fixations), its time 0 the cases' video time 0."""
    import dataclasses

    from gazeqwen_edge.device.streamgaze import StreamGazeSource
    from gazeqwen_edge.runtime.questions import ScheduledQuestion
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.watches import Watches

    _check_fixation_mode(fixations)
    if source is None:
        hz = GAZE_HZ if fixations == "detector" else None
        source = StreamGazeSource(vc.video, fixations=vc.fixation_csv, gaze_hz=hz)
    config = dataclasses.replace(config, fixations=fixations)

    class Recording(Watches):
        """The session's watches, logging every score (the session calls update once per check)."""

        def __init__(self):
            super().__init__(threshold=threshold, hold_s=hold_s, rearm_s=rearm_s)
            self.checks: dict[int, list[tuple[float, float]]] = {}

        def update(self, w, score, t_s):
            self.checks.setdefault(w.id, []).append((t_s, float(score)))
            return super().update(w, score, t_s)

    watches = Recording()
    pending = sorted(vc.cases, key=lambda c: c.asked_s)
    ids: dict[str, int] = {}

    def setup(session):
        session.watches = watches
        # watches asked at the start are there before the first chunk; later ones join at their time (below)
        for c in pending:
            if c.asked_s <= 0:
                ids[c.case_id] = watches.add(c.target).id

    questions = [
        ScheduledQuestion(c.asked_s, f"Tell me when I look at the {c.target}.", None, {})
        for c in pending
        if c.asked_s > 0
    ]
    result = replay(source, gq, config, None, questions, setup=setup)
    for c in pending:  # watches added by a question: found by target
        if c.case_id not in ids:
            w = watches.add(c.target)
            ids[c.case_id] = w.id
    # the session's seconds (checks, alerts' t) count from its source's start_ns, which is this video's time 0
    alerts: dict[int, list[float]] = {}
    for a in result.alerts:
        alerts.setdefault(a.watch_id, []).append(a.t)
    out = []
    for c in vc.cases:
        wid = ids[c.case_id]
        checks = [(round(t, 3), s) for t, s in watches.checks.get(wid, [])]
        gaze = (
            {}
            if vc.fixations is None
            else {"gaze_at": [gaze_at_check(vc.fixations, c.target, t, fixations) for t, _ in checks]}
        )
        out.append(
            {
                "case": c.case_id,
                "target": c.target,
                "asked_s": c.asked_s,
                "first_appearance_s": c.first_appearance_s,
                "first_gaze_s": c.first_gaze_s,
                "control": c.control,
                "checks": checks,
                **_judged(c, checks, sorted(alerts.get(wid, [])), threshold, delay_s),
                **gaze,
            }
        )
    return {"video": vc.video.name, "watches": out, "wall_s": round(result.wall_s, 2)}


def _judged(case: WatchCase, checks, alerts_s: list[float], threshold: float, delay_s: float) -> dict:
    """A watch record's judged fields: its alerts (video s), the decisions at its test points and its outcome and
    delay; one place for replay_video and rescore, so a rescored record is what the run would have logged."""
    outcome, delay = alert_outcome(alerts_s, case, delay_s)
    return {
        "alerts_s": alerts_s,
        "decisions": decisions(checks, case.points, threshold),
        "outcome": outcome,
        "delay_s": None if delay is None else round(delay, 6),
    }


def rescore(
    video_records: Sequence[dict], *, threshold: float, hold_s: float, rearm_s: float, delay_s: float
) -> list[dict]:
    """The video records (`replay_video` output) as another threshold, hold, re-arm or delay window would have made
    them, without running the model again: each watch's recorded checks go through the session's own debouncing
    (runtime.watches.Watches) again, then the decisions and the outcome are taken as replay_video takes them. The
    scores do not depend on those settings (the checks run after every chunk whatever they are), so rescoring with a
    run's own settings gives back its records (a test checks it). ConfigError for settings Watches refuses."""
    from gazeqwen_edge.runtime.watches import Watches

    out = []
    for v in video_records:
        watches = []
        for w in v["watches"]:
            debounce = Watches(threshold=threshold, hold_s=hold_s, rearm_s=rearm_s)
            watch = debounce.add(w["target"])
            alerts = [t for t, score in w["checks"] if debounce.update(watch, score, t)]
            case = WatchCase(
                w["case"],
                w["target"],
                w["asked_s"],
                w["first_appearance_s"],
                [(t, expected) for t, expected, _, _ in w["decisions"]],
                w["first_gaze_s"],
                w["control"],
            )
            watches.append({**w, **_judged(case, w["checks"], alerts, threshold, delay_s)})
        out.append({**v, "watches": watches})
    return out


def evaluate_alerts(
    gq,
    items: Sequence,
    out_dir: Path,
    config,
    header: dict,
    *,
    threshold: float = 0.5,
    hold_s: float = DEFAULT_HOLD_S,
    rearm_s: float = 3.0,
    delay_s: float = DEFAULT_DELAY_S,
    progress: Callable[[int, int], None] | None = None,
    truth: Callable[[Path], object] | None = None,
    fixations: str = "detector",
) -> dict:
    """Replay every video of `items` that has GTA questions (see the module docstring), resuming from
    `out_dir/videos.jsonl` (a log written with other settings is refused: ConfigError), and write results.json and
    results.md. Returns results.json's document. ConfigError when `items` hold no GTA question. `truth`: a function
    from a video to the generator's WatchTruth (`training.synthetic_benchmark.benchmark_watch_truth`; None for
    StreamGaze's own files): delays are then measured from the first fixation on the target, and each video gets a
    control watch per object never fixated (`apply_truth`). `fixations`: FIXATION_MODES."""
    if not (0 < threshold < 1) or hold_s < 0 or rearm_s < 0 or not (math.isfinite(delay_s) and delay_s >= 0):
        raise ConfigError("alerts need 0 < threshold < 1, non-negative hold and re-arm, and a delay window >= 0")
    _check_fixation_mode(fixations)
    videos, left_out = watch_cases(items)
    if not videos:
        raise ConfigError(
            "no gaze-triggered alert (GTA) question among the items",
            hint="a StreamGaze QA file with proactive_gaze_triggered_alert questions (e.g. dataset synthetic's test.json)",
        )
    settings = {
        "threshold": threshold,
        "hold_s": hold_s,
        "rearm_s": rearm_s,
        "delay_s": delay_s,
        "truth": "first_appearance" if truth is None else "generator",
        "fixations": fixations,
        "watch_checks": getattr(config, "watch_checks", None),
    }
    header = {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, **header, **settings}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / LOG_FILE
    records = _read_log(log, header)
    done = {r["video"] for r in records}
    progress = progress or (lambda done, total: None)
    progress(len(done), len(videos))
    f = open(log, "a", encoding="utf-8")  # noqa: SIM115 - closed below, its refused bytes let go
    try:

        def put(obj) -> None:  # one line, flushed; a disk that refuses it is named (a buffered write names no file)
            try:
                f.write(json.dumps(obj) + "\n")
                f.flush()
            except OSError as e:
                raise write_error(log, "the alerts log", e, resumable=True) from e

        if not log.stat().st_size:
            put({"header": header})  # at once: a full disk shows before the first video's work
        for vc in videos:
            if vc.video.name in done:
                continue
            if truth is not None:
                apply_truth(vc, truth(vc.video))
            rec = replay_video(
                gq,
                vc,
                config,
                threshold=threshold,
                hold_s=hold_s,
                rearm_s=rearm_s,
                delay_s=delay_s,
                fixations=fixations,
            )
            put(rec)
            records.append(rec)
            done.add(vc.video.name)
            progress(len(done), len(videos))
    finally:
        try:
            f.close()
        except OSError:  # the bytes a full disk refused, already reported by put: not a second, nameless error
            pass
    chosen = {vc.video.name for vc in videos}  # a log resumed under a smaller --limit holds videos left out now
    records = [r for r in records if r["video"] in chosen]
    doc = {
        **header,
        "left_out_test_points": left_out,
        "summary": summarise(records, delay_s, threshold),
        "videos": records,
    }
    for name, text in (("results.json", json.dumps(doc, indent=1)), ("results.md", markdown(doc))):
        try:  # whole or not at all, like eval's
            write_bytes_atomic(out_dir / name, text.encode("utf-8"))
        except OSError as e:
            raise write_error(out_dir / name, "the results", e, resumable=True) from e
    return doc


# the eval-alerts option behind each header field, to name in a refusal
OPTION_OF = {
    "model": "--model",
    "qa_file": "--qa",
    "fps": "--fps",
    "limit": "--limit",
    "threshold": "--threshold",
    "hold_s": "--watch-hold",
    "rearm_s": "--rearm",
    "delay_s": "--delay",
    "truth": "--truth",
    "fixations": "--detector/--no-detector",
    "watch_checks": "--watch-checks",
}


# header fields a resumed log may differ in: how many videos are replayed (a video's record does not depend on it;
# extending a run replays only the videos it adds, and the results count the videos chosen now)
MAY_CHANGE_ON_RESUME = ("limit",)


def _read_log(path: Path, header: dict) -> list[dict]:
    """The video records of an existing log; ConfigError when it was written for another model, file or setting
    (any header field but MAY_CHANGE_ON_RESUME)."""
    if not path.exists() or not path.stat().st_size:
        return []
    lines = _log_lines(path)
    if not lines:  # only a header cut off mid-write: a new log
        return []
    old = lines[0].get("header") if isinstance(lines[0], dict) else None
    if not isinstance(old, dict):
        raise InputError(path, "is not an alerts log: its first line is no header", hint="use another --out")
    old_fixed, new_fixed = (
        {k: v for k, v in h.items() if k not in MAY_CHANGE_ON_RESUME} for h in (old, json.loads(json.dumps(header)))
    )
    if old_fixed != new_fixed:
        diff = sorted(k for k in set(old_fixed) | set(new_fixed) if old_fixed.get(k) != new_fixed.get(k))
        named = [
            f"{OPTION_OF.get(k, k)}: log has {_shown(old_fixed.get(k))}, this run {_shown(new_fixed.get(k))}"
            for k in diff
        ]
        raise ConfigError(
            f"{path} was written by another alerts evaluation (differs in: {', '.join(named) or 'its header'})",
            hint="use another --out, or rerun with the same settings to resume",
        )
    records: dict[str, dict] = {}  # a video logged twice (two runs on one --out): its last record
    for x in lines[1:]:
        records[x["video"]] = x
    return list(records.values())


def _shown(value) -> str:
    """A header value for a refusal: JSON, at most 60 characters (a QA file's path, a threshold, "both")."""
    text = "none" if value is None else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _log_lines(path: Path) -> list:
    """The records of an alerts log. A last line cut off mid-write (a killed run: no newline at its end) is dropped
    and cut from the file, so the resumed run appends after the last whole record and replays that video again; an
    unreadable line before it, or a line after the first that is no video record ({"video": name, "watches": [...]}),
    is an InputError naming it."""
    raw = path.read_bytes()
    lines, complete = [], 0
    for k, line in enumerate(raw.splitlines(keepends=True)):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("cut off")
            lines.append(json.loads(line) if line.strip() else None)
        except ValueError:
            if complete + len(line) < len(raw):
                raise InputError(
                    path,
                    f"line {k + 1} is no JSON record",
                    hint="delete the log (or use another --out) to start afresh",
                ) from None
            with open(path, "r+b") as f:
                f.truncate(complete)
            break
        complete += len(line)
        rec = lines[-1]
        if k and rec is not None and not _is_video_record(rec):
            raise InputError(
                path,
                f"line {k + 1} is no video record",
                hint="delete the log (or use another --out) to start afresh",
            )
    return [x for x in lines if x is not None]


def _is_video_record(rec) -> bool:
    """A log line replay_video wrote: its video's name and a list of watch records."""
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("video"), str)
        and isinstance(rec.get("watches"), list)
        and all(isinstance(w, dict) and isinstance(w.get("checks"), list) for w in rec["watches"])
    )


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _n(n: int, one: str, many: str | None = None) -> str:
    """ "1 video", "2 videos": a count with its noun (`many`: the plural when it is not noun + "s")."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def markdown(doc: dict) -> str:
    """results.md: the test-point and alert figures of one alerts evaluation."""
    s = doc["summary"]
    tp, al = s["test_points"], s["alerts"]
    delay = "-" if al["delay_s_median"] is None else f"{al['delay_s_median']:.2f} s (max {al['delay_s_max']:.2f} s)"
    generator = doc.get("truth") == "generator"
    since = (
        "the first fixation on the target (the generator's truth)"
        if generator
        else "first_appearance (whole seconds, StreamGaze's)"
    )
    n_controls = s.get("controls", 0)
    controls = (
        f" {_n(n_controls, 'watch is a control', 'watches are controls')}, on an object on screen that is never "
        "fixated (false: it fired; silent: it did not)."
        if n_controls
        else (" No video shows an object that is never fixated: no control watch." if generator else "")
    )
    known = {
        "detector": "Fixations from the online detector (the CSV's fixations replayed as 200 Hz gaze), as live.",
        "source": "Fixations from the CSV, each known once it ended.",
    }.get(doc.get("fixations"), "")
    checks = {  # runtime.watches.WATCH_CHECKS; a run from before the option checked after each chunk
        "chunk": "Watches checked after each chunk.",
        "fixation": "Watches checked at each new fixation.",
        "both": "Watches checked after each chunk and at each new fixation.",
    }.get(doc.get("watch_checks", "chunk"), "")
    known = f"{known} {checks}".strip()
    return "\n".join(
        [
            f"# Gaze-triggered alerts through the watch path: {doc.get('model', '?')}",
            "",
            f"{_n(s['videos'], 'video')}, {_n(s['watches'], 'watch', 'watches')}; threshold {doc['threshold']}, "
            f"hold {doc['hold_s']} s, re-arm {doc['rearm_s']} s; "
            f"{_n(doc['left_out_test_points'], 'appearance-alert test point')} left out. "
            f"Delays from {since} (the median over the watches on time and late).{controls} {known}".rstrip(),
            "",
            "| test points | precision | recall | F1 | accuracy |",
            "|---|---|---|---|---|",
            f"| {tp['tp'] + tp['fp'] + tp['fn'] + tp['tn']} | {_pct(tp['precision'])} | {_pct(tp['recall'])} | "
            f"{_pct(tp['f1'])} | {_pct(tp['accuracy'])} |",
            "",
            f"| watches | on time (<= {al['delay_window_s']:g} s) | early | late | missed | false | silent | median delay |",
            "|---|---|---|---|---|---|---|---|",
            f"| {s['watches']} | {al['on_time']} | {al['early']} | {al['late']} | {al['missed']} | {al['false']} | "
            f"{al['silent']} | {delay} |",
            "",
            *_by_gaze_table(s.get("by_gaze")),
        ]
    )


GAZE_AT_TEXT = {
    "target": "on the watch's target",
    "other": "on another object",
    "background": "on the background",
    "none": "none yet",
}


def _by_gaze_table(by_gaze: dict | None) -> list[str]:
    """results.md's lines on what the checks looked at (summarise's "by_gaze"); none when it is not known."""
    if not by_gaze:
        return []
    rows = [
        f"| {GAZE_AT_TEXT[g]} | {b['checks']} | {_pct(b['yes'] / b['checks'] if b['checks'] else None)} | "
        f"{b['early_or_false']} |"
        for g, b in by_gaze.items()
    ]
    return [
        "What the checks looked at (the generator's truth: the newest fixation the session knew at the check, a "
        "chunk's last frame or a new fixation):",
        "",
        "| newest fixation | checks | yes % | early or false first alerts |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
