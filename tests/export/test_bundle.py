"""The edge bundle (export/bundle.py, `gazeqwen-edge export`, `replay --bundle`): an fp32 bundle replays exactly like
the unexported model, an NF4 one closely; a bundle with a changed byte, a missing or added file, a newer format version
or engines for another GPU is refused with the command that rebuilds it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from gazeqwen_edge.export.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    engine_key,
    load_bundle,
    verify_bundle,
    write_bundle,
)
from tests.cli.helpers import cli


@pytest.fixture(scope="module")
def source():
    from gazeqwen_edge.runtime.models import load_model

    torch.set_num_threads(1)
    return load_model("demo", device="cpu", dtype="float32", injection="hooks")


@pytest.fixture(scope="module")
def fp32_bundle(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "fp32"
    write_bundle(source, out, source={"model": "demo"}, rebuild="gazeqwen-edge export fp32", quant="none", onnx=False)
    return out


@pytest.fixture(scope="module")
def nf4_bundle(source, tmp_path_factory):
    pytest.importorskip("bitsandbytes", reason="the NF4 path needs the quant extra (bitsandbytes)")
    out = tmp_path_factory.mktemp("b") / "nf4"
    write_bundle(source, out, source={"model": "demo"}, rebuild="gazeqwen-edge export nf4", quant="nf4", onnx=False)
    return out


def test_manifest_records_files_and_verification(fp32_bundle, source):
    m = json.loads((fp32_bundle / MANIFEST).read_text())
    assert m["format_version"] == FORMAT_VERSION and m["rebuild"] == "gazeqwen-edge export fp32"
    assert m["quantization"] == {"method": "none", "skip_modules": []}
    assert "model/qwen/model.safetensors" in m["files"] and "model/gaze/resampler.safetensors" in m["files"]
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in m["files"].values())
    assert m["packages"]["torch"]
    assert m["shapes"]["injected_layers"] == list(source.resampler.config.injected_layers)  # the exported model's
    f = m["verification"]["llm_vs_source"]
    assert f["max_abs_logit_diff"] == 0.0 and f["answer_equal"]


def test_nf4_manifest_records_quantisation_and_closeness(fp32_bundle, nf4_bundle):
    m = json.loads((nf4_bundle / MANIFEST).read_text())
    assert m["rebuild"] == "gazeqwen-edge export nf4"
    q = m["quantization"]
    assert q["method"] == "nf4" and q["double_quant"] and q["skip_modules"] == ["model.visual", "lm_head"]
    assert q["quantized_linears"] == 4 * 7  # 4 decoder layers x (q, k, v, o, gate, up, down)
    v = m["verification"]["llm_vs_source"]
    assert v["top1_agrees"] and 0 < v["max_abs_logit_diff"] < 0.5 * v["logit_scale"]  # close, not identical
    nf4_bytes = m["files"]["model/qwen/model.safetensors"]["bytes"]
    fp32_bytes = json.loads((fp32_bundle / MANIFEST).read_text())["files"]["model/qwen/model.safetensors"]["bytes"]
    assert nf4_bytes < 0.5 * fp32_bytes


def test_loaded_nf4_bundle_has_4bit_decoder_and_full_precision_vision_and_head(nf4_bundle):
    import bitsandbytes as bnb

    gq = load_bundle(nf4_bundle)
    layer = gq.qwen.model.language_model.layers[0]
    assert isinstance(layer.mlp.up_proj, bnb.nn.Linear4bit) and isinstance(layer.self_attn.q_proj, bnb.nn.Linear4bit)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in gq.qwen.model.visual.modules())
    assert type(gq.qwen.lm_head) is torch.nn.Linear
    assert type(gq.injector).__name__ == "FusedInjector"


def _answers(d):
    return [json.loads(line) for line in (d / "answers.jsonl").read_text().splitlines()]


QUESTIONS = (
    '{"t": 3.0, "question": "What am I looking at?"}\n'
    '{"t": 5.5, "question": "Which object?", "options": ["A. red circle", "B. blue box", "C. green star"]}\n'
)


def _replay(tmp_path, capsys, name, *extra):
    q = tmp_path / "q.jsonl"
    q.write_text(QUESTIONS)
    rc, out, err = cli(
        capsys, "replay", "synthetic:3", "-q", q, "--out", tmp_path / name, "--max-new-tokens", "6", *extra
    )
    assert rc == 0, err
    return _answers(tmp_path / name)


@pytest.fixture(scope="module")
def reference_answers(tmp_path_factory):
    """replay of a synthetic session with --model demo and the reference hooks: what the bundles must reproduce."""
    from gazeqwen_edge.cli import main

    d = tmp_path_factory.mktemp("ref")
    q = d / "q.jsonl"
    q.write_text(QUESTIONS)
    argv = ["replay", "synthetic:3", "-q", q, "--out", d / "s", "--max-new-tokens", "6", "--injection", "hooks"]
    assert main([str(a) for a in argv]) == 0
    return _answers(d / "s")


def test_replay_from_an_fp32_bundle_equals_the_unexported_model(tmp_path, capsys, fp32_bundle, reference_answers):
    fp32 = _replay(tmp_path, capsys, "fp32", "--bundle", fp32_bundle)
    assert [a["answer"] for a in fp32] == [a["answer"] for a in reference_answers]
    assert fp32[1]["scores"] == pytest.approx(reference_answers[1]["scores"], abs=1e-5)


def test_replay_from_an_nf4_bundle_is_close(tmp_path, capsys, nf4_bundle, reference_answers):
    """The NF4 bundle: the same multiple-choice answer, and each option's probability (softmax over the options'
    scores) within 0.05 of the fp32 model's: what 4-bit weights cost here. (Log-likelihoods of options the trained
    demo model finds unlikely move by up to ~2 nats; their probabilities stay near 0.)"""
    nf4 = _replay(tmp_path, capsys, "nf4", "--bundle", nf4_bundle)
    assert nf4[1]["answer"] == reference_answers[1]["answer"]

    def probs(scores):
        t = torch.tensor([scores[k] for k in sorted(scores)])
        return torch.softmax(t, 0).tolist()

    assert probs(nf4[1]["scores"]) == pytest.approx(probs(reference_answers[1]["scores"]), abs=0.05)
    assert nf4[1]["scores"] != pytest.approx(reference_answers[1]["scores"], abs=1e-6)  # really 4-bit


@pytest.fixture
def copy_of(tmp_path, fp32_bundle):
    def make():
        d = tmp_path / "copy"
        shutil.copytree(fp32_bundle, d)
        return d

    return make


def test_a_changed_byte_is_refused_with_the_rebuild_command(copy_of, capsys):
    d = copy_of()
    p = d / "model/qwen/model.safetensors"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 mismatch") as e:
        verify_bundle(d)
    assert "gazeqwen-edge export fp32" in str(e.value)
    rc, out, err = cli(capsys, "replay", "synthetic:1", "--bundle", d)
    assert rc == 2 and err.startswith("error:") and "model.safetensors" in err
    assert "rebuild it into a new or emptied directory: gazeqwen-edge export fp32" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "model/gaze/resampler.safetensors").unlink(), "is missing from the bundle"),
        (lambda d: (d / "model/qwen/extra.safetensors").write_bytes(b"x"), "not part of the verified bundle"),
        (lambda d: _edit_manifest(d, format_version=FORMAT_VERSION + 1), "a newer release made it"),
        (lambda d: _edit_manifest(d, format="something-else"), "not a gazeqwen-edge-bundle manifest"),
        (lambda d: (d / MANIFEST).unlink(), "is not a bundle"),
        (lambda d: (d / MANIFEST).write_text("{"), "unreadable manifest"),
    ],
)
def test_damaged_bundles_are_refused(copy_of, damage, message):
    d = copy_of()
    damage(d)
    with pytest.raises(BundleError, match=message):
        load_bundle(d)


def _edit_manifest(d, **changes):
    m = json.loads((d / MANIFEST).read_text())
    m.update(changes)
    (d / MANIFEST).write_text(json.dumps(m))


def test_engines_for_another_gpu_are_refused(copy_of):
    d = copy_of()
    _edit_manifest(d, tensorrt={engine_key("Orin", "10.3.0"): {"files": []}})
    assert verify_bundle(d, gpu=("Orin", "10.3.0"))  # the GPU and TensorRT it was built for
    with pytest.raises(BundleError, match=r"not for this GPU and TensorRT \(NVIDIA_GeForce_RTX_4090_trt10.3.0\)"):
        verify_bundle(d, gpu=("NVIDIA GeForce RTX 4090", "10.3.0"))
    with pytest.raises(BundleError, match="--tensorrt"):
        verify_bundle(d, gpu=("Orin", "10.4.0"))
    assert verify_bundle(d)  # on the CPU the engines are not used


def test_export_cli_writes_a_bundle_replay_loads(tmp_path, capsys):
    rc, out, err = cli(capsys, "export", tmp_path / "b", "--quant", "none", "--no-onnx")
    assert rc == 0, err
    assert "wrote" in out and "greedy answer identical" in out
    m = verify_bundle(tmp_path / "b")
    assert m["rebuild"].startswith("gazeqwen-edge export ") and "--quant none" in m["rebuild"]
    rc, out, err = cli(capsys, "export", tmp_path / "b", "--quant", "none", "--no-onnx")
    assert rc == 2 and "already exists and is not empty" in err


def test_export_from_a_bf16_source_keeps_bf16(tmp_path, capsys):
    """--source-dtype bfloat16 (how a 7B is exported on a machine without 33 GB for fp32): the unquantised LLM is
    saved in bf16, and the rebuild command says so."""
    rc, out, err = cli(capsys, "export", tmp_path / "b", "--quant", "none", "--no-onnx", "--source-dtype", "bfloat16")
    assert rc == 0, err
    m = verify_bundle(tmp_path / "b")
    assert "--source-dtype bfloat16" in m["rebuild"]
    cfg = json.loads((tmp_path / "b/model/qwen/config.json").read_text())
    assert cfg.get("dtype", cfg.get("torch_dtype")) == "bfloat16"


@pytest.mark.parametrize(
    "argv, message, code",
    [
        (["export"], "give the bundle directory", 2),
        (["export", "x", "--quant", "int3"], "--quant", 2),
        (["replay", "synthetic:1", "--bundle", "no/such/bundle"], "no such bundle directory", 2),
        (["replay", "synthetic:1", "--bundle", "b", "--model", "m"], "--bundle brings its own model", 2),
        (["replay", "synthetic:1", "--injection", "magic"], "--injection", 2),
    ],
)
def test_bad_export_and_bundle_options(tmp_path, capsys, monkeypatch, argv, message, code):
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capsys, *argv)
    assert rc == code and message in err and err.startswith("error:")


def test_nf4_without_bitsandbytes_is_exit_4(tmp_path, capsys, monkeypatch, nf4_bundle):
    """(nf4_bundle skips the test where bitsandbytes is really absent; here its absence is simulated.)"""
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import bitsandbytes -> ImportError
    rc, out, err = cli(capsys, "replay", "synthetic:1", "--bundle", nf4_bundle)
    assert rc == 4 and "bitsandbytes" in err and "gazeqwen-edge[quant]" in err
    rc, out, err = cli(capsys, "export", tmp_path / "x", "--no-onnx")
    assert rc == 4 and "bitsandbytes" in err


@pytest.fixture(scope="module")
def onnx_bundle(source, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the ONNX gaze path needs the onnx extra")
    out = tmp_path_factory.mktemp("b") / "onnx"
    write_bundle(source, out, source={"model": "demo"}, rebuild="gazeqwen-edge export onnx", quant="none", onnx=True)
    return out


def test_onnx_bundle_runs_the_gaze_path_on_onnxruntime(onnx_bundle, source):
    """The bundle's encoder and resampler graphs (4:3 and 16:9 token grids) verified at export to 1e-4; loaded, they
    run a 4:3 stream through onnxruntime and give the source model's question logits (1e-4); another grid runs the
    bundle's PyTorch resampler."""
    import numpy as np

    from gazeqwen_edge.model.preprocessing import smart_resize
    from gazeqwen_edge.runtime.stream import VideoStream

    m = json.loads((onnx_bundle / MANIFEST).read_text())
    f = source.patch_size * source.merge  # the merged grids of a 4:3 and a 16:9 camera under the model's budget
    grids = {smart_resize(h, w, f, source.min_pixels, source.max_pixels) for h, w in ((1200, 1600), (720, 1280))}
    assert {"video_encoder", *(f"resampler_{h // f}x{w // f}" for h, w in grids)} <= set(m["onnx"])
    assert len(grids) == 2
    assert all(0 <= v <= 1e-4 for g in m["onnx"].values() for v in g["max_abs_diff"].values())
    assert m["verification"]["gaze_backend"] == "onnx" and m["verification"]["llm_vs_source"]["answer_equal"]
    gq = load_bundle(onnx_bundle)
    assert gq.meta["backend"] == "onnx" and type(gq.video_encoder).__name__ == "OnnxVideoEncoder"
    rng = np.random.default_rng(0)
    scanpath = np.array([[0.3, 0.4, 0.5, 0.8], [0.6, 0.5, 2.0, 1.0]])
    for hw, calls in (((240, 320), (1, 0)), ((200, 200), (1, 1))):
        frames = rng.integers(0, 256, (6, *hw, 3), dtype=np.uint8)
        logits = []
        for model in (source, gq):
            vs = VideoStream(model, frame_hw=hw, fps=2.0)
            vs.prefill_steps(frames, np.arange(6) / 2.0, 0, scanpath)
            logits.append(vs.question_logits("What am I looking at?"))
        torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-4)
        assert (gq.resampler.onnx_calls, gq.resampler.torch_calls) == calls


def test_inputs_go_to_the_device_of_the_bundles_torch_resampler():
    """The bundle's resampler takes its inputs where its PyTorch fallback is (a grid without a graph runs there): CPU
    features sent to a CUDA fallback failed every NF4 bundle run with --torch-device cuda (seen on an H200). The
    meta device stands in for the GPU; a graph's call returns on the features' device."""
    from gazeqwen_edge.export.bundle import GridResampler
    from gazeqwen_edge.model.gazeqwen import module_device
    from gazeqwen_edge.model.resampler import GazeResampler
    from gazeqwen_edge.model.tiny import tiny_resampler_config

    fallback = GazeResampler(tiny_resampler_config()).to("meta")
    grid = GridResampler({}, fallback)
    assert module_device(grid) == torch.device("meta")
    feats = torch.zeros(1, 2, 3, 4, 96, device="meta")
    pts, mask = torch.zeros(1, 2, 1, 2, device="meta"), torch.ones(1, 2, 1, dtype=torch.bool, device="meta")
    assert grid(feats, pts, mask).device == torch.device("meta") and grid.torch_calls == 1

    def graph(f, p, m, h):
        return torch.ones(2, 1, 2, 12, 64, device=f.device)

    assert GridResampler({(3, 4): graph}, fallback)(feats, pts, mask).device == torch.device("meta")


def test_gaze_backend_torch_ignores_the_graphs(onnx_bundle):
    gq = load_bundle(onnx_bundle, gaze_backend="torch")
    assert gq.meta["backend"] == "torch" and type(gq.resampler).__name__ == "GazeResampler"
