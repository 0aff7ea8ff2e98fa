"""The session live, end to end through the official client: the simulator serves a source over the Neon protocol,
NeonLiveSource (pupil-labs-realtime-api underneath) feeds the session, questions are answered from the streamed video,
also through packet loss and while the device is away."""

from __future__ import annotations

import json
import time

import pytest

from gazeqwen_edge.runtime.session import Session, SessionConfig
from gazeqwen_edge.runtime.sinks import Sink

pytest.importorskip("pupil_labs.realtime_api")
pytest.importorskip("av")


class Collect(Sink):
    def __init__(self):
        self.records, self.notices = [], []

    def answered(self, record):
        self.records.append(record)

    def notice(self, kind, message, t_s):
        self.notices.append(kind)


def _wait(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_live_session_survives_loss_and_a_disconnect_and_answers_from_buffered_video(tmp_path, stream_gq):
    from gazeqwen_edge.device.neon import NeonLiveSource
    from gazeqwen_edge.device.simulator import NeonSimulator
    from tests.neon.toy import ToySource

    sim = NeonSimulator(ToySource(duration_s=60.0, width=160, height=120)).start()
    sink = Collect()
    try:
        with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze", "world")) as neon:
            s = Session(neon, stream_gq, SessionConfig(max_new_tokens=3), out_dir=tmp_path / "live", sinks=[sink])
            s.start()
            try:
                assert _wait(lambda: s.stats.chunks_prefilled >= 3, 30), s.stats
                s.ask("What am I looking at?")
                assert _wait(lambda: len(sink.records) == 1, 20)
                sim.faults.drop_percent = 10.0
                sim.disconnect()
                assert _wait(lambda: "disconnected" in sink.notices, 10)
                chunks_before = s.stats.chunks_prefilled
                s.ask("Which object?", ["A. red", "B. green"])  # during the outage
                assert _wait(lambda: len(sink.records) == 2, 20)
                sim.reconnect()
                assert _wait(lambda: "reconnected" in sink.notices, 10)
                assert _wait(lambda: s.stats.chunks_prefilled >= chunks_before + 2, 20)  # video flows again
                s.ask("What am I looking at now?")
                assert _wait(lambda: len(sink.records) == 3, 20)
            finally:
                s.stop()
    finally:
        sim.stop()
    first, outage, after = sink.records
    assert all(r.error is None for r in sink.records), [r.error for r in sink.records]
    assert outage.answer in ("A", "B") and outage.video_s is not None  # answered from the video buffered before
    assert after.video_s[1] > outage.video_s[1]  # the stream went on after the device came back
    lines = [json.loads(x) for x in (tmp_path / "live" / "answers.jsonl").read_text().splitlines()]
    assert [x["question"] for x in lines] == ["What am I looking at?", "Which object?", "What am I looking at now?"]
    assert all(x["source"] == "typed" for x in lines)
