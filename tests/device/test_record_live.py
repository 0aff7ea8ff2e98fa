"""`gazeqwen-edge record neon://...` against our Neon simulator (the official client underneath): the session on disk
holds the gaze the simulated glasses sent, exactly (float32 on the wire, times within 1 us), on their clock."""

from __future__ import annotations

import numpy as np
import pytest

from gazeqwen_edge.cli import main
from gazeqwen_edge.device import Fixation, GazeSample, SceneFrame, SyntheticScene, open_source


@pytest.mark.slow
def test_record_live_neon_from_simulator(tmp_path, capsys):
    pytest.importorskip("pupil_labs.realtime_api")
    from gazeqwen_edge.device.simulator import NeonSimulator

    scene = SyntheticScene(seed=8, duration_s=30.0, width=160, height=120)
    sim = NeonSimulator(scene, timestamps="source").start()
    try:
        out = tmp_path / "live"
        rc = main(["record", f"neon://127.0.0.1:{sim.port}", str(out), "--duration", "2"])
        assert rc == 0, capsys.readouterr().err
        offset = sim.offset_ns
    finally:
        sim.stop()
    s = open_source(out)
    gaze = [r for r in s.records({GazeSample})]
    assert 300 <= len(gaze) <= 450  # ~2 s at 200 Hz
    ts, x, y = scene.gaze_arrays()
    got = np.array([g.ts_ns for g in gaze]) - offset
    idx = np.searchsorted(ts, got - 100_000)  # the sample sent for each one received (RTP time: < 1 us off)
    assert np.abs(ts[idx] - got).max() < 1000
    np.testing.assert_allclose([g.x for g in gaze], x[idx].astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose([g.y for g in gaze], y[idx].astype(np.float32), rtol=1e-6)
    frames = list(s.records({SceneFrame}))
    assert len(frames) >= 40 and frames[0].rgb.shape == (120, 160, 3)
    assert s.manifest["source"].startswith("neon://") and s.closed
    assert all(isinstance(f, Fixation) for f in s.fixations)
