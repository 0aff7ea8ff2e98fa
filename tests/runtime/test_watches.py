"""Proactive alerts: commands, debouncing, the session scoring watches after each chunk (alerts.jsonl, the chunk's
time, stop watching) and the budget that skips watch checks instead of video."""

from __future__ import annotations

import json
import re
import time

import pytest

from gazeqwen_edge.runtime.watches import Watches, p_yes, parse_command, watch_question


@pytest.mark.parametrize(
    "text, want",
    [
        ("Tell me when I look at the stove", ("add", "the stove")),
        ("please alert me whenever I gaze at my phone!", ("add", "my phone")),
        ("Notify me if I'm looking at the red cup.", ("add", "the red cup")),
        ("Stop watching the stove.", ("remove", "the stove")),
        ("cancel monitoring the cup", ("remove", "the cup")),
        ("What am I looking at?", None),
        ("Tell me a story", None),
        ("Tell me when I look at " + "x" * 200, ("add", "x" * 200)),  # a command, refused when added (below)
        ("tell me when I look at", ("add", "")),  # no target: refused when added, not asked as a question
        ("Stop watching.", ("remove", "")),
    ],
)
def test_commands(text, want):
    assert parse_command(text) == want


@pytest.mark.parametrize(
    "target, problem",
    [
        ("the \x1b[31mstove", "holds a control character ('\\x1b')"),
        ("cup\nbowl", "holds a control character ('\\n')"),
        ("the \x9bcup", "holds a control character ('\\x9b')"),
        ("   ", "needs a short description"),
        ("x" * 81, "needs a short description"),
        ("the \udcffcup", "is not valid text"),
        ("?", "names no object, got '?'"),  # (before: accepted)
        (" ... ", "names no object"),
        ("-", "names no object"),
        ("the", "names no object"),  # an article alone (before: accepted, and asked about "<the>")
        ("The.", "names no object"),
        ("the \u202ecup", "holds a control character ('\\u202e')"),  # a bidirectional override (was accepted)
        ("the\tcup", "holds a control character ('\\t')"),
    ],
)
def test_a_watch_target_must_be_plain_words(target, problem):
    """Every way a watch arrives (typed, spoken, a questions file, --watch) goes through Watches.add's one check."""
    ws = Watches()
    with pytest.raises(ValueError, match="the watch " + re.escape(problem)):
        ws.add(target)
    assert len(ws) == 0
    assert ws.add("  the stove ").target == "the stove"
    # runs of spaces are one: "blue  star" was another watch than "blue star", and asked the model about "blue  star"
    assert ws.add("the blue  star").target == "the blue star" and ws.add("Blue Star").target == "the blue star"
    assert ws.add("the red cup.").target == "the red cup"  # a sentence's full stop is not part of the object
    assert watch_question(ws.add("the 2nd mug?").target) == "Monitor my gaze and alert me when I gaze on the <2nd mug>."


def test_a_whole_command_given_to_watch_watches_its_object():
    """Before: --watch "tell me when I look at the cup" watched an object called "tell me when I look at the cup"."""
    from gazeqwen_edge.cli.runtime import check_watches
    from gazeqwen_edge.errors import ConfigError

    assert check_watches(["Tell me when I look at the cup.", "the stove"]) == ["the cup", "the stove"]
    with pytest.raises(ConfigError, match="a command to stop watching"):
        check_watches(["stop watching the cup"])
    with pytest.raises(ConfigError, match="needs a short description"):
        check_watches(["tell me when I look at"])
    with pytest.raises(ConfigError, match="names no object"):
        check_watches(["tell me when I look at the"])


def test_the_watch_is_asked_as_the_model_was_trained():
    from gazeqwen_edge.runtime.watches import YES_NO
    from gazeqwen_edge.training.tasks import YES_NO as TRAINED

    assert YES_NO == TRAINED
    assert watch_question("the red cup") == "Monitor my gaze and alert me when I gaze on the <red cup>."


def test_p_yes():
    assert p_yes({"A": 2.0, "B": 2.0}) == pytest.approx(0.5)
    assert p_yes({"A": 1000.0, "B": 0.0}) == pytest.approx(1.0)  # no overflow
    assert p_yes({"A": -3.0, "B": -1.0}) < 0.5


def test_debounce_holds_fires_once_and_rearms():
    ws = Watches(threshold=0.5, hold_s=1.0, rearm_s=2.0)
    w = ws.add("the stove")
    assert ws.add("stove") is w and len(ws) == 1  # the same target is not watched twice
    seq = [(0.0, 0.1), (1.0, 0.9), (1.5, 0.8), (2.0, 0.9), (3.0, 0.9), (4.0, 0.2), (5.0, 0.9), (6.0, 0.9),
           (7.0, 0.1), (8.0, 0.2), (9.0, 0.3), (10.0, 0.9), (11.0, 0.9)]  # fmt: skip
    fired = [t for t, s in seq if ws.update(w, s, t)]
    # yes from 1.0 held 1 s -> fires at 2.0; the short no at 4.0 does not re-arm it (5.0, 6.0 stay quiet); no from
    # 7.0 held 2 s -> re-armed at 9.0; yes from 10.0 held 1 s -> fires at 11.0
    assert fired == [2.0, 11.0] and w.fired == 2
    w2 = Watches(hold_s=0.0).add("cup")
    assert Watches(hold_s=0.0).update(w2, 0.7, 3.0)  # hold 0 fires at the first yes
    assert ws.remove("The stove") is w and ws.remove("the stove") is None and len(ws) == 0


def test_rearming_takes_the_rearm_time_not_the_hold_time():
    ws = Watches(threshold=0.5, hold_s=1.0, rearm_s=2.0)
    w = ws.add("cup")
    seq = [(0.0, 0.9), (1.0, 0.9), (1.5, 0.1), (2.5, 0.1), (3.0, 0.9), (4.0, 0.9), (4.5, 0.1), (6.5, 0.1),
           (7.0, 0.9), (8.0, 0.9)]  # fmt: skip
    # fires at 1.0; 1 s of "no" (1.5-2.5) is the hold time but not the re-arm time: the yes at 3.0-4.0 stays quiet;
    # 2 s of "no" (4.5-6.5) re-arms it, and the yes from 7.0 fires at 8.0
    assert [t for t, s in seq if ws.update(w, s, t)] == [1.0, 8.0]


def _scripted_scores(monkeypatch, yes_from: float, yes_to: float, delay_s: float = 0.0):
    """VideoStream.score_mc answers Yes while the video's last frame is in [yes_from, yes_to] s."""
    from gazeqwen_edge.runtime.stream import VideoStream

    calls = []

    def score_mc(self, question, options, prompt="reference"):
        time.sleep(delay_s)
        t = self.video_span_s[1]
        calls.append((question, t))
        return {"A": 5.0, "B": 0.0} if yes_from <= t <= yes_to else {"A": 0.0, "B": 5.0}

    monkeypatch.setattr(VideoStream, "score_mc", score_mc)
    return calls


def test_a_session_alerts_once_per_look_and_stops_watching(stream_gq, monkeypatch, tmp_path):
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.questions import ScheduledQuestion
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig

    calls = _scripted_scores(monkeypatch, 3.0, 5.0)
    qs = [
        ScheduledQuestion(1.0, "Tell me when I look at the cup"),
        ScheduledQuestion(1.5, "Tell me when I look at the " + "big red " * 10 + "bowl"),  # a watch too long
        ScheduledQuestion(2.0, "Tell me when I look at the \x1b[31mbowl"),  # refused as any question with it
        ScheduledQuestion(6.5, "Stop watching"),  # which one? refused
        ScheduledQuestion(7.0, "Stop watching the cup"),
    ]
    with open_source("synthetic:4", duration_s=10.0, width=160, height=120) as src:
        # checks after each chunk only: the alert's time is its chunk's (below); at fixations: test_fixation_checks_*
        r = replay(src, stream_gq, SessionConfig(max_new_tokens=2, watch_checks="chunk"), tmp_path / "s", qs)
    alerts = [json.loads(x) for x in (tmp_path / "s" / "alerts.jsonl").read_text().splitlines()]
    assert len(alerts) == 1 and alerts[0]["watch"] == "the cup" and alerts[0]["score"] > 0.99
    # yes from 3 s, the default hold 0: the alert carries the time of its chunk's last model frame (3.4 s), not the
    # first (2.9 s, before the yes)
    assert 3.0 < alerts[0]["t"] <= 3.6
    answers = [json.loads(x) for x in (tmp_path / "s" / "answers.jsonl").read_text().splitlines()]
    assert answers[0]["answer"] == "I'll tell you when you look at the cup."
    assert answers[3]["answer"] == "Stopped watching the cup." and len(answers) == 4
    assert answers[2]["error"] == "which watch to stop was not said" and answers[2]["answer"] == ""
    # before, a target over 80 characters was asked as an ordinary question and answered
    assert answers[1]["error"].startswith("the watch needs a short description (1..80 characters)")
    assert answers[1]["answer"] == ""
    # the bowl's question, refused as every question holding a control character is: told, and the session goes on
    events = (tmp_path / "s" / "events.csv").read_text()
    assert "question at 2 s not asked: the question holds a control character ('\\x1b')" in events
    checked = sorted(t for _, t in calls)
    assert checked and min(checked) >= 1.0 and max(checked) <= 7.5  # scored only while the watch existed
    assert r.stats.alerts == 1 and r.stats.watch_checks == len(calls)
    assert ",alert,session,the cup" in (tmp_path / "s" / "events.csv").read_text()


@pytest.mark.parametrize("mode", ["chunk", "fixation", "both"])
def test_many_slow_watches_skip_checks_not_video(stream_gq, monkeypatch, mode):
    """50 watches at 40 ms each after every 1 s chunk (and at every fixation, "both") of a real-time session: the
    budget (half the chunk; half a step at a fixation) lets about a dozen run per check; the rest are skipped and
    counted, and no chunk of video is skipped."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig

    _scripted_scores(monkeypatch, 100.0, 200.0, delay_s=0.04)
    with open_source("synthetic:4", duration_s=6.0, width=160, height=120) as src:
        r = replay(
            src,
            stream_gq,
            SessionConfig(max_new_tokens=2, watch_checks=mode),
            None,
            [],
            speed=1.0,
            setup=lambda s: [s.watches.add(f"object {i}") for i in range(50)],
        )
    assert r.stats.chunks_skipped == 0 and r.stats.chunks_prefilled >= 5
    assert r.stats.watch_checks_skipped > 0
    # 0.5 s budget / 40 ms, plus the one past it, per chunk; about 6 s of checks in 6 s of video at most, whatever
    # the fixations
    per_chunk = r.stats.watch_checks / r.stats.chunks_prefilled
    assert 1 <= per_chunk <= 20
    # all the checks together take about half the model's time at most (the allowance: 0.5 s per s, 0.5 s at once),
    # however many fixations ask for them: before it, at each fixation every check scored one watch at least
    assert r.stats.watch_checks * 0.04 <= 0.5 * 6.0 + 0.5 + 0.2


def test_no_watch_checks_while_chunks_wait(stream_gq, monkeypatch):
    """A live session whose model is behind (chunks waiting) checks no watch after a chunk: it counts them skipped."""
    import numpy as np

    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.session import Session, SessionConfig, _ChunkJob

    calls = _scripted_scores(monkeypatch, 0.0, 100.0)
    with open_source("synthetic:4", duration_s=2.0, width=160, height=120) as src:
        s = Session(src, stream_gq, SessionConfig())
    s.stream = object()  # a stream exists (never scored here)
    for i in range(3):
        s.watches.add(f"object {i}")
    job = _ChunkJob(0, np.zeros((2, 8, 8, 3), np.uint8), np.array([0.0, 0.5]), np.zeros((0, 4)), [])
    s._n_pending_chunks = 1
    s._check_watches(job)
    assert calls == [] and s.stats.watch_checks_skipped == 3 and s.stats.watch_checks == 0


@pytest.mark.parametrize("protocol", ["option_text", "letter"])
def test_a_watch_says_yes_at_the_threshold_of_the_models_score(stream_gq, monkeypatch, tmp_path, protocol):
    """A word-answering model's identify score (p(target) / p(its own answer)) and a letter model's p(Yes) are other
    quantities: a session (and --watch) takes the threshold of the model's score. A score of 0.4 fires a watch of the
    first (IDENTIFY_THRESHOLD 0.2), not of the second (YES_THRESHOLD 0.5)."""
    import math

    from gazeqwen_edge.cli.runtime import add_watches
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime import watches as wmod
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.runtime.stream import VideoStream

    monkeypatch.setattr(stream_gq, "mc_protocol", protocol)
    monkeypatch.setattr(VideoStream, "answer_logprobs", lambda self, q, a, **kw: (math.log(0.4), 0.0))
    monkeypatch.setattr(VideoStream, "score_mc", lambda self, q, o, p="": {"A": math.log(0.4), "B": math.log(0.6)})
    word = protocol == "option_text"
    assert wmod.default_threshold(stream_gq) == (wmod.IDENTIFY_THRESHOLD if word else wmod.YES_THRESHOLD)
    seen = {}

    def setup(session):
        seen["session"] = session.watches.threshold
        add_watches(session, ["the cup"], hold_s=0.0)  # as run / replay --watch
        seen["cli"] = session.watches.threshold

    with open_source("synthetic:4", duration_s=4.0, width=160, height=120) as src:
        replay(src, stream_gq, SessionConfig(max_new_tokens=2), tmp_path / "s", [], setup=setup)
    assert seen == dict.fromkeys(("session", "cli"), 0.2 if word else 0.5)
    assert (tmp_path / "s" / "alerts.jsonl").exists() == word


def test_one_object_said_twice_on_the_command_line_is_one_watch_told_once(capsys):
    """Before: `--watch "the green star" --watch "Green Star"` printed "watching for" twice for its one watch."""
    from types import SimpleNamespace

    from gazeqwen_edge.cli.runtime import add_watches

    session = SimpleNamespace(gq=SimpleNamespace(mc_protocol="letter"))
    add_watches(session, ["the green star", "Green Star ", "the cup"], hold_s=0.0)
    err = capsys.readouterr().err
    assert len(session.watches) == 2 and err.count("watching for") == 2, err


def _checked_times(stream_gq, monkeypatch, mode: str, seed: int = 4, duration_s: float = 6.0):
    """Replay synthetic:SEED (lockstep) with one watch under SessionConfig(watch_checks=mode); returns (the checks as
    (session time s, video end s at the scoring), the scene's true fixation starts in s, the chunk end times)."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.runtime.stream import VideoStream

    ends = []

    def score_mc(self, question, options, prompt="reference"):
        ends.append(self.video_span_s[1])
        return {"A": 0.0, "B": 5.0}

    monkeypatch.setattr(VideoStream, "score_mc", score_mc)
    times = []

    def setup(session):
        session.watches.add("the cup")
        update = session.watches.update
        session.watches.update = lambda w, score, t_s: (times.append(t_s), update(w, score, t_s))[1]

    from gazeqwen_edge.runtime.sinks import Sink

    class Notices(Sink):
        def __init__(self):
            self.kinds = []

        def notice(self, kind, message, t_s):
            self.kinds.append(kind)

    notices = Notices()
    with open_source(f"synthetic:{seed}", duration_s=duration_s, width=160, height=120) as src:
        starts = [(f.start_ns - src.start_ns) / 1e9 for f in src.true_fixations]
        config = SessionConfig(max_new_tokens=2, watch_checks=mode)
        r = replay(src, stream_gq, config, None, [], sinks=[notices], setup=setup)
    assert r.stats.watch_checks == len(times) == len(ends)
    # a fixation before the first chunk is not checked (no video yet), and not told as a model that cannot check
    assert notices.kinds == []
    return list(zip(times, ends, strict=True)), starts


def test_fixation_checks_come_once_per_new_fixation_as_the_detector_learns_of_it(stream_gq, monkeypatch):
    """watch_checks "fixation": one check per fixation the online detector finds, when it finds it (its minimum
    duration and classification delay after the fixation began: 105 ms at the defaults), on the video brought up to
    then (the held odd frame, at most one model frame, 0.5 s at 2 fps, before the check); none after the chunks.
    "chunk": one per chunk, at its last model frame; "both": the two together."""
    fix, starts = _checked_times(stream_gq, monkeypatch, "fixation")
    chunk, _ = _checked_times(stream_gq, monkeypatch, "chunk")
    both, _ = _checked_times(stream_gq, monkeypatch, "both")
    # chunk checks: at each chunk's last model frame (1 s chunks), once each
    chunk_ends = [t for t, _ in chunk]
    assert len(chunk) == 6 and all(t == end for t, end in chunk)
    assert all(abs(b - a - 1.0) < 1e-6 for a, b in zip(chunk_ends, chunk_ends[1:], strict=False))
    # the scene's fixations (noisy 200 Hz gaze, a detector): about one check each, none twice on one fixation
    assert 0.7 * len(starts) <= len(fix) <= 1.3 * len(starts)
    for t, end in fix:
        lag = min(t - s for s in starts if s <= t + 1e-9)
        assert 0.08 <= lag <= 0.3, (t, lag)  # learnt a settle time after a true start (not at a chunk's end)
        assert 0 <= t - end <= 0.5 + 1e-6, (t, end)  # the video ends at the newest model frame
    # ... which is often the odd frame held for the next step: a view, not the cache as the last chunk left it
    assert sum(min(abs(end - c) for c in chunk_ends) > 0.4 for _, end in fix) >= 3
    assert sorted(round(t, 4) for t, _ in both) == sorted(round(t, 4) for t, _ in fix + chunk)


@pytest.mark.parametrize("lockstep", [False, True])
def test_a_live_fixation_check_still_waiting_gives_way_to_the_newer_one(stream_gq, monkeypatch, lockstep):
    """Live, a fixation check the model has not reached when the next fixation comes is dropped for it (its checks
    counted as skipped: the newest fixation is the one the wearer is on); a lockstep replay keeps every check. And no
    fixation check runs while chunks wait for the model."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.session import Session, SessionConfig, _WatchCheck

    calls = _scripted_scores(monkeypatch, 0.0, 100.0)
    with open_source("synthetic:4", duration_s=2.0, width=160, height=120) as src:
        s = Session(src, stream_gq, SessionConfig(watch_checks="fixation", lockstep=lockstep))
    s.origin_ns = src.start_ns
    for i in range(3):
        s.watches.add(f"object {i}")
    for k in range(3):
        s._submit_watch_check(src.start_ns + k * 300_000_000)
    checks = [x for x in s._work if isinstance(x, _WatchCheck)]
    assert [c.t_ns - src.start_ns for c in checks] == ([0, 300_000_000, 600_000_000] if lockstep else [600_000_000])
    assert s.stats.watch_checks_skipped == (0 if lockstep else 6)
    if not lockstep:
        s.stream = object()  # a stream exists (never scored here)
        s._n_pending_chunks = 1
        s._check_watches_at(checks[0])
        assert calls == [] and s.stats.watch_checks_skipped == 9 and s.stats.watch_checks == 0


def test_a_watch_a_scene_model_cannot_know_is_told_so(stream_gq, monkeypatch, tmp_path, capsys):
    """A model that answers in words was trained on the synthetic scenes, whose objects are named by a colour and a
    shape: "the stove" never fires there, so --watch and the typed or spoken command say so (the 7B is not told)."""
    from gazeqwen_edge.cli.runtime import add_watches
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.questions import ScheduledQuestion
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.runtime.watches import unknown_to_scene_models

    class Letters:
        mc_protocol = "letter"

    class Words:
        mc_protocol = "option_text"

    assert not unknown_to_scene_models(Letters(), "the stove")
    for known in ("the blue star", "Green Star", "a white ring", "cyan hexagon"):
        assert not unknown_to_scene_models(Words(), known), known
    for unknown in ("the stove", "my phone", "the big blue star", "blue", "purple star", "star blue"):
        assert unknown_to_scene_models(Words(), unknown), unknown

    monkeypatch.setattr(stream_gq, "mc_protocol", "option_text")
    qs = [
        ScheduledQuestion(0.5, "Tell me when I look at my phone"),
        ScheduledQuestion(0.6, "alert me if I look at the red cross"),
    ]

    def setup(session):
        add_watches(session, ["the stove", "the blue star"], hold_s=0.0)

    with open_source("synthetic:4", duration_s=2.0, width=160, height=120) as src:
        replay(src, stream_gq, SessionConfig(max_new_tokens=2, watch_checks="chunk"), tmp_path / "s", qs, setup=setup)
    err = capsys.readouterr().err
    assert "so it may never see the stove" in err and "never see the blue star" not in err
    answers = [json.loads(x)["answer"] for x in (tmp_path / "s" / "answers.jsonl").read_text().splitlines()]
    assert answers[0].startswith("I'll tell you when you look at my phone. But this model knows only")
    assert answers[1] == "I'll tell you when you look at the red cross."


def test_the_watch_allowance_fills_at_the_budget_share_of_wall_time(stream_gq, monkeypatch):
    """Live, watch checks draw on an allowance of model time that fills at watch_budget s per s up to watch_budget of
    a chunk; spent, the next checks are skipped (counted) until it has filled again. Lockstep has no limit."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime import session as smod
    from gazeqwen_edge.runtime.session import Session, SessionConfig

    now = [100.0]
    monkeypatch.setattr(smod.time, "monotonic", lambda: now[0])
    with open_source("synthetic:4", duration_s=2.0, width=160, height=120) as src:
        s = Session(src, stream_gq, SessionConfig(watch_budget=0.5))
        locked = Session(src, stream_gq, SessionConfig(lockstep=True))
    s.stream = object()  # a stream exists (never scored here)
    s.watches.add("the cup")
    assert s._watch_allowance() == pytest.approx(0.5)  # full: half of a 1 s chunk
    assert s._watch_allowance(0.8) == pytest.approx(-0.3)  # one slow check spent it and more
    assert s._watches_to_check() is None and s.stats.watch_checks_skipped == 1
    now[0] += 0.8  # +0.4 s of allowance
    assert s._watch_allowance() == pytest.approx(0.1) and s._watches_to_check() is not None
    now[0] += 10.0
    assert s._watch_allowance() == pytest.approx(0.5)  # never more than the cap
    assert locked._watch_allowance(5.0) == float("inf")
