"""Assertions shared by the client and live-source tests: received data against the ToySource it came from."""

from __future__ import annotations

import numpy as np

from tests.neon.toy import ToySource, audio_signal, frame_rgb, gaze_xy


def check_gaze(src: ToySource, offset_ns: int, ts_ns: int, x: float, y: float) -> None:
    rel = ts_ns - offset_ns - src.t0
    i = round(rel * src.gaze_hz / 1e9)
    err_s = (ts_ns - offset_ns - src.gaze_ts(i)) / 1e9
    assert abs(err_s) < 1e-4, f"gaze time off by {err_s * 1e3:.3f} ms"
    ex, ey = gaze_xy(i)
    assert abs(x - ex) < 1e-3 and abs(y - ey) < 1e-3, (x, y, ex, ey)


def check_frame(src: ToySource, offset_ns: int, ts_ns: int, rgb: np.ndarray) -> int:
    k = round((ts_ns - offset_ns - src.t0) * src.fps / 1e9)
    err_s = (ts_ns - offset_ns - src.frame_ts(k)) / 1e9
    assert abs(err_s) < 1e-3, f"frame time off by {err_s * 1e3:.3f} ms (one frame = {1e3 / src.fps:.1f} ms)"
    assert rgb.shape == (src.h, src.w, 3)
    expected = frame_rgb(k, src.w, src.h)
    # the frame's colour encodes its index: the picture shown is the one of that time
    patch = rgb[src.h // 2 :, src.w // 2 :].reshape(-1, 3).mean(axis=0)
    want = expected[src.h // 2 :, src.w // 2 :].reshape(-1, 3).mean(axis=0)
    assert np.abs(patch - want).max() < 12, (k, patch, want)
    return k


def audio_lag_samples(src: ToySource, offset_ns: int, ts_ns: int, pcm: np.ndarray) -> int:
    """Where the decoded samples really are, relative to where their timestamp says (in 8 kHz samples)."""
    n0 = round((ts_ns - offset_ns - src.t0) * 8000 / 1e9)
    pcm = np.asarray(pcm, np.float64).reshape(-1)
    best, best_lag = -1.0, 0
    for lag in range(-400, 401):
        if n0 + lag < 0:
            continue
        ref = audio_signal(n0 + lag, len(pcm)).astype(np.float64)
        c = float(np.dot(ref, pcm) / (np.linalg.norm(ref) * np.linalg.norm(pcm) + 1e-12))
        if c > best:
            best, best_lag = c, lag
    assert best > 0.8, f"decoded audio does not look like the source (best correlation {best:.2f})"
    return best_lag
