"""ONNX graphs of the tiny video encoder and resampler (both gaze encodings): exported with dynamic batch / frames /
steps / gaze points and verified against eager PyTorch; the ONNX runners in place of the PyTorch modules give a
stream the same question logits; verification refuses a graph of other weights; a missing onnxruntime names the
extra. The three exports take most of this file's time (module-scoped)."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from gazeqwen_edge.errors import ConfigError, InputError, MissingDependencyError  # noqa: E402
from gazeqwen_edge.export import onnx_graphs as og  # noqa: E402
from gazeqwen_edge.model.config import VideoEncoderConfig  # noqa: E402
from gazeqwen_edge.model.gaze_encoding import GazeInputs  # noqa: E402
from gazeqwen_edge.model.resampler import GazeResampler  # noqa: E402
from gazeqwen_edge.model.tiny import build_tiny_gazeqwen, tiny_resampler_config  # noqa: E402
from gazeqwen_edge.model.video_encoder import load_video_encoder  # noqa: E402

FRAME_HW = (60, 80)
QUESTION = "What am I looking at?"
SCANPATH = np.array([[0.2, 0.3, 1.0, 1.6], [0.7, 0.6, 3.5, 2.0], [0.5, 0.5, 4.0, 1.0]], np.float32)


@pytest.fixture(scope="module")
def tiny():
    """A tiny stream-regime GazeQwen (spatial resampler, perturbed proj_out) and a reference-encoding resampler of
    the same sizes; tests swap gq.resampler / gq.video_encoder and must restore them."""
    torch.set_num_threads(1)
    gq = build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5, sampling_fps=2.0)
    torch.manual_seed(7)
    ref = GazeResampler(tiny_resampler_config("reference")).eval()
    with torch.no_grad():
        for p in ref.proj_outs:
            p.weight.normal_(0.0, 0.5)
    return gq, {"spatial": gq.resampler, "reference": ref}


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (6, 8, 3)).astype(np.float32)
    out = [np.kron(np.roll(base, i, axis=1), np.ones((10, 10, 1))) + rng.normal(0, 8, (60, 80, 3)) for i in range(10)]
    return np.stack(out).clip(0, 255).astype(np.uint8), np.arange(10) / 2.0


@pytest.fixture(scope="module")
def graphs(tiny, tmp_path_factory):
    """Export the encoder and both resamplers once (each verified by its export)."""
    from gazeqwen_edge.runtime.stream import VideoStream

    gq, resamplers = tiny
    d = tmp_path_factory.mktemp("onnx")
    grid = VideoStream(gq, FRAME_HW, fps=2.0).merged_hw
    infos = {"encoder": og.export_video_encoder(gq.video_encoder, d / "video_encoder.onnx")}
    for enc, r in resamplers.items():
        infos[enc] = og.export_resampler(r, d / f"resampler_{enc}.onnx", grid)
    return d, grid, infos


def test_encoder_graph_has_dynamic_batch_and_frames_and_verifies(graphs):
    d, _, infos = graphs
    info = infos["encoder"]
    assert info.file == "video_encoder.onnx" and info.external_data is None and info.opset == og.DEFAULT_OPSET
    assert info.inputs[0].shape == ("batch", "frames", 3, 64, 64) and info.inputs[0].dtype == "float32"
    assert info.outputs[0].shape == ("batch", "tubelets", 4, 4, 96)
    assert set(info.max_abs_diff) == {f"b{b}_f{f}_{k}" for b in (1, 3) for f in (8, 4) for k in ("random", "scene")}
    assert max(info.max_abs_diff.values()) <= 1e-4
    assert info.config["dynamic_frames"] is True and info.config["n_frames"] == 8
    assert og.graph_info(d / "video_encoder.onnx").to_dict()["inputs"] == info.to_dict()["inputs"]


@pytest.mark.parametrize("enc", ["spatial", "reference"])
def test_resampler_graph_has_dynamic_batch_steps_and_points_and_verifies(graphs, enc):
    _, grid, infos = graphs
    info = infos[enc]
    shapes = {s.name: s.shape for s in info.inputs + info.outputs}
    assert shapes == {
        "features": ("batch", "steps", *grid, 96),
        "gaze_points": ("batch", "steps", "gaze_points", 2),
        "gaze_mask": ("batch", "steps", "gaze_points"),
        "has_gaze": ("batch",),
        "residuals": (2, "batch", "steps", grid[0] * grid[1], 64),
    }
    assert {s.name: s.dtype for s in info.inputs}["gaze_mask"] == "bool"
    assert set(info.max_abs_diff) == {f"b{b}_t{t}_{k}" for b in (1, 3) for t in (2, 5) for k in ("random", "scanpath")}
    assert max(info.max_abs_diff.values()) <= 1e-4
    assert info.config["resampler"]["gaze_encoding"] == enc and info.config["grid_hw"] == list(grid)
    assert og.GraphInfo.from_dict(info.to_dict()) == info


def test_verification_cases_exercise_the_gaze_inputs(tiny, graphs):
    """The scanpath cases have steps without fixations, a sample without gaze and K > 1 (what makes them worth more
    than random inputs); their PyTorch outputs are not zero."""
    _, grid, _ = graphs
    cases = og.resampler_cases(tiny[1]["spatial"].config, grid)
    _, pts, mask, has = cases["b3_t5_scanpath"]
    assert pts.shape[2] > 1 and not mask[0, -1].any() and mask.any() and has.tolist() == [True, True, False]
    with torch.no_grad():
        out = tiny[1]["spatial"](*cases["b3_t5_scanpath"])
    assert out[:, :2].abs().max() > 0.1 and torch.count_nonzero(out[:, 2]) == 0


@pytest.mark.parametrize("enc", ["spatial", "reference"])
def test_onnx_runners_give_a_stream_the_same_logits(tiny, graphs, frames, enc):
    """GazeQwen with OnnxVideoEncoder + OnnxResampler in place of the PyTorch modules: the same gaze residuals and,
    streamed chunk by chunk, the same question logits (and the residuals matter: no-gaze logits differ)."""
    from gazeqwen_edge.runtime.stream import VideoStream

    gq, resamplers = tiny
    d, _, _ = graphs
    clip, times = frames

    def run(encoder, resampler, scanpath=SCANPATH):
        gq.video_encoder, gq.resampler = encoder, resampler
        vs = VideoStream(gq, FRAME_HW, fps=2.0)
        for a, b in ((0, 4), (4, 10)):
            vs.prefill_steps(clip[a:b], times[a:b], a // 2, scanpath, window=[(i, clip[i]) for i in range(b)])
        batch = gq.collate([gq.prepare_frames(clip, 2.0, times, 2.0, scanpath, QUESTION)])
        residuals = gq.gaze_residuals(batch)  # None without a scanpath
        return vs.question_logits(QUESTION), None if residuals is None else residuals[0]

    torch_enc = gq.video_encoder
    try:
        want, want_res = run(torch_enc, resamplers[enc])
        no_gaze, _ = run(torch_enc, resamplers[enc], scanpath=None)
        onnx_enc = og.OnnxVideoEncoder(d / "video_encoder.onnx", threads=1)
        onnx_res = og.OnnxResampler(d / f"resampler_{enc}.onnx", threads=1)
        got, got_res = run(onnx_enc, onnx_res)
    finally:
        gq.video_encoder, gq.resampler = torch_enc, resamplers["spatial"]
    assert got_res.shape == want_res.shape and got_res.dtype == want_res.dtype == torch.float32
    assert (got_res - want_res).abs().max() < 1e-4 and want_res.abs().max() > 0.1
    assert (got - want).abs().max() < 1e-4
    assert (want - no_gaze).abs().max() > 1e-3
    assert onnx_res.config == resamplers[enc].config and onnx_enc.n_frames == torch_enc.n_frames


def test_verification_refuses_a_graph_of_other_weights(tiny, graphs):
    """A graph checked against a module whose gaze projection changed slightly (what a stale or swapped file looks
    like) fails, and says which cases; the exported module itself passes."""
    d, _, _ = graphs
    res = tiny[1]["spatial"]
    path = d / "resampler_spatial.onnx"
    assert max(og.verify_graph(res, path).values()) <= 1e-4
    changed = copy.deepcopy(res)
    with torch.no_grad():
        changed.g_projs[1][0].weight.add_(torch.randn_like(changed.g_projs[1][0].weight) * 1e-2)
    with pytest.raises(og.ExportVerificationError) as e:
        og.verify_graph(changed, path)
    assert e.value.failed and all(v > 1e-4 for v in e.value.failed.values())
    assert str(path) in str(e.value) and e.value.exit_code == 1
    with pytest.raises(og.ExportVerificationError):  # the encoder graph against another encoder's weights
        other = load_video_encoder(VideoEncoderConfig(backend="tiny"), seed=3)
        og.verify_graph(other, d / "video_encoder.onnx", cases=og.encoder_cases(other, batches=(1,)))


def test_runner_refuses_another_grid_and_another_kind(graphs):
    d, grid, _ = graphs
    r = og.OnnxResampler(d / "resampler_spatial.onnx", threads=1)
    gi = GazeInputs.from_scanpaths([SCANPATH], [0.0])
    with pytest.raises(InputError, match="token grid"):
        r(torch.zeros(1, 1, grid[0] + 1, grid[1], 96), gi.points, gi.mask)
    with pytest.raises(ValueError, match="expects d_vjepa=96"):  # the module's own check (ResamplerConfig)
        r(torch.zeros(1, 1, *grid, 95), gi.points, gi.mask)
    with pytest.raises(ValueError, match=r"\(B, T, H, W, d_vjepa\)"):
        r(torch.zeros(1, *grid, 96), gi.points, gi.mask)
    with pytest.raises(InputError, match="not a resampler graph"):
        og.OnnxResampler(d / "video_encoder.onnx")
    with pytest.raises(InputError, match="not found"):
        og.OnnxVideoEncoder(d / "missing.onnx")


def test_make_session_orders_and_filters_providers(graphs, monkeypatch, tmp_path):
    import onnxruntime as ort

    d, _, _ = graphs
    seen = {}

    class FakeSession:
        def __init__(self, path, so, providers, provider_options):
            seen.update(path=path, providers=providers, options=provider_options, threads=so.intra_op_num_threads)

    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider", "TensorrtExecutionProvider"])
    og.make_session(d / "video_encoder.onnx", trt_cache_dir=tmp_path / "cache", threads=2)
    assert seen["providers"] == ["TensorrtExecutionProvider", "CPUExecutionProvider"] and seen["threads"] == 2
    assert seen["options"][0] == {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(tmp_path / "cache"),
        "trt_fp16_enable": True,
    }
    assert (tmp_path / "cache").is_dir()
    with pytest.raises(ConfigError, match="none of the onnxruntime providers"):
        og.make_session(d / "video_encoder.onnx", providers=["CUDAExecutionProvider"])


def test_missing_onnxruntime_names_the_extra(graphs, monkeypatch):
    d, _, _ = graphs
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(MissingDependencyError) as e:
        og.OnnxResampler(d / "resampler_spatial.onnx")
    assert e.value.exit_code == 4 and "gazeqwen-edge[onnx]" in e.value.hint
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match="onnx"):
        og.export_resampler(GazeResampler(tiny_resampler_config()), d / "never.onnx", (2, 2))
