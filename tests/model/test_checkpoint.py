"""Our checkpoint format and the converter from the authors' best_model.pt layout, including the CLI."""

import torch
from typer.testing import CliRunner

from gazeqwen_edge.cli import main
from gazeqwen_edge.cli.app import app
from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.checkpoint import convert_reference_checkpoint, load_checkpoint, save_checkpoint
from gazeqwen_edge.model.config import ResamplerConfig
from gazeqwen_edge.model.resampler import GazeResampler

D_V, D_LLM, NL, DL, FF, N_LLM = 24, 40, 6, 16, 4, 5


def reference_layout_state_dict(n_mod=2, n_blocks=2, seed=0):
    """A state dict built key by key from REFERENCE.md section 1 (not from our module), random values."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    sd = {"amplitude": r(N_LLM)}
    for m in range(n_mod):
        sd[f"latents.{m}"] = r(NL, DL)
        sd[f"proj_ins.{m}.weight"] = r(DL, D_V)
        sd[f"proj_outs.{m}.weight"] = r(D_LLM, DL)
        for i in range(n_blocks):
            for p in ("q_projs", "k_projs", "g_projs", "v_projs"):
                sd[f"{p}.{m}.{i}.weight"], sd[f"{p}.{m}.{i}.bias"] = r(DL, DL), r(DL)
            sd[f"ff_blocks.{m}.{i}.0.weight"], sd[f"ff_blocks.{m}.{i}.0.bias"] = r(DL), r(DL)
            sd[f"ff_blocks.{m}.{i}.1.weight"], sd[f"ff_blocks.{m}.{i}.1.bias"] = r(DL * FF, DL), r(DL * FF)
            sd[f"ff_blocks.{m}.{i}.3.weight"], sd[f"ff_blocks.{m}.{i}.3.bias"] = r(DL, DL * FF), r(DL)
            sd[f"block_norms.{m}.{i}.weight"], sd[f"block_norms.{m}.{i}.bias"] = r(DL), r(DL)
    return sd


def write_reference(path, sd=None, lora=True):
    sd = sd if sd is not None else reference_layout_state_dict()
    ckpt = {
        "state_dict": sd,
        "config": {"d_vjepa": D_V, "d_llm": D_LLM, "n_latents": NL, "d_latent": DL, "n_blocks": 2, "n_layers": N_LLM},
        "lora_state_dict": {
            "base_model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(8, D_LLM),
            "base_model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.randn(D_LLM, 8),
        }
        if lora
        else {},
        "lora_config": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]},
    }
    torch.save(ckpt, path)
    return ckpt


def test_converter_round_trip(tmp_path):
    src = tmp_path / "best_model.pt"
    ckpt = write_reference(src)
    out = convert_reference_checkpoint(src, tmp_path / "ours", injected_layers=(1, 4))
    back = load_checkpoint(out)
    cfg = back.resampler.config
    assert (cfg.d_vjepa, cfg.d_llm, cfg.n_latents, cfg.d_latent, cfg.n_blocks, cfg.ff_mult) == (
        D_V,
        D_LLM,
        NL,
        DL,
        2,
        4,
    )
    assert cfg.injected_layers == (1, 4) and cfg.n_llm_layers == N_LLM
    sd = back.resampler.state_dict()
    assert set(sd) == set(ckpt["state_dict"])
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(sd[k], v), k
    for k, v in ckpt["lora_state_dict"].items():
        assert torch.equal(back.lora_state_dict[k], v)
    assert back.lora_config["r"] == 8
    # loading the same weights with the other encoding keeps every tensor
    sp = load_checkpoint(out, gaze_encoding="spatial")
    assert sp.resampler.config.gaze_encoding == "spatial"
    assert all(torch.equal(a, b) for a, b in zip(sp.resampler.state_dict().values(), sd.values(), strict=True))


def test_save_load_round_trip(tmp_path):
    cfg = ResamplerConfig(d_vjepa=D_V, d_llm=D_LLM, n_latents=NL, d_latent=DL, injected_layers=(0, 3), n_llm_layers=5)
    torch.manual_seed(0)
    r = GazeResampler(cfg).eval()
    with torch.no_grad():
        for p in r.proj_outs:
            p.weight.normal_()
    save_checkpoint(tmp_path / "c", r)
    back = load_checkpoint(tmp_path / "c").resampler.eval()
    assert back.config == cfg
    x, pts, mask = torch.randn(1, 2, 3, 3, D_V), torch.rand(1, 2, 1, 2), torch.ones(1, 2, 1, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(r(x, pts, mask), back(x, pts, mask))


def test_converter_errors(tmp_path):
    import pytest

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(InputError, match="is not a torch checkpoint") as e:  # not told to re-save a peft config
        convert_reference_checkpoint(bad, tmp_path / "o1")
    assert "best_model.pt" in e.value.hint and "LoraConfig" not in e.value.hint
    bad.write_bytes(b"PK\x03\x04 a zip, but not torch's")
    with pytest.raises(InputError, match="weights_only"):
        convert_reference_checkpoint(bad, tmp_path / "o1")
    sd = reference_layout_state_dict()
    del sd["g_projs.1.0.bias"]
    write_reference(tmp_path / "missing.pt", sd)
    with pytest.raises(InputError, match="missing keys.*g_projs.1.0.bias"):
        convert_reference_checkpoint(tmp_path / "missing.pt", tmp_path / "o2", injected_layers=(1, 4))
    sd = reference_layout_state_dict()
    sd["v_projs.0.1.weight"] = torch.zeros(DL, DL + 1)
    write_reference(tmp_path / "shape.pt", sd)
    with pytest.raises(InputError, match="mis-shaped.*v_projs.0.1.weight"):
        convert_reference_checkpoint(tmp_path / "shape.pt", tmp_path / "o3", injected_layers=(1, 4))
    write_reference(tmp_path / "ok.pt")
    with pytest.raises(InputError, match="injected-layers"):  # 2 modules of a 5-layer LLM: layers must be given
        convert_reference_checkpoint(tmp_path / "ok.pt", tmp_path / "o4")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="state_dict"):
        convert_reference_checkpoint(tmp_path / "other.pt", tmp_path / "o5")


def test_converter_rejects_odd_contents_with_input_errors(tmp_path):
    """Whatever a best_model.pt holds, the converter answers with an InputError naming the problem (no
    AttributeError/ValueError tracebacks), and refuses a LoRA that merge_lora would reject at load time."""
    import numpy as np
    import pytest

    def attempt(name, **changes):
        ckpt = write_reference(tmp_path / f"{name}.pt")
        ckpt.update(changes)
        torch.save(ckpt, tmp_path / f"{name}.pt")
        with pytest.raises(InputError) as e:
            convert_reference_checkpoint(tmp_path / f"{name}.pt", tmp_path / f"out_{name}", injected_layers=(1, 4))
        assert not (tmp_path / f"out_{name}").exists()
        return str(e.value)

    sd = reference_layout_state_dict()
    sd["q_projs.0.0.weight"] = "not a tensor"
    assert "q_projs.0.0.weight" in attempt("str_value", state_dict=sd)
    assert "'config' must be a dict" in attempt("config_list", config=[1, 2])
    assert "non-integer d_llm" in attempt("config_str", config={"d_llm": "x"})
    assert "not LLM attention LoRA" in attempt(
        "foreign_lora", lora_state_dict={"visual.qkv.lora_A.weight": torch.zeros(2)}
    )
    assert "lacks A or B" in attempt(
        "half_lora", lora_state_dict={"model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(8, D_LLM)}
    )
    # an object a weights-only load refuses: the message names it and never suggests weights_only=False
    msg = attempt("numpy_scalar", best_val_acc=np.float64(0.7))
    assert "numpy" in msg and "weights_only=False" not in msg and "Unsupported global" in msg


def test_load_checkpoint_rejects_broken_directories(tmp_path):
    import pytest

    cfg = ResamplerConfig(d_vjepa=D_V, d_llm=D_LLM, n_latents=NL, d_latent=DL, injected_layers=(0, 3), n_llm_layers=5)
    good = save_checkpoint(
        tmp_path / "c", GazeResampler(cfg), {"layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(2)}
    )
    (good / "config.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a gazeqwen-edge/resampler-v1 checkpoint config"):
        load_checkpoint(good)
    (good / "config.json").write_text('{"format": "gazeqwen-edge/resampler-v1"}')
    with pytest.raises(InputError, match="no 'resampler' object"):
        load_checkpoint(good)
    # a config value no run writes: refused naming the file (before: "resampler config: ..." and no file)
    import json

    save_checkpoint(good, GazeResampler(cfg))
    doc = json.loads((good / "config.json").read_text())
    doc["resampler"]["step_fixations"] = "newest"
    (good / "config.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="step_fixations must be one of all, latest") as info:
        load_checkpoint(good)
    assert info.value.path == str(good / "config.json")
    save_checkpoint(good, GazeResampler(cfg), {"layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(2)})
    (good / "lora.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="lora.safetensors: cannot read safetensors"):
        load_checkpoint(good)


def test_cli_convert_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    code = main(["convert-checkpoint", str(bad), str(tmp_path / "out")])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert code != 0
    assert "bad.pt" in err and "is not a torch checkpoint" in err and "Traceback" not in err
    assert main(["convert-checkpoint", str(tmp_path / "nope.pt"), str(tmp_path / "out")]) != 0
    assert "file not found" in " ".join(capsys.readouterr().err.split())
    assert main(["convert-checkpoint", str(tmp_path), str(tmp_path / "out")]) != 0
    assert "is a directory" in " ".join(capsys.readouterr().err.split())
    assert main(["demo", "--duration", "100000"]) != 0  # refused at once, not rendered into memory

    write_reference(tmp_path / "best_model.pt")
    res = CliRunner().invoke(
        app, ["convert-checkpoint", str(tmp_path / "best_model.pt"), str(tmp_path / "ours"), "--injected-layers", "1,4"]
    )
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "2 resampler modules for layers [1, 4]" in out and "LoRA with 2 tensors" in out
    assert (tmp_path / "ours" / "resampler.safetensors").is_file()
    # refuses to overwrite a non-empty directory without --force
    assert main(["convert-checkpoint", str(tmp_path / "best_model.pt"), str(tmp_path / "ours")]) != 0
    assert "not empty" in " ".join(capsys.readouterr().err.split())


def test_cli_demo_runs_the_spine_without_warnings(capsys):
    """The demo replays a synthetic session through the streaming session (every stage runs, scripted questions
    with their ground truth), and prints no warning: no FutureWarning from a deprecated transformers argument
    (warnings module) and no deprecation line from transformers' own logger (which writes to stderr)."""
    import logging
    import warnings

    import pytest

    pytest.importorskip("cv2")  # the synthetic scene renders with OpenCV (device extra)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.WARNING)
    root = logging.getLogger("transformers")
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["demo", "--duration", "8", "--max-new-tokens", "3"]) == 0
    finally:
        root.removeHandler(handler)
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    stages = ("preprocess", "qwen_vision", "vjepa", "resampler", "prefill_chunk", "prefill_question", "decode")
    for stage in (*stages, "ttft_from_model_start"):
        assert stage in out
    assert "Which object is the user currently gazing at?" in out and "(truth " in out and "answered right:" in out
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in records] == []
    assert captured.err == ""


def test_a_stopped_demo_scores_only_the_questions_it_asked(capsys, monkeypatch):
    """Ctrl-C before the scripted questions: the closing line read "answered right: 0 of 4" for questions never
    asked; it now says how many were asked and scores those. (The replay is cut after its first scripted question, as
    a Ctrl-C would.)"""
    import pytest

    pytest.importorskip("cv2")
    import gazeqwen_edge.runtime.replay as replay_module

    real = replay_module.replay

    def stopped_after_one(scene, gq, config, out, questions, **kw):
        result = real(scene, gq, config, out, questions[:1], **kw)
        result.interrupted = True
        return result

    monkeypatch.setattr(replay_module, "replay", stopped_after_one)
    assert main(["demo", "--duration", "8", "--max-new-tokens", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "4 scripted multiple-choice questions and 1 open one" in out
    assert "stopped after 1 of the 4 scripted multiple-choice questions; " in out
    assert "answered right: 0 of 1 " in out or "answered right: 1 of 1 " in out, out
