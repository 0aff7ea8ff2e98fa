"""Scene optical flow for head-motion compensation: sparse Lucas-Kanade on downscaled grey frames.

`SceneFlow.push(frame)` tracks a regular grid of points from the previous frame into this one and returns a
`FlowField`: where the points are (full-resolution scene px, in the current frame), how fast the scene moves there
(px/s), and their mean, the global optic flow that Pupil Labs' fixation detector subtracts from the gaze velocity
(the published method averages a Lucas-Kanade grid over the whole frame: `calibration/fixation.py`). Here the flow is
computed on a 192 px wide copy of the frame (their grid runs on the full frame) and points failing a
forward-backward check are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gazeqwen_edge.device.records import SceneFrame


@dataclass(frozen=True, eq=False)
class FlowField:
    """Scene motion between two frames (timestamps in the frames' clock, ns)."""

    t0_ns: int  # previous frame
    t1_ns: int  # this frame
    points_px: np.ndarray  # (N, 2) float64 tracked points in this frame, px of the frame as delivered
    velocity_px_s: np.ndarray  # (N, 2) float64 scene motion at those points, px/s

    @property
    def global_velocity_px_s(self) -> np.ndarray:
        """(2,) mean scene motion over the tracked points, px/s (zeros when nothing could be tracked)."""
        return self.velocity_px_s.mean(axis=0) if len(self.velocity_px_s) else np.zeros(2)


class SceneFlow:
    """Sparse LK optical flow between consecutive scene frames on a downscaled grey image.

    Args:
        work_width: width of the downscaled image the flow is computed on.
        grid: (columns, rows) of tracked points.
        max_fb_error_px: forward-backward consistency bound in downscaled px (points failing it are dropped).
        max_gap_s: consecutive frames further apart than this are not compared (the next frame starts afresh).
    """

    def __init__(
        self,
        work_width: int = 192,
        grid: tuple[int, int] = (12, 9),
        max_fb_error_px: float = 1.0,
        max_gap_s: float = 0.2,
    ):
        self.work_width = int(work_width)
        self.grid = grid
        self.max_fb_error_px = float(max_fb_error_px)
        self.max_gap_ns = int(max_gap_s * 1e9)
        self._prev: np.ndarray | None = None
        self._prev_ts: int | None = None
        self._scale = 1.0

    def _grey(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        h, w = rgb.shape[:2]
        self._scale = self.work_width / w
        step = max(1, w // (2 * self.work_width))  # cheap decimation first (1600 px -> 400), then area averaging
        src = np.ascontiguousarray(rgb[::step, ::step]) if step > 1 else rgb
        small = cv2.resize(src, (self.work_width, max(8, round(h * self._scale))), interpolation=cv2.INTER_AREA)
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
        return FlowField(prev_ts, frame.ts_ns, b, (b - a) / dt)
