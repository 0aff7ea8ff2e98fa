from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def tiny_gq():
    """A tiny GazeQwen with perturbed (non-zero) output projections: the gaze path changes the logits.
    Session-wide and read-only: tests must not change its weights."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    torch.set_num_threads(1)
    return build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5)


@pytest.fixture(scope="session")
def clip():
    """A 6 s random clip at 5 fps, 120x160 (-> 6 Qwen frames at 1 fps, 3 temporal steps)."""
    from gazeqwen_edge.model.gazeqwen import Video

    rng = np.random.default_rng(1)
    return Video(rng.integers(0, 256, (30, 120, 160, 3), dtype=np.uint8), fps=5.0)


@pytest.fixture(scope="session")
def scanpath():
    return np.array([[0.25, 0.3, 0.5, 1.2], [0.7, 0.6, 2.5, 1.0], [0.5, 0.8, 4.2, 1.6]])
