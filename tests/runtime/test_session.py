"""The streaming session end to end on recorded and synthetic sources: questions at their times, answers logged,
bad input reported while the session goes on, several sessions in one process, skipping when behind."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from gazeqwen_edge.device.records import GazeSample, SceneFrame
from gazeqwen_edge.runtime.questions import ScheduledQuestion, load_questions
from gazeqwen_edge.runtime.replay import parse_speed, replay
from gazeqwen_edge.runtime.session import Session, SessionConfig
from gazeqwen_edge.runtime.sinks import Sink

pytest.importorskip("cv2")  # synthetic scenes render with OpenCV (device extra)


class Collect(Sink):
    def __init__(self):
        self.records, self.notices, self.pieces = [], [], []

    def piece(self, q, text):
        self.pieces.append((q.id, text))

    def answered(self, record):
        self.records.append(record)

    def notice(self, kind, message, t_s):
        self.notices.append((kind, message, t_s))


def _synthetic(seconds=8.0, seed=3):
    from gazeqwen_edge.device import open_source

    return open_source(f"synthetic:{seed}", duration_s=seconds, width=160, height=120)


QUESTIONS = [
    ScheduledQuestion(0.1, "What am I looking at?"),
    ScheduledQuestion(3.0, "Which object?", ["A. red circle", "B. blue box", "C. green cross"]),
    ScheduledQuestion(6.5, "What did I look at before?"),
]


def test_replay_answers_every_question_at_its_time_and_logs_them(tmp_path, stream_gq):
    sink = Collect()
    with _synthetic() as src:
        res = replay(src, stream_gq, SessionConfig(max_new_tokens=4), tmp_path / "s", list(QUESTIONS), sinks=[sink])
    lines = [json.loads(x) for x in (tmp_path / "s" / "answers.jsonl").read_text().splitlines()]
    assert [x["question"] for x in lines] == [q.text for q in QUESTIONS]
    assert [x["t"] for x in lines] == [0.1, 3.0, 6.5]
    first, mc, gen = lines
    # at 0.1 s one model frame has come (0.0 s), not the two of a temporal step (before: "no scene video has arrived
    # yet", which read wrong at --fps 0.1, with frames coming for 20 s before the first step)
    assert first["error"] == "no whole temporal step of video yet: a step is two model frames, 1 s at fps 2"
    assert first["answer"] == ""
    assert mc["answer"] in "ABC" and set(mc["scores"]) == {"A", "B", "C"} and mc["ttft_ms"] > 0
    assert mc["answer"] == max(mc["scores"], key=mc["scores"].get)
    assert 2.0 <= mc["video_s"][1] <= 3.0  # it saw the video up to (about) its own time, not the future
    assert gen["ttft_ms"] > 0 and gen["n_tokens"] >= 1 and gen["error"] is None
    assert "".join(t for i, t in sink.pieces if i == 3) == gen["answer"]
    assert res.stats.answered == 2 and res.stats.failed == 1 and res.stats.chunks_skipped == 0
    events = (tmp_path / "s" / "events.csv").read_text()
    assert "What did I look at before?" in events  # the session log holds the questions too
    # everything the source delivered is in the session directory
    from gazeqwen_edge.device import open_source

    with open_source(str(tmp_path / "s")) as back:
        n_gaze = sum(1 for r in back.records({GazeSample}))
    assert n_gaze == res.stats.records["GazeSample"]
    # the settings the answers came under (the gaze settle, the question view, ...) are in session.json
    settings = json.loads((tmp_path / "s" / "session.json").read_text())["metadata"]["settings"]
    assert settings == {**vars(SessionConfig(max_new_tokens=4)), "lockstep": True}


def test_lockstep_replay_is_reproducible(tmp_path, stream_gq):
    answers = []
    for i in range(2):
        with _synthetic(6.0) as src:
            replay(src, stream_gq, SessionConfig(max_new_tokens=4), tmp_path / str(i), list(QUESTIONS[1:]))
        answers.append(
            [json.loads(x)["answer"] for x in (tmp_path / str(i) / "answers.jsonl").read_text().splitlines()]
        )
    assert answers[0] == answers[1]


def test_two_sessions_in_one_process_do_not_share_state(tmp_path):
    """Two sessions with their own models run at the same time and answer as each does alone."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    models = [build_tiny_gazeqwen(perturb=0.5, sampling_fps=2.0) for _ in range(2)]
    qs = [ScheduledQuestion(4.0, "Which object?", ["A. red circle", "B. blue box"])]

    def run(i, seed, out):
        with _synthetic(5.0, seed) as src:
            replay(src, models[i], SessionConfig(), out, list(qs))

    together = [threading.Thread(target=run, args=(i, 3 + i, tmp_path / f"t{i}")) for i in range(2)]
    for t in together:
        t.start()
    for t in together:
        t.join(120)
    for i in range(2):
        run(i, 3 + i, tmp_path / f"a{i}")
        a = json.loads((tmp_path / f"t{i}" / "answers.jsonl").read_text())
        b = json.loads((tmp_path / f"a{i}" / "answers.jsonl").read_text())
        assert a["scores"] == b["scores"]
    s0 = json.loads((tmp_path / "a0" / "answers.jsonl").read_text())["scores"]
    s1 = json.loads((tmp_path / "a1" / "answers.jsonl").read_text())["scores"]
    assert s0 != s1  # different scenes, different answers


def test_a_broken_questions_line_is_reported_and_the_rest_asked(tmp_path, stream_gq):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        '{"t": 2.0, "question": "What am I looking at?"}\nnot json\n{"t": -1, "question": "x"}\n'
        '{"t": 3, "question": "Which?", "options": ["box", "cup"]}\n{"time": 2, "q": "Which?"}\n'
    )
    qf = load_questions(qfile)
    assert [n for n, _ in qf.problems] == [2, 3, 5] and len(qf.questions) == 2
    # a line written with other names says which are missing (it said "'t' must be a number ..., got None")
    assert qf.problems[2][1] == "a line needs 't' and 'question'; this one has ['q', 'time']"
    assert qf.questions[1].options == ["box", "cup"]
    sink = Collect()
    with _synthetic(4.0) as src:
        res = replay(src, stream_gq, SessionConfig(max_new_tokens=2), tmp_path / "s", qfile, sinks=[sink])
    assert res.stats.answered == 2
    assert [k for k, *_ in sink.notices].count("bad_question") == 3
    # logged at the source's start (they were stamped 0 ns in events.csv, 56 years before every other row)
    with _synthetic(4.0) as src:
        start_ns = src.start_ns
    rows = [r.split(",") for r in (tmp_path / "s" / "events.csv").read_text().splitlines() if "bad_question" in r]
    assert len(rows) == 3 and all(int(r[1]) == start_ns for r in rows), rows
    rec = sink.records[1]
    assert rec.answer in ("A", "B")  # plain options are lettered A, B in order


def test_a_pretty_printed_question_is_named_as_such(tmp_path):
    """A question object written over several lines (json.dump(indent=2)) was read as JSON lines: "holds no usable
    question; 4 unusable". One object per line, or a single line of JSONL, still reads."""
    from gazeqwen_edge.errors import InputError

    q = tmp_path / "q.json"
    q.write_text(json.dumps({"t": 2.0, "question": "What am I looking at?"}, indent=2) + "\n")
    with pytest.raises(InputError, match="is one JSON object written over several lines") as e:
        load_questions(q)
    assert "jq -c" in e.value.hint
    q.write_text(json.dumps({"t": 2.0, "question": "What am I looking at?"}) + "\n")
    assert len(load_questions(q).questions) == 1
    q.write_text('{"t": 1, "question": "a"}\n{"t": 2, "question": "b"}\n')  # JSONL of two: not one value
    assert len(load_questions(q).questions) == 2


def test_streamgaze_qa_file_is_asked_at_its_time_stamps(shared_dir):
    qf = load_questions(shared_dir / "fixtures/streamgaze_sample/sample_qa.json", "OP03-R01-PastaSalad.mp4")
    (q,) = qf.questions
    assert q.t_s == 4 * 60 + 36 and q.options == ["A. box", "B. spices", "C. knife", "D. jar"]
    assert q.meta["answer"] == "C" and q.meta["task_type"] == "present_object_identification_easy"
    from gazeqwen_edge.errors import InputError

    with pytest.raises(InputError, match="no question about the video x.mp4"):
        load_questions(shared_dir / "fixtures/streamgaze_sample/sample_qa.json", "x.mp4")


def test_live_pace_skips_chunks_when_behind_and_loses_no_gaze(stream_gq, monkeypatch):
    """At live pace with a model slower than real time, chunks are skipped (counted, reported), never queued without
    bound, and every gaze sample is still ingested and recorded."""
    import time

    from gazeqwen_edge.runtime import stream as stream_mod

    real = stream_mod.VideoStream.prefill_steps

    def slow(self, *a, **k):
        time.sleep(0.25)  # 4x slower than a 1 s chunk at 16x real time
        return real(self, *a, **k)

    monkeypatch.setattr(stream_mod.VideoStream, "prefill_steps", slow)
    sink = Collect()
    with _synthetic(16.0) as src:
        s = Session(src, stream_gq, SessionConfig(max_pending_chunks=1), sinks=[sink], speed=16.0)
        s.start()
        s.wait(60)
        s.stop()
    assert s.stats.chunks_skipped > 0
    assert s.stats.chunks_skipped + s.stats.chunks_prefilled == s.stats.model_frames // 2
    assert s.stats.records["GazeSample"] == 16 * 200
    assert any(k == "chunks_skipped" for k, *_ in sink.notices)


def test_parse_speed():
    assert parse_speed("max") is None and parse_speed("4") == 4.0 and parse_speed("1x") == 1.0
    from gazeqwen_edge.errors import ConfigError

    assert parse_speed("0.05") == 0.05 and parse_speed("1000") == 1000.0
    assert parse_speed("0") is parse_speed("0.0") is parse_speed("-0") is None  # 'max' (or 0), however 0 is written
    for bad in ("0.0.1", "-1", "nan", "inf", "fast", "1e-9", "0.049", "1001"):  # 1e-9: a replay that never ends
        with pytest.raises(ConfigError):
            parse_speed(bad)


def test_session_config_refuses_impossible_values():
    from gazeqwen_edge.errors import ConfigError

    for kw in ({"fps": 0}, {"fps": float("nan")}, {"chunk_s": -1}, {"window_s": float("inf")}, {"fixations": "x"}):
        with pytest.raises(ConfigError):
            SessionConfig(**kw)
    assert SessionConfig(fps=2, chunk_s=1).chunk_steps == 1 and SessionConfig(fps=4, chunk_s=2).chunk_steps == 4
    assert np.isfinite(SessionConfig().window_s)
    assert SceneFrame  # records are importable from the session's package


KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from gazeqwen_edge.device import open_source
from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
from gazeqwen_edge.runtime.questions import ScheduledQuestion
from gazeqwen_edge.runtime.replay import replay
from gazeqwen_edge.runtime.session import SessionConfig
from gazeqwen_edge.runtime.sinks import Sink

class Tell(Sink):
    def answered(self, record):
        print("answered", record.id, flush=True)

gq = build_tiny_gazeqwen(perturb=0.5, sampling_fps=2.0)
qs = [ScheduledQuestion(t, "What am I looking at?") for t in (1.0, 2.0, 3.0, 30.0)]
with open_source("synthetic:3", duration_s=60, width=160, height=120) as src:
    print("ready", flush=True)
    replay(src, gq, SessionConfig(max_new_tokens=3), sys.argv[1], qs, speed=1.0, sinks=[Tell()])
"""


def test_a_killed_session_keeps_its_answers_and_all_but_the_last_second(tmp_path):
    """SIGKILL a live-paced session after its third answer: answers.jsonl holds the three answers, and the gaze in
    the session directory reaches to within a second (plus the recorder's flush interval) of the kill."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "s"
    p = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        seen = 0
        t_ready = None
        deadline = time.monotonic() + 120
        while seen < 3 and time.monotonic() < deadline:
            line = p.stdout.readline()
            if line.startswith("ready"):
                t_ready = time.monotonic()
            seen += line.startswith("answered")
        assert seen == 3, "the session did not answer in time"
        time.sleep(1.5)
        killed_after = time.monotonic() - t_ready
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    lines = (out / "answers.jsonl").read_text().splitlines()
    assert [json.loads(x)["t"] for x in lines] == [1.0, 2.0, 3.0]
    from gazeqwen_edge.device import open_source

    with open_source(str(out)) as back:
        ts = [r.ts_ns for r in back.records({GazeSample})]
    covered = (ts[-1] - ts[0]) / 1e9
    assert covered >= killed_after - 1.0  # all but the last second (measured: ~0.03 s short)


def test_one_failing_question_does_not_end_the_session(tmp_path, stream_gq, monkeypatch):
    """A question whose answering raises (e.g. out of memory on a huge prompt: before, a traceback that ended the
    session and lost every later question) gets an error record; the next question is answered."""
    from gazeqwen_edge.runtime import stream as stream_mod

    real = stream_mod.VideoStream.answer
    calls = []

    def flaky(self, question, *a, **k):
        calls.append(question)
        if question == "boom?":
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory")
        yield from real(self, question, *a, **k)

    monkeypatch.setattr(stream_mod.VideoStream, "answer", flaky)
    qs = [ScheduledQuestion(3.0, "boom?"), ScheduledQuestion(4.0, "What am I looking at?")]
    with _synthetic(5.0) as src:
        res = replay(src, stream_gq, SessionConfig(max_new_tokens=2), tmp_path / "s", qs)
    bad, good = res.records
    assert "could not be answered (RuntimeError" in bad.error and good.error is None and good.n_tokens >= 1
    assert res.stats.failed == 1 and res.stats.answered == 1


def test_questions_that_cannot_be_asked_are_refused_at_once(stream_gq):
    from gazeqwen_edge.errors import InputError

    with _synthetic(2.0) as src:
        s = Session(src, stream_gq, SessionConfig())
        with pytest.raises(InputError, match="at most 2000 characters"):
            s.ask("why " * 1000)
        with pytest.raises(InputError, match="distinct letters"):
            s.ask("Which?", ["A. x", "A. y"])
        with pytest.raises(InputError, match="at most 26 options"):
            s.ask("Which?", [f"option {i}" for i in range(30)])


def test_a_question_after_the_end_of_the_source_is_not_answered_from_old_video(tmp_path, stream_gq):
    """Before: answered from the video that ended long before, with only a notice."""
    qs = [ScheduledQuestion(2.5, "Which object?", ["A. x", "B. y"]), ScheduledQuestion(1e6, "And later?")]
    with _synthetic(4.0) as src:
        res = replay(src, stream_gq, SessionConfig(), tmp_path / "s", qs)
    ok, late = res.records
    assert ok.error is None and ok.answer in ("A", "B")
    assert late.error.startswith("asked at 1000000.0 s, after the source ended at") and late.answer == ""


def test_a_chunk_longer_than_the_source_still_lets_questions_see_the_video(tmp_path, stream_gq):
    """Before: --chunk 60 on a 6 s source prefilled nothing ('no scene video has arrived yet' for every question);
    now a question (and the end of the source) hands over the whole steps held so far."""
    qs = [ScheduledQuestion(3.0, "Which object?", ["A. x", "B. y"])]
    with _synthetic(6.0) as src:
        res = replay(src, stream_gq, SessionConfig(chunk_s=60.0), tmp_path / "s", qs)
    (rec,) = res.records
    assert rec.error is None and 2.0 <= rec.video_s[1] <= 3.0
    assert res.stats.chunks_prefilled >= 2  # the question's chunk and the rest at the end
    timings = (tmp_path / "s" / "timings.csv").read_text().splitlines()
    stages = {line.split(",")[1] for line in timings[1:]}
    assert {"prefill_chunk", "qwen_vision", "prefill_question"} <= stages  # before: timings.csv was only its header


def test_a_live_question_before_any_video_waits_for_the_first_chunk(stream_gq):
    """Before: a question typed as `run` started was answered at once with 'no scene video has arrived yet'."""
    sink = Collect()
    with _synthetic(6.0) as src:
        s = Session(src, stream_gq, SessionConfig(max_new_tokens=2), sinks=[sink], speed=2.0)
        s.start()
        s.ask("What am I looking at?")
        assert s.wait(60)
        s.stop()
    (rec,) = sink.records
    assert rec.error is None and rec.video_s is not None


def test_a_questions_file_with_a_byte_order_mark_keeps_its_first_question(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_bytes('\ufeff{"t": 1, "question": "first?"}\r\n{"t": 2, "question": "second?"}\r\n'.encode())
    qf = load_questions(q)
    assert [x.text for x in qf.questions] == ["first?", "second?"] and qf.problems == []


def test_a_question_time_no_recording_has_is_a_problem_of_its_line_not_a_crash(tmp_path):
    """Before: t = 1e308 passed the file check and overflowed t x 1e9 (ns) after the whole replay, losing answers."""
    q = tmp_path / "q.jsonl"
    q.write_text(
        '{"t": 1e308, "question": "huge?"}\n{"t": 1000000, "question": "last second"}\n{"t": 2, "question": "ok?"}\n'
    )
    qf = load_questions(q)
    assert [x.text for x in qf.questions] == ["ok?", "last second"] and [n for n, _ in qf.problems] == [1]
    assert "later than any recording" in qf.problems[0][1]


@pytest.mark.parametrize("text", ["[1, 2, 3]", "[]", '[{"t": 1, "question": "x"}]'])
def test_a_json_list_that_is_no_streamgaze_file_says_what_a_questions_file_is(tmp_path, text):
    """Before: called a StreamGaze QA file, with '?' for the video to replay."""
    from gazeqwen_edge.errors import InputError

    q = tmp_path / "q.json"
    q.write_text(text)
    for video in (None, "clip.mp4"):
        with pytest.raises(InputError, match="neither a questions file nor a StreamGaze QA file") as e:
            load_questions(q, video)
        assert '{"t": 2.5' in e.value.hint


def test_a_streamgaze_qa_file_is_only_for_its_own_videos(tmp_path, shared_dir):
    """Before: accepted for any source and scored against another video's ground truth."""
    from gazeqwen_edge.errors import InputError

    with pytest.raises(InputError, match="StreamGaze QA file") as e:
        load_questions(shared_dir / "fixtures/streamgaze_sample/sample_qa.json", None)
    assert "OP03-R01-PastaSalad.mp4" in e.value.hint


def test_a_live_source_is_read_with_the_session_reorder_window(stream_gq):
    """The live Neon source holds records 0.75 s by default to order them across kinds, which delayed every gaze
    sample by 0.75 s on its way to the session (profile --source simulator); the session asks for its own window."""
    from gazeqwen_edge.device.source import Source
    from gazeqwen_edge.errors import ConfigError

    asked = []

    class Live(Source):
        name = "neon"

        def records(self, kinds=None, ordered=True, reorder_window_s=0.75):
            asked.append(reorder_window_s)
            yield GazeSample(1_000_000_000, 10.0, 10.0)

    s = Session(Live(), stream_gq, SessionConfig(reorder_window_s=0.2))
    s.start()
    s.wait(10)
    s.stop()
    assert asked == [0.2]
    with pytest.raises(ConfigError):
        SessionConfig(reorder_window_s=float("nan"))


def test_a_question_re_prefills_the_newest_chunks_with_the_gaze_known_at_its_time(tmp_path, stream_gq, monkeypatch):
    """The newest chunks were prefilled before the question; their gaze spans run past their last frame, so the
    question refreshes them with the scanpath known at its own time (VideoStream.refresh_gaze, equality with one full
    prefill in test_stream.py)."""
    from gazeqwen_edge.runtime.stream import VideoStream

    calls = []
    real = VideoStream.refresh_gaze

    def spy(self, scanpath):
        n = real(self, scanpath)
        calls.append((np.array(scanpath, copy=True), self.chunks[-1].t1_s, n))
        return n

    monkeypatch.setattr(VideoStream, "refresh_gaze", spy)
    q = ScheduledQuestion(3.3, "Which object?", ["A. red circle", "B. blue box", "C. green cross"])
    with _synthetic(5.0) as src:
        # without the question view, which does the same for a question that finds a frame newer than the cache's
        replay(src, stream_gq, SessionConfig(max_new_tokens=2, question_view=False), tmp_path / "s", [q])
    (rec,) = [json.loads(x) for x in (tmp_path / "s" / "answers.jsonl").read_text().splitlines()]
    (rows, last_frame_s, n) = calls[0]
    ends = rows[:, 2] + rows[:, 3] / 2
    assert last_frame_s <= 3.0 and 3.0 < ends.max() <= 3.3 + 1e-6  # gaze after the last chunk, none after the question
    assert n >= 1 and "gaze_refresh" in rec["stages_ms"]


def test_a_question_between_steps_sees_the_video_up_to_the_newest_frame(tmp_path, stream_gq):
    """At 3.3 s the whole steps end with the model frame of 2.4 s and the session holds the one of 2.9 s for the next
    step: the question's view re-pairs the newest steps to end at 2.9 s (VideoStream.question_view; equality with one
    full prefill in test_stream.py); without the view it answers on video up to 2.4 s."""
    q = ScheduledQuestion(3.3, "Which object?", ["A. red circle", "B. blue box", "C. green cross"])
    spans = {}
    for view in (True, False):
        with _synthetic(5.0) as src:
            cfg = SessionConfig(max_new_tokens=2, question_view=view)
            replay(src, stream_gq, cfg, tmp_path / str(view), [q])
        (rec,) = [json.loads(x) for x in (tmp_path / str(view) / "answers.jsonl").read_text().splitlines()]
        spans[view] = (rec["video_s"], "question_view" in rec["stages_ms"])
    assert spans[True] == ([0.0, 2.9], True)
    assert spans[False] == ([0.0, 2.4], False)
    # the view works with the gaze refresh off, and the refresh stays off where no view applies (at 3.5 s the held
    # frame of 2.9 s has just made a whole step with the one of 3.4 s)
    late = ScheduledQuestion(3.5, q.text, q.options)
    for question, want in ((q, [0.0, 2.9]), (late, [0.0, 3.4])):
        out = tmp_path / f"no-refresh-{question.t_s}"
        with _synthetic(5.0) as src:
            replay(src, stream_gq, SessionConfig(max_new_tokens=2, gaze_refresh=False), out, [question])
        (rec,) = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
        assert rec["video_s"] == want and "gaze_refresh" not in rec["stages_ms"]


def test_a_disk_that_refuses_the_last_writes_still_lets_every_sink_close(stream_gq, tmp_path, monkeypatch):
    """The session directory's disk fills as the session stops: stop() raises the recorder's DeviceError (the CLI's
    error line, exit 3), but only after every sink was closed (the terminal's held notices printed, answers.jsonl
    closed); before, the first failure skipped them."""
    from gazeqwen_edge.device.session import Recorder
    from gazeqwen_edge.errors import DeviceError
    from tests.device.test_disk_full import filling_open

    stopping = []
    monkeypatch.setattr(Recorder, "_open", filling_open({"gaze.csv": lambda: bool(stopping)}))

    class Closing(Collect):
        closed = False

        def close(self):
            self.closed = True

    sink = Closing()
    with _synthetic(2.0) as src:
        s = Session(src, stream_gq, SessionConfig(max_new_tokens=2), out_dir=tmp_path / "s", sinks=[sink])
        s.start()
        s.wait(60)
        stopping.append(True)
        with pytest.raises(DeviceError, match="No space left on device"):
            s.stop()
    assert sink.closed


def test_a_source_that_fails_mid_replay_leaves_its_session_marked_failed(tmp_path, stream_gq):
    """A scene video that became unreadable half way: the command failed (exit 2) but session.json said "closed",
    like a session that ran to its end. Now "failed", with the error, and what was recorded kept."""
    from gazeqwen_edge.errors import InputError

    class Breaks:
        def __init__(self, src, after):
            self.src, self.after = src, after

        def __getattr__(self, name):
            return getattr(self.src, name)

        def records(self, kinds=None):
            for i, r in enumerate(self.src.records(kinds)):
                if i == self.after:
                    raise InputError("scene.mp4", "video decoding failed (cut short)")
                yield r

    with _synthetic(seconds=4.0) as src, pytest.raises(InputError, match="video decoding failed"):
        replay(Breaks(src, 600), stream_gq, SessionConfig(max_new_tokens=2), tmp_path / "s", [])
    manifest = json.loads((tmp_path / "s" / "session.json").read_text())
    assert manifest["state"] == "failed" and "video decoding failed" in manifest["error"]
    assert manifest["counts"]["gaze"] > 100  # what arrived before the failure is kept


def test_a_question_just_into_a_fixation_sees_it_once_the_gaze_has_settled(tmp_path, stream_gq):
    """A question 40 ms into a fixation: at its time the fixation detector cannot report the fixation yet (it needs
    its minimum duration after its smoothing delay), so the question was answered on the fixation before, which the
    demo model then named (the 4 of 16 demo questions on seeds 20-21 whose newest fixation was another object's were
    all answered wrong). With the gaze settle its fixations are read once the gaze has run the detector's settle time
    past it: the newest is the one in progress, from its start to the question, as training's stream scanpaths cut
    it."""
    from gazeqwen_edge.device.synthetic import SyntheticScene

    scene = SyntheticScene(seed=3, duration_s=5.0, width=160, height=120)
    fx = scene.true_fixations
    f = next(  # one after a saccade the detector sees at 160 px (20 px: about 13 degrees)
        f
        for f, before in zip(fx[1:], fx, strict=False)
        if f.start_ns - scene.start_ns >= 2e9
        and f.end_ns - f.start_ns >= 2e8
        and np.hypot(f.x - before.x, f.y - before.y) >= 20
    )
    start_s = (f.start_ns - scene.start_ns) / 1e9
    q = ScheduledQuestion(round(start_s + 0.04, 3), "What am I looking at?")
    newest = {}
    for settle in (True, False):
        out = tmp_path / str(settle)
        replay(scene, stream_gq, SessionConfig(max_new_tokens=2, gaze_settle=settle), out, [q])
        (rec,) = [json.loads(x) for x in (out / "answers.jsonl").read_text().splitlines()]
        x, y, mid, dur = rec["fixations"][-1]
        newest[settle] = (x * 160, y * 120, mid - dur / 2, mid + dur / 2)
    x, y, s, e = newest[True]
    assert abs(s - start_s) <= 0.03 and e == pytest.approx(q.t_s, abs=1e-3)
    assert abs(x - f.x) <= 3 and abs(y - f.y) <= 3, (newest, f)
    assert newest[False][3] <= start_s + 0.01  # without it: the fixation before, ended before this one began


def _stalling_source(t0: int, n_samples: int, release: threading.Event):
    """A live Neon-like source: `n_samples` gaze samples at 200 Hz from t0 ns (a fixation per second, at x = 20, 40,
    60 px) with a scene frame every 0.5 s, then nothing until `release` is set (the gaze stalls)."""
    from gazeqwen_edge.device.source import Source

    class Stalling(Source):
        name = "neon"

        @property
        def scene_size(self):
            return (80, 60)

        def records(self, kinds=None, ordered=True, reorder_window_s=0.75):
            frame = np.full((60, 80, 3), 128, np.uint8)
            for i in range(n_samples):
                t = t0 + i * 5_000_000
                if i % 100 == 0:
                    yield SceneFrame(t, frame)
                yield GazeSample(t, 20.0 + 20 * (i // 200), 30.0)
            release.wait(30)

    return Stalling()


def test_a_live_question_waits_for_the_gaze_at_its_time_at_most_settle_wait_s(stream_gq):
    """Live, a typed question waits for the gaze that settles its fixations; when the gaze stalls (the glasses stop
    sending) it is answered after `settle_wait_s` on the fixations known at its time, never held until gaze comes."""
    import time

    release = threading.Event()
    t0 = 1_000_000_000_000
    sink = Collect()
    s = Session(
        _stalling_source(t0, 3 * 200, release),
        stream_gq,
        SessionConfig(max_new_tokens=2, settle_wait_s=0.3),
        sinks=[sink],
    )
    s.start()
    deadline = time.monotonic() + 30
    while (s.now_ns or 0) < t0 + 2_995_000_000 or s.stats.chunks_prefilled < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    s.ask("What am I looking at?")
    while not sink.records and time.monotonic() < deadline:
        time.sleep(0.02)
    answered_while_stalled = bool(sink.records)
    release.set()
    s.wait(30)
    s.stop()
    assert answered_while_stalled
    (rec,) = sink.records
    assert rec.error is None and rec.stages_ms["gaze_settle"] >= 250, rec.stages_ms
    assert len(rec.fixations) == 3  # the fixations known at its time: two ended, the third in progress


def test_a_question_waiting_for_its_gaze_runs_its_views_encoders_meanwhile(stream_gq, monkeypatch):
    """The demo profile: a typed question waited 108 ms for its gaze to settle, then 105 ms for its question view,
    whose encoders need no gaze. They now run while it waits (VideoStream.prepare_view), and the view uses them."""
    import time

    from gazeqwen_edge.runtime.stream import VideoStream

    release = threading.Event()
    t0 = 1_000_000_000_000

    prepared, used = [], []
    real_prepare, real_view = VideoStream.prepare_view, VideoStream.question_view
    monkeypatch.setattr(
        VideoStream, "prepare_view", lambda self, *a: prepared.append(real_prepare(self, *a)) or prepared[-1]
    )
    monkeypatch.setattr(
        VideoStream,
        "question_view",
        lambda self, *a, prepared=None: used.append(prepared) or real_view(self, *a, prepared=prepared),
    )
    sink = Collect()
    # 3 s of gaze and 7 scene frames (the last one the odd frame of a step), then the gaze stalls
    s = Session(
        _stalling_source(t0, 3 * 200 + 1, release),
        stream_gq,
        SessionConfig(max_new_tokens=2, settle_wait_s=0.3),
        sinks=[sink],
    )
    s.start()
    deadline = time.monotonic() + 30
    while (s.now_ns or 0) < t0 + 3_000_000_000 or s.stats.chunks_prefilled < 3:  # frames 0-5 in; 6 held
        assert time.monotonic() < deadline
        time.sleep(0.02)
    s.ask("What am I looking at?")
    while not sink.records and time.monotonic() < deadline:
        time.sleep(0.02)
    release.set()
    s.wait(30)
    s.stop()
    (rec,) = sink.records
    assert rec.error is None and rec.stages_ms["gaze_settle"] >= 250, rec.stages_ms
    assert len(prepared) == 1 and prepared[0] is not None
    assert used == prepared  # the view took the encodings made while it waited


def test_session_json_holds_the_chunk_as_used_and_the_replay_speed(tmp_path, stream_gq):
    """--chunk 1.3 at --fps 3 is taken as 2 steps of 2/3 s: session.json said 1.3."""
    with _synthetic(seconds=1.5) as src:
        replay(src, stream_gq, SessionConfig(fps=3.0, chunk_s=1.3, max_new_tokens=2), tmp_path / "s", [], speed=None)
    meta = json.loads((tmp_path / "s" / "session.json").read_text())["metadata"]
    assert meta["settings"]["chunk_s"] == pytest.approx(4 / 3) and meta["settings"]["fps"] == 3.0
    assert meta["speed"] is None and meta["settings"]["lockstep"] is True
