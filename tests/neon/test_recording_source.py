"""The simulator serving a real Neon recording (the Pupil Labs demo recording in ../shared, gaze only): the unmodified
client and our live source receive its gaze with the recording's own timestamps and values, and its calibration."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gazeqwen_edge.device.records import Fixation, GazeSample


def test_demo_recording_served_with_original_timestamps(neon_recording_dir, make_sim):
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.neon import NeonLiveSource

    rec = open_source(neon_recording_dir)
    ref = [r for r in rec.records() if isinstance(r, GazeSample)]
    ref_ts = np.array([g.ts_ns for g in ref])
    ref_xy = np.array([(g.x, g.y) for g in ref])
    sim = make_sim(open_source(neon_recording_dir), timestamps="source", audio="off")
    with NeonLiveSource("127.0.0.1", sim.port) as neon:
        st = neon.status()
        assert st.sensors == {
            "gaze": True,
            "world": False,
            "audio": False,
            "eye_events": True,
        }  # the demo recording has no scene video
        got, fix = [], []
        end = time.monotonic() + 8
        while time.monotonic() < end and len(got) < 300:
            r = neon.get(0.1)
            if isinstance(r, GazeSample):
                got.append(r)
            elif isinstance(r, Fixation):
                fix.append(r)
        calib = neon.calibration()
    assert len(got) >= 300
    for g in got:
        i = int(np.argmin(np.abs(ref_ts - g.ts_ns)))
        assert abs(int(ref_ts[i]) - g.ts_ns) < 20_000  # the recording's own clock, to RTP resolution
        assert np.allclose((g.x, g.y), ref_xy[i], atol=1e-3)
    raw = (neon_recording_dir / "calibration.bin").read_bytes()
    assert calib.serial == raw[1:7].decode()
    assert np.allclose(calib.scene_camera_matrix, rec.intrinsics.camera_matrix)
    rec.close()
    if not fix:
        pytest.skip("no fixation ended in the first seconds of the recording")
