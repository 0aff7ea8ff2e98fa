from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def stream_gq():
    """A tiny stream-regime GazeQwen (random weights, perturbed so answers vary). Read-only."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    torch.set_num_threads(1)
    return build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5, sampling_fps=2.0)
