"""Wearer offset: sign convention, robust estimation (known offsets injected into synthetic gaze), the per-wearer store,
ArUco targets, and the calibration routine against sources (synthetic scenes and the Neon simulator)."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

pytest.importorskip("cv2")

from gazeqwen_edge.calibration.camera import CameraModel  # noqa: E402
from gazeqwen_edge.calibration.fixation import detect_fixations  # noqa: E402
from gazeqwen_edge.calibration.offset import (  # noqa: E402
    ArucoTarget,
    OffsetStore,
    apply_offset,
    calibrate_offset,
    default_store_path,
    estimate_offset,
    parse_target,
    resolve_offset,
)
from gazeqwen_edge.calibration.target_scene import TargetScene  # noqa: E402
from gazeqwen_edge.errors import ConfigError, DeviceError, InputError  # noqa: E402


def test_native_recording_raw_gaze_plus_offset_is_the_stored_gaze(neon_recording_dir):
    """Our convention (offset ADDED to raw gaze) reproduces the gaze the Companion app stored."""
    nr = pytest.importorskip("pupil_labs.neon_recording")
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.records import GazeSample

    src = open_source(neon_recording_dir)
    raw = np.array([[g.x, g.y] for g in src.records({GazeSample})])
    stored = nr.open(neon_recording_dir).gaze.point
    off, origin = resolve_offset(src)
    assert origin == "recorded with the source" and off == tuple(nr.open(neon_recording_dir).info["gaze_offset"])
    np.testing.assert_allclose(apply_offset(raw, off), stored, atol=1e-3)


def test_estimate_recovers_injected_offset_in_synthetic_scene():
    """SyntheticScene adds a known offset to the reported gaze; our detector's fixations + the true fixation centres
    as targets recover the correction (-offset) within 2 px."""
    from gazeqwen_edge.device.synthetic import SyntheticScene

    for seed, inj in ((0, (12.0, -7.0)), (1, (-20.0, 9.5))):
        s = SyntheticScene(seed=seed, duration_s=8, gaze_offset_px=inj)
        cam = CameraModel(s.intrinsics)
        ts, x, y = s.gaze_arrays()
        fixes = detect_fixations(ts, x, y, cam)
        targets, centres, w = [], [], []
        for f in fixes:  # the true fixation overlapping ours is where the wearer really looked
            over = [t for t in s.true_fixations if min(t.end_ns, f.end_ns) - max(t.start_ns, f.start_ns) > 0]
            if over:
                targets.append((over[0].x, over[0].y))
                centres.append((f.x, f.y))
                w.append(f.duration_ns)
        est = estimate_offset(centres, targets, cam, weights=w)
        err = np.hypot(est.dx + inj[0], est.dy + inj[1])
        print(f"\nseed {seed}: injected {inj}, estimated correction ({est.dx:+.2f}, {est.dy:+.2f}), error {err:.2f} px")
        assert err < 2.0, est
        assert est.residual_after_deg < est.residual_before_deg


def test_estimate_rejects_glances_away():
    rng = np.random.default_rng(0)
    cam = CameraModel.pinhole(1600, 1200)
    target = np.array([800.0, 600.0])
    true_corr = np.array([-15.0, 10.0])
    on = target - true_corr + rng.normal(0, 2.0, (8, 2))  # fixations on the target (raw gaze is off by -corr)
    away = target + rng.uniform(-150, 150, (5, 2))  # glances elsewhere, 2-10 deg away
    f = np.concatenate([on, away])
    est = estimate_offset(f, target, cam)
    assert est.n_used == 8 and list(est.inliers) == [True] * 8 + [False] * 5
    assert np.hypot(*(np.array(est.offset) - true_corr)) < 2.0
    naive = (target - f).mean(0)  # what a plain mean would say
    assert np.hypot(*(naive - true_corr)) > 5.0
    with pytest.raises(InputError, match="within 12 deg"):
        estimate_offset([[0, 0]], target, cam)


def test_store_round_trip_atomic_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GAZEQWEN_EDGE_HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / "wearer_offsets.json"
    st = OffsetStore()
    assert st.load() == {} and st.get("dom") is None
    st.set("dom", (12.5, -3.0), residual_deg=0.3, n_fixations=4, source="synthetic")
    st.set("ann", (-1.0, 2.0))
    assert OffsetStore().get("dom").offset == (12.5, -3.0)
    assert OffsetStore().names() == ["ann", "dom"]
    doc = json.loads(st.path.read_text())
    assert doc["version"] == 1 and doc["wearers"]["dom"]["residual_deg"] == 0.3
    assert sorted(os.listdir(st.path.parent)) == ["wearer_offsets.json"]  # no temp files left behind
    assert st.remove("ann") and not st.remove("ann")
    off, origin = resolve_offset(None, "dom")
    assert off == (12.5, -3.0) and "dom" in origin
    st.path.write_text("{broken")
    with pytest.raises(InputError, match="not readable JSON"):
        st.load()
    with pytest.raises(ConfigError):
        OffsetStore(tmp_path / "x.json").set(" ", (0, 0))


@pytest.mark.parametrize("name", ["a\x1b[2Jb", "a\x9bb", "two\nlines", " dom", "x" * 101])
def test_a_wearer_name_a_terminal_would_act_on_is_refused(tmp_path, name):
    """Before: a name with an escape sequence (or a C1 CSI, a line break) was stored and later printed by
    `calibrate show` and the runtime's notices as it was."""
    st = OffsetStore(tmp_path / "x.json")
    with pytest.raises(ConfigError, match="printable characters"):
        st.set(name, (1.0, 2.0))
    assert not st.path.exists()
    st.set("Zoë O'Brien-2", (1.0, 2.0))  # names people have still pass
    assert st.names() == ["Zoë O'Brien-2"]
    with pytest.raises(ConfigError, match="printable characters"):  # looked up (run/replay --wearer) the same way
        st.require(name)


def test_a_store_path_that_is_a_directory_says_so(tmp_path):
    """Before: 'not readable JSON ([Errno 21] Is a directory)', hint 'fix or delete it' (a directory)."""
    with pytest.raises(InputError, match="is a directory, not a wearer offset store") as e:
        OffsetStore(tmp_path).load()
    assert "--store" in e.value.hint


@pytest.mark.parametrize(
    "err, kind", [(errno.ENOSPC, DeviceError), (errno.EROFS, DeviceError), (errno.EACCES, InputError)]
)
def test_a_store_the_disk_refuses_is_a_device_error_and_a_bad_path_an_input_error(tmp_path, monkeypatch, err, kind):
    """Before: a full or read-only disk under the store was exit 2 ('cannot write ...') with a --help hint, like a
    typo; a disk that refuses writes is a device error (exit 3) with what to do about it."""
    import gazeqwen_edge.calibration.offset as offset_module

    st = OffsetStore(tmp_path / "x.json")
    st.set("dom", (1.0, 2.0))
    before = st.path.read_bytes()

    def refused(*a, **kw):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(offset_module.json, "dump", refused)  # the write into the temporary file fails
    with pytest.raises(kind, match=f"cannot write the wearer offset store.*{os.strerror(err)}") as e:
        st.set("ann", (3.0, 4.0))
    assert (kind is InputError) or ("free space" in e.value.hint or "read-only" in e.value.hint)
    assert st.path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["x.json"]


def test_parse_target():
    assert parse_target("center", (640, 480)) == (320.0, 240.0)
    assert parse_target("100,50", (640, 480)) == (100.0, 50.0)
    assert isinstance(parse_target("aruco:3", None), ArucoTarget)
    for bad in ("middle", "1,2,3", "900,10", "aruco:x"):
        with pytest.raises(ConfigError):
            parse_target(bad, (640, 480))


def test_aruco_marker_found_where_drawn():
    s = TargetScene(target="aruco", marker_id=7, seed=3)
    t = s.start_ns + 1_000_000_000
    found = ArucoTarget(marker_id=7).detect(s.render(t))
    truth = s.target_at(t)[0]
    assert found is not None and np.hypot(*(np.array(found) - truth)) < 1.5
    assert ArucoTarget(marker_id=8).detect(s.render(t)) is None  # another id is not our target


@pytest.mark.parametrize("target", ["center", "aruco"])
def test_calibration_routine_on_a_target_scene(target):
    inj = (12.0, -8.0)
    src = TargetScene(seed=0, offset_px=inj, target=target)
    calls = []
    run = calibrate_offset(src, target, seconds=5, progress=lambda f, n: calls.append(f))
    e = run.estimate
    assert np.hypot(e.dx + inj[0], e.dy + inj[1]) < 2.0, e
    assert e.residual_after_deg < 0.3 < e.residual_before_deg
    assert calls and calls[-1] == 1.0 and run.n_samples == 1001
    if target == "aruco":
        assert run.marker_seen == run.n_frames > 100


def test_routine_reports_what_went_wrong():
    src = TargetScene(seed=0, target="center")  # no marker in view
    with pytest.raises(InputError, match="ArUco marker"):
        calibrate_offset(src, "aruco", seconds=2)
