"""Head-motion compensation from the IMU (calibration/imu.py): the rotational flow formula against a rotating pinhole
camera, the documented IMU-to-scene-camera rotation, the causal IMU input, and the fixation detector with the IMU on
simulated head rotation (gyro and gaze from the same simulated head) and in the streaming paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("scipy")

from scipy.spatial.transform import Rotation  # noqa: E402

from gazeqwen_edge.calibration.camera import CameraModel, FrameTransform, GazeMapper  # noqa: E402
from gazeqwen_edge.calibration.evaluate import match_fixations  # noqa: E402
from gazeqwen_edge.calibration.fixation import OnlineFixationDetector, detect_fixations  # noqa: E402
from gazeqwen_edge.calibration.imu import (  # noqa: E402
    ImuHeadMotion,
    imu_to_camera_rotation,
    rotational_flow,
)
from gazeqwen_edge.calibration.scanpath import OnlineScanpath  # noqa: E402
from gazeqwen_edge.calibration.synthetic_gaze import synthetic_gaze  # noqa: E402
from gazeqwen_edge.device.records import GazeSample, ImuSample, SceneFrame  # noqa: E402

T0 = 1_700_000_000_000_000_000


def _project(points_cam: np.ndarray) -> np.ndarray:
    return points_cam[:, :2] / points_cam[:, 2:3]


def test_rotational_flow_matches_a_rotating_pinhole_camera():
    """Fixed 3-D points seen by a camera turning at w (its own frame): their normalised image position before and
    after a small rotation (central difference) moves as the formula says, wherever they are and whatever w."""
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-3, 3, (200, 2)), rng.uniform(1.5, 8, 200)]  # in front, up to ~63 deg off-axis
    for w in (np.array([0.0, 0.8, 0.0]), np.array([-0.5, 0.0, 0.0]), np.array([0.0, 0.0, 1.2]), rng.normal(0, 1, 3)):
        h = 1e-5
        # the camera's axes turn by R(w t): a fixed point's camera coordinates are R(w t)^T P
        before = _project(Rotation.from_rotvec(w * h).apply(pts))  # t = -h: R(-w h)^T P = R(w h) P
        after = _project(Rotation.from_rotvec(w * h).apply(pts, inverse=True))  # t = +h
        measured = (after - before) / (2 * h)
        np.testing.assert_allclose(rotational_flow(_project(pts), w), measured, rtol=1e-6, atol=1e-8)


def test_imu_to_camera_rotation_is_the_documented_one():
    """Pupil Labs: IMU x right, y forward, z up; the scene camera (x right, y down, z forward) is rotated 102 deg
    about x from it: its optical axis is the IMU's forward tilted 12 deg down, the IMU's up is the camera's -y."""
    R = imu_to_camera_rotation()
    assert np.linalg.det(R) == pytest.approx(1.0) and np.allclose(R @ R.T, np.eye(3))
    np.testing.assert_allclose(R @ [1, 0, 0], [1, 0, 0], atol=1e-12)
    optical_axis_in_imu = R.T @ [0, 0, 1]
    assert math.degrees(math.atan2(-optical_axis_in_imu[2], optical_axis_in_imu[1])) == pytest.approx(12.0)
    np.testing.assert_allclose(R @ [0, 0, 1], [0, -math.cos(math.radians(12)), -math.sin(math.radians(12))])


def test_head_turns_move_the_scene_the_right_way():
    """Right-handed gyro in the IMU frame: turning the head left (+z, up) moves the scene right in the image at the
    centre, nodding down (-x) moves it up; at ~15.5 px/deg, 30 deg/s is ~460 px/s."""
    cam = CameraModel.pinhole(1600, 1200, hfov_deg=2 * math.degrees(math.atan(800 / 888.0)))  # fx = 888
    head = ImuHeadMotion(cam)
    head.push(ImuSample(T0, (0.0, 0.0, 30.0)))
    vx, vy = head.flow_px_s(T0, 0.0, 0.0)
    assert vx == pytest.approx(888 * math.radians(30) * math.cos(math.radians(12)), rel=1e-6) and abs(vy) < 1e-9
    head = ImuHeadMotion(cam)
    head.push(ImuSample(T0, (-30.0, 0.0, 0.0)))
    vx, vy = head.flow_px_s(T0, 0.0, 0.0)
    assert vy == pytest.approx(-888 * math.radians(30), rel=1e-6) and abs(vx) < 1e-9


def test_flow_in_px_goes_through_the_lens_distortion(neon_recording_dir):
    """At the gaze point, in distorted px of the real Neon camera: the gyro-predicted flow equals the motion of the
    projected (distorted) image of a fixed world point while the head turns (central difference)."""
    cam = CameraModel.from_calibration_bin(neon_recording_dir)
    R = imu_to_camera_rotation()
    gyro = (25.0, -40.0, 15.0)  # deg/s, IMU frame
    w = R @ np.radians(gyro)
    head = ImuHeadMotion(cam)
    head.push(ImuSample(T0, gyro))
    for px in ([800.0, 600.0], [200.0, 150.0], [1450.0, 1050.0]):
        n = cam.to_normalized([px])[0]
        ray = np.r_[n, 1.0]
        h = 1e-5
        a = cam.from_normalized(_project(Rotation.from_rotvec(w * h).apply([ray])))[0]
        b = cam.from_normalized(_project(Rotation.from_rotvec(w * h).apply([ray], inverse=True)))[0]
        np.testing.assert_allclose(head.flow_px_s(T0, *n), (b - a) / (2 * h), rtol=2e-3)
    assert np.hypot(*head.flow_px_s(T0, *cam.to_normalized([[200.0, 150.0]])[0])) > 400  # it is a real motion


def test_imu_input_is_causal_interpolated_and_bounded_in_time():
    cam = CameraModel.pinhole(1600, 1200)
    R = imu_to_camera_rotation()
    head = ImuHeadMotion(cam)
    assert head.angular_velocity(T0) is None  # nothing known yet
    head.push(ImuSample(T0, (10.0, 0.0, 0.0)))
    head.push(ImuSample(T0 + 10_000_000, (20.0, 0.0, 0.0)))
    wx = lambda w: math.degrees(w[0])  # noqa: E731  (R keeps the x axis)
    assert wx(head.angular_velocity(T0 + 15_000_000)) == pytest.approx(20.0)  # the newest held: no future samples
    head.push(ImuSample(T0 + 20_000_000, (40.0, 0.0, 0.0)))
    assert wx(head.angular_velocity(T0 + 15_000_000)) == pytest.approx(30.0)  # now interpolated
    assert wx(head.angular_velocity(T0 - 30_000_000)) == pytest.approx(10.0)  # just before the first: the first
    assert head.angular_velocity(T0 - 60_000_000) is None  # beyond MAX_IMU_GAP_MS: unknown
    assert wx(head.angular_velocity(T0 + 69_000_000)) == pytest.approx(40.0)
    assert head.angular_velocity(T0 + 71_000_000) is None
    head.push(ImuSample(T0 + 20_000_000, (99.0, 0.0, 0.0)))  # not newer: dropped
    assert head.n_dropped == 1 and head.n_samples == 3
    np.testing.assert_allclose(head.angular_velocity(T0), R @ np.radians([10.0, 0, 0]))


def _records(g, imu) -> list:
    """Gaze and IMU records of a simulated wearer merged by time, as a source delivers them."""
    recs = [GazeSample(int(t), float(a), float(b)) for t, a, b in zip(g.ts_ns, g.x, g.y, strict=True)] + list(imu)
    return sorted(recs, key=lambda r: (r.ts_ns, isinstance(r, GazeSample)))


def _run(g, imu, **kw) -> OnlineFixationDetector:
    det = OnlineFixationDetector(g.camera, **kw)
    det.fixations = [f for r in _records(g, imu) for f in det.push_record(r)] + det.flush()
    return det


@pytest.fixture(scope="module")
def head_rotation():
    """Two simulated wearers turning their heads a lot (RMS 40 deg/s yaw/pitch, 20 deg/s roll; the real recording's
    gyro: median 19, p90 45 deg/s), with the simulated gyro of the same heads."""
    return [synthetic_gaze(seed, 20, noise_deg=0.1, head_speed_deg_s=40.0, head_roll_deg_s=20.0) for seed in (0, 1)]


def _residual_speed(g, det) -> float:
    """Median compensated gaze speed (px/s) inside the true fixations, away from their ends."""
    tr = np.array(det.trace)
    inside = np.zeros(len(tr), bool)
    for f in g.fixations:
        inside |= (tr[:, 0] >= f.start_ns + 40e6) & (tr[:, 0] < f.end_ns - 40e6)
    return float(np.median(tr[inside, 3]))


def test_detector_with_imu_beats_the_detector_without_on_simulated_head_rotation(head_rotation):
    """Without compensation the gaze moving with the scene during VOR fixations looks like saccades (fixations
    split); with the gyro the predicted flow is subtracted: onset F1 within 50 ms of the truth rises, and the
    compensated speed inside fixations falls to a fraction."""
    for g in head_rotation:
        imu = g.imu_samples()
        without, with_imu = _run(g, [], trace=True), _run(g, imu, trace=True)
        a = match_fixations(without.fixations, g.fixations, 50)[0]
        b = match_fixations(with_imu.fixations, g.fixations, 50)[0]
        msg = f"without IMU {a.summary()}\n  with IMU {b.summary()}"
        assert b.f1 >= 0.85 and b.f1 >= a.f1 + 0.1, msg
        assert _residual_speed(g, with_imu) < 0.3 * _residual_speed(g, without)


def test_the_documented_imu_to_camera_rotation_compensates_best(head_rotation):
    """The simulated gyro reads the head through the documented rotation; the detector told another one (no 102
    deg, its sign flipped, no or the opposite 12 deg tilt) leaves more of the head motion in the gaze speed."""
    g = head_rotation[0]
    imu = g.imu_samples()
    res = {
        angle: _residual_speed(g, _run(g, imu, imu_to_camera=imu_to_camera_rotation(angle), trace=True))
        for angle in (102.0, -102.0, 90.0, 78.0)
    }
    res["identity"] = _residual_speed(g, _run(g, imu, imu_to_camera=np.eye(3), trace=True))
    best = res.pop(102.0)
    assert all(best < r for r in res.values()), (best, res)
    assert best < 0.5 * res[-102.0] and best < 0.5 * res["identity"], (best, res)


def test_streaming_with_imu_equals_batch_and_online_scanpath_uses_imu(head_rotation):
    """Sample by sample through OnlineScanpath.push_record (gaze and IMU records merged by time, as a source delivers
    them) gives exactly the batch result with the IMU interleaved (before: ImuSample records were ignored there)."""
    g = head_rotation[1]
    imu = g.imu_samples()
    batch = detect_fixations(g.ts_ns, g.x, g.y, g.camera, imu=imu)
    assert batch != detect_fixations(g.ts_ns, g.x, g.y, g.camera)  # the IMU matters here
    sp = OnlineScanpath(GazeMapper(g.camera, FrameTransform.identity(1600, 1200)), origin_ns=int(g.ts_ns[0]))
    live = [f for r in _records(g, imu) for f in sp.push_record(r)] + sp.flush()
    assert live == batch and sp.detector.imu.n_samples == len(imu)


def test_video_flow_wins_where_it_is_known_and_the_imu_fills_in():
    """Scene frames panning at 500 px/s and a gyro saying something else: while frame pairs are fresh the video flow
    is subtracted; after the frames stop (older than the flow's frame-gap limit) the IMU's flow is."""
    import cv2

    w, h = 1600, 1200
    cam = CameraModel.pinhole(w, h)
    rng = np.random.default_rng(2)
    world = cv2.GaussianBlur(rng.uniform(0, 255, (h // 4, w // 2)).astype(np.uint8), (0, 0), 2)
    world = cv2.resize(np.repeat(world[:, :, None], 3, axis=2), (2 * w, h))
    det = OnlineFixationDetector(cam, trace=True)
    gyro = (0.0, 0.0, 20.0)  # head turning left: the IMU says the scene moves right (~+220 px/s at fx 636)
    k_imu = 0
    for k in range(80):  # 400 ms of frames, then 400 ms without
        t = k * 0.01
        if k < 40 and k % 3 == 0:
            f = k // 3
            x0 = int(500 * f / 30)
            det.push_frame(SceneFrame(T0 + int(f / 30 * 1e9), np.ascontiguousarray(world[:, x0 : x0 + w]), f))
        while k_imu * 0.009 <= t:
            det.push_imu(ImuSample(T0 + int(k_imu * 9e6), gyro))
            k_imu += 1
        det.push(T0 + int(t * 1e9), 800.0, 600.0)
        det.push(T0 + int((t + 0.005) * 1e9), 800.0, 600.0)
    det.flush()
    tr = np.array(det.trace)
    t_rel = (tr[:, 0] - T0) / 1e9
    video = tr[(t_rel > 0.1) & (t_rel < 0.33), 5]
    imu_only = tr[t_rel > 0.65, 5]
    assert np.allclose(video, -500, rtol=0.05), video  # the scene content moves left (x0 grows)
    expected = det.imu.flow_px_s(T0 + int(0.7e9), *cam.to_normalized([[800.0, 600.0]])[0])[0]
    assert expected > 150 and np.allclose(imu_only, expected, rtol=1e-3), imu_only


def test_simulated_gyro_and_gaze_come_from_the_same_head_rotation():
    """Without measurement noise, drift, micro-saccades, blinks or gyro errors, the gaze inside fixations moves only
    by the VOR counter-rotation: the flow predicted from the simulated gyro removes ~90% of its speed (what is left:
    the 110 Hz gyro sampling a head rate that changes every 5 ms, against 55 ms of gaze smoothing)."""
    g = synthetic_gaze(
        2, 10, noise_deg=0.0, head_speed_deg_s=40.0, head_roll_deg_s=20.0, microsaccade_hz=0.0, blink_hz=0.0,
        pso=False, gyro_noise_deg_s=0.0, gyro_bias_deg_s=0.0, drift_deg_sqrt_s=0.0,
    )  # fmt: skip
    without, with_imu = (
        _residual_speed(g, _run(g, [], trace=True)),
        _residual_speed(g, _run(g, g.imu_samples(), trace=True)),
    )
    assert without > 500 and with_imu < 0.15 * without, (without, with_imu)


def test_simulated_gyro_has_its_own_random_stream():
    """The gaze (and truth) of a seed do not depend on the IMU settings; the gyro has the documented rate."""
    a = synthetic_gaze(4, 5, head_speed_deg_s=10.0)
    b = synthetic_gaze(4, 5, head_speed_deg_s=10.0, imu_hz=50.0, gyro_noise_deg_s=0.0, gyro_bias_deg_s=0.0)
    assert np.array_equal(a.x, b.x) and a.fixations == b.fixations
    assert len(a.imu_ts_ns) == pytest.approx(550, abs=2) and len(b.imu_ts_ns) == pytest.approx(250, abs=2)
    assert np.all(np.diff(a.imu_ts_ns) > 0) and a.gyro_deg_s.shape == (len(a.imu_ts_ns), 3)
