"""TensorRT: the default optimisation profiles (pure Python), the missing-module error, and (only where tensorrt and
a CUDA GPU exist) an engine of the tiny resampler that computes what PyTorch computes."""

from __future__ import annotations

import sys

import pytest
import torch

from gazeqwen_edge.errors import ConfigError, MissingDependencyError
from gazeqwen_edge.export.onnx_graphs import GraphInfo, TensorSpec
from gazeqwen_edge.export.tensorrt import build_engine, default_profiles


def _resampler_info():
    return GraphInfo(
        kind="resampler",
        file="resampler.onnx",
        inputs=[
            TensorSpec("features", ("batch", "steps", 3, 4, 96), "float32"),
            TensorSpec("gaze_points", ("batch", "steps", "gaze_points", 2), "float32"),
            TensorSpec("gaze_mask", ("batch", "steps", "gaze_points"), "bool"),
            TensorSpec("has_gaze", ("batch",), "bool"),
        ],
        outputs=[TensorSpec("residuals", (2, "batch", "steps", 12, 64), "float32")],
        opset=20,
        config={"grid_hw": [3, 4]},
    )


def test_default_profiles_fill_dynamic_dims_and_keep_static_ones():
    (p,) = default_profiles(_resampler_info(), batch=(1, 1, 2), steps=(1, 4, 32), gaze_points=(1, 2, 8))
    assert p["features"] == ((1, 1, 3, 4, 96), (1, 4, 3, 4, 96), (2, 32, 3, 4, 96))
    assert p["gaze_mask"] == ((1, 1, 1), (1, 4, 2), (2, 32, 8))
    assert p["has_gaze"] == ((1,), (1,), (2,))
    enc = GraphInfo(
        "video_encoder", "e.onnx", [TensorSpec("pixels", ("batch", "frames", 3, 64, 64), "float32")], [], 20,
        config={"n_frames": 8},
    )  # fmt: skip
    assert default_profiles(enc)[0]["pixels"][2] == (4, 8, 3, 64, 64)  # frames fixed at n_frames
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        default_profiles(_resampler_info(), steps=(4, 2, 8))
    bad = _resampler_info()
    bad.inputs[0] = TensorSpec("features", ("batch", "height", 4, 96), "float32")
    with pytest.raises(ConfigError, match="height"):
        default_profiles(bad)


def test_missing_tensorrt_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError) as e:
        build_engine(tmp_path / "g.onnx", tmp_path / "g.engine")
    assert e.value.exit_code == 4 and "pip install tensorrt" in e.value.hint and "JetPack" in e.value.hint


def test_engine_of_the_tiny_resampler_matches_pytorch(tmp_path):
    pytest.importorskip("tensorrt")
    pytest.importorskip("onnxruntime")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU")
    from gazeqwen_edge.export.onnx_graphs import RESAMPLER_INPUTS, export_resampler, resampler_cases
    from gazeqwen_edge.export.tensorrt import TensorRTRunner
    from gazeqwen_edge.model.resampler import GazeResampler
    from gazeqwen_edge.model.tiny import tiny_resampler_config

    torch.manual_seed(0)
    r = GazeResampler(tiny_resampler_config("spatial")).eval()
    with torch.no_grad():
        for p in r.proj_outs:
            p.weight.normal_(0.0, 0.5)
    export_resampler(r, tmp_path / "r.onnx", (3, 4))
    build_engine(tmp_path / "r.onnx", tmp_path / "r.engine", fp16=False)
    runner = TensorRTRunner(tmp_path / "r.engine")
    for name, args in resampler_cases(r.config, (3, 4)).items():
        with torch.no_grad():
            want = r(*args)
        got = runner(**dict(zip(RESAMPLER_INPUTS, args, strict=True)))["residuals"].cpu()
        assert (got - want).abs().max() < 1e-3, name
