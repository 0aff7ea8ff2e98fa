"""Synthetic egocentric scenes with a realistic scanpath and ground truth of what is looked at when.

`SyntheticScene` is a `Source`: a head-mounted camera pans over a table scene with a few distinct coloured shapes
(one of which slides around and passes behind others), a hand that now and then comes up from the bottom of the view
and hides what is behind it, and a wearer whose gaze (200 Hz by default) makes fixations of 150-600 ms (drift and
tremor included) joined by saccades that follow the main sequence. Most fixations land on visible objects; the rest on
the background.

Everything is drawn from `numpy.random.default_rng(seed)`: the world (objects, camera path, hand episodes) when the
scene is built, the scanpath fixation by fixation as it is read, from the generator state the world left; frames are
rendered from those parameters alone. So the same seed gives identical arrays however the scene is read (whole, in
part, or twice), and `records()` streams: an hour-long scene starts delivering at once, with memory that does not
grow with its duration (nothing per frame or per gaze sample is held; `gaze_arrays()` and `frame_ts_ns` build their
arrays only when asked).

Ground truth (computed by one pass over the scanpath when first asked; one entry per fixation):
- `fixations`: the fixations as the stream reports them (`Fixation(source="synthetic")`, px, `gaze_offset_px`
  included, like a device detector would see them); `true_fixations`: the same without the injected offset;
- `looked_at`: `(start_ns, end_ns, object_name)` for every fixation that landed on an object;
- `fixation_targets`: per fixation, the object name or None (background);
- `objects`: `SceneObject`s (name, colour, rgb, shape, size); `object_boxes(t_ns)` / `object_at(x, y, t_ns)` give their
  on-screen boxes and visibility at any time, `visible_intervals()` the frame runs in which each one is visible.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from gazeqwen_edge.device.pacing import merge_by_time
from gazeqwen_edge.device.records import (
    AudioChunk,
    CameraIntrinsics,
    Fixation,
    GazeSample,
    Record,
    SceneFrame,
)
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import ConfigError

DEFAULT_START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, fixed so scenes are reproducible
# The synthetic gaze benchmark's object size, which the demo model was trained on (training/synthetic_benchmark.py),
# and the CLI's for a synthetic SOURCE (cli.device.synthetic_options): 2.5x SyntheticScene's default (radius 18-28 % of
# the shorter side). At the demo model's 224 px budget an object then spans about two merged video tokens. At 1.6x (one
# token) a linear probe on the tiny random encoders still told the gazed object's colour apart (82 %), but training the
# demo model there stayed at chance; at 2.5x a learnability probe (fresh scenes, joint training) learned object
# identification from gaze (closing notes of #10)
BENCHMARK_OBJECT_SCALE = 2.5
NEON_HFOV_DEG = 103.0  # the Neon scene camera's horizontal field of view (REFERENCE.md section 4)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 210, 30),
    "magenta": (210, 40, 200),
    "cyan": (30, 200, 210),
    "orange": (245, 130, 20),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon", "ring", "cross")


def object_classes(name: str) -> tuple[int, int]:
    """(colour index, shape index) in COLOURS / SHAPES order of an object's name 'colour shape' (e.g. 'cyan hexagon'):
    the class labels of the vision pre-stage and of the vision probe. ValueError for a name of another form."""
    colour, shape = name.split()
    return list(COLOURS).index(colour), SHAPES.index(shape)


SKIN = (224, 172, 140)
SLEEVE = (70, 80, 100)


@dataclass(frozen=True)
class SceneObject:
    name: str  # "<colour> <shape>", unique in a scene
    colour: str
    rgb: tuple[int, int, int]
    shape: str
    size_px: float  # radius of the shape's bounding circle, scene px
    moving: bool = False


def _smooth_path(rng: np.random.Generator, n_terms: int, f_lo: float, f_hi: float):
    """A smooth zero-mean path in [-1, 1]: a normalised sum of sinusoids with random frequencies and phases."""
    freqs = rng.uniform(f_lo, f_hi, n_terms)
    phases = rng.uniform(0, 2 * np.pi, n_terms)
    amps = rng.uniform(0.5, 1.0, n_terms)
    amps = amps / amps.sum()

    def f(t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return np.sum(amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t.reshape(1, -1) + phases[:, None]), axis=0)

    return f


def _star(r: float, n: int = 5) -> np.ndarray:
    a = np.arange(2 * n) * np.pi / n - np.pi / 2
    rr = np.where(np.arange(2 * n) % 2 == 0, r, r * 0.45)
    return np.stack([rr * np.cos(a), rr * np.sin(a)], 1)


def _regular(r: float, n: int, rot: float) -> np.ndarray:
    a = np.arange(n) * 2 * np.pi / n + rot
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


class SyntheticScene(Source):
    """A deterministic synthetic egocentric recording (see the module docstring)."""

    name = "synthetic"

    def __init__(
        self,
        seed: int = 0,
        duration_s: float = 10.0,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        gaze_hz: float = 200.0,
        n_objects: int = 4,
        start_ns: int = DEFAULT_START_NS,
        gaze_offset_px: tuple[float, float] = (0.0, 0.0),
        gaze_offset: tuple[float, float] = (0.0, 0.0),
        audio_rate: int = 0,
        object_scale: float = 1.0,
    ):
        """
        Args:
            seed: everything random derives from it; same seed, same arrays.
            duration_s, width, height, fps, gaze_hz: recording length, scene size in px, frame and gaze rates.
            n_objects: distinct coloured shapes in the world (1..8).
            start_ns: unix ns of the first sample.
            gaze_offset_px: a constant (dx, dy) ADDED to every reported gaze sample and fixation (a wearer whose gaze
                estimate is off by that much); ground truth (`true_fixations`, `looked_at`) is unaffected.
            gaze_offset: what the source declares as the wearer offset (`Source.gaze_offset`, to be added to raw
                gaze); (0, 0) unless told. Pass `(-dx, -dy)` to mimic a recording whose info.json knows the offset.
            audio_rate: if > 0, also deliver a quiet synthetic audio track (mono float32 at this rate, 100 ms chunks).
            object_scale: multiplies every object's size (radius 7-11 % of the shorter frame side at 1.0); the
                random draws are the same at any scale, so only the sizes change.
        """
        if not (1 <= n_objects <= min(len(COLOURS), len(SHAPES))):
            raise ConfigError(f"n_objects must be between 1 and {min(len(COLOURS), len(SHAPES))}, got {n_objects}")
        if not (math.isfinite(object_scale) and 0.25 <= object_scale <= 4.0):
            raise ConfigError(f"object_scale must be from 0.25 to 4, got {object_scale}")
        self.object_scale = float(object_scale)
        if duration_s <= 0 or width < 32 or height < 32 or fps <= 0 or gaze_hz <= 0:
            raise ConfigError(
                f"synthetic scene needs duration_s > 0, width/height >= 32, fps > 0, gaze_hz > 0 "
                f"(got duration_s={duration_s}, {width}x{height}, fps={fps}, gaze_hz={gaze_hz})"
            )
        self.seed = int(seed)
        self.duration_s = float(duration_s)
        self.width, self.height = int(width), int(height)
        self.fps, self.gaze_hz = float(fps), float(gaze_hz)
        self._start_ns = int(start_ns)
        self.gaze_offset_px = (float(gaze_offset_px[0]), float(gaze_offset_px[1]))
        self._declared_offset = (float(gaze_offset[0]), float(gaze_offset[1]))
        self.audio_rate = int(audio_rate)
        self.px_per_deg = self.width / NEON_HFOV_DEG

        rng = np.random.default_rng(self.seed)
        self._build_world(rng, n_objects)
        self._scanpath_rng_state = rng.bit_generator.state  # the scanpath continues from here, on every read
        self._n_gaze = int(math.floor(self.duration_s * self.gaze_hz))
        self._n_frames = int(math.floor(self.duration_s * self.fps))

    # ------------------------------------------------------------------ Source interface
    @property
    def scene_size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def intrinsics(self) -> CameraIntrinsics:
        """A pinhole model with the Neon's horizontal field of view and no distortion."""
        f = (self.width / 2) / math.tan(math.radians(NEON_HFOV_DEG / 2))
        k = np.array([[f, 0, self.width / 2], [0, f, self.height / 2], [0, 0, 1]], dtype=np.float64)
        return CameraIntrinsics(k, np.zeros(8), self.width, self.height, {"source": "synthetic pinhole"})

    @property
    def gaze_offset(self) -> tuple[float, float]:
        return self._declared_offset

    @property
    def start_ns(self) -> int:
        return self._start_ns

    @property
    def end_ns(self) -> int:
        return self._start_ns + int(round(self.duration_s * 1e9))

    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        want = None if kinds is None else set(kinds)

        def wanted(t: type) -> bool:
            return want is None or t in want

        streams: list[Iterator[Record]] = []
        # one pass over the scanpath feeds both the gaze and the fixation stream (tee keeps only what one of them
        # has not consumed yet: a fixation's worth of samples)
        g_blocks, f_blocks = itertools.tee(self._scanpath()) if wanted(GazeSample) and wanted(Fixation) else (None,) * 2
        if wanted(GazeSample):
            streams.append(self._gaze_records(g_blocks or self._scanpath()))
        if wanted(SceneFrame):
            streams.append(self._frame_records())
        if wanted(Fixation):
            streams.append(self._fixation_records(f_blocks or self._scanpath()))
        if wanted(AudioChunk) and self.audio_rate > 0:
            streams.append(self._audio_records())
        yield from merge_by_time(streams)

    # ------------------------------------------------------------------ fast accessors
    def _gaze_ts(self, i0: int, i1: int) -> np.ndarray:
        """Unix ns of gaze samples i0..i1-1 (int64)."""
        return self._start_ns + np.round(np.arange(i0, i1) * (1e9 / self.gaze_hz)).astype(np.int64)

    @property
    def gaze_ts_ns(self) -> np.ndarray:
        """Unix ns of every gaze sample (int64, built on each call)."""
        return self._gaze_ts(0, self._n_gaze)

    @cached_property
    def _gaze_xy(self) -> tuple[np.ndarray, np.ndarray]:
        blocks = list(self._scanpath())
        gx = np.concatenate([b[1] for b in blocks]) if blocks else np.zeros(0)
        gy = np.concatenate([b[2] for b in blocks]) if blocks else np.zeros(0)
        return gx, gy

    def gaze_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts_ns int64, x float64, y float64) of every reported gaze sample (offset included). Built (and kept) on
        the first call: O(duration) memory, unlike `records()`."""
        gx, gy = self._gaze_xy
        return self.gaze_ts_ns, gx + self.gaze_offset_px[0], gy + self.gaze_offset_px[1]

    def _frame_ts(self, k: int) -> int:
        return self._start_ns + int(np.round(k * 1e9 / self.fps))

    @property
    def frame_ts_ns(self) -> np.ndarray:
        """Unix ns of every scene frame (int64, built on each call)."""
        return self._start_ns + np.round(np.arange(self._n_frames) * 1e9 / self.fps).astype(np.int64)

    @property
    def n_frames(self) -> int:
        return self._n_frames

    def frame_at(self, ts_ns: int) -> SceneFrame | None:
        """The frame shown at ts_ns (the last one at or before it), None before the first."""
        k = int(np.searchsorted(self.frame_ts_ns, ts_ns, side="right")) - 1
        return self.frame(k) if 0 <= k < self._n_frames else None

    def frame(self, index: int) -> SceneFrame:
        if not 0 <= index < self._n_frames:
            raise IndexError(f"frame {index} not in 0..{self._n_frames - 1}")
        t = self._frame_ts(index)
        return SceneFrame(t, self.render(t), index)

    # ------------------------------------------------------------------ world
    def _build_world(self, rng: np.random.Generator, n_objects: int) -> None:
        w, h = self.width, self.height
        self._world_w, self._world_h = int(w * 2.0), int(h * 1.6)
        ww, wh = self._world_w, self._world_h
        # background: a wall (upper) and a table (lower) with low-frequency texture, some clutter lines
        yy, xx = np.mgrid[0:wh, 0:ww].astype(np.float32)
        horizon = wh * rng.uniform(0.30, 0.40)
        wall = np.array(rng.uniform(150, 200, 3), dtype=np.float32)
        table = np.array([rng.uniform(120, 160), rng.uniform(90, 120), rng.uniform(60, 90)], dtype=np.float32)
        low = rng.normal(0, 1, (wh // 32 + 2, ww // 32 + 2)).astype(np.float32)
        import cv2

        low = cv2.resize(low, (ww, wh), interpolation=cv2.INTER_CUBIC)
        grain = (np.sin(xx / rng.uniform(5, 9) + 3 * low) * 6).astype(np.float32)
        is_table = (yy > horizon)[..., None]
        bg = np.where(is_table, table, wall) + (low * 10)[..., None] + np.where(is_table, grain[..., None], 0)
        bg = bg * (0.85 + 0.15 * (1 - yy / wh))[..., None]
        bg = np.clip(bg, 0, 255).astype(np.uint8)
        cv2.line(bg, (0, int(horizon)), (ww, int(horizon)), (90, 70, 50), max(2, h // 120))
        for _ in range(6):  # picture frames / shelves on the wall, marks on the table
            x0, y0 = int(rng.uniform(0, ww)), int(rng.uniform(0, horizon * 0.8))
            cv2.rectangle(bg, (x0, y0), (x0 + int(w * 0.15), y0 + int(h * 0.1)), tuple(int(c) for c in wall * 0.7), 2)
        self._bg = np.ascontiguousarray(bg)
        self._horizon = horizon

        # objects: distinct colours and shapes, spread over the table/wall area on a jittered grid
        colours = rng.permutation(list(COLOURS))[:n_objects]
        shapes = rng.permutation(SHAPES)[:n_objects]
        size = min(w, h)
        objs: list[SceneObject] = []
        cols = int(math.ceil(math.sqrt(n_objects * 1.5)))
        rows = int(math.ceil(n_objects / cols))
        cells = rng.permutation(cols * rows)[:n_objects]
        pos = []
        for i in range(n_objects):
            r, c = divmod(int(cells[i]), cols)
            fx = (c + 0.5 + rng.uniform(-0.25, 0.25)) / cols
            fy = (r + 0.5 + rng.uniform(-0.25, 0.25)) / rows
            pos.append((ww * (0.2 + 0.6 * fx), wh * (0.3 + 0.55 * fy)))
            moving = n_objects >= 3 and i == 0
            objs.append(
                SceneObject(
                    name=f"{colours[i]} {shapes[i]}",
                    colour=str(colours[i]),
                    rgb=COLOURS[str(colours[i])],
                    shape=str(shapes[i]),
                    size_px=float(size * rng.uniform(0.07, 0.11) * self.object_scale),
                    moving=moving,
                )
            )
        self.objects: list[SceneObject] = objs
        self._obj_pos = np.array(pos, dtype=np.float64)  # world px
        self._obj_rot = rng.uniform(0, np.pi, n_objects)
        # the moving object slides along a slow Lissajous path that crosses the others
        self._move_x = _smooth_path(rng, 2, 0.03, 0.08)
        self._move_y = _smooth_path(rng, 2, 0.03, 0.08)
        self._move_amp = np.array([ww * 0.25, wh * 0.12])

        # camera: slow pans over the world plus a little head jitter
        self._cam_x = _smooth_path(rng, 3, 0.02, 0.12)
        self._cam_y = _smooth_path(rng, 3, 0.02, 0.10)
        self._jit_x = _smooth_path(rng, 3, 0.8, 2.5)
        self._jit_y = _smooth_path(rng, 3, 0.8, 2.5)
        self._cam_amp = np.array([(ww - w) / 2 * 0.95, (wh - h) / 2 * 0.95])
        self._jit_amp = 0.006 * w

        # the hand: episodes of 1-3 s in which it rises from the bottom edge at some x, stays, and goes
        eps = []
        t = rng.uniform(0.5, 3.0)
        while t < self.duration_s:
            d = rng.uniform(1.0, 3.0)
            eps.append((t, t + d, rng.uniform(0.15, 0.85) * w, rng.uniform(0.35, 0.6) * h))
            t += d + rng.uniform(2.0, 6.0)
        self._hand = np.array(eps, dtype=np.float64).reshape(-1, 4)
        self._hand_r = 0.11 * size

        if self.audio_rate > 0:
            self._audio_f = rng.uniform(150, 400)

    def _cam(self, t: np.ndarray) -> np.ndarray:
        """Camera view centre in world px at times t (s): (n, 2)."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        cx = self._world_w / 2 + self._cam_amp[0] * self._cam_x(t) + self._jit_amp * self._jit_x(t)
        cy = self._world_h / 2 + self._cam_amp[1] * self._cam_y(t) + self._jit_amp * self._jit_y(t)
        cx = np.clip(cx, self.width / 2, self._world_w - self.width / 2)
        cy = np.clip(cy, self.height / 2, self._world_h - self.height / 2)
        return np.stack([cx, cy], 1)

    def _obj_world(self, t: np.ndarray) -> np.ndarray:
        """Object centres in world px: (n_objects, n_t, 2)."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        p = np.repeat(self._obj_pos[:, None, :], len(t), axis=1)
        for i, o in enumerate(self.objects):
            if o.moving:
                p[i, :, 0] += self._move_amp[0] * self._move_x(t)
                p[i, :, 1] += self._move_amp[1] * self._move_y(t)
        return p

    def _obj_screen(self, t: np.ndarray) -> np.ndarray:
        """Object centres in scene px: (n_objects, n_t, 2)."""
        cam = self._cam(t)
        top_left = cam - np.array([self.width / 2, self.height / 2])
        return self._obj_world(t) - top_left[None]

    def _hand_state(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hand (visible, x, y of the fingertip centre in scene px) at times t (s)."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        vis = np.zeros(len(t), bool)
        hx = np.zeros(len(t))
        hy = np.full(len(t), self.height + 10 * self._hand_r)
        if not len(t) or not len(self._hand):
            return vis, hx, hy
        # episodes are disjoint and in time order: only those that overlap [min(t), max(t)] matter
        first = max(0, int(np.searchsorted(self._hand[:, 1], t.min(), side="right")))
        last = int(np.searchsorted(self._hand[:, 0], t.max(), side="right"))
        for t0, t1, x, reach in self._hand[first:last]:
            m = (t >= t0) & (t < t1)
            if not m.any():
                continue
            ramp = 0.3
            u = np.minimum(np.clip((t[m] - t0) / ramp, 0, 1), np.clip((t1 - t[m]) / ramp, 0, 1))
            u = 0.5 - 0.5 * np.cos(np.pi * u)
            vis[m] = u > 0
            hx[m] = x + 0.03 * self.width * np.sin(2 * np.pi * 0.7 * (t[m] - t0))
            hy[m] = self.height + self._hand_r - u * reach
        return vis, hx, hy

    def _visible(self, t: np.ndarray) -> np.ndarray:
        """(n_objects, n_t) bool: centre in the view (with a margin), not under the hand or a higher object."""
        scr = self._obj_screen(t)
        n = len(self.objects)
        sizes = np.array([o.size_px for o in self.objects])
        margin = sizes[:, None] * 0.8
        inside = (
            (scr[..., 0] > margin)
            & (scr[..., 0] < self.width - margin)
            & (scr[..., 1] > margin)
            & (scr[..., 1] < self.height - margin)
        )
        hv, hx, hy = self._hand_state(t)
        # hand = a disc at (hx, hy) plus the arm below it (a vertical band down to the bottom edge)
        dx, dy = scr[..., 0] - hx[None], scr[..., 1] - hy[None]
        under_hand = hv[None] & (
            (np.hypot(dx, dy) < self._hand_r * 1.2) | ((np.abs(dx) < self._hand_r * 1.1) & (dy > 0))
        )
        covered = np.zeros_like(inside)
        order = self._z_order()
        for a_pos, a in enumerate(order):
            for b in order[a_pos + 1 :]:  # b is drawn above a
                d = np.hypot(scr[a, :, 0] - scr[b, :, 0], scr[a, :, 1] - scr[b, :, 1])
                covered[a] |= d < sizes[b] * 0.9
        return inside & ~under_hand & ~covered if n else inside

    def _z_order(self) -> list[int]:
        """Drawing order: static objects first (by index), the moving one last so it passes in front of them."""
        return [i for i, o in enumerate(self.objects) if not o.moving] + [
            i for i, o in enumerate(self.objects) if o.moving
        ]

    def object_boxes(self, t_ns: int) -> dict[str, tuple[float, float, float, float, bool]]:
        """On-screen (x0, y0, x1, y1, visible) of every object at unix time t_ns (boxes may extend past the frame)."""
        t = (t_ns - self._start_ns) / 1e9
        scr = self._obj_screen(np.array([t]))[:, 0]
        vis = self._visible(np.array([t]))[:, 0]
        out = {}
        for i, o in enumerate(self.objects):
            s = o.size_px
            out[o.name] = (scr[i, 0] - s, scr[i, 1] - s, scr[i, 0] + s, scr[i, 1] + s, bool(vis[i]))
        return out

    def visible_intervals(self) -> dict[str, list[tuple[int, int]]]:
        """Per object, the (first_ns, last_ns) runs of scene frames in which it is visible (in view, not hidden by
        the hand or another object): ground truth for "when did X appear" and "what was seen but never looked at"."""
        fts = self.frame_ts_ns
        vis = self._visible((fts - self._start_ns) / 1e9)
        out: dict[str, list[tuple[int, int]]] = {}
        for i, o in enumerate(self.objects):
            v = np.concatenate([[False], vis[i], [False]]).astype(np.int8)
            starts = np.nonzero(np.diff(v) == 1)[0]
            ends = np.nonzero(np.diff(v) == -1)[0] - 1
            out[o.name] = [(int(fts[a]), int(fts[b])) for a, b in zip(starts, ends, strict=True)]
        return out

    def object_at(self, x: float, y: float, t_ns: int) -> str | None:
        """The topmost visible object whose shape's bounding circle contains (x, y) at t_ns (true coordinates)."""
        t = (t_ns - self._start_ns) / 1e9
        scr = self._obj_screen(np.array([t]))[:, 0]
        vis = self._visible(np.array([t]))[:, 0]
        for i in reversed(self._z_order()):
            if vis[i] and math.hypot(x - scr[i, 0], y - scr[i, 1]) <= self.objects[i].size_px:
                return self.objects[i].name
        return None

    # ------------------------------------------------------------------ scanpath
    def _scanpath(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, Fixation | None, str | None]]:
        """The scanpath, fixation by fixation: (first sample index, x, y of the samples from there to the end of the
        fixation (its saccade first), the true Fixation or None when the recording's end cut it short, its target
        object's name or None). Consecutive blocks tile the samples 0..n-1. Draws from the generator state the world
        left, so every call yields the same blocks; only the current fixation's samples are held."""
        rng = np.random.default_rng()
        rng.bit_generator.state = self._scanpath_rng_state
        n = self._n_gaze
        hz = self.gaze_hz
        noise_sd = 0.04 * self.px_per_deg  # sample-to-sample precision ~0.05 deg RMS
        i = 0
        prev = None  # last gaze position
        prev_target = -1
        while i < n:
            dur = float(np.clip(rng.lognormal(math.log(0.28), 0.35), 0.15, 0.60))
            n_fix = max(2, int(round(dur * hz)) + 1)  # first to last sample spans dur
            # saccade length from the main sequence, decided once the target is known; plan with a generous window
            j_max = min(n, i + n_fix + int(0.12 * hz) + 2)
            # pick a target: an object visible over the whole planned window, else a background point
            target = -1
            if rng.random() < 0.85:
                probe = np.array([i, (i + j_max - 1) // 2, j_max - 1])
                vis = self._visible(probe / hz)
                cands = [k for k in range(len(self.objects)) if vis[k].all()]
                if len(cands) > 1 and prev_target in cands and rng.random() > 0.15:
                    cands.remove(prev_target)
                if cands:
                    target = int(rng.choice(cands))
            if target >= 0:
                anchor = rng.normal(0, 0.25, 2) * self.objects[target].size_px
                scr = self._obj_screen(np.arange(i, j_max) / hz)[target]
                base_x = scr[:, 0] + anchor[0]
                base_y = scr[:, 1] + anchor[1]
            else:
                p = np.array([rng.uniform(0.1, 0.9) * self.width, rng.uniform(0.1, 0.9) * self.height])
                base_x = np.full(j_max - i, p[0])
                base_y = np.full(j_max - i, p[1])
            # saccade from the previous position to the target (main-sequence duration, minimum-jerk profile)
            sac_n = 0
            bx, by = np.zeros(0), np.zeros(0)
            if prev is not None:
                amp = math.hypot(base_x[0] - prev[0], base_y[0] - prev[1]) / self.px_per_deg
                sac_n = min(len(base_x) - 1, max(2, int(round(min(0.1, 0.021 + 0.0022 * amp) * hz))))
                u = np.arange(1, sac_n + 1) / (sac_n + 1)
                u = u**3 * (10 - 15 * u + 6 * u**2)
                bx = prev[0] + (base_x[sac_n] - prev[0]) * u
                by = prev[1] + (base_y[sac_n] - prev[1]) * u
            s0 = i + sac_n
            m = min(n - s0, n_fix, len(base_x) - sac_n)  # >= 1: j_max <= n and sac_n < len(base_x)
            # drift (slow random walk, ~0.3 deg/s) and tremor/measurement noise
            drift = np.cumsum(rng.normal(0, 0.3 * self.px_per_deg / math.sqrt(hz), (m, 2)), axis=0)
            noise = rng.normal(0, noise_sd, (m, 2))
            fx = base_x[sac_n : sac_n + m] + drift[:, 0] + noise[:, 0]
            fy = base_y[sac_n : sac_n + m] + drift[:, 1] + noise[:, 1]
            fix = name = None
            if m == n_fix:  # a fixation cut short by the end of the recording is not reported
                ts = self._gaze_ts(s0, s0 + m)
                fix = Fixation(int(ts[0]), int(ts[-1]), float(fx.mean()), float(fy.mean()), source="synthetic")
                name = None if target < 0 else self.objects[target].name
            yield i, np.concatenate([bx, fx]), np.concatenate([by, fy]), fix, name
            prev = (fx[-1], fy[-1])
            prev_target = target
            i = s0 + m

    @cached_property
    def _ground_truth(self) -> tuple[list[Fixation], list[str | None]]:
        pairs = [(b[3], b[4]) for b in self._scanpath() if b[3] is not None]
        return [f for f, _ in pairs], [t for _, t in pairs]

    @property
    def true_fixations(self) -> list[Fixation]:
        """The fixations as made (no injected offset), px, in time order."""
        return self._ground_truth[0]

    @property
    def fixation_targets(self) -> list[str | None]:
        """Per true fixation, the name of the object it landed on, or None (background)."""
        return self._ground_truth[1]

    @cached_property
    def fixations(self) -> list[Fixation]:
        """The fixations as the stream reports them (`gaze_offset_px` included, `source="synthetic"`)."""
        return [self._reported(f) for f in self.true_fixations]

    @property
    def looked_at(self) -> list[tuple[int, int, str]]:
        """(start_ns, end_ns, object name) of every fixation that landed on an object."""
        return [
            (f.start_ns, f.end_ns, name)
            for f, name in zip(self.true_fixations, self.fixation_targets, strict=True)
            if name is not None
        ]

    @property
    def first_looked_at(self) -> dict[str, int]:
        """{object name: start_ns of the first fixation on it} for every object looked at (unix ns; an object never
        looked at is absent)."""
        first: dict[str, int] = {}
        for start_ns, _, name in self.looked_at:
            first[name] = min(first.get(name, start_ns), start_ns)
        return first

    def _reported(self, f: Fixation) -> Fixation:
        dx, dy = self.gaze_offset_px
        return Fixation(f.start_ns, f.end_ns, f.x + dx, f.y + dy, source="synthetic")

    # ------------------------------------------------------------------ rendering
    def render(self, t_ns: int) -> np.ndarray:
        """The scene frame (H, W, 3) uint8 RGB at unix time t_ns."""
        import cv2

        t = (t_ns - self._start_ns) / 1e9
        cam = self._cam(np.array([t]))[0]
        x0 = int(round(cam[0] - self.width / 2))
        y0 = int(round(cam[1] - self.height / 2))
        x0 = min(max(x0, 0), self._world_w - self.width)
        y0 = min(max(y0, 0), self._world_h - self.height)
        img = self._bg[y0 : y0 + self.height, x0 : x0 + self.width].copy()
        world = self._obj_world(np.array([t]))[:, 0]
        sh = 4  # sub-pixel bits for cv2 drawing
        sc = 1 << sh
        for k in self._z_order():
            o = self.objects[k]
            cx, cy = world[k, 0] - x0, world[k, 1] - y0
            r = o.size_px
            if cx < -2 * r or cy < -2 * r or cx > self.width + 2 * r or cy > self.height + 2 * r:
                continue
            self._draw_shape(cv2, img, o, cx, cy, r, self._obj_rot[k], sc, sh)
        hv, hx, hy = self._hand_state(np.array([t]))
        if hv[0]:
            hr = self._hand_r
            c = (int(hx[0] * sc), int(hy[0] * sc))
            arm_top = int((hy[0] + hr * 0.3) * sc)
            cv2.rectangle(
                img,
                (int((hx[0] - hr * 1.05) * sc), arm_top),
                (int((hx[0] + hr * 1.05) * sc), int((self.height + hr) * sc)),
                SLEEVE,
                -1,
                cv2.LINE_AA,
                sh,
            )
            cv2.ellipse(img, c, (int(hr * sc), int(hr * 1.2 * sc)), 0, 0, 360, SKIN, -1, cv2.LINE_AA, sh)
            for f in range(4):  # fingers
                fx = hx[0] + (f - 1.5) * hr * 0.45
                cv2.ellipse(
                    img,
                    (int(fx * sc), int((hy[0] - hr * 1.0) * sc)),
                    (int(hr * 0.18 * sc), int(hr * 0.5 * sc)),
                    0,
                    0,
                    360,
                    SKIN,
                    -1,
                    cv2.LINE_AA,
                    sh,
                )
        return img

    @staticmethod
    def _draw_shape(cv2, img, o: SceneObject, cx, cy, r, rot, sc, sh) -> None:
        col = o.rgb
        edge = tuple(int(c * 0.45) for c in col)
        centre = np.array([cx, cy])

        def poly(pts: np.ndarray) -> None:
            p = np.round((pts + centre) * sc).astype(np.int32).reshape(-1, 1, 2)
            cv2.fillPoly(img, [p], col, cv2.LINE_AA, sh)
            cv2.polylines(img, [p], True, edge, 2, cv2.LINE_AA, sh)

        c = (int(round(cx * sc)), int(round(cy * sc)))
        if o.shape == "circle":
            cv2.circle(img, c, int(r * sc), col, -1, cv2.LINE_AA, sh)
            cv2.circle(img, c, int(r * sc), edge, 2, cv2.LINE_AA, sh)
        elif o.shape == "ring":
            cv2.circle(img, c, int(r * 0.8 * sc), col, max(3, int(r * 0.35)), cv2.LINE_AA, sh)
        elif o.shape == "square":
            poly(_regular(r, 4, rot))
        elif o.shape == "triangle":
            poly(_regular(r, 3, -np.pi / 2))
        elif o.shape == "star":
            poly(_star(r))
        elif o.shape == "diamond":
            poly(np.array([[0, -r], [r * 0.65, 0], [0, r], [-r * 0.65, 0]]))
        elif o.shape == "hexagon":
            poly(_regular(r, 6, rot))
        elif o.shape == "cross":
            a, b = r, r * 0.33
            poly(
                np.array(
                    [
                        [-b, -a],
                        [b, -a],
                        [b, -b],
                        [a, -b],
                        [a, b],
                        [b, b],
                        [b, a],
                        [-b, a],
                        [-b, b],
                        [-a, b],
                        [-a, -b],
                        [-b, -b],
                    ]
                )
            )

    # ------------------------------------------------------------------ record streams
    def _gaze_records(self, blocks) -> Iterator[GazeSample]:
        dx, dy = self.gaze_offset_px
        for i0, gx, gy, _, _ in blocks:
            ts = self._gaze_ts(i0, i0 + len(gx))
            for t, x, y in zip(ts.tolist(), (gx + dx).tolist(), (gy + dy).tolist(), strict=True):
                yield GazeSample(t, x, y, True)

    def _fixation_records(self, blocks) -> Iterator[Fixation]:
        for _, _, _, fix, _ in blocks:
            if fix is not None:
                yield self._reported(fix)

    def _frame_records(self) -> Iterator[SceneFrame]:
        for k in range(self._n_frames):
            yield self.frame(k)

    def _audio_records(self) -> Iterator[AudioChunk]:
        chunk = self.audio_rate // 10
        total = int(self.duration_s * self.audio_rate)
        for s in range(0, total, chunk):
            n = min(chunk, total - s)
            t = (s + np.arange(n)) / self.audio_rate
            rng = np.random.default_rng([self.seed, s])
            pcm = 0.05 * np.sin(2 * np.pi * self._audio_f * t) + 0.01 * rng.standard_normal(n)
            yield AudioChunk(
                self._start_ns + int(round(s * 1e9 / self.audio_rate)), pcm.astype(np.float32), self.audio_rate
            )
