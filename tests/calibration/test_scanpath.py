"""Scanpath rows for the resampler: normalisation through the camera + frame transform, bounded history, and
"what was known at time t" reconstructed afterwards equal to what was seen live."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from gazeqwen_edge.calibration.camera import CameraModel, FrameTransform, GazeMapper  # noqa: E402
from gazeqwen_edge.calibration.scanpath import OnlineScanpath, ScanpathBuilder  # noqa: E402
from gazeqwen_edge.device.records import Fixation, GazeSample  # noqa: E402

from .test_fixation import T0, make_gaze  # noqa: E402


def test_rows_are_normalised_and_timed():
    cam = CameraModel.pinhole(1600, 1200)  # no distortion: undistortion is the identity
    b = ScanpathBuilder(GazeMapper(cam, FrameTransform.identity(1600, 1200), offset=(10, -20)), origin_ns=T0)
    b.add(Fixation(T0 + 1_000_000_000, T0 + 1_300_000_000, 390.0, 320.0))
    rows = b.rows()
    assert rows.dtype == np.float32 and rows.shape == (1, 4)
    np.testing.assert_allclose(rows[0], [400 / 1600, 300 / 1200, 1.15, 0.3], rtol=1e-6)


def test_rows_go_through_undistortion_and_crop(neon_recording_dir):
    cam = CameraModel.from_calibration_bin(neon_recording_dir)
    ft = FrameTransform.center_crop(1600, 1200, 448, 448)
    m = GazeMapper(cam, ft, undistort=True)  # for a model fed undistorted frames
    b = ScanpathBuilder(m)
    b.add(Fixation(0, 100_000_000, 300.0, 200.0))
    expected = ft.to_normalized(cam.undistort_points([[300.0, 200.0]]))[0]
    np.testing.assert_allclose(b.rows()[0, :2], expected, rtol=1e-6)
    assert np.abs(expected - ft.to_normalized([[300.0, 200.0]])[0]).max() > 0.005  # undistortion mattered


def test_bounded_history():
    cam = CameraModel.pinhole(640, 480)
    b = ScanpathBuilder(GazeMapper(cam), max_fixations=3)
    for i in range(10):
        b.add(Fixation(i * 10**9, i * 10**9 + 10**8, 100.0, 100.0))
    assert len(b) == 3 and b.fixations[0].fixation.start_ns == 7 * 10**9
    b2 = ScanpathBuilder(GazeMapper(cam), max_age_s=2.5)
    for i in range(10):
        b2.add(Fixation(i * 10**9, i * 10**9 + 10**8, 100.0, 100.0))
    assert [k.fixation.start_ns // 10**9 for k in b2.fixations] == [7, 8, 9]


def test_known_at_t_afterwards_equals_what_was_seen_live():
    cam = CameraModel.pinhole(1600, 1200)
    ppd = cam.px_per_degree()
    plan = [(0.3, 800, 600), (0.4, 800 + 12 * ppd, 600), (0.3, 800, 600 + 9 * ppd), (0.35, 500, 500)]
    ts, x, y, truth = make_gaze(plan, cam)
    sp = OnlineScanpath(GazeMapper(cam), origin_ns=T0)
    live = {}
    for i in range(len(ts)):
        sp.push_record(GazeSample(int(ts[i]), float(x[i]), float(y[i])))
        if i % 7 == 0 and i < len(ts) - 1:  # (at the last sample, flush() completes the final fixation)
            live[int(ts[i])] = sp.rows_at()
    sp.flush()
    assert len(sp.builder) == len(plan)
    n_ongoing = 0
    for t, rows_live in live.items():
        later = sp.rows_at(t)
        assert len(later) == len(rows_live), (t, rows_live, later)
        if len(rows_live):
            # completed fixations identical; the ongoing one: same place, end known up to the detector delay
            np.testing.assert_allclose(later[:-1], rows_live[:-1])
            np.testing.assert_allclose(later[-1, :2], rows_live[-1, :2], atol=0.01)
            end_live = rows_live[-1, 2] + rows_live[-1, 3] / 2
            end_later = later[-1, 2] + later[-1, 3] / 2
            # (live, a fixation waiting out a gap that may be a micro-saccade shows its end at the gap's start)
            assert abs(end_live - end_later) <= sp.detector.params.microsaccade_max_ms / 1e3 + 0.006
            n_ongoing += int(rows_live[-1, 2] + rows_live[-1, 3] / 2 > (t - T0) / 1e9 - 0.05)
    assert n_ongoing > 10  # the comparison did include fixations in progress
    # the resampler's rule: a row is active at frame time t if mid - dur/2 <= t <= mid + dur/2
    rows = sp.rows_at()
    for r, f in zip(rows, truth, strict=True):
        assert r[2] - r[3] / 2 <= (f.start_ns - T0) / 1e9 + 0.03 and r[2] + r[3] / 2 >= (f.end_ns - T0) / 1e9 - 0.03


def test_online_scanpath_without_intrinsics_measures_speed_in_its_own_frame():
    """No camera model (e.g. a StreamGaze video): the detector's degrees come from a nominal camera of the gaze's own
    frame size, not of the Neon's 1600x1200 (which would make every speed 2.5x too slow at 640x480)."""
    from gazeqwen_edge.calibration.fixation import detect_fixations

    cam = CameraModel.pinhole(640, 480)
    ppd = cam.px_per_degree()
    plan = [(0.3, 200, 240), (0.3, 200 + 6 * ppd, 240), (0.3, 200 + 12 * ppd, 240)]  # 6-degree saccades
    ts, x, y, truth = make_gaze(plan, cam, sacc_s=0.03)
    sp = OnlineScanpath(GazeMapper(None, FrameTransform.identity(640, 480)), origin_ns=T0)
    for i in range(len(ts)):
        sp.push_record(GazeSample(int(ts[i]), float(x[i]), float(y[i])))
    sp.flush()
    assert [k.fixation for k in sp.builder.fixations] == detect_fixations(ts, x, y, cam)
    assert len(sp.builder) == len(truth)


def test_scanpath_rows_units_clock_and_refusals():
    """The one conversion: centre through the mapper, mid_t in s after the origin (exact for unix-ns clocks), dur in s."""
    from gazeqwen_edge.calibration.scanpath import scanpath_rows
    from gazeqwen_edge.errors import InputError

    t0 = 1_767_225_600_123_456_789  # unix ns: float64 alone would lose the last ~256 ns
    m = GazeMapper(None, FrameTransform.identity(320, 240), offset=(10.0, -20.0))
    fx = [
        Fixation(t0 + 1_000_000_000, t0 + 1_250_000_001, 150.0, 140.0),
        Fixation(t0 + 2_000_000_000, t0 + 2_100_000_000, 0.0, 0.0),
    ]
    rows = scanpath_rows(fx, m, origin_ns=t0)
    assert rows.dtype == np.float32 and rows.shape == (2, 4)
    np.testing.assert_allclose(rows[0], [160 / 320, 120 / 240, 1.1250000005, 0.250000001], rtol=1e-7)
    np.testing.assert_allclose(rows[1], [10 / 320, -20 / 240, 2.05, 0.1], rtol=1e-6)
    assert scanpath_rows([], m, t0).shape == (0, 4)
    for bad in (Fixation(t0 + 5, t0, 1.0, 1.0), Fixation(t0, t0 + 5, float("nan"), 1.0)):
        with pytest.raises(InputError, match="no device reports"):
            scanpath_rows([bad], m, t0)


def test_builder_rows_are_scanpath_rows():
    from gazeqwen_edge.calibration.scanpath import scanpath_rows

    cam = CameraModel.pinhole(640, 480)
    m = GazeMapper(cam, FrameTransform.center_crop(640, 480, 224, 224), offset=(3.0, 4.0))
    fx = [Fixation(T0 + i * 400_000_000, T0 + i * 400_000_000 + 250_000_000, 100.0 + 30 * i, 200.0) for i in range(5)]
    b = ScanpathBuilder(m, origin_ns=T0)
    b.extend(fx)
    np.testing.assert_array_equal(b.rows(), scanpath_rows(fx, m, T0))


def test_rows_until_is_what_is_known_now_about_the_fixations_up_to_a_time():
    """Hindsight rows for a question asked at t and answered later: fixations begun before t, the one in progress at
    t cut at t, nothing begun at or after t; a reported fixation is not doubled by the detector's ongoing view."""
    m = GazeMapper(None, FrameTransform.identity(100, 100))
    b = ScanpathBuilder(m, origin_ns=0)
    s = 1_000_000_000
    b.add(Fixation(0, s, 10.0, 10.0))
    b.add(Fixation(int(1.2 * s), 2 * s, 50.0, 50.0))  # in progress at 1.5 s, reported at its end (2 s)
    b.add(Fixation(int(1.5 * s), int(1.6 * s), 90.0, 90.0))  # begun at the question: not in it
    rows = b.rows_until(int(1.5 * s))
    np.testing.assert_allclose(rows, [[0.1, 0.1, 0.5, 1.0], [0.5, 0.5, 1.35, 0.3]], rtol=1e-6)
    np.testing.assert_allclose(b.rows_until(3 * s, since_ns=int(1.1 * s))[:, 0], [0.5, 0.9])
    # the detector's ongoing fixation, not yet reported, joins cut at t; one already reported is not added twice
    ongoing = Fixation(int(2.5 * s), int(2.9 * s), 30.0, 70.0)
    rows = b.rows_until(int(2.7 * s), ongoing=ongoing)
    np.testing.assert_allclose(rows[-1], [0.3, 0.7, 2.6, 0.2], rtol=1e-6)
    assert len(b.rows_until(int(1.5 * s), ongoing=Fixation(int(1.2 * s), int(1.4 * s), 50.0, 50.0))) == 2


def test_a_fixation_begun_just_before_t_is_known_once_the_gaze_has_run_settle_ns_past_t():
    """A question asked 20 ms into a fixation: at its time the detector cannot know the fixation (it reports one only
    past the minimum duration, after its smoothing delay); `settle_ns` later, `rows_until(t)` holds it, from its
    start (within the detector's resolution) to t."""
    cam = CameraModel.pinhole(1600, 1200)
    ppd = cam.px_per_degree()
    plan = [(0.3, 800, 600), (0.4, 800 + 12 * ppd, 600), (0.3, 500, 500)]
    ts, x, y, truth = make_gaze(plan, cam)
    sp = OnlineScanpath(GazeMapper(cam), origin_ns=T0)
    t_q = truth[1].start_ns + 20_000_000
    i = 0
    while ts[i] <= t_q:
        sp.push_record(GazeSample(int(ts[i]), float(x[i]), float(y[i])))
        i += 1
    at_t = sp.rows_at()
    assert len(at_t) == 1 and at_t[-1, 0] < 0.6  # only the first fixation is known at the question
    assert 0.08 <= sp.settle_ns / 1e9 <= 0.15
    while ts[i] <= t_q + sp.settle_ns:
        sp.push_record(GazeSample(int(ts[i]), float(x[i]), float(y[i])))
        i += 1
    rows = sp.rows_until(t_q)
    assert len(rows) == 2
    start, end = rows[-1, 2] - rows[-1, 3] / 2, rows[-1, 2] + rows[-1, 3] / 2
    np.testing.assert_allclose(rows[-1, :2], [(800 + 12 * ppd) / 1600, 0.5], atol=0.01)
    assert abs(start - (truth[1].start_ns - T0) / 1e9) <= 0.015 and end == pytest.approx((t_q - T0) / 1e9, abs=1e-6)
