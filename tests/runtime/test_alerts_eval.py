"""Gaze-triggered alerts evaluated through the runtime's watch path (runtime/alerts_eval.py): the scoring rules on hand-made
cases, and a replay of synthetic-benchmark videos whose watch scores are scripted by video time, so every alert and
decision is known in advance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.errors import ConfigError
from gazeqwen_edge.runtime import alerts_eval as al
from gazeqwen_edge.training.tasks import QAItem

YN = ["A. Yes", "B. No"]


def point(case: str, k: int, t: float, expected: bool, task: str = al.GTA_TASK, **meta) -> QAItem:
    base = {"target_object": "red circle", "first_appearance": "00:04", "time_stamp": "00:00", **meta}
    return QAItem(
        f"{case}/p{k}", Path("v.mp4"), None, "Monitor ...", YN, "A" if expected else "B", task, t, (0.0, t), 2.0,
        test_point=k - 1, meta=base,
    )  # fmt: skip


def test_watch_cases_group_sort_and_leave_out_appearance_alerts():
    items = [
        point("v/1.1", 2, 6.0, True),
        point("v/1.1", 1, 3.0, False),
        point("v/2.1", 1, 5.0, True, target_object="blue ring", first_appearance="00:05", time_stamp="00:02"),
        point("v/3.1", 1, 5.0, True, task="proactive_object_appearance_alert"),
    ]
    videos, left_out = al.watch_cases(items)
    assert left_out == 1
    assert len(videos) == 1
    c1, c2 = videos[0].cases
    assert (c1.case_id, c1.target, c1.asked_s, c1.first_appearance_s) == ("v/1.1", "red circle", 0.0, 4.0)
    assert c1.points == [(3.0, False), (6.0, True)]
    assert (c2.target, c2.asked_s, c2.first_appearance_s) == ("blue ring", 2.0, 5.0)


def test_a_malformed_first_appearance_falls_back_to_the_first_alerting_point():
    (vc,), _ = al.watch_cases([point("v/1.1", 1, 3.0, False, first_appearance="soon"), point("v/1.1", 2, 6.0, True)])
    case = vc.cases[0]
    assert case.first_appearance_s is None
    assert al.alert_outcome([6.5], case, 1.5) == ("on_time", 0.5)


def test_decisions_take_the_last_check_at_or_before_each_point():
    checks = [(1.0, 0.2), (2.0, 0.9), (3.0, 0.4)]
    got = al.decisions(checks, [(0.5, False), (2.0, True), (2.9, True), (9.0, False)], 0.5)
    assert [(t, p) for t, _, p, _ in got] == [(0.5, False), (2.0, True), (2.9, True), (9.0, False)]
    assert [s for *_, s in got] == [None, 0.9, 0.9, 0.4]


@pytest.mark.parametrize(
    "alerts, points, outcome, delay",
    [
        ([4.0], [(5.0, True)], "on_time", 0.0),
        ([5.5], [(5.0, True)], "on_time", 1.5),
        ([5.6], [(5.0, True)], "late", 1.6),
        ([3.9, 4.5], [(5.0, True)], "early", -0.1),
        ([], [(5.0, True)], "missed", None),
        ([2.0], [(5.0, False)], "false", None),
        ([], [(5.0, False)], "silent", None),
    ],
)
def test_alert_outcomes_against_the_first_gaze(alerts, points, outcome, delay):
    case = al.WatchCase("v/1.1", "red circle", 0.0, 4.0, points)
    got = al.alert_outcome(alerts, case, 1.5)
    assert got[0] == outcome
    assert got[1] == (None if delay is None else pytest.approx(delay))


class Truth:
    def __init__(self, first, never):
        self.first_fixation_s, self.never_fixated = first, never


def test_with_the_generators_truth_delays_count_from_the_first_fixation_and_controls_must_stay_silent():
    """StreamGaze's first_appearance is whole seconds: the wearer first fixates the red circle at 4.7 s, the file
    says 00:04. Against 4.0 an alert at 4.4 was on time (before the wearer looked) and one at 5.9 took 1.9 s (it
    took 1.2); against the generator's 4.7 the first is early and the second on time. A control watch (an object on
    screen never fixated) is "false" when it fires, "silent" when not."""
    (vc,), _ = al.watch_cases([point("v/1.1", 1, 3.0, False), point("v/1.1", 2, 6.0, True)])
    case = vc.cases[0]
    assert al.alert_outcome([4.4], case, 1.5)[0] == "on_time" and al.alert_outcome([5.9], case, 1.5)[0] == "late"
    al.apply_truth(vc, Truth({"red circle": 4.7, "blue star": 1.0}, ["green ring"]))
    al.apply_truth(vc, Truth({"red circle": 4.7}, ["green ring"]))  # (a second time adds no second control)
    assert case.first_gaze_s == 4.7
    assert al.alert_outcome([4.4], case, 1.5) == ("early", pytest.approx(-0.3))
    assert al.alert_outcome([5.9], case, 1.5) == ("on_time", pytest.approx(1.2))
    assert al.alert_outcome([6.3], case, 1.5)[0] == "late"
    control = vc.cases[1]
    assert (control.target, control.control, control.points, control.asked_s) == ("green ring", True, [], 0.0)
    assert len(vc.cases) == 2
    assert al.alert_outcome([2.0], control, 1.5) == ("false", None)
    assert al.alert_outcome([], control, 1.5) == ("silent", None)
    al.apply_truth(vc, None)  # StreamGaze's own files: nothing changes
    assert case.first_gaze_s == 4.7 and len(vc.cases) == 2


def test_a_truth_that_contradicts_the_qa_files_first_appearance_is_refused():
    """first_appearance is the first fixation floored: a generator truth that says otherwise is another scene's."""
    from gazeqwen_edge.errors import InputError

    for first in ({"red circle": 5.2}, {}):  # second 5, not 4; never looked at
        (vc,), _ = al.watch_cases([point("v/1.1", 1, 3.0, False), point("v/1.1", 2, 6.0, True)])
        with pytest.raises(InputError, match="does not match the QA file") as e:
            al.apply_truth(vc, Truth(first, []))
        assert "--truth first-appearance" in e.value.hint


def test_what_a_check_looked_at_is_the_newest_fixation_the_session_knew():
    """A check at t sees a fixation the detector reports DETECTOR_SETTLE_S after it begins (the CSV read as replay
    does: once it has ended); its category is what that fixation landed on, for the watch's target."""
    fx = [(0.2, 0.6, "red circle"), (0.65, 1.0, None), (1.05, 1.5, "blue star")]
    at = al.gaze_at_check
    assert at(fx, "red circle", 0.25) == "none"  # begun 50 ms ago: not known yet
    assert at(fx, "red circle", 0.31) == "target" and at(fx, "blue star", 0.31) == "other"
    assert at(fx, "red circle", 0.7) == "target" and at(fx, "red circle", 0.76) == "background"
    assert at(fx, "red circle", 1.2) == "other" and at(fx, "blue star", 9.0) == "target"
    assert at(fx, "red circle", 0.5, "source") == "none" and at(fx, "red circle", 0.6, "source") == "target"
    assert at(fx, "red circle", 1.2, "source") == "background"
    with pytest.raises(ConfigError):
        at(fx, "red circle", 1.0, "csv")


def test_the_settle_time_is_the_detectors():
    from gazeqwen_edge.calibration.camera import CameraModel, GazeMapper
    from gazeqwen_edge.calibration.scanpath import OnlineScanpath

    sp = OnlineScanpath(GazeMapper(CameraModel.pinhole(1600, 1200)))
    assert sp.settle_ns == round(al.DETECTOR_SETTLE_S * 1e9)


def test_summary_breaks_checks_and_wrong_first_alerts_down_by_what_they_looked_at():
    def watch(outcome, alerts, checks, gaze_at):
        return {"decisions": [], "outcome": outcome, "delay_s": None, "alerts_s": alerts, "checks": checks,
                "gaze_at": gaze_at}  # fmt: skip

    rec = {
        "video": "v.mp4",
        "watches": [
            watch("early", [1.4, 5.4], [(0.4, 0.1), (1.4, 0.9), (2.4, 0.2), (5.4, 0.8)],
                  ["none", "background", "other", "target"]),
            watch("false", [2.4], [(0.4, 0.0), (1.4, 0.4), (2.4, 0.6)], ["other", "background", "other"]),
            watch("on_time", [1.4], [(0.4, 0.2), (1.4, 0.7)], ["background", "target"]),
        ],
    }  # fmt: skip
    by = al.summarise([rec], 1.5, threshold=0.5)["by_gaze"]
    assert by["target"] == {"checks": 2, "yes": 2, "early_or_false": 0}
    assert by["background"] == {"checks": 3, "yes": 1, "early_or_false": 1}
    assert by["other"] == {"checks": 3, "yes": 1, "early_or_false": 1}
    assert by["none"] == {"checks": 1, "yes": 0, "early_or_false": 0}
    assert "by_gaze" not in al.summarise([rec], 1.5)  # no threshold: not counted
    md = al.markdown({"model": "m", "threshold": 0.5, "hold_s": 0, "rearm_s": 3, "left_out_test_points": 0,
                      "summary": al.summarise([rec], 1.5, threshold=0.5)})  # fmt: skip
    assert "| on the background | 3 | 33.3 | 1 |" in md, md
    assert "Watches checked after each chunk." in md  # a run from before --watch-checks
    both = al.markdown({"model": "m", "threshold": 0.5, "hold_s": 0, "rearm_s": 3, "left_out_test_points": 0,
                        "watch_checks": "both", "summary": al.summarise([rec], 1.5, threshold=0.5)})  # fmt: skip
    assert "Watches checked after each chunk and at each new fixation." in both


def test_summary_counts_points_and_outcomes():
    rec = {
        "video": "v.mp4",
        "watches": [
            {"decisions": [(1, True, True, 0.9), (2, False, True, 0.8), (3, True, False, 0.1), (4, True, True, 0.7)],
             "outcome": "on_time",
             "delay_s": 0.5},
            {"decisions": [(1, False, False, 0.1)], "outcome": "late", "delay_s": 2.5},
        ],
    }  # fmt: skip
    s = al.summarise([rec], 1.5)
    tp = s["test_points"]
    assert (tp["tp"], tp["fp"], tp["fn"], tp["tn"]) == (2, 1, 1, 1)
    assert tp["precision"] == pytest.approx(2 / 3) and tp["recall"] == pytest.approx(2 / 3)
    assert tp["accuracy"] == pytest.approx(3 / 5)
    assert s["alerts"]["on_time"] == 1 and s["alerts"]["late"] == 1
    assert s["alerts"]["on_time_rate"] == 0.5
    assert s["alerts"]["delay_s_median"] == 1.5


# ------------------------------------------------------------------------------ through the session
@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from gazeqwen_edge.training.synthetic_benchmark import build_synthetic_benchmark

    out = tmp_path_factory.mktemp("alerts") / "bench"
    build_synthetic_benchmark(out, n_videos=3, seed=7, duration_s=8.0, width=160, height=120, fps=5)
    return out


@pytest.fixture(scope="module")
def bench_with_a_control(tmp_path_factory):
    """A tiny benchmark (seed 3) one of whose GTA videos shows an object the wearer never fixates."""
    from gazeqwen_edge.training.synthetic_benchmark import build_synthetic_benchmark

    out = tmp_path_factory.mktemp("alerts3") / "bench"
    build_synthetic_benchmark(out, n_videos=3, seed=3, duration_s=8.0, width=160, height=120, fps=5)
    return out


def scripted(monkeypatch, yes_from_s: dict[str, float]):
    """Watch scores by video time: p(Yes) ~1 once the video reaches yes_from_s[target] (seconds prefilled), ~0
    before; an absent target never says yes."""
    from gazeqwen_edge.runtime import stream as stream_mod

    def score_mc(self, question, options, prompt=""):
        covered = self.n_steps * self.second_per_grid_t
        target = question.split("<", 1)[1].split(">", 1)[0]
        yes = covered >= yes_from_s.get(target, float("inf"))
        return {"A": 8.0, "B": 0.0} if yes else {"A": 0.0, "B": 8.0}

    monkeypatch.setattr(stream_mod.VideoStream, "score_mc", score_mc)


def gta_items(bench: Path):
    from gazeqwen_edge.training.streamgaze import load_streamgaze

    items = load_streamgaze(bench / "test.json", bench / "videos", bench / "fixations").items
    items += load_streamgaze(bench / "train.json", bench / "videos", bench / "fixations").items
    videos, _ = al.watch_cases(items)
    assert videos, "the tiny benchmark has GTA questions"
    return items, videos


def test_alerts_come_from_the_session_at_the_scripted_times(bench, monkeypatch, tmp_path):
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.session import SessionConfig

    items, videos = gta_items(bench)
    vc = videos[0]
    first = vc.cases[0]
    yes_at = (first.first_appearance_s or 0.0) + 1.0  # the model says yes from 1 s after the first gaze
    scripted(monkeypatch, {first.target: yes_at})
    chosen = [it for it in items if it.video == vc.video]
    gq = build_tiny_gazeqwen(seed=0, injected_layers=(0, 1))
    config = SessionConfig(fps=2.0, watch_checks="chunk")  # (at each fixation too: tests/runtime/test_watches.py)
    doc = al.evaluate_alerts(gq, chosen, tmp_path / "out", config, {"model": "tiny"}, hold_s=0.0)
    (rec,) = doc["videos"]
    w = next(w for w in rec["watches"] if w["case"] == first.case_id)
    checks = w["checks"]
    assert checks, "the watch was scored after every chunk"
    # one check per chunk; the first yes is the first check covering yes_at seconds of video, and hold 0 fires there
    yes_checks = [t for t, s in checks if s > 0.5]
    assert yes_checks and all(s < 0.5 for t, s in checks if t < yes_checks[0])
    assert w["alerts_s"][0] == pytest.approx(yes_checks[0], abs=1e-3)
    assert yes_at - 1.0 <= w["alerts_s"][0] <= yes_at + 1.0  # chunk granularity: 1 s
    assert w["outcome"] == al.alert_outcome(w["alerts_s"], first, 1.5)[0]
    # the decisions at the test points follow the scripted scores
    for t, _expected, predicted, _ in w["decisions"]:
        assert predicted == any(c <= t + 1e-6 for c in yes_checks)
    # other watches of the video never say yes: no alert, and their looked-at targets count as missed
    for other in rec["watches"]:
        if other["target"] != first.target:
            assert other["alerts_s"] == [] and other["outcome"] in ("missed", "silent")
    # files: the resumable log, results.json, results.md
    out = tmp_path / "out"
    assert json.loads((out / "results.json").read_text())["summary"] == doc["summary"]
    assert "on time" in (out / "results.md").read_text()
    assert "Watches checked after each chunk." in (out / "results.md").read_text()


def test_a_rerun_resumes_and_other_settings_are_refused(bench, monkeypatch, tmp_path):
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime import replay as replay_mod
    from gazeqwen_edge.runtime.session import SessionConfig

    items, videos = gta_items(bench)
    scripted(monkeypatch, {})
    gq = build_tiny_gazeqwen(seed=0, injected_layers=(0, 1))
    first_video = [it for it in items if it.video == videos[0].video]
    out = tmp_path / "out"
    al.evaluate_alerts(gq, first_video, out, SessionConfig(fps=2.0), {"model": "tiny"})
    calls = []
    real = replay_mod.replay
    monkeypatch.setattr(replay_mod, "replay", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    doc = al.evaluate_alerts(gq, items, out, SessionConfig(fps=2.0), {"model": "tiny"})
    assert len(calls) == len(videos) - 1  # the first video came from the log
    assert doc["summary"]["videos"] == len(videos)
    with pytest.raises(ConfigError, match="differs in: --watch-hold: log has 0.0, this run 2.0"):
        al.evaluate_alerts(gq, items, out, SessionConfig(fps=2.0), {"model": "tiny"}, hold_s=2.0)
    with pytest.raises(ConfigError, match="differs in: --detector/--no-detector"):
        al.evaluate_alerts(gq, items, out, SessionConfig(fps=2.0), {"model": "tiny"}, fixations="source")
    with pytest.raises(ConfigError, match='differs in: --watch-checks: log has "both", this run "chunk"'):
        al.evaluate_alerts(gq, items, out, SessionConfig(fps=2.0, watch_checks="chunk"), {"model": "tiny"})


def test_a_resumed_run_may_change_limit_and_a_record_cut_off_mid_write_is_replayed(bench, monkeypatch, tmp_path):
    """Before: `eval-alerts --limit 1` then `--limit 0` on the same --out was refused (the header differed in --limit),
    so extending a run redid it; a log whose last record a killed run cut off mid-write failed to load (a traceback),
    and a new record would have been appended to the cut line."""
    import dataclasses
    import shutil

    from gazeqwen_edge.errors import InputError
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime import replay as replay_mod
    from gazeqwen_edge.runtime.session import SessionConfig

    items, (src, *_) = gta_items(bench)
    # a second video: the first one's copy under another name (the tiny benchmark has one video with GTA questions)
    copy_video, copy_csv = tmp_path / "copy.mp4", tmp_path / "copy.csv"
    shutil.copy(src.video, copy_video)
    shutil.copy(src.fixation_csv, copy_csv)
    items += [
        dataclasses.replace(it, item_id="copy_" + it.item_id, video=copy_video, fixation_csv=copy_csv)
        for it in items
        if it.video == src.video
    ]
    videos, _ = al.watch_cases(items)
    assert len(videos) == 2
    scripted(monkeypatch, {})
    gq = build_tiny_gazeqwen(seed=0, injected_layers=(0, 1))
    first_video = [it for it in items if it.video == videos[0].video]
    out, cfg = tmp_path / "out", SessionConfig(fps=2.0)
    calls = []
    real = replay_mod.replay
    monkeypatch.setattr(replay_mod, "replay", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    al.evaluate_alerts(gq, first_video, out, cfg, {"model": "tiny", "limit": 1})
    doc = al.evaluate_alerts(gq, items, out, cfg, {"model": "tiny", "limit": 0})
    assert len(calls) == len(videos) and doc["limit"] == 0 and doc["summary"]["videos"] == len(videos)
    # back to --limit 1: nothing replayed, and the results count the one video chosen
    doc = al.evaluate_alerts(gq, first_video, out, cfg, {"model": "tiny", "limit": 1})
    assert len(calls) == len(videos) and [v["video"] for v in doc["videos"]] == [videos[0].video.name]
    assert doc["summary"]["videos"] == 1
    # a killed run: the last record cut off mid-write
    log = out / al.LOG_FILE
    whole = log.read_bytes()
    last = whole.rstrip(b"\n").rsplit(b"\n", 1)[1]
    log.write_bytes(whole[: len(whole) - len(last) // 2 - 1])
    doc = al.evaluate_alerts(gq, items, out, cfg, {"model": "tiny", "limit": 0})
    assert len(calls) == len(videos) + 1 and calls[-1].video_path == videos[-1].video  # that video again, only it
    records = [json.loads(x) for x in log.read_text().splitlines()]  # every line whole JSON again
    assert [r["video"] for r in records[1:]] == [v.video.name for v in videos]
    assert doc["summary"]["videos"] == len(videos)
    # cut just before its newline: the record is replayed, not run into by the next one
    first_only = out.parent / "first"
    al.evaluate_alerts(gq, first_video, first_only, cfg, {"model": "tiny", "limit": 1})
    (first_only / al.LOG_FILE).write_bytes((first_only / al.LOG_FILE).read_bytes()[:-1])
    al.evaluate_alerts(gq, items, first_only, cfg, {"model": "tiny", "limit": 0})
    records = [json.loads(x) for x in (first_only / al.LOG_FILE).read_text().splitlines()]
    assert [r["video"] for r in records[1:]] == [v.video.name for v in videos]
    # a line other than the last that is no record: refused, named, nothing appended
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + b"{not json\n" + b"".join(lines[1:]))
    before = log.read_bytes()
    with pytest.raises(InputError, match="line 2 is no JSON record"):
        al.evaluate_alerts(gq, items, out, cfg, {"model": "tiny", "limit": 0})
    assert log.read_bytes() == before
    # JSON of the wrong shape (before: a TypeError from the summary), and a video logged twice (counted once)
    log.write_bytes(lines[0] + b'{"video": "x.mp4", "watches": 7}\n' + b"".join(lines[1:]))
    with pytest.raises(InputError, match="line 2 is no video record"):
        al.evaluate_alerts(gq, items, out, cfg, {"model": "tiny", "limit": 0})
    log.write_bytes(b"".join(lines) + lines[1])
    n_calls = len(calls)
    doc = al.evaluate_alerts(gq, items, out, cfg, {"model": "tiny", "limit": 0})
    assert len(calls) == n_calls and doc["summary"]["videos"] == len(videos)


def _watch_record(case, target, checks, points, first_gaze_s=None, control=False):
    return {"case": case, "target": target, "asked_s": 0.0, "first_appearance_s": None, "first_gaze_s": first_gaze_s,
            "control": control, "alerts_s": [], "checks": checks, "decisions": [(t, e, False, None) for t, e in points],
            "outcome": "?", "delay_s": None}  # fmt: skip


def test_rescore_debounces_the_recorded_scores_as_the_session_would():
    """Another threshold or hold, from the recorded scores: the alerts are those Watches gives for the same scores,
    the decisions and outcomes follow them."""
    checks = [(0.4, 0.1), (1.4, 0.45), (2.4, 0.2), (3.4, 0.7), (4.4, 0.8), (5.4, 0.1)]
    looked = _watch_record("v/1.1", "red circle", checks, [(2.0, False), (3.0, True), (5.0, True)], first_gaze_s=2.0)
    control = _watch_record("v/never.0", "blue star", [(0.4, 0.3), (1.4, 0.55)], [], control=True)
    rec = {"video": "v.mp4", "watches": [looked, control], "wall_s": 1.0}

    def run(**kw):
        w1, w2 = al.rescore([rec], **{"hold_s": 0.0, "rearm_s": 3.0, "delay_s": 1.5, **kw})[0]["watches"]
        return w1, w2

    w1, w2 = run(threshold=0.5)
    assert (w1["alerts_s"], w1["outcome"], w1["delay_s"]) == ([3.4], "on_time", 1.4)
    assert [d[2] for d in w1["decisions"]] == [False, False, True] and (w2["alerts_s"], w2["outcome"]) == (
        [1.4],
        "false",
    )
    w1, w2 = run(threshold=0.4)
    assert (w1["alerts_s"], w1["outcome"]) == ([1.4], "early")
    assert [d[2] for d in w1["decisions"]] == [True, False, True]
    w1, w2 = run(threshold=0.6)
    assert (w1["alerts_s"], w1["outcome"]) == ([3.4], "on_time") and (w2["alerts_s"], w2["outcome"]) == ([], "silent")
    w1, _ = run(threshold=0.5, hold_s=1.0)  # the yes must hold a second: the next check
    assert (w1["alerts_s"], w1["outcome"]) == ([4.4], "late")
    assert rec["watches"][0]["alerts_s"] == []  # the records given are left as they were
    with pytest.raises(ConfigError):
        run(threshold=1.5)


def test_rescoring_a_run_with_its_own_settings_gives_back_its_records(bench_with_a_control, monkeypatch, tmp_path):
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.training.synthetic_benchmark import benchmark_watch_truth

    items, videos = gta_items(bench_with_a_control)
    truth = benchmark_watch_truth(bench_with_a_control / "test.json")
    first = {c.target: 2.0 + k for k, c in enumerate(videos[0].cases)}  # yes from 2 s, 3 s, ... of video
    scripted(monkeypatch, {**first, **dict.fromkeys(truth(videos[0].video).never_fixated, 4.0)})
    gq = build_tiny_gazeqwen(seed=0, injected_layers=(0, 1))
    cfg = SessionConfig(fps=2.0)
    doc = al.evaluate_alerts(gq, items, tmp_path / "out", cfg, {"model": "tiny"}, truth=truth, hold_s=0.5, rearm_s=2.0)
    again = al.rescore(doc["videos"], threshold=0.5, hold_s=0.5, rearm_s=2.0, delay_s=1.5)
    assert any(w["alerts_s"] for v in doc["videos"] for w in v["watches"])
    for v, v2 in zip(doc["videos"], again, strict=True):
        for w, w2 in zip(v["watches"], v2["watches"], strict=True):
            assert w2["alerts_s"] == pytest.approx(w["alerts_s"], abs=1e-3)
            assert (w2["outcome"], w2["decisions"]) == (w["outcome"], [tuple(d) for d in w["decisions"]])
            assert w2["delay_s"] == pytest.approx(w["delay_s"], abs=1e-3) if w["delay_s"] is not None else True
    assert al.summarise(again, 1.5, 0.5) == doc["summary"]


def test_a_full_disk_is_met_before_the_first_videos_work_and_names_the_log(bench, monkeypatch, tmp_path):
    """Before: the header sat in the file's buffer until the first video's record (12 s of work in a helper's run),
    and the full disk then read 'cannot write an output file'."""
    import builtins
    import io

    from gazeqwen_edge.errors import DeviceError
    from gazeqwen_edge.runtime import replay as replay_mod
    from tests.device.test_disk_full import FillingFile

    items, _ = gta_items(bench)

    def full(file, mode="r", *a, **kw):  # the log's disk takes 8 bytes, then is full
        if str(file).endswith(al.LOG_FILE) and "a" in mode:
            return io.TextIOWrapper(io.BufferedWriter(FillingFile(Path(file), 8)), encoding="utf-8")
        return builtins.open(file, mode, *a, **kw)

    monkeypatch.setattr(al, "open", full, raising=False)
    monkeypatch.setattr(replay_mod, "replay", lambda *a, **k: pytest.fail("a video was replayed on a full disk"))
    log = tmp_path / "out" / al.LOG_FILE
    with pytest.raises(DeviceError, match=f"cannot write the alerts log \\({log}\\): No space left") as e:
        al.evaluate_alerts(None, items, tmp_path / "out", None, {"model": "tiny"})
    assert "rerun the same command to resume" in e.value.hint


def test_no_gta_question_is_a_config_error():
    with pytest.raises(ConfigError, match="no gaze-triggered alert"):
        al.evaluate_alerts(None, [point("v/1.1", 1, 3.0, True, task="proactive_object_appearance_alert")], Path("x"),
                           None, {})  # fmt: skip


def test_the_gta_task_type_is_training_s():
    from gazeqwen_edge.training.tasks import TASKS

    assert al.GTA_TASK in TASKS and TASKS[al.GTA_TASK][0] == "GTA"


def test_alert_questions_that_were_all_skipped_are_named_as_skipped(bench, tmp_path, capsys):
    """--fixations pointing at the wrong folder: every GTA question is skipped, and the error said the QA file
    "holds no gaze-triggered alert question"; it now says they could not be used, and why the first could not."""
    from gazeqwen_edge.cli import main

    (tmp_path / "nofix").mkdir()
    argv = ["eval-alerts", "--qa", str(bench / "test.json"), "--fixations", str(tmp_path / "nofix")]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "holds no gaze-triggered alert question that could be used" in err and "no fixation CSV" in err


def test_controls_and_the_first_fixation_come_through_the_session(bench_with_a_control, monkeypatch, tmp_path):
    """With the benchmark's manifest the evaluation adds a control watch per object never fixated and measures
    from the first fixation: a model that says yes to everything fires every control ("false")."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.training.synthetic_benchmark import benchmark_watch_truth

    bench = bench_with_a_control
    items, videos = gta_items(bench)
    truth = benchmark_watch_truth(bench / "test.json")
    vc = next(v for v in videos if truth(v.video).never_fixated)
    wt = truth(vc.video)
    scripted(monkeypatch, {**{c.target: 0.0 for c in vc.cases}, **dict.fromkeys(wt.never_fixated, 0.0)})
    gq = build_tiny_gazeqwen(seed=0, injected_layers=(0, 1))
    chosen = [it for it in items if it.video == vc.video]
    doc = al.evaluate_alerts(gq, chosen, tmp_path / "out", SessionConfig(fps=2.0), {"model": "tiny"}, truth=truth)
    assert doc["truth"] == "generator" and doc["fixations"] == "detector"
    (rec,) = doc["videos"]
    controls = [w for w in rec["watches"] if w["control"]]
    assert [w["target"] for w in controls] == wt.never_fixated
    assert all(w["outcome"] == "false" and w["alerts_s"] for w in controls)
    assert doc["summary"]["controls"] == len(controls) and doc["summary"]["alerts"]["false"] == len(controls)
    for w in rec["watches"]:
        if not w["control"]:
            assert w["first_gaze_s"] == wt.first_fixation_s[w["target"]]
            assert w["outcome"] == al.alert_outcome(w["alerts_s"], al.WatchCase("x", w["target"], 0.0,
                w["first_appearance_s"], [(1.0, True)], first_gaze_s=w["first_gaze_s"]), 1.5)[0]  # fmt: skip
    assert "never fixated" in (tmp_path / "out" / "results.md").read_text()
    # each check knows what it looked at, from the generator's fixations
    for w in rec["watches"]:
        assert w["gaze_at"] == [al.gaze_at_check(wt.fixations, w["target"], t) for t, _ in w["checks"]]
        if w["control"]:
            assert "target" not in w["gaze_at"]
    by = doc["summary"]["by_gaze"]
    assert sum(b["checks"] for b in by.values()) == sum(len(w["checks"]) for w in rec["watches"])
    assert by["target"]["checks"] > 0 and by["target"]["yes"] == by["target"]["checks"]  # yes to everything
    assert "| on the watch's target |" in (tmp_path / "out" / "results.md").read_text()


def test_the_detector_knows_a_fixation_while_it_lasts_the_csv_once_it_ends(bench, monkeypatch, tmp_path):
    """A live session finds fixations with its online detector, 105 ms after they begin; a StreamGaze CSV's
    fixation reaches `replay` only when it ends. eval-alerts replays the wearer's view by default: the chunks'
    fixations (what the watch checks after them see) include the one in progress, cut at the chunk's last frame;
    with --no-detector no chunk holds a fixation that had not ended."""
    from gazeqwen_edge.device.streamgaze import read_fixation_csv
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.session import Session, SessionConfig

    items, videos = gta_items(bench)
    vc = videos[0]
    scripted(monkeypatch, {})
    chosen = [it for it in items if it.video == vc.video]
    csv = read_fixation_csv(vc.fixation_csv)  # rows [x, y, start_s, end_s]
    gq = build_tiny_gazeqwen(seed=0, injected_layers=(0, 1))
    real = Session._prefill
    cut = {}
    for mode in al.FIXATION_MODES:
        jobs = []
        monkeypatch.setattr(Session, "_prefill", lambda self, job, jobs=jobs: (jobs.append(job), real(self, job))[1])
        al.evaluate_alerts(gq, chosen, tmp_path / mode, SessionConfig(fps=2.0), {"model": "tiny"}, fixations=mode)
        assert jobs
        cut[mode] = 0
        for job in jobs:
            starts = job.scanpath[:, 2] - job.scanpath[:, 3] / 2
            ends = job.scanpath[:, 2] + job.scanpath[:, 3] / 2
            last = float(job.times_s[-1])
            assert (ends <= last + 1e-3).all()  # never a gaze from after the chunk
            # a CSV fixation still going on at the chunk's last frame, known already (begun, not ended)
            ongoing = csv[(csv[:, 2] < last) & (csv[:, 3] > last + 1e-3)]
            cut[mode] += int(any(np.any(np.abs(starts - f[2]) < 0.03) for f in ongoing))
    assert cut["source"] == 0 and cut["detector"] >= 3, cut


def test_truth_generator_without_a_manifest_is_refused_and_counts_read_right(bench, tmp_path, capsys):
    """--truth generator insists on the generator's truth: a QA file without its manifest.json is refused (auto
    falls back to first_appearance, and says so). The counts are singular where they are one."""
    import shutil

    from gazeqwen_edge.cli import main

    shutil.copy(bench / "train.json", tmp_path / "train.json")  # (the tiny benchmark's GTA questions are there)
    argv = ["eval-alerts", "--qa", str(tmp_path / "train.json"), "--videos", str(bench / "videos")]
    argv += ["--fixations", str(bench / "fixations"), "--model", "tiny", "--limit", "1"]
    assert main([*argv, "--truth", "generator", "--out", str(tmp_path / "g")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error:") and "has no synthetic benchmark manifest.json beside it" in err, err
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    md = (tmp_path / "a" / "results.md").read_text()
    assert "1 video, " in md and "Delays from first_appearance" in md and "control" not in md, md
    # the threshold is the model's, as run and replay take it: p(Yes) for a letter model, the identify score's for
    # the word-answering demo model
    assert json.loads((tmp_path / "a" / "results.json").read_text())["threshold"] == 0.5
    demo = [*argv[:-4], "--model", "demo", "--limit", "1", "--out", str(tmp_path / "d")]
    assert main(demo) == 0
    assert json.loads((tmp_path / "d" / "results.json").read_text())["threshold"] == 0.2
