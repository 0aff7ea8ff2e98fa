"""Scene optical flow for head-motion compensation: sparse Lucas-Kanade on downscaled grey frames.

`SceneFlow.push(frame)` tracks a regular grid of points from the previous frame into this one and returns a
`FlowField`: where the points are (full-resolution scene px, in the current frame) and how fast the scene moves there
(px/s), plus the same velocities in normalised camera coordinates per second (for the detector, which works in
rays) and the RMS angular speed of the scene in deg/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gazeqwen_edge.calibration.camera import CameraModel
from gazeqwen_edge.device.records import SceneFrame


@dataclass(frozen=True, eq=False)
class FlowField:
    t0_ns: int  # previous frame
    t1_ns: int  # this frame
    points_px: np.ndarray  # (N, 2) tracked points in this frame, full-resolution scene px
    velocity_px_s: np.ndarray  # (N, 2) scene motion at those points, px/s
    velocity_norm_s: np.ndarray  # (N, 2) the same in normalised camera coordinates per second
    rms_deg_s: float  # RMS angular speed of the tracked scene points, deg/s

    def velocity_near(self, xy: tuple[float, float], radius_px: float, min_points: int = 4) -> np.ndarray:
        """Median scene velocity (normalised camera coordinates / s) near a scene point; the global median where
        fewer than `min_points` were tracked within `radius_px`."""
        if len(self.points_px) == 0:
            return np.zeros(2)
        d2 = (self.points_px[:, 0] - xy[0]) ** 2 + (self.points_px[:, 1] - xy[1]) ** 2
        near = d2 <= radius_px * radius_px
        sel = self.velocity_norm_s[near] if int(near.sum()) >= min_points else self.velocity_norm_s
        return np.median(sel, axis=0)


class SceneFlow:
    """Sparse LK optical flow between consecutive scene frames on a downscaled grey image.

    Args:
        camera: the scene camera (scaled to the frames' size automatically) to express flow as angles.
        work_width: width of the downscaled image the flow is computed on.
        grid: (columns, rows) of tracked points.
        max_fb_error_px: forward-backward consistency bound in downscaled px (points failing it are dropped).
        max_gap_s: consecutive frames further apart than this are not compared (the next frame starts afresh).
    """

    def __init__(
        self,
        camera: CameraModel,
        work_width: int = 192,
        grid: tuple[int, int] = (12, 9),
        max_fb_error_px: float = 1.0,
        max_gap_s: float = 0.2,
    ):
        self.camera = camera
        self.work_width = int(work_width)
        self.grid = grid
        self.max_fb_error_px = float(max_fb_error_px)
        self.max_gap_ns = int(max_gap_s * 1e9)
        self._prev: np.ndarray | None = None
        self._prev_ts: int | None = None
        self._scale = 1.0
        self._cam_scaled: CameraModel | None = None
        self.last: FlowField | None = None

    def reset(self) -> None:
        self._prev, self._prev_ts, self.last = None, None, None

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        self._scale = self.work_width / w
        step = max(1, w // (2 * self.work_width))  # cheap decimation first (1600 px -> 400), then area averaging
        src = np.ascontiguousarray(rgb[::step, ::step]) if step > 1 else rgb
        small = cv2.resize(src, (self.work_width, max(8, round(h * self._scale))), interpolation=cv2.INTER_AREA)
        if self._cam_scaled is None or (self._cam_scaled.width, self._cam_scaled.height) != (w, h):
            self._cam_scaled = self.camera.scaled_to(w, h)
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) if small.ndim == 3 else small

    def push(self, frame: SceneFrame) -> FlowField | None:
        """Add a frame; returns the flow from the previous frame (None for the first one or after a gap)."""
        import cv2

        grey = self._grey(frame.rgb)
        prev, prev_ts = self._prev, self._prev_ts
        self._prev, self._prev_ts = grey, frame.ts_ns
        if (
            prev is None
            or prev.shape != grey.shape
            or frame.ts_ns <= prev_ts
            or frame.ts_ns - prev_ts > self.max_gap_ns
        ):
            return None
        h, w = grey.shape
        cols, rows = self.grid
        gx, gy = np.meshgrid(np.linspace(0.08, 0.92, cols) * w, np.linspace(0.08, 0.92, rows) * h)
        p0 = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32).reshape(-1, 1, 2)
        lk = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, grey, p0, None, **lk)
        p0b, st2, _ = cv2.calcOpticalFlowPyrLK(grey, prev, p1, None, **lk)
        fb = np.linalg.norm((p0 - p0b).reshape(-1, 2), axis=1)
        ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < self.max_fb_error_px)
        dt = (frame.ts_ns - prev_ts) / 1e9
        a = p0.reshape(-1, 2)[ok].astype(np.float64) / self._scale
        b = p1.reshape(-1, 2)[ok].astype(np.float64) / self._scale
        cam = self._cam_scaled
        if len(a):
            na, nb = cam.to_normalized(a), cam.to_normalized(b)
            vel_n = (nb - na) / dt
            ang = cam.angle_deg(a, b) / dt
            rms = float(np.sqrt(np.mean(ang**2)))
        else:
            vel_n, rms = np.zeros((0, 2)), 0.0
        self.last = FlowField(prev_ts, frame.ts_ns, b, (b - a) / dt, vel_n, rms)
        return self.last
