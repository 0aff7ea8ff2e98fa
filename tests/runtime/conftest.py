from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def stream_gq():
    """A tiny stream-regime GazeQwen with perturbed output projections, told to sample at the stream's 2 fps (so its
    full prefill of a clip of model frames takes every frame). Read-only."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    torch.set_num_threads(1)
    return build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5, sampling_fps=2.0)


@pytest.fixture(scope="session")
def model_frames():
    """24 model frames (12 s at 2 fps, 12 temporal steps) of 60 x 80 px with smooth content and their times."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (6, 8, 3)).astype(np.float32)
    frames = []
    for i in range(24):
        img = np.kron(np.roll(base, i, axis=1), np.ones((10, 10, 1))) + rng.normal(0, 8, (60, 80, 3))
        frames.append(img.clip(0, 255).astype(np.uint8))
    return np.stack(frames), np.arange(24) / 2.0


@pytest.fixture(scope="session")
def fixed_scanpath():
    """Fixations covering most steps (rows [x, y, mid_t, dur], seconds from the first frame)."""
    return np.array(
        [[0.2, 0.3, 1.0, 1.6], [0.7, 0.6, 3.5, 2.0], [0.5, 0.5, 6.0, 1.5], [0.3, 0.8, 8.8, 2.4], [0.8, 0.2, 11.2, 1.0]],
        dtype=np.float32,
    )
