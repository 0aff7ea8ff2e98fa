"""Our live source (NeonLiveSource, on the official client) against the simulator: the same data as the client tests,
now as device-layer records; payload variants; recording control; clock offset."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gazeqwen_edge.device.records import AudioChunk, Blink, Fixation, GazeSample, Notice, SceneFrame
from tests.neon.checks import audio_lag_samples, check_frame, check_gaze


def collect(neon, seconds: float, stop=None):
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = neon.get(0.1)
        if r is not None:
            out.append(r)
            if stop is not None and stop(out):
                break
    return out


def test_live_source_delivers_records_matching_the_source(sim):
    from gazeqwen_edge.device.neon import NeonLiveSource

    src = sim.source
    with NeonLiveSource("127.0.0.1", sim.port) as neon:
        st = neon.status()
        assert st.connected and st.device_name == "Neon Simulator" and st.battery_level == sim.battery_level
        assert st.sensors == {"gaze": True, "world": True, "audio": True, "eye_events": True}
        recs = collect(
            neon,
            12,
            stop=lambda rs: (
                sum(isinstance(r, Blink) for r in rs) >= 1 and sum(isinstance(r, AudioChunk) for r in rs) >= 6
            ),
        )
        assert neon.status().worn is True
        assert neon.scene_size == (src.w, src.h)
    gaze = [r for r in recs if isinstance(r, GazeSample)]
    frames = [r for r in recs if isinstance(r, SceneFrame)]
    audio = [r for r in recs if isinstance(r, AudioChunk)]
    fix = [r for r in recs if isinstance(r, Fixation)]
    assert len(gaze) > 100 and len(frames) > 15 and len(audio) >= 6 and fix
    for g in gaze:
        check_gaze(src, sim.offset_ns, g.ts_ns, g.x, g.y)
    ts = [g.ts_ns for g in gaze]
    assert ts == sorted(ts)
    # no gaze lost on a clean link: consecutive samples one period apart
    assert int(np.diff(ts).max()) <= 5_000_000 + 1000
    idx = [check_frame(src, sim.offset_ns, f.ts_ns, f.rgb) for f in frames]
    assert idx == list(range(idx[0], idx[0] + len(idx)))  # every frame, in order
    lags = [audio_lag_samples(src, sim.offset_ns, a.ts_ns, a.pcm) for a in audio[1:]]
    assert max(abs(lag) for lag in lags) <= 8, lags  # audio time = time of its first sample, within 1 ms
    assert all(a.sample_rate == 8000 and a.pcm.ndim == 1 for a in audio)
    f = fix[0]
    j = round((f.start_ns - sim.offset_ns - src.t0 - 200_000_000) / 1e9)
    assert f.start_ns - sim.offset_ns == src.t0 + j * 1_000_000_000 + 200_000_000
    assert f.duration_ns == 300_000_000 and (f.x, f.y) == (100.0 + j, 50.0 + j) and f.source == "device"


@pytest.mark.parametrize("variant", [17, 105])
def test_live_source_reads_other_gaze_payload_variants(make_sim, variant):
    from gazeqwen_edge.device.neon import NeonLiveSource

    sim = make_sim(gaze_variant=variant, audio="off")
    src = sim.source
    with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze",)) as neon:
        recs = collect(neon, 5, stop=lambda rs: len(rs) >= 50)
    gaze = [r for r in recs if isinstance(r, GazeSample)]
    assert len(gaze) >= 50
    for g in gaze:
        if variant == 17:  # dual monocular: the simulator sends (x, y) as the left eye and zeros as the right
            assert abs(g.x * 2 - check_x(src, sim, g)) < 1e-3
        else:
            check_gaze(src, sim.offset_ns, g.ts_ns, g.x, g.y)


def check_x(src, sim, g):
    from tests.neon.toy import gaze_xy

    i = round((g.ts_ns - sim.offset_ns - src.t0) * src.gaze_hz / 1e9)
    return gaze_xy(i)[0]


def test_recording_control_events_and_clock_offset(make_sim):
    from gazeqwen_edge.device.neon import NeonLiveSource
    from gazeqwen_edge.errors import DeviceError

    sim = make_sim(clock_offset_ms=-400.0, audio="off")
    src = sim.source
    with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze",), apply_clock_offset=True) as neon:
        assert neon.clock_offset_ns == pytest.approx(-400e6, abs=3e6)
        rec_id = neon.recording_start()
        t_end = time.monotonic() + 3.0  # the status is polled once per second
        while neon.status().recording_id is None and time.monotonic() < t_end:
            time.sleep(0.05)
        assert neon.status().recording_id == rec_id
        with pytest.raises(DeviceError, match="already running"):
            neon.recording_start()
        t_query = neon.now_ns()  # on this machine's clock, like the records (apply_clock_offset=True)
        ts = neon.send_event("gazeqwen.query", t_query)
        assert ts == t_query and sim.events[-1]["name"] == "gazeqwen.query" and sim.events[-1]["recording_id"] == rec_id
        # the phone stored it on its own clock, 400 ms ahead: the same moment as the query
        assert abs(sim.events[-1]["timestamp"] - (t_query + sim.clock_offset_ns)) < 3e6
        assert abs(neon.send_event("gazeqwen.answer") - neon.now_ns()) < 50e6  # phone-stamped, returned on our clock
        neon.recording_stop_and_save()
        assert sim.recording["action"] == "STOP"
        gaze = [r for r in collect(neon, 3, stop=lambda rs: len(rs) > 20) if isinstance(r, GazeSample)]
    # converted to this machine's clock: device time minus the estimated offset, i.e. minus the simulated 400 ms error
    assert gaze
    for g in gaze:
        check_gaze(src, sim.offset_ns, g.ts_ns + neon.clock_offset_ns, g.x, g.y)
        device_ts = g.ts_ns + neon.clock_offset_ns
        assert abs((device_ts - sim.clock_offset_ns) - g.ts_ns) < 3e6


def test_not_worn_and_sensor_missing_are_reported(sim):
    from gazeqwen_edge.device.neon import NeonLiveSource

    with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze", "world")) as neon:
        collect(neon, 5, stop=lambda rs: len(rs) > 20)
        sim.set_worn(False)
        recs = collect(neon, 3, stop=lambda rs: any(isinstance(r, Notice) and r.kind == "not_worn" for r in rs))
        assert any(isinstance(r, Notice) and r.kind == "not_worn" for r in recs)
        assert neon.status().worn is False
        after = [r for r in collect(neon, 0.5) if isinstance(r, GazeSample)]
        assert len(after) > 50 and not any(g.worn for g in after)  # every sample since the notice says not worn
        sim.set_sensor_connected("world", False)
        recs = collect(neon, 4, stop=lambda rs: any(isinstance(r, Notice) and r.kind == "sensor_missing" for r in rs))
        assert any(isinstance(r, Notice) and r.kind == "sensor_missing" for r in recs)
        assert neon.status().sensors["world"] is False
        # gaze keeps flowing without the scene camera
        assert sum(isinstance(r, GazeSample) for r in collect(neon, 1)) > 50


def test_records_are_in_time_order_across_kinds_by_default(sim):
    from gazeqwen_edge.device.neon import NeonLiveSource

    with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze", "world", "audio")) as neon:
        out = []
        t_end = time.monotonic() + 2.5
        for r in neon.records():  # the Source contract: non-decreasing ts_ns across kinds
            out.append(r)
            if time.monotonic() > t_end:
                break
        assert neon.stats()["out_of_order"] == 0
    kinds = {type(r) for r in out}
    assert {GazeSample, SceneFrame, AudioChunk} <= kinds
    data = [r.ts_ns for r in out]
    assert data == sorted(data)


def test_notices_are_stamped_on_the_clock_of_the_data(make_sim):
    """With the phone's clock 5 s ahead of ours, a Notice must still sit among the gaze samples of its moment
    (on the phone's clock, like the data), so that time-ordered delivery puts it in the right place."""
    from gazeqwen_edge.device.neon import NeonLiveSource

    sim = make_sim(clock_offset_ms=5000.0, audio="off")
    with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze",)) as neon:
        assert neon.clock_offset_ns == pytest.approx(5e9, abs=3e6)
        out = []
        n_worn = n_off = 0
        deadline = time.monotonic() + 8.0
        for r in neon.records():
            out.append(r)
            if isinstance(r, GazeSample):
                n_worn += r.worn
                n_off += not r.worn
                if n_worn == 100:
                    sim.set_worn(False)
            if n_off >= 20 or time.monotonic() > deadline:
                break
    notice = next(x for x in out if isinstance(x, Notice) and x.kind == "not_worn")
    gaze = [x for x in out if isinstance(x, GazeSample)]
    last_worn = max(g.ts_ns for g in gaze if g.worn)
    first_off = min(g.ts_ns for g in gaze if not g.worn)
    # the notice carries the time of the first not-worn datum (before: its arrival, up to the network's and the
    # machine's lag later, so under load it came after the 20 not-worn samples this loop reads)
    assert last_worn < notice.ts_ns == first_off
    ts = [x.ts_ns for x in out]
    assert ts == sorted(ts)


def test_ring_buffer_bounds_records_and_frames_without_blocking():
    from gazeqwen_edge.device.neon import _Ring

    ring = _Ring(capacity=50, max_frames=4)
    rgb = np.zeros((2, 2, 3), np.uint8)
    for k in range(30):  # a consumer that never reads: 30 frames and 30 gaze samples arrive
        ring.push(SceneFrame(k * 10, rgb, k))
        ring.push(GazeSample(k * 10 + 1, float(k), 0.0))
    out = [ring.get(0) for _ in range(len(ring))]
    frames = [r.index for r in out if isinstance(r, SceneFrame)]
    assert frames == [26, 27, 28, 29]  # only the newest frames are kept
    assert [r.x for r in out if isinstance(r, GazeSample)] == [float(k) for k in range(30)]  # gaze untouched
    assert ring.dropped == 26
    for k in range(60):  # the overall capacity drops the oldest of any kind
        ring.push(GazeSample(1000 + k, float(k), 0.0))
    assert len(ring) == 50 and ring.get(0).x == 10.0 and ring.dropped == 26 + 10
    assert ring.get(0.01).x == 11.0
