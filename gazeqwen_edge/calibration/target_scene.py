"""A synthetic offset-calibration session: a wearer holding their gaze on a target, for demos, the simulator and tests.

`TargetScene` is a `Source`: scene frames show a textured wall with the target (a dot at a fixed scene point, or a
printed ArUco marker that drifts slowly as the head moves), and 200 Hz gaze makes fixations on the target (tremor,
drift, measurement noise) with occasional glances elsewhere, all shifted by a constant `offset_px` (the wearer's
gaze estimation error that calibration must find: the offset to ADD is therefore -offset_px).

Registered with `open_source` as `calibration-target[:key=value;...]`, keys: seed, seconds, offset (dx,dy px),
target (center | aruco), size (WxH), glance (the share of fixations spent looking elsewhere, 0..1),
e.g. `calibration-target:offset=12,-8;target=aruco`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from gazeqwen_edge.calibration.camera import pinhole_intrinsics
from gazeqwen_edge.device.pacing import merge_by_time
from gazeqwen_edge.device.records import CameraIntrinsics, GazeSample, Record, SceneFrame
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import ConfigError

START_NS = 1_767_225_600_000_000_000
HFOV_DEG = 103.0


class TargetScene(Source):
    name = "calibration-target"

    def __init__(
        self,
        seed: int = 0,
        duration_s: float = 6.0,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        gaze_hz: float = 200.0,
        offset_px: tuple[float, float] = (0.0, 0.0),
        target: str = "center",
        marker_id: int = 7,
        glance_prob: float = 0.2,
        noise_deg: float = 0.08,
        start_ns: int = START_NS,
    ):
        if target not in ("center", "aruco"):
            raise ConfigError(f"target must be 'center' or 'aruco', not {target!r}")
        numbers = (duration_s, fps, gaze_hz, glance_prob, noise_deg, *offset_px)
        if not all(math.isfinite(float(v)) for v in numbers):
            raise ConfigError(
                f"TargetScene values must be finite numbers (got seconds {duration_s}, offset {offset_px})"
            )
        if not 0 <= glance_prob <= 1:
            raise ConfigError(f"TargetScene glance share must be within 0..1, got {glance_prob}")
        if (
            not (0 < duration_s <= 3600)
            or not (64 <= width <= 4096 and 64 <= height <= 4096)
            or fps <= 0
            or gaze_hz <= 0
        ):
            raise ConfigError(
                "a calibration-target scene needs 0 < seconds <= 3600, a size of 64..4096 px a side, fps > 0 and "
                "gaze_hz > 0 (got "
                f"{duration_s} s, {width}x{height}, {fps} fps, {gaze_hz} Hz)"
            )
        if abs(offset_px[0]) > width or abs(offset_px[1]) > height:  # every sample would be off the scene image
            raise ConfigError(
                f"a calibration-target offset must be within the frame (|dx| <= {width}, |dy| <= {height} px), got "
                f"{offset_px}"
            )
        self.seed, self.duration_s = int(seed), float(duration_s)
        self.width, self.height, self.fps, self.gaze_hz = int(width), int(height), float(fps), float(gaze_hz)
        self.offset_px = (float(offset_px[0]), float(offset_px[1]))
        self.target = target
        self.marker_id = int(marker_id)
        self._start = int(start_ns)
        self.px_per_deg = float(self.intrinsics.camera_matrix[0, 0]) * math.radians(1)  # at the centre
        rng = np.random.default_rng(seed)
        # the wall: smooth random texture (so optical flow and marker detection behave as on real footage)
        import cv2

        noise = rng.uniform(0, 255, (height // 8 + 2, width // 8 + 2, 3)).astype(np.uint8)
        self._wall = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
        self._wall = (0.5 * self._wall + 90).astype(np.uint8)
        self._marker = None
        if target == "aruco":
            d = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
            side = max(40, int(min(width, height) * 0.18))
            m = cv2.aruco.generateImageMarker(d, self.marker_id, side)
            pad = side // 5
            self._marker = np.pad(m, pad, constant_values=255)
        # head motion: the target drifts a little in the frame (only with a physical marker)
        amp = 0.04 * width if target == "aruco" else 0.0
        self._head = (amp, rng.uniform(0.15, 0.3), rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.25))
        self._build_gaze(rng, glance_prob, noise_deg)

    # ------------------------------------------------------------------ Source interface
    @property
    def scene_size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return pinhole_intrinsics(self.width, self.height, HFOV_DEG)

    @property
    def start_ns(self) -> int:
        return self._start

    @property
    def end_ns(self) -> int:
        return self._start + int(self.duration_s * 1e9)

    def target_at(self, t_ns) -> np.ndarray:
        """Where the target is in the scene at t (px, (N, 2) for an array of times)."""
        t = (np.atleast_1d(np.asarray(t_ns, dtype=np.int64)) - self._start) / 1e9
        amp, fx, ph, fy = self._head
        x = self.width / 2 + amp * np.sin(2 * np.pi * fx * t + ph)
        y = self.height / 2 + 0.6 * amp * np.sin(2 * np.pi * fy * t)
        return np.stack([x, y], 1)

    def _build_gaze(self, rng: np.random.Generator, glance_prob: float, noise_deg: float) -> None:
        n = int(self.duration_s * self.gaze_hz)
        ts = self._start + np.round(np.arange(n) * 1e9 / self.gaze_hz).astype(np.int64)
        tgt = self.target_at(ts)
        gx, gy = np.empty(n), np.empty(n)
        on_target = np.zeros(n, bool)
        i = 0
        prev = tgt[0].copy()
        while i < n:
            dur = int(rng.uniform(0.25, 0.7) * self.gaze_hz)
            glance = rng.random() < glance_prob
            j = min(n, i + dur)
            if glance:
                ang = rng.uniform(0, 2 * np.pi)
                r = rng.uniform(6, 15) * self.px_per_deg
                base = np.clip(tgt[i] + r * np.array([np.cos(ang), np.sin(ang)]), 5, [self.width - 5, self.height - 5])
                pts = np.tile(base, (j - i, 1))
            else:
                pts = tgt[i:j].copy()  # the eye follows the target as the head moves
                on_target[i:j] = True
            # saccade into the fixation: 30 ms linear ramp from the previous position
            k = min(j - i, int(0.03 * self.gaze_hz))
            for s in range(k):
                a = (s + 1) / (k + 1)
                pts[s] = (1 - a) * prev + a * pts[k] if k < len(pts) else pts[s]
            drift = np.cumsum(rng.normal(0, 0.01 * self.px_per_deg, (j - i, 2)), axis=0)
            pts = pts + drift + rng.normal(0, noise_deg * self.px_per_deg, (j - i, 2))
            gx[i:j], gy[i:j] = pts[:, 0], pts[:, 1]
            prev = pts[-1]
            i = j
        self._ts, self._gx, self._gy, self.on_target = ts, gx, gy, on_target

    def gaze_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts_ns, x, y) as reported (the offset included)."""
        return self._ts, self._gx + self.offset_px[0], self._gy + self.offset_px[1]

    def render(self, t_ns: int) -> np.ndarray:
        import cv2

        img = self._wall.copy()
        cx, cy = self.target_at(t_ns)[0]
        if self._marker is None:
            r = max(4, self.width // 80)
            cv2.circle(img, (round(cx), round(cy)), 3 * r, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(img, (round(cx), round(cy)), r, (220, 20, 20), -1, cv2.LINE_AA)
        else:
            m = self._marker
            s = m.shape[0]
            x0, y0 = int(round(cx - s / 2)), int(round(cy - s / 2))
            x0, y0 = min(max(0, x0), self.width - s), min(max(0, y0), self.height - s)
            img[y0 : y0 + s, x0 : x0 + s] = m[:, :, None]
        return img

    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        want = None if kinds is None else set(kinds)
        streams = []
        if want is None or GazeSample in want:
            ts, x, y = self.gaze_arrays()
            streams.append(GazeSample(int(t), float(a), float(b)) for t, a, b in zip(ts, x, y, strict=True))
        if want is None or SceneFrame in want:
            n = int(self.duration_s * self.fps)
            fts = self._start + np.round(np.arange(n) * 1e9 / self.fps).astype(np.int64)
            streams.append(SceneFrame(int(t), self.render(int(t)), i) for i, t in enumerate(fts))
        yield from merge_by_time(streams)


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError("not a finite number")
    return v


def parse_target_scene_spec(spec: str, **kw) -> TargetScene:
    """`calibration-target[:seed=0;seconds=6;offset=12,-8;target=aruco;size=640x480;glance=0.2]`. ConfigError for an
    unknown key or a value no scene can have (a negative seed, NaN, a frame larger than any camera's)."""
    from gazeqwen_edge.device.registry import parse_frame_size, parse_seed

    rest = spec[len("calibration-target") :]
    args: dict = {}
    if rest.startswith(":"):
        for item in filter(None, rest[1:].split(";")):
            if "=" not in item:
                raise ConfigError(f"bad calibration-target option '{item}': expected key=value")
            k, v = (s.strip() for s in item.split("=", 1))
            try:
                if k == "seed":
                    args["seed"] = parse_seed(v)
                elif k == "seconds":
                    args["duration_s"] = _finite(v)
                elif k == "offset":
                    dx, dy = (_finite(s) for s in v.split(","))
                    args["offset_px"] = (dx, dy)
                elif k == "target":
                    args["target"] = v
                elif k == "glance":
                    args["glance_prob"] = _finite(v)
                elif k == "size":
                    args["width"], args["height"] = parse_frame_size(v, min_side=64)
                else:
                    raise ConfigError(
                        f"unknown calibration-target option '{k}' (seed, seconds, offset, target, size, glance)"
                    )
            except ValueError as e:
                raise ConfigError(f"bad value for calibration-target option '{k}': {v!r} ({e})") from None
    elif rest:
        raise ConfigError(f"bad source spec '{spec}'")
    return TargetScene(**args)


def register() -> None:
    """Make `open_source("calibration-target...")` build a `TargetScene`."""
    from gazeqwen_edge.device.registry import register_source

    register_source("calibration-target", lambda spec, **kw: parse_target_scene_spec(spec))
