"""A small, exactly known Source for the Neon tests: gaze on a Lissajous path, frames whose colour encodes their
index, a 440 Hz tone, fixations and blinks. Timestamps are a fixed grid so received data can be matched exactly."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from gazeqwen_edge.device.records import (
    AudioChunk,
    Blink,
    CameraIntrinsics,
    Fixation,
    GazeSample,
    Record,
    SceneFrame,
)
from gazeqwen_edge.device.source import Source

T0 = 1_767_225_600_000_000_000


def gaze_xy(i: int) -> tuple[float, float]:
    return 160.0 + 100.0 * np.sin(i * 0.01), 120.0 + 80.0 * np.cos(i * 0.013)


def audio_signal(n0: int, n: int) -> np.ndarray:
    """A repeating 1 s chirp (300 -> 1200 Hz) at 8 kHz: locally a tone, but no two 128 ms windows alike, so a decoded
    frame's position in time can be found by correlation."""
    t = (n0 + np.arange(n)) / 8000.0
    phase = 2 * np.pi * (300 * t + 450 * (np.floor(t) + (t % 1.0) ** 2))
    return (0.3 * np.sin(phase)).astype(np.float32)


def frame_rgb(k: int, w: int, h: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (k * 37) % 200 + 30
    img[..., 1] = (k * 11) % 200 + 30
    img[..., 2] = 128
    img[: h // 4, : w // 4] = 255  # some structure
    return img


class ToySource(Source):
    name = "toy"

    def __init__(
        self,
        duration_s: float = 20.0,
        width: int = 320,
        height: int = 240,
        gaze_hz: float = 200.0,
        fps: float = 30.0,
        audio: bool = True,
        t0: int = T0,
    ):
        self.duration_s, self.w, self.h, self.gaze_hz, self.fps, self.audio, self.t0 = (
            duration_s,
            width,
            height,
            gaze_hz,
            fps,
            audio,
            t0,
        )
        self._frames: dict[int, np.ndarray] = {}

    @property
    def scene_size(self):
        return (self.w, self.h)

    @property
    def start_ns(self):
        return self.t0

    @property
    def end_ns(self):
        return self.t0 + int(self.duration_s * 1e9)

    @property
    def intrinsics(self):
        k = np.array([[200.0, 0, self.w / 2], [0, 200.0, self.h / 2], [0, 0, 1]])
        return CameraIntrinsics(k, np.array([0.1, -0.05, 0, 0, 0.01, 0, 0, 0]), self.w, self.h)

    def gaze_ts(self, i: int) -> int:
        return self.t0 + int(round(i * 1e9 / self.gaze_hz))

    def frame_ts(self, k: int) -> int:
        return self.t0 + int(round(k * 1e9 / self.fps))

    def records(self, kinds: Iterable[type] | None = None) -> Iterator[Record]:
        recs: list[tuple[int, int, Record]] = []
        n_g = int(self.duration_s * self.gaze_hz)
        for i in range(n_g):
            x, y = gaze_xy(i)
            recs.append((self.gaze_ts(i), 0, GazeSample(self.gaze_ts(i), x, y, True)))
        for k in range(int(self.duration_s * self.fps)):
            recs.append((self.frame_ts(k), 1, ("frame", k)))
        if self.audio:
            n = 800  # 100 ms chunks at 8 kHz
            for c in range(int(self.duration_s * 10)):
                pcm = audio_signal(c * n, n)
                ts = self.t0 + c * 100_000_000
                recs.append((ts, 2, AudioChunk(ts, pcm, 8000)))
        for j in range(int(self.duration_s)):
            s = self.t0 + j * 1_000_000_000 + 200_000_000
            recs.append((s + 300_000_000, 3, Fixation(s, s + 300_000_000, 100.0 + j, 50.0 + j)))
            recs.append((s + 600_000_000, 3, Blink(s + 500_000_000, s + 600_000_000)))
        recs.sort(key=lambda r: (r[0], r[1]))
        for ts, _, r in recs:
            if isinstance(r, tuple):
                yield SceneFrame(ts, frame_rgb(r[1], self.w, self.h), r[1])
            else:
                yield r
