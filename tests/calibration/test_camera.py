"""Camera model: calibration.bin (checked against pupil_labs.neon_recording's own reading), other intrinsics sources,
undistortion round trip, frame undistortion, frame transforms (checked against real image resizes)."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from gazeqwen_edge.calibration.camera import (  # noqa: E402
    CALIBRATION_BIN_SIZE,
    CameraModel,
    FrameTransform,
    GazeMapper,
    intrinsics_from_realtime,
    parse_calibration_bin,
    read_calibration_bin,
    read_intrinsics,
    read_scene_camera_json,
)
from gazeqwen_edge.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def nr_calibration(neon_recording_dir):
    nr = pytest.importorskip("pupil_labs.neon_recording")
    rec = nr.open(neon_recording_dir)
    return rec.calibration


@pytest.fixture(scope="module")
def neon_camera(neon_recording_dir):
    return CameraModel.from_calibration_bin(neon_recording_dir / "calibration.bin")


def test_calibration_bin_matches_pupil_labs_reader(neon_recording_dir, nr_calibration):
    intr = read_calibration_bin(neon_recording_dir)  # the directory works too
    np.testing.assert_array_equal(intr.camera_matrix, nr_calibration.scene_camera_matrix)
    np.testing.assert_array_equal(intr.dist_coeffs, nr_calibration.scene_distortion_coefficients)
    np.testing.assert_array_equal(intr.extra["scene_extrinsics"], nr_calibration.scene_extrinsics_affine_matrix)
    np.testing.assert_array_equal(intr.extra["left_camera_matrix"], nr_calibration.left_camera_matrix)
    assert intr.extra["serial"] == nr_calibration.serial
    assert intr.extra["crc"] == int(nr_calibration.crc)
    data = (neon_recording_dir / "calibration.bin").read_bytes()
    assert len(data) == CALIBRATION_BIN_SIZE == 803
    assert zlib.crc32(data[:799]) == intr.extra["crc"]
    assert (intr.width, intr.height) == (1600, 1200)
    # the figures REFERENCE.md quotes for this recording (fx ~888.4, cx ~805.1, cy ~618.6)
    K = intr.camera_matrix
    print(f"\ncalibration.bin: fx {K[0, 0]:.2f} fy {K[1, 1]:.2f} cx {K[0, 2]:.2f} cy {K[1, 2]:.2f}, CRC ok")
    assert abs(K[0, 0] - 888.4) < 0.1 and abs(K[0, 2] - 805.1) < 0.1 and abs(K[1, 2] - 618.6) < 0.1


def test_corrupted_and_short_calibration_rejected(neon_recording_dir, tmp_path):
    data = bytearray((neon_recording_dir / "calibration.bin").read_bytes())
    data[100] ^= 0x01  # one flipped bit inside the scene camera matrix
    bad = tmp_path / "calibration.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError) as e:
        read_calibration_bin(bad)
    assert str(bad) in str(e.value) and "corrupted" in str(e.value) and "CRC32" in str(e.value)

    short = tmp_path / "short.bin"
    short.write_bytes(bytes(data[:400]))
    with pytest.raises(InputError, match="must be 803 bytes, this one has 400"):
        read_calibration_bin(short)
    with pytest.raises(InputError, match="not found"):
        read_calibration_bin(tmp_path / "missing.bin")


def test_realtime_calibration_record(neon_recording_dir, nr_calibration):
    """The realtime API's get_calibration() returns this same Calibration record class (built from the bytes)."""
    from pupil_labs.neon_recording.calib import Calibration

    raw = (neon_recording_dir / "calibration.bin").read_bytes()
    rt = Calibration.from_buffer(raw)
    a = intrinsics_from_realtime(rt)
    b = intrinsics_from_realtime(raw)
    c = intrinsics_from_realtime(
        {
            "scene_camera_matrix": rt.scene_camera_matrix,
            "scene_distortion_coefficients": rt.scene_distortion_coefficients,
        }
    )
    for x in (a, b, c):
        np.testing.assert_array_equal(x.camera_matrix, nr_calibration.scene_camera_matrix)
        np.testing.assert_array_equal(x.dist_coeffs, nr_calibration.scene_distortion_coefficients)
    with pytest.raises(InputError, match="scene_camera_matrix"):
        intrinsics_from_realtime({"something": 1})


def test_scene_camera_json(tmp_path, nr_calibration):
    doc = {
        "camera_matrix": np.asarray(nr_calibration.scene_camera_matrix).tolist(),
        "distortion_coefficients": [np.asarray(nr_calibration.scene_distortion_coefficients).tolist()],
        "serial_number": "578846",
    }
    p = tmp_path / "scene_camera.json"
    p.write_text(json.dumps(doc))
    intr = read_scene_camera_json(tmp_path)
    np.testing.assert_allclose(intr.camera_matrix, nr_calibration.scene_camera_matrix)
    np.testing.assert_allclose(intr.dist_coeffs, nr_calibration.scene_distortion_coefficients)
    via_dir = read_intrinsics(tmp_path)  # a Cloud export directory
    assert via_dir.extra["origin"] == str(p)
    np.testing.assert_array_equal(via_dir.camera_matrix, intr.camera_matrix)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no calibration.bin or scene_camera.json"):
        read_intrinsics(tmp_path / "empty")
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_scene_camera_json(p)
    p.write_text(json.dumps({"camera_matrix": [[1, 0], [0, 1]], "distortion_coefficients": [0] * 5}))
    with pytest.raises(InputError, match="scene_camera.json"):
        read_scene_camera_json(p)


def _reachable(cam: CameraModel, pts: np.ndarray) -> np.ndarray:
    """Points the distortion model can produce: within the furthest radius projected rays reach along their
    direction (the rational model folds back beyond ~66 deg off-axis, short of the extreme frame corners)."""
    c = np.array([cam.K[0, 2], cam.K[1, 2]])
    ok = np.zeros(len(pts), bool)
    s = np.linspace(0, 3.0, 3001)
    for i, p in enumerate(pts):
        d = p - c
        nd = np.linalg.norm(d)
        if nd < 1e-9:
            ok[i] = True
            continue
        dn = d / np.array([cam.K[0, 0], cam.K[1, 1]])
        proj = cam.from_normalized(np.outer(s, dn))
        r = (proj - c) @ (d / nd)
        ok[i] = nd <= r[: int(np.argmax(r)) + 1].max() - 1.0
    return ok


def test_undistort_distort_round_trip_over_the_frame(neon_camera):
    cam = neon_camera
    xs, ys = np.meshgrid(np.linspace(0, cam.width, 81), np.linspace(0, cam.height, 61))
    pts = np.stack([xs.ravel(), ys.ravel()], 1)
    ok = _reachable(cam, pts)
    back = cam.distort_points(cam.undistort_points(pts[ok]))
    err = np.linalg.norm(back - pts[ok], axis=1)
    print(
        f"\nround trip over {ok.sum()} of {len(pts)} grid points (the rest lie beyond the model's fold): "
        f"max {err.max():.2e} px"
    )
    assert ok.mean() > 0.99
    assert err.max() < 0.1, f"undistort->distort round trip max error {err.max():.4f} px"
    # OpenCV's default undistortPoints (P=K, 5 iterations) agrees where those suffice (the central region)
    central = np.all(np.abs(pts - [cam.K[0, 2], cam.K[1, 2]]) < [300, 250], axis=1)
    ref = cv2.undistortPoints(pts[central].reshape(-1, 1, 2), cam.K, cam.D, P=cam.K).reshape(-1, 2)
    np.testing.assert_allclose(cam.undistort_points(pts[central]), ref, atol=0.05)


def test_angles_and_field_of_view(neon_camera):
    cam = neon_camera
    hfov, vfov = cam.field_of_view_deg()
    assert abs(hfov - 103) < 2 and abs(vfov - 77) < 2  # the Neon scene camera's published FOV
    # a distortion-free camera: the FOV of its focal length, exactly
    pin = CameraModel.pinhole(640, 480, hfov_deg=90.0)
    expected_v = 2 * np.degrees(np.arctan(240 / pin.K[1, 1]))
    np.testing.assert_allclose(pin.field_of_view_deg(), (90.0, expected_v), rtol=1e-9)
    # small angles: px per degree near the centre ~ fx * tan(1 deg)
    assert abs(cam.px_per_degree() - cam.K[0, 0] * np.tan(np.radians(1))) < 0.2


def test_undistort_frame_moves_a_dot_where_undistort_points_says(neon_camera):
    cam = neon_camera.scaled_to(800, 600)  # frames at half resolution
    p = np.array([[120.0, 90.0]])  # far from the centre: strong distortion
    img = np.zeros((600, 800, 3), np.uint8)
    cv2.circle(img, (120, 90), 3, (255, 255, 255), -1)
    und = cam.undistort_frame(img)
    ys, xs = np.nonzero(und[:, :, 0] > 100)
    found = np.array([xs.mean(), ys.mean()])
    expected = cam.undistort_points(p)[0]
    assert np.linalg.norm(found - expected) < 1.5, (found, expected)
    assert np.linalg.norm(expected - p[0]) > 10  # the test is not trivial


@pytest.mark.parametrize("kind", ["identity", "resize", "center_crop", "letterbox"])
def test_frame_transform_matches_an_actual_resize(kind):
    w, h, ow, oh = 640, 480, 224, 224
    ft = getattr(FrameTransform, kind)(w, h, *((ow, oh) if kind != "identity" else ()))
    img = np.zeros((h, w), np.uint8)
    pt = (401, 173)
    cv2.circle(img, pt, 6, 255, -1)
    # do the preprocessing with OpenCV exactly as the transform describes it
    x0, y0, cw, ch = ft.crop_box
    crop = img[int(round(y0)) : int(round(y0 + ch)), int(round(x0)) : int(round(x0 + cw))]
    left, top, right, bottom = ft.pad
    content = cv2.resize(crop, (round(ft.content_size[0]), round(ft.content_size[1])), interpolation=cv2.INTER_AREA)
    out = cv2.copyMakeBorder(content, round(top), round(bottom), round(left), round(right), cv2.BORDER_CONSTANT, 0)
    assert out.shape == (ft.out_height, ft.out_width)
    ys, xs = np.nonzero(out > 60)
    found = np.array([(xs.mean() + 0.5) / ft.out_width, (ys.mean() + 0.5) / ft.out_height])
    uv = ft.to_normalized([pt[0] + 0.5, pt[1] + 0.5])[0]  # the dot's centre in continuous px
    assert np.abs(found - uv).max() < 1.5 / min(ft.out_width, ft.out_height)
    np.testing.assert_allclose(ft.from_normalized(ft.to_normalized([pt]))[0], pt, atol=1e-9)


def test_frame_transform_inside_and_centre():
    ft = FrameTransform.center_crop(1600, 1200, 448, 448)
    np.testing.assert_allclose(ft.to_normalized([800, 600])[0], [0.5, 0.5])
    uv = ft.to_normalized([[100, 600], [300, 600], [1500, 1100]])
    assert ft.inside(uv).tolist() == [False, True, False]  # the first/last lie in the cropped-away sides
    lb = FrameTransform.letterbox(1600, 1200, 448, 448)
    assert lb.inside(lb.to_normalized([[0, 0], [1600, 1200]])).all()
    assert not lb.inside([[0.5, 0.05]]).any()  # in the top padding


def test_gaze_mapper_round_trip(neon_camera):
    ft = FrameTransform.center_crop(1600, 1200, 448, 448)
    m = GazeMapper(neon_camera, ft, offset=(27.2, 6.6), undistort=True)
    raw = np.array([[700.0, 500.0], [1000.0, 800.0], [500.0, 700.0]])
    uv = m.to_model(raw)
    np.testing.assert_allclose(m.to_display(uv), raw + [27.2, 6.6], atol=1e-3)
    # undistorted display coordinates = the undistorted offset-corrected points
    np.testing.assert_allclose(
        m.to_display(uv, distorted=False), neon_camera.undistort_points(raw + [27.2, 6.6]), atol=1e-6
    )
    # the default maps to the frames the model package feeds Qwen and V-JEPA: raw (distorted) frames resized whole,
    # so a gaze pixel lands at pixel / frame size whatever the lens distortion (which is strong at these points)
    default = GazeMapper(neon_camera, FrameTransform.identity(1600, 1200), offset=(27.2, 6.6))
    np.testing.assert_allclose(default.to_model(raw), (raw + [27.2, 6.6]) / [1600, 1200], atol=1e-12)
    assert np.abs(m.to_model(raw) - GazeMapper(neon_camera, ft, offset=(27.2, 6.6)).to_model(raw)).max() > 1e-3
    # no camera -> offset + transform only
    m2 = GazeMapper(None, FrameTransform.identity(1600, 1200))
    np.testing.assert_allclose(m2.to_model([[800, 300]]), [[0.5, 0.25]])


def test_parse_calibration_bin_rejects_nonsense_matrix(neon_recording_dir):
    data = bytearray((neon_recording_dir / "calibration.bin").read_bytes())
    # zero fx, with a valid CRC: the content check still refuses it
    arr = np.frombuffer(bytes(data), dtype=np.uint8).copy()
    arr[7:15] = 0
    body = arr.tobytes()[:799]
    fixed = body + zlib.crc32(body).to_bytes(4, "little")
    with pytest.raises(InputError, match="not a valid intrinsics matrix"):
        parse_calibration_bin(fixed, "x.bin")


def test_calibration_over_the_realtime_api_from_the_simulator(neon_recording_dir):
    """`Device.get_calibration()` of the official client against our simulator replaying the real recording returns
    its calibration.bin (CRC checked again on our side); an unreachable device is a DeviceError."""
    pytest.importorskip("pupil_labs.realtime_api")
    from gazeqwen_edge.calibration.camera import intrinsics_from_device
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.simulator import NeonSimulator
    from gazeqwen_edge.errors import DeviceError

    ref = read_calibration_bin(neon_recording_dir)
    with NeonSimulator(open_source(neon_recording_dir)) as sim:
        got = intrinsics_from_device("127.0.0.1", sim.port)
    np.testing.assert_array_equal(got.camera_matrix, ref.camera_matrix)
    np.testing.assert_array_equal(got.dist_coeffs, ref.dist_coeffs)
    assert got.extra["crc"] == ref.extra["crc"] and (got.width, got.height) == (1600, 1200)
    with pytest.raises(DeviceError, match="could not read the camera calibration"):
        intrinsics_from_device("127.0.0.1", 9, timeout_s=2)
