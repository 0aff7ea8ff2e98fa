"""Scene camera model: reading the intrinsics (calibration.bin, the realtime API, a Cloud export), undistorting gaze
points and frames, angles in degrees, and the mapping from scene px to the normalised coordinates of the frame the
model actually sees (`FrameTransform`) and back.

Conventions: pixel coordinates are continuous, (0, 0) the top-left corner of the image, x right, y down; "distorted"
px are what the camera records (and what the Neon reports gaze in); "undistorted" px are the ideal pinhole image with
the same camera matrix (OpenCV `undistortPoints(..., P=K)`); "normalised camera" coordinates are (x/z, y/z) of the
ray; "normalised frame" coordinates are [0, 1] over the frame the model is fed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from gazeqwen_edge.device import calibration_bin
from gazeqwen_edge.device.records import CameraIntrinsics
from gazeqwen_edge.errors import ConfigError, InputError

NEON_SCENE_SIZE = (1600, 1200)  # (width, height) of the Neon scene camera
MAX_IMAGE_SIDE_PX = 8192  # larger than any head-mounted scene camera; a bigger "size" is a broken file

# calibration.bin's format (layout, size, CRC32) is owned by the device layer (device/calibration_bin.py)
CALIBRATION_BIN_SIZE = calibration_bin.CALIBRATION_BIN_SIZE  # 803


def _check_camera(path: str | PathLike | None, K: np.ndarray, D: np.ndarray, what: str) -> None:
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise InputError(path, f"{what}: camera matrix is not a finite 3x3 matrix (shape {K.shape})")
    if not (K[0, 0] > 0 and K[1, 1] > 0 and abs(K[2, 2] - 1.0) < 1e-6 and K[2, 0] == 0 and K[2, 1] == 0):
        raise InputError(path, f"{what}: camera matrix is not a valid intrinsics matrix: {K.tolist()}")
    if D.ndim != 1 or D.size not in (4, 5, 8, 12, 14) or not np.all(np.isfinite(D)):
        raise InputError(path, f"{what}: distortion coefficients must be 4, 5, 8, 12 or 14 finite numbers, got {D}")


def parse_calibration_bin(data: bytes, path: str | PathLike | None = None, size: tuple[int, int] = NEON_SCENE_SIZE):
    """Parse the bytes of a Neon calibration.bin into scene-camera `CameraIntrinsics` (CRC32 checked).

    `extra` carries `serial`, `version`, `crc`, `scene_extrinsics` (4x4) and the eye cameras' matrices.
    """
    rec = calibration_bin.parse_calibration_record(data, path)  # size and CRC32 checked there
    K = np.array(rec["scene_camera_matrix"], dtype=np.float64)
    D = np.array(rec["scene_distortion_coefficients"], dtype=np.float64)
    _check_camera(path, K, D, "calibration.bin scene camera")
    extra = {
        "serial": calibration_bin.serial_text(rec),
        "version": int(rec["version"]),
        "crc": int(rec["crc"]),
        "scene_extrinsics": np.array(rec["scene_extrinsics_affine_matrix"], dtype=np.float64),
        "right_camera_matrix": np.array(rec["right_camera_matrix"], dtype=np.float64),
        "right_distortion_coefficients": np.array(rec["right_distortion_coefficients"], dtype=np.float64),
        "left_camera_matrix": np.array(rec["left_camera_matrix"], dtype=np.float64),
        "left_distortion_coefficients": np.array(rec["left_distortion_coefficients"], dtype=np.float64),
        "origin": "calibration.bin" if path is None else str(path),
    }
    return CameraIntrinsics(camera_matrix=K, dist_coeffs=D, width=size[0], height=size[1], extra=extra)


def read_calibration_bin(path: str | PathLike, size: tuple[int, int] = NEON_SCENE_SIZE) -> CameraIntrinsics:
    """Read a Neon recording's calibration.bin (a file, or a recording directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "calibration.bin"
    if not p.is_file():
        raise InputError(p, "calibration file not found", hint="a Neon recording directory has a calibration.bin")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read calibration file ({e.strerror or e})") from e
    return parse_calibration_bin(data, p, size)


def intrinsics_from_realtime(calibration: Any, size: tuple[int, int] = NEON_SCENE_SIZE) -> CameraIntrinsics:
    """Intrinsics from the realtime API's calibration (`Device.get_calibration()`: a
    `pupil_labs.neon_recording.calib.Calibration` record), or from raw calibration bytes, or from any structure with
    `scene_camera_matrix` and `scene_distortion_coefficients` (mapping, numpy record or object attributes)."""
    if isinstance(calibration, bytes | bytearray | memoryview):
        return parse_calibration_bin(bytes(calibration), "device calibration", size)

    def get(name: str):
        try:
            return calibration[name]
        except (KeyError, IndexError, TypeError, ValueError):
            pass
        if hasattr(calibration, name):
            return getattr(calibration, name)
        raise InputError(None, f"device calibration has no '{name}' field (got {type(calibration).__name__})")

    K = np.array(get("scene_camera_matrix"), dtype=np.float64).reshape(3, 3)
    D = np.array(get("scene_distortion_coefficients"), dtype=np.float64).reshape(-1)
    _check_camera(None, K, D, "device calibration")
    extra: dict[str, Any] = {"origin": "realtime api"}
    for key in ("serial", "version", "crc"):
        try:
            v = get(key)
        except InputError:
            continue
        extra[key] = v.decode("ascii", "replace") if isinstance(v, bytes) else v
    return CameraIntrinsics(camera_matrix=K, dist_coeffs=D, width=size[0], height=size[1], extra=extra)


def _guess_size(K: np.ndarray) -> tuple[int, int]:
    """The image size a camera matrix belongs to: the Neon's 1600x1200 when the principal point lies near its
    centre, else twice the principal point (e.g. a simulator serving a smaller synthetic scene)."""
    w, h = NEON_SCENE_SIZE
    if 0.35 * w < K[0, 2] < 0.65 * w and 0.35 * h < K[1, 2] < 0.65 * h:
        return NEON_SCENE_SIZE
    return int(round(2 * K[0, 2])), int(round(2 * K[1, 2]))


def intrinsics_from_device(
    address: str, port: int = 8080, timeout_s: float = 5.0, size: tuple[int, int] | None = None
) -> CameraIntrinsics:
    """Fetch the scene camera calibration from a Neon Companion device (or the simulator) over the realtime API
    (`Device.get_calibration()`, the same 803-byte record as calibration.bin, CRC checked). `size` defaults to the
    Neon's 1600x1200 (or, for a matrix that cannot belong to it, twice the principal point)."""
    import asyncio

    from gazeqwen_edge.errors import DeviceError, require

    rt = require("pupil_labs.realtime_api.device", "device", "reading the device's calibration")

    async def fetch():
        async with rt.Device(address, port) as dev:
            return await dev.get_calibration()

    try:
        cal = asyncio.run(asyncio.wait_for(fetch(), timeout_s))
    except Exception as e:  # noqa: BLE001 - network / HTTP / decoding: all mean "could not get it"
        raise DeviceError(
            f"could not read the camera calibration from {address}:{port} ({type(e).__name__}: {e})"
        ) from e
    src = getattr(cal, "source", None)
    raw = src.tobytes() if src is not None and hasattr(src, "tobytes") else b""
    if len(raw) == CALIBRATION_BIN_SIZE:  # the record's own bytes: check them like a file (CRC included)
        intr = parse_calibration_bin(raw, f"{address}:{port} calibration")
    else:
        intr = intrinsics_from_realtime(cal)
    w, h = size or _guess_size(intr.camera_matrix)
    intr = CameraIntrinsics(intr.camera_matrix, intr.dist_coeffs, w, h, intr.extra)
    intr.extra["origin"] = f"device {address}:{port}"
    return intr


def _json_size(path: Path, doc: dict) -> tuple[int, int] | None:
    """The image size a scene_camera.json states: `width` / `height` (what our session recorder writes, and the Cloud
    export reader reads), else the `scene_camera` width / height of an info.json beside it (our sessions); None when
    neither says (Pupil Cloud's own scene_camera.json has only the matrix and the distortion coefficients)."""
    if "width" in doc or "height" in doc:
        w, h = doc.get("width"), doc.get("height")
        where = path
    else:
        info = path.parent / "info.json"
        try:
            sc = json.loads(info.read_text(encoding="utf-8")).get("scene_camera") if info.is_file() else None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            sc = None
        if not isinstance(sc, dict) or "width" not in sc:
            return None
        w, h, where = sc.get("width"), sc.get("height"), info
    if not (isinstance(w, int) and isinstance(h, int)) or isinstance(w, bool) or isinstance(h, bool):
        raise InputError(where, f"image width / height must be whole numbers of px, got {w!r} x {h!r}")
    return w, h


def read_scene_camera_json(path: str | PathLike, size: tuple[int, int] | None = None) -> CameraIntrinsics:
    """Read a scene_camera.json (`camera_matrix` 3x3, `distortion_coefficients` or `dist_coefs` [[...]]), as a Pupil
    Cloud export or one of our recorded sessions holds it.

    The image size is `size` when given, else what the file (or our session's info.json beside it) states, else
    inferred from the principal point (`_guess_size`: the Neon's 1600x1200 when it lies near that image's centre);
    an inferred size is flagged with `extra["size_assumed"] = True`. Raises InputError for a missing or malformed
    file and for an intrinsics matrix that cannot belong to the image size (`CameraModel` checks that)."""
    p = Path(path)
    if p.is_dir():
        p = p / "scene_camera.json"
    if not p.is_file():
        raise InputError(p, "scene camera file not found", hint="a Pupil Cloud export has a scene_camera.json")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(p, f"not valid JSON ({e})") from e
    if not isinstance(doc, dict):
        raise InputError(p, "expected a JSON object with camera_matrix and distortion_coefficients")
    k_key = next((k for k in ("camera_matrix", "cameraMatrix", "K") if k in doc), None)
    d_key = next((k for k in ("distortion_coefficients", "dist_coefs", "distCoeffs", "D") if k in doc), None)
    if k_key is None or d_key is None:
        raise InputError(p, f"missing camera_matrix or distortion_coefficients (keys: {sorted(doc)})")
    try:
        K = np.array(doc[k_key], dtype=np.float64).reshape(3, 3)
        D = np.array(doc[d_key], dtype=np.float64).reshape(-1)
    except (ValueError, TypeError) as e:
        raise InputError(
            p, f"camera_matrix / distortion_coefficients are not numeric arrays of the right size ({e})"
        ) from e
    _check_camera(p, K, D, "scene_camera.json")
    extra: dict[str, Any] = {"origin": str(p)}
    for key in ("serial_number", "scene_camera_serial_number", "version"):
        if key in doc:
            extra[key] = doc[key]
    if size is None:
        size = _json_size(p, doc)
    if size is None:
        size = _guess_size(K)
        extra["size_assumed"] = True
    return CameraIntrinsics(camera_matrix=K, dist_coeffs=D, width=size[0], height=size[1], extra=extra)


def read_intrinsics(path: str | PathLike, size: tuple[int, int] | None = None) -> CameraIntrinsics:
    """Scene camera intrinsics from a calibration.bin (CRC checked; the Neon's 1600x1200 unless `size`), a
    scene_camera.json (its own image size: `read_scene_camera_json`), or a directory holding either (a Neon
    recording, a Cloud export, one of our sessions)."""
    p = Path(path)
    if p.is_dir():
        found = [p / n for n in ("calibration.bin", "scene_camera.json") if (p / n).is_file()]
        if not found:
            raise InputError(p, "no calibration.bin or scene_camera.json in this directory")
        p = found[0]
    if p.suffix.lower() == ".json":
        return read_scene_camera_json(p, size)
    return read_calibration_bin(p, size or NEON_SCENE_SIZE)


def pinhole_intrinsics(width: int, height: int, hfov_deg: float = 103.0) -> CameraIntrinsics:
    """An ideal distortion-free camera of the given size and horizontal field of view (synthetic scenes, tests)."""
    f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)
    return CameraIntrinsics(camera_matrix=K, dist_coeffs=np.zeros(8), width=width, height=height, extra={})


def _as_points(xy) -> np.ndarray:
    a = np.asarray(xy, dtype=np.float64)
    if a.ndim == 1:
        a = a.reshape(1, 2)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"expected points shaped (N, 2), got {a.shape}")
    return a


class CameraModel:
    """Pinhole + OpenCV rational distortion model of the scene camera (wraps `CameraIntrinsics`).

    Raises InputError (naming `intrinsics.extra["origin"]`) for an image size no camera has (not 1..MAX_IMAGE_SIDE_PX
    px a side) or a principal point outside the central half of the image: a lens's optical axis sits near the
    sensor's centre (the Neon's: 0.50, 0.52 of 1600x1200), so such a matrix belongs to another image size."""

    def __init__(self, intrinsics: CameraIntrinsics, undistort_iterations: int = 40):
        self.intrinsics = intrinsics
        self.K = np.asarray(intrinsics.camera_matrix, dtype=np.float64).reshape(3, 3)
        self.D = np.asarray(intrinsics.dist_coeffs, dtype=np.float64).reshape(-1)
        self.width = int(intrinsics.width)
        self.height = int(intrinsics.height)
        origin = intrinsics.extra.get("origin") if isinstance(intrinsics.extra, dict) else None
        if not (0 < self.width <= MAX_IMAGE_SIDE_PX and 0 < self.height <= MAX_IMAGE_SIDE_PX):
            raise InputError(
                origin, f"image size {self.width}x{self.height} px: no scene camera has that (1..{MAX_IMAGE_SIDE_PX})"
            )
        cx, cy = self.K[0, 2] / self.width, self.K[1, 2] / self.height
        if not (0.25 <= cx <= 0.75 and 0.25 <= cy <= 0.75):
            raise InputError(
                origin,
                f"principal point ({self.K[0, 2]:.1f}, {self.K[1, 2]:.1f}) px lies at ({cx:.2f}, {cy:.2f}) of the "
                f"{self.width}x{self.height} image, far from its centre: the camera matrix belongs to another image "
                "size",
                hint="give the image size the calibration was made for (scene_camera.json: width, height)",
            )
        self._criteria = (3, undistort_iterations, 1e-12)  # cv2.TERM_CRITERIA_COUNT | EPS
        self._maps: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._has_distortion = bool(np.any(self.D != 0))

    # constructors -------------------------------------------------------------------------------------------------
    @classmethod
    def from_calibration_bin(cls, path: str | PathLike) -> CameraModel:
        return cls(read_calibration_bin(path))

    @classmethod
    def pinhole(cls, width: int, height: int, hfov_deg: float = 103.0) -> CameraModel:
        return cls(pinhole_intrinsics(width, height, hfov_deg))

    def scaled_to(self, width: int, height: int) -> CameraModel:
        """The same camera for frames delivered at another resolution (e.g. 800x600 from a 1600x1200 sensor)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, :] *= sx
        K[1, :] *= sy
        K[2, :] = (0, 0, 1)
        return CameraModel(CameraIntrinsics(K, self.D.copy(), int(width), int(height), dict(self.intrinsics.extra)))

    # points -------------------------------------------------------------------------------------------------------
    def to_normalized(self, xy) -> np.ndarray:
        """Distorted px -> normalised camera coordinates (x/z, y/z) of the viewing ray, shape (N, 2)."""
        import cv2

        pts = _as_points(xy)
        if not self._has_distortion:
            return np.stack([(pts[:, 0] - self.K[0, 2]) / self.K[0, 0], (pts[:, 1] - self.K[1, 2]) / self.K[1, 1]], 1)
        out = cv2.undistortPoints(pts.reshape(-1, 1, 2), self.K, self.D, criteria=self._criteria)
        return self._refine(out.reshape(-1, 2).astype(np.float64), pts)

    def _refine(self, n: np.ndarray, pts: np.ndarray, tol_px: float = 1e-4, steps: int = 6) -> np.ndarray:
        """Newton steps on project(n) = pts where OpenCV's fixed-point iteration has not converged (it is slow near
        the frame corners); a step is kept only where it lowers the error. Points beyond the model's fold (the
        extreme corners, > ~66 deg off-axis for the Neon) keep the best estimate found."""
        err = self.from_normalized(n) - pts
        bad = np.linalg.norm(err, axis=1) > tol_px
        e = 1e-7
        for _ in range(steps):
            if not bad.any():
                break
            nb, fb = n[bad], err[bad]
            jx = (self.from_normalized(nb + [e, 0]) - pts[bad] - fb) / e
            jy = (self.from_normalized(nb + [0, e]) - pts[bad] - fb) / e
            J = np.stack([jx, jy], axis=2)
            det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
            ok = np.abs(det) > 1e-12
            step = np.zeros_like(nb)
            step[ok] = np.linalg.solve(J[ok], fb[ok][..., None])[..., 0]
            cand = nb - step
            cerr = self.from_normalized(cand) - pts[bad]
            better = np.linalg.norm(cerr, axis=1) < np.linalg.norm(fb, axis=1)
            idx = np.flatnonzero(bad)[better]
            n[idx], err[idx] = cand[better], cerr[better]
            bad[np.flatnonzero(bad)[~better]] = False  # no progress: leave it
            bad &= np.linalg.norm(err, axis=1) > tol_px
        return n

    def from_normalized(self, xn) -> np.ndarray:
        """Normalised camera coordinates -> distorted px (projects the rays through the distortion model)."""
        import cv2

        n = _as_points(xn)
        if not self._has_distortion:
            return np.stack([n[:, 0] * self.K[0, 0] + self.K[0, 2], n[:, 1] * self.K[1, 1] + self.K[1, 2]], 1)
        obj = np.concatenate([n, np.ones((len(n), 1))], axis=1).reshape(-1, 1, 3)
        out, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), self.K, self.D)
        return out.reshape(-1, 2).astype(np.float64)

    def undistort_points(self, xy) -> np.ndarray:
        """Distorted px -> undistorted px of the same camera matrix (cv2.undistortPoints with P=K)."""
        n = self.to_normalized(xy)
        return np.stack([n[:, 0] * self.K[0, 0] + self.K[0, 2], n[:, 1] * self.K[1, 1] + self.K[1, 2]], 1)

    def distort_points(self, xy_undistorted) -> np.ndarray:
        """Undistorted px -> distorted px (inverse of `undistort_points`)."""
        u = _as_points(xy_undistorted)
        n = np.stack([(u[:, 0] - self.K[0, 2]) / self.K[0, 0], (u[:, 1] - self.K[1, 2]) / self.K[1, 1]], 1)
        return self.from_normalized(n)

    def rays(self, xy) -> np.ndarray:
        """Distorted px -> unit viewing rays, shape (N, 3)."""
        n = self.to_normalized(xy)
        r = np.concatenate([n, np.ones((len(n), 1))], axis=1)
        return r / np.linalg.norm(r, axis=1, keepdims=True)

    def angle_deg(self, a, b) -> np.ndarray:
        """Angle in degrees between the viewing rays through distorted px `a` and `b` (broadcast over N points)."""
        ra, rb = self.rays(a), self.rays(b)
        chord = np.linalg.norm(ra - rb, axis=1)
        return np.degrees(2 * np.arcsin(np.clip(chord / 2, 0, 1)))

    def field_of_view_deg(self) -> tuple[float, float]:
        """(horizontal, vertical) field of view in degrees, edge to edge through the principal point."""
        cx, cy = self.K[0, 2], self.K[1, 2]
        h = self.angle_deg([0, cy], [self.width, cy])[0]
        v = self.angle_deg([cx, 0], [cx, self.height])[0]
        return float(h), float(v)

    def px_per_degree(self, xy=None) -> float:
        """Local scale (px per degree) at a point (default: the principal point), mean of the x and y directions."""
        c = np.array([[self.K[0, 2], self.K[1, 2]]]) if xy is None else _as_points(xy)[:1]
        d = 2.0
        a = self.angle_deg(np.concatenate([c - [d, 0], c - [0, d]]), np.concatenate([c + [d, 0], c + [0, d]]))
        return float(2 * d / a.mean())

    # frames -------------------------------------------------------------------------------------------------------
    def undistort_frame(self, image: np.ndarray, interpolation: int | None = None) -> np.ndarray:
        """Undistort a whole frame (same size and camera matrix as the input; maps cached per size)."""
        import cv2

        h, w = image.shape[:2]
        cam = self.scaled_to(w, h)
        key = (w, h)
        if key not in self._maps:
            self._maps[key] = cv2.initUndistortRectifyMap(cam.K, cam.D, None, cam.K, (w, h), cv2.CV_32FC1)
        mx, my = self._maps[key]
        return cv2.remap(image, mx, my, cv2.INTER_LINEAR if interpolation is None else interpolation)

    def __repr__(self) -> str:
        return (
            f"CameraModel({self.width}x{self.height}, fx={self.K[0, 0]:.1f}, fy={self.K[1, 1]:.1f}, "
            f"cx={self.K[0, 2]:.1f}, cy={self.K[1, 2]:.1f}, {np.count_nonzero(self.D)} distortion coeffs)"
        )


@dataclass(frozen=True)
class FrameTransform:
    """How preprocessing turns a source frame (src_width x src_height px) into the frame the model sees:
    crop the box (x0, y0, w, h) in source px, resize it into the output's content area, and pad (letterbox) with
    `pad` = (left, top, right, bottom) output px to out_width x out_height.

    `to_normalized` maps source px to [0, 1] coordinates of the model's frame (values outside [0, 1] lie outside
    it: cropped away or in the padding); `from_normalized` maps back to source px for display.
    """

    src_width: int
    src_height: int
    out_width: int
    out_height: int
    crop: tuple[float, float, float, float] | None = None
    pad: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def __post_init__(self):
        if not all(math.isfinite(v) for v in (*self.crop_box, *self.pad)):
            raise ConfigError(f"FrameTransform crop and padding must be finite numbers: {self}")
        if min(self.src_width, self.src_height, self.out_width, self.out_height) <= 0:
            raise ConfigError(f"FrameTransform sizes must be positive: {self}")
        x0, y0, w, h = self.crop_box
        if w <= 0 or h <= 0:
            raise ConfigError(f"FrameTransform crop must have a positive size: {self.crop}")
        if self.content_size[0] <= 0 or self.content_size[1] <= 0:
            raise ConfigError(f"FrameTransform padding leaves no content: {self.pad}")

    @property
    def crop_box(self) -> tuple[float, float, float, float]:
        return self.crop if self.crop is not None else (0.0, 0.0, float(self.src_width), float(self.src_height))

    @property
    def content_size(self) -> tuple[float, float]:
        left, top, right, bottom = self.pad
        return self.out_width - left - right, self.out_height - top - bottom

    # constructors
    @classmethod
    def identity(cls, width: int, height: int) -> FrameTransform:
        return cls(width, height, width, height)

    @classmethod
    def resize(cls, width: int, height: int, out_width: int, out_height: int) -> FrameTransform:
        """Stretch the whole frame to the output size."""
        return cls(width, height, out_width, out_height)

    @classmethod
    def center_crop(cls, width: int, height: int, out_width: int, out_height: int) -> FrameTransform:
        """Crop the largest centred box of the output's aspect ratio, then resize it to the output size."""
        aspect = out_width / out_height
        if width / height > aspect:
            w, h = height * aspect, float(height)
        else:
            w, h = float(width), width / aspect
        return cls(width, height, out_width, out_height, crop=((width - w) / 2, (height - h) / 2, w, h))

    @classmethod
    def letterbox(cls, width: int, height: int, out_width: int, out_height: int) -> FrameTransform:
        """Resize the whole frame to fit inside the output, keeping its aspect ratio, and pad the rest evenly."""
        s = min(out_width / width, out_height / height)
        cw, ch = width * s, height * s
        px, py = (out_width - cw) / 2, (out_height - ch) / 2
        return cls(width, height, out_width, out_height, pad=(px, py, out_width - cw - px, out_height - ch - py))

    # mapping
    def to_normalized(self, xy) -> np.ndarray:
        p = _as_points(xy)
        x0, y0, w, h = self.crop_box
        cw, ch = self.content_size
        left, top = self.pad[0], self.pad[1]
        u = (left + (p[:, 0] - x0) * (cw / w)) / self.out_width
        v = (top + (p[:, 1] - y0) * (ch / h)) / self.out_height
        return np.stack([u, v], 1)

    def from_normalized(self, uv) -> np.ndarray:
        q = _as_points(uv)
        x0, y0, w, h = self.crop_box
        cw, ch = self.content_size
        left, top = self.pad[0], self.pad[1]
        x = x0 + (q[:, 0] * self.out_width - left) * (w / cw)
        y = y0 + (q[:, 1] * self.out_height - top) * (h / ch)
        return np.stack([x, y], 1)

    def inside(self, uv) -> np.ndarray:
        """Whether normalised points fall on the model frame's content (not cropped away, not in the padding)."""
        q = _as_points(uv)
        left, top, right, bottom = self.pad
        lo_u, hi_u = left / self.out_width, 1 - right / self.out_width
        lo_v, hi_v = top / self.out_height, 1 - bottom / self.out_height
        return (q[:, 0] >= lo_u) & (q[:, 0] <= hi_u) & (q[:, 1] >= lo_v) & (q[:, 1] <= hi_v)


class GazeMapper:
    """Raw device gaze (distorted scene px) -> wearer offset -> (undistortion) -> `FrameTransform` -> [0, 1] of the
    frame the model sees; and back for display.

    The default matches the model package: Qwen's preprocessing and V-JEPA are given the raw (distorted) scene
    frames resized whole, and the reference scanpaths are normalised to those frames, so the default is no
    undistortion and, for `FrameTransform.identity`, gaze px / frame size. Pass `undistort=True` only when the frames
    fed to the model are themselves undistorted (`CameraModel.undistort_frame`).
    `camera` may be None (no intrinsics known: points are only offset-corrected and transformed).
    The camera model is scaled to the transform's source size when they differ.
    """

    def __init__(
        self,
        camera: CameraModel | None,
        transform: FrameTransform | None = None,
        offset: tuple[float, float] = (0.0, 0.0),
        undistort: bool = False,
    ):
        if transform is None:
            if camera is None:
                raise ConfigError("GazeMapper needs a camera model or a FrameTransform to know the frame size")
            transform = FrameTransform.identity(camera.width, camera.height)
        self.transform = transform
        self.offset = (float(offset[0]), float(offset[1]))
        if not all(math.isfinite(v) for v in self.offset):
            raise ConfigError(f"the wearer offset must be finite px, got {offset}")
        self.undistort = bool(undistort and camera is not None)
        self.camera = None if camera is None else camera.scaled_to(transform.src_width, transform.src_height)

    def corrected_px(self, xy) -> np.ndarray:
        """Offset-corrected distorted px (what to draw on the raw frame)."""
        return _as_points(xy) + np.asarray(self.offset)

    def to_model(self, xy) -> np.ndarray:
        p = self.corrected_px(xy)
        if self.undistort:
            p = self.camera.undistort_points(p)
        return self.transform.to_normalized(p)

    def to_display(self, uv, distorted: bool = True) -> np.ndarray:
        """[0, 1] model-frame coordinates -> scene px: distorted (the raw frame) or undistorted (undistorted frames).
        The wearer offset stays applied: this is where the wearer looked."""
        p = self.transform.from_normalized(uv)
        if self.undistort and distorted:
            p = self.camera.distort_points(p)
        return p
