"""The UNMODIFIED Pupil Labs client (pupil-labs-realtime-api, async and blocking `simple` API) against the simulator:
it must connect and receive gaze, scene frames matched with gaze, audio and eye events whose values and timestamps
match the source."""

from __future__ import annotations

import asyncio

import pytest

from tests.neon.checks import audio_lag_samples, check_frame, check_gaze

AAC_FRAME_NS = 128_000_000  # the client stamps each decoded AAC frame with the previous packet's time


def test_async_client_receives_gaze_video_audio_and_eye_events(sim):
    from pupil_labs.realtime_api import (
        Device,
        receive_audio_frames,
        receive_eye_events_data,
        receive_gaze_data,
        receive_video_frames,
    )

    src = sim.source
    got = {"gaze": 0, "frames": 0, "audio": 0, "events": []}

    async def main():
        async with Device("127.0.0.1", sim.port) as device:
            status = await device.get_status()
            assert status.phone.device_name == "Neon Simulator"
            assert status.phone.time_echo_port == sim.time_echo_port
            gaze_url = status.direct_gaze_sensor().url
            world_url = status.direct_world_sensor().url
            audio_url = status.direct_audio_sensor().url
            events_url = status.direct_eye_events_sensor().url
            calib = await device.get_calibration()
            assert calib.scene_camera_matrix[0, 0] == pytest.approx(200.0)

            async def gaze():
                async for g in receive_gaze_data(gaze_url):
                    check_gaze(src, sim.offset_ns, g.timestamp_unix_ns, g.x, g.y)
                    assert g.worn
                    got["gaze"] += 1
                    if got["gaze"] >= 300:
                        return

            async def video():
                async for f in receive_video_frames(world_url):
                    check_frame(src, sim.offset_ns, f.timestamp_unix_ns, f.to_ndarray(format="rgb24"))
                    got["frames"] += 1
                    if got["frames"] >= 30:
                        return

            async def audio():
                lags = []
                async for a in receive_audio_frames(audio_url):
                    assert a.av_frame.sample_rate == 8000
                    got["audio"] += 1
                    if got["audio"] >= 2:  # the first decoded frame lacks its predecessor's overlap
                        ts = a.timestamp_unix_ns + AAC_FRAME_NS
                        lags.append(audio_lag_samples(src, sim.offset_ns, ts, a.to_ndarray()))
                    if got["audio"] >= 6:
                        break
                # within one video frame (33 ms = 266 samples); in fact within a millisecond
                assert max(abs(lag) for lag in lags) <= 8, lags

            async def events():
                async for e in receive_eye_events_data(events_url):
                    got["events"].append(e)
                    if len(got["events"]) >= 2:
                        return

            await asyncio.wait_for(asyncio.gather(gaze(), video(), audio(), events()), 20)

    asyncio.run(main())
    types = sorted(e.event_type for e in got["events"])
    assert types == [1, 4]  # one fixation, one blink (the ToySource alternates them)
    fix = next(e for e in got["events"] if e.event_type == 1)
    j = round((fix.start_time_ns - sim.offset_ns - src.t0 - 200_000_000) / 1e9)
    assert fix.start_time_ns - sim.offset_ns == src.t0 + j * 1_000_000_000 + 200_000_000
    assert (fix.mean_gaze_x, fix.mean_gaze_y) == (100.0 + j, 50.0 + j)


def test_simple_client_matched_frames_audio_recording_events_and_time_echo(make_sim):
    from pupil_labs.realtime_api.simple import Device

    sim = make_sim(clock_offset_ms=250.0)
    src = sim.source
    device = Device("127.0.0.1", sim.port)
    try:
        assert device.phone_name == "Neon Simulator"
        assert device.battery_level_percent == sim.battery_level
        g = device.receive_gaze_datum(timeout_seconds=10)
        assert g is not None
        check_gaze(src, sim.offset_ns, g.timestamp_unix_ns, g.x, g.y)
        n_matched = 0
        for _ in range(10):
            m = device.receive_matched_scene_video_frame_and_gaze(timeout_seconds=10)
            assert m is not None
            check_frame(src, sim.offset_ns, m.frame.timestamp_unix_ns, m.frame.bgr_pixels[..., ::-1])
            check_gaze(src, sim.offset_ns, m.gaze.timestamp_unix_ns, m.gaze.x, m.gaze.y)
            # the client pairs a frame with the first gaze sample after it, or, when the gaze
            # stream has not caught up yet (a loaded machine), with the newest one it has: never
            # more than one gaze period (5 ms) after the frame, and only a stream lag before it
            # (well under the simulated 250 ms clock offset, which a wrong clock would show)
            lag_ns = m.gaze.timestamp_unix_ns - m.frame.timestamp_unix_ns
            assert -150_000_000 <= lag_ns <= 5_000_000 + 1000
            n_matched += 1
        assert n_matched == 10
        a = device.receive_audio_frame(timeout_seconds=10)
        assert a is not None and a.av_frame.sample_rate == 8000

        rec_id = device.recording_start()
        assert sim.recording["id"] == rec_id
        ev = device.send_event("gazeqwen.query", event_timestamp_unix_ns=sim.now_device_ns())
        assert sim.events[-1]["name"] == "gazeqwen.query"
        assert sim.events[-1]["recording_id"] == rec_id
        assert ev.timestamp == sim.events[-1]["timestamp"]
        device.recording_stop_and_save()
        assert sim.recording["action"] == "STOP"

        est = device.estimate_time_offset(number_of_measurements=20)
        assert est is not None
        # client offset = client clock - phone clock; the simulated phone runs 250 ms ahead
        assert est.time_offset_ms.median == pytest.approx(-250, abs=3)
    finally:
        device.close()
