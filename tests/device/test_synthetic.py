"""SyntheticScene: determinism, realistic scanpath statistics, ground truth consistent with the rendered frames."""

from __future__ import annotations

import numpy as np
import pytest

from gazeqwen_edge.device import Fixation, GazeSample, SceneFrame, SyntheticScene, open_source
from gazeqwen_edge.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def scene() -> SyntheticScene:
    return SyntheticScene(seed=0, duration_s=20.0, width=320, height=240)


def test_same_seed_same_arrays_other_seed_differs():
    a = SyntheticScene(seed=5, duration_s=2.0, width=160, height=120)
    b = SyntheticScene(seed=5, duration_s=2.0, width=160, height=120)
    c = SyntheticScene(seed=6, duration_s=2.0, width=160, height=120)
    for x, y in zip(a.gaze_arrays(), b.gaze_arrays(), strict=True):
        np.testing.assert_array_equal(x, y)
    fa = [r.rgb for r in a.records({SceneFrame})]
    fb = [b.frame(k).rgb for k in range(b.n_frames)]
    assert len(fa) == 60
    assert all(np.array_equal(p, q) for p, q in zip(fa, fb, strict=True))
    assert a.fixations == b.fixations and a.looked_at == b.looked_at
    assert not np.array_equal(a.gaze_arrays()[1], c.gaze_arrays()[1])


def test_streams_rates_order_and_times(scene):
    recs = list(scene.records())
    ts = [r.ts_ns for r in recs]
    assert ts == sorted(ts)
    gaze = [r for r in recs if isinstance(r, GazeSample)]
    frames = [r for r in recs if isinstance(r, SceneFrame)]
    fix = [r for r in recs if isinstance(r, Fixation)]
    assert len(gaze) == 20 * 200 and len(frames) == 20 * 30
    assert np.allclose(np.diff([g.ts_ns for g in gaze]), 5_000_000, atol=1)
    assert frames[0].rgb.shape == (240, 320, 3) and frames[0].rgb.dtype == np.uint8
    assert fix == scene.fixations
    assert scene.start_ns == gaze[0].ts_ns and scene.end_ns == scene.start_ns + 20 * 10**9
    assert scene.scene_size == (320, 240)


def test_kinds_filter(scene):
    kinds = {type(r) for r in scene.records({GazeSample})}
    assert kinds == {GazeSample}


def test_fixations_realistic(scene):
    d = np.array([f.duration_ns for f in scene.fixations]) / 1e6
    assert d.min() >= 150 - 1e-6 and d.max() <= 600 + 1e-6
    assert 200 < np.median(d) < 400
    # fixations do not overlap and are separated by saccades
    for a, b in zip(scene.fixations, scene.fixations[1:], strict=False):
        assert b.start_ns > a.end_ns
    # within a fixation the gaze stays close (drift+tremor), across a saccade it jumps
    ts, x, y = scene.gaze_arrays()
    deg = scene.px_per_deg
    spreads = []
    for f in scene.fixations:
        m = (ts >= f.start_ns) & (ts <= f.end_ns)
        spreads.append(np.hypot(x[m] - f.x, y[m] - f.y).max() / deg)
    # objects move on screen with the camera, so fixations on them follow; still within a few degrees
    assert np.median(spreads) < 3.0
    # peak velocity in saccades well above fixation velocity
    v = np.hypot(np.diff(x), np.diff(y)) / deg * 200
    assert np.percentile(v, 99) > 100 and np.median(v) < 30


def test_mostly_looks_at_objects_and_truth_matches_frames(scene):
    named = [t for t in scene.fixation_targets if t is not None]
    assert len(named) / len(scene.fixation_targets) > 0.6
    assert {n for _, _, n in scene.looked_at} <= {o.name for o in scene.objects}
    # the looked-at object really is drawn under the fixation centre: its colour dominates a small patch there
    colours = {o.name: np.array(o.rgb) for o in scene.objects}
    checked = ok = 0
    for f, name in zip(scene.true_fixations, scene.fixation_targets, strict=True):
        if name is None:
            continue
        mid = (f.start_ns + f.end_ns) // 2
        k = int(np.argmin(np.abs(scene.frame_ts_ns - mid)))
        img = scene.frame(k).rgb.astype(int)
        bx0, by0, bx1, by1, vis = scene.object_boxes(int(scene.frame_ts_ns[k]))[name]
        assert vis
        cx, cy = int((bx0 + bx1) / 2), int((by0 + by1) / 2)
        r = int((bx1 - bx0) / 2)
        patch = img[max(cy - r, 0) : cy + r, max(cx - r, 0) : cx + r].reshape(-1, 3)
        near = np.linalg.norm(patch - colours[name], axis=1) < 40
        checked += 1
        ok += near.mean() > 0.1
        if checked >= 25:
            break
    assert checked >= 10 and ok / checked > 0.9


def test_occlusion_by_hand_happens():
    s = SyntheticScene(seed=1, duration_s=20.0, width=160, height=120)
    assert len(s._hand) >= 2
    t0, t1 = s._hand[0][:2]
    mid = s.start_ns + int((t0 + t1) / 2 * 1e9)
    k = int(np.argmin(np.abs(s.frame_ts_ns - mid)))
    img = s.frame(k).rgb.reshape(-1, 3).astype(int)
    skin = np.linalg.norm(img - np.array([224, 172, 140]), axis=1) < 10
    assert skin.mean() > 0.01


def test_gaze_offset_shifts_reported_gaze_only():
    a = SyntheticScene(seed=2, duration_s=3.0, width=160, height=120)
    b = SyntheticScene(seed=2, duration_s=3.0, width=160, height=120, gaze_offset_px=(12.5, -4.0))
    assert a.gaze_offset == (0.0, 0.0) and b.gaze_offset == (0.0, 0.0)
    np.testing.assert_allclose(b.gaze_arrays()[1] - a.gaze_arrays()[1], 12.5)
    np.testing.assert_allclose(b.gaze_arrays()[2] - a.gaze_arrays()[2], -4.0)
    assert [f.x - 12.5 for f in b.fixations] == pytest.approx([f.x for f in a.fixations])
    assert b.true_fixations == a.true_fixations and b.looked_at == a.looked_at
    c = SyntheticScene(seed=2, duration_s=1.0, width=160, height=120, gaze_offset=(-12.5, 4.0))
    assert c.gaze_offset == (-12.5, 4.0)


def test_open_source_synthetic_specs():
    s = open_source("synthetic:7", duration_s=1.0, width=160, height=120)
    assert isinstance(s, SyntheticScene) and s.seed == 7
    assert open_source("synthetic", duration_s=1.0).seed == 0
    with pytest.raises(InputError, match="synthetic:SEED"):
        open_source("synthetic:abc")
    with pytest.raises(ConfigError):
        SyntheticScene(n_objects=0)


def test_open_source_unknown(tmp_path):
    with pytest.raises(InputError, match="does not exist") as e:
        open_source(str(tmp_path / "nope"))
    assert "synthetic" in str(e.value)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError, match="not a recording this tool recognises"):
        open_source(tmp_path)
    with pytest.raises(InputError, match="unknown source"):
        open_source("foo://bar")


def test_visible_intervals_agree_with_boxes_and_looked_at(scene):
    vi = scene.visible_intervals()
    assert set(vi) == {o.name for o in scene.objects}
    assert any(len(v) for v in vi.values())
    for name, runs in vi.items():
        for a, b in runs:
            assert a <= b
            assert scene.object_boxes(a)[name][4] and scene.object_boxes(b)[name][4]
            k = int(np.searchsorted(scene.frame_ts_ns, b))
            if k + 1 < scene.n_frames:  # the frame after a run: hidden or out of view
                assert not scene.object_boxes(int(scene.frame_ts_ns[k + 1]))[name][4]
    # everything looked at was visible around the fixation's middle frame
    for s, e, name in scene.looked_at:
        mid = (s + e) // 2
        k = int(np.argmin(np.abs(scene.frame_ts_ns - mid)))
        t = int(scene.frame_ts_ns[k])
        assert any(a <= t <= b for a, b in vi[name])


def _peak_mib_reading_first_seconds(duration_s: float, seconds: float = 2.0) -> float:
    import itertools
    import tracemalloc

    tracemalloc.start()
    try:
        s = SyntheticScene(seed=3, duration_s=duration_s, width=64, height=48)
        limit = s.start_ns + int(seconds * 1e9)
        for _ in itertools.takewhile(lambda r: r.ts_ns < limit, s.records()):
            pass
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_synthetic_scene_streams_without_building_everything_first():
    """`record synthetic:3 OUT --synthetic-duration 3600` must start at once: building an hour-long scene and reading
    its first 2 s takes no more memory than for a one-minute scene. Before: the whole scanpath (and per-sample
    visibility of every object) was built in the constructor, ~165 MB and 3 s for an hour."""
    short, hour = _peak_mib_reading_first_seconds(60.0), _peak_mib_reading_first_seconds(3600.0)
    assert hour < short + 2.0, (short, hour)


def test_synthetic_streamed_records_match_the_ground_truth():
    """Streaming keeps the ground truth: what records() delivers (in part or whole) equals fixations/gaze_arrays."""
    s = SyntheticScene(seed=9, duration_s=6.0, width=96, height=64, gaze_offset_px=(3.0, -2.0))
    part = [r for r in s.records({GazeSample, Fixation}) if r.ts_ns < s.start_ns + 3 * 10**9]
    full = list(s.records({GazeSample, Fixation}))
    ts, x, y = s.gaze_arrays()
    gaze = [r for r in full if isinstance(r, GazeSample)]
    assert [g.ts_ns for g in gaze] == ts.tolist() and [g.x for g in gaze] == x.tolist()
    assert [r for r in full if isinstance(r, Fixation)] == s.fixations
    assert part == full[: len(part)]
    assert [f.x + 3.0 for f in s.true_fixations] == pytest.approx([f.x for f in s.fixations])
