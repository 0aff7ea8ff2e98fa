"""The memory plan (export/plan.py): parameter counts of the real configs on the meta device against hand counts from
the published dims, the NF4 byte formula against bitsandbytes, the KV cache per token and minute, the issue's three
targets, and the rendered table."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.export import plan as P
from gazeqwen_edge.model.config import ResamplerConfig

D, FFN, LAYERS, HEADS, KV_HEADS, VOCAB = 3584, 18944, 28, 28, 4, 152064  # Qwen2.5-VL-7B config.json
KV = KV_HEADS * D // HEADS  # 512


@pytest.fixture(scope="module")
def plan():
    torch.set_num_threads(1)
    return P.memory_plan()


def component(plan, key):
    return next(c for c in plan["components"] if c["key"] == key)


def hand_vision_params() -> int:
    """Qwen2.5-VL-7B vision tower from vision_config: Conv3d patch embed (no bias), 32 blocks (2 RMSNorms, qkv, proj,
    gate/up/down with biases), merger (RMSNorm, 5120 -> 5120 -> 3584 MLP with biases)."""
    vd, vi, depth = 1280, 3420, 32
    block = 2 * vd + (vd * 3 * vd + 3 * vd) + (vd * vd + vd) + 2 * (vd * vi + vi) + (vi * vd + vd)
    merger = vd + (4 * vd * 4 * vd + 4 * vd) + (4 * vd * D + D)
    return 3 * 2 * 14 * 14 * vd + depth * block + merger


def hand_decoder_linear() -> int:
    return LAYERS * (2 * D * D + 2 * D * KV + 3 * D * FFN)


def test_meta_7b_matches_published_total_and_hand_count(plan):
    n = plan["model"]["qwen_params"]
    # the hub's model card lists Qwen2.5-VL-7B-Instruct at 8.29B parameters
    assert abs(n / 1e9 - 8.29) < 0.005
    decoder_other = LAYERS * ((D + 2 * KV) + 2 * D)  # q/k/v biases + two RMSNorms per layer
    hand = hand_vision_params() + 2 * VOCAB * D + hand_decoder_linear() + decoder_other + D
    assert n == hand == 8_292_166_656
    assert component(plan, "vision")["params"] == hand_vision_params()
    assert component(plan, "decoder_other")["params"] == decoder_other


def test_decoder_linear_count_equals_hand_count(plan):
    c = component(plan, "decoder_linear")
    assert c["params"] == hand_decoder_linear()
    assert c["tensors"] == plan["model"]["quantised_tensors"] == LAYERS * 7  # q, k, v, o, gate, up, down


def test_only_decoder_linears_are_quantised(plan):
    assert plan["model"]["tied_lm_head"] is False
    for key in ("vision", "embeddings", "lm_head", "decoder_other", "final_norm", "vjepa", "resampler"):
        c = component(plan, key)
        assert not c["quantised"]
        assert c["bytes"]["nf4_dq"] == c["bytes"]["nf4"] == c["bytes"]["bf16"] == 2 * c["params"], key
    assert component(plan, "lm_head")["params"] == component(plan, "embeddings")["params"] == VOCAB * D


def test_vjepa_and_resampler_counts(plan):
    d, mlp = 768, 3072
    block = 2 * 2 * d + 4 * (d * d + d) + (d * mlp + mlp) + (mlp * d + d)
    assert component(plan, "vjepa")["params"] == (3 * 2 * 16 * 16 * d + d) + 12 * block + 2 * d
    assert abs(component(plan, "resampler")["params"] / 1e6 - 10.8) < 0.05  # REFERENCE section 1: ~10.8M


def test_nf4_formula_by_hand():
    n = 64 * 256 * 3
    assert P.nf4_bytes(n, False) == n // 2 + 4 * n // 64 + 64
    assert P.nf4_bytes(n, True) == n // 2 + n // 64 + 4 * 3 + 256 * 4 + 4 + 64
    assert P.nf4_bytes(65, False) == 33 + 2 * 4 + 64  # a partial block costs a whole absmax
    with pytest.raises(ValueError):
        P.nf4_bytes(0, True)


@pytest.mark.parametrize("shape", [(100, 130), (512, 3584), (7, 9)])
@pytest.mark.parametrize("double_quant", [False, True])
def test_nf4_formula_matches_bitsandbytes(shape, double_quant):
    bnb = pytest.importorskip("bitsandbytes")
    w = torch.randn(*shape, dtype=torch.bfloat16)
    lin = bnb.nn.Linear4bit(
        shape[1], shape[0], bias=False, compute_dtype=torch.bfloat16, compress_statistics=double_quant, quant_type="nf4"
    )
    lin.weight = bnb.nn.Params4bit(w, requires_grad=False, compress_statistics=double_quant, quant_type="nf4")
    lin = lin.to("cpu")  # quantises, with Params4bit's default blocksize, as loading with BitsAndBytesConfig does
    st = lin.weight.quant_state
    tensors = [lin.weight.data, st.absmax, st.code]
    if double_quant:
        tensors += [st.offset, st.state2.absmax, st.state2.code]
    assert st.blocksize == P.NF4_BLOCKSIZE
    assert sum(t.numel() * t.element_size() for t in tensors) == P.nf4_bytes(w.numel(), double_quant)


def test_kv_cache_per_token_and_minute(plan):
    kv = plan["kv"]
    assert kv["bytes_per_token"] == 2 * LAYERS * KV_HEADS * 128 * 2 == 57_344
    v = plan["video"]
    # 1200x1600 within 768 x 28^2 px -> 672x896 (multiples of 28) -> 24 x 32 merged tokens per 2-frame step
    assert v["resized_hw"] == [672, 896] and v["tokens_per_step"] == 768
    assert v["tokens_per_min"] == 768 * 60  # 2 fps: one step per second
    assert kv["bytes_per_min"] == 768 * 60 * 57_344
    assert kv["context_tokens"] == (60 + 1) * 768 + 512  # 60 s + the chunk eviction leaves + text
    assert plan["runtime"]["nf4_dq"]["kv_cache"] == kv["context_tokens"] * 57_344


def test_kv_scales_with_fps_and_context():
    half = P.memory_plan(fps=1.0, context_s=120.0)
    assert half["video"]["tokens_per_min"] == 768 * 30
    assert half["kv"]["context_steps"] == 60 and half["kv"]["context_tokens"] == 61 * 768 + 512
    small = P.memory_plan(frame_size=(480, 640))
    assert small["video"]["tokens_per_step"] < 768


def test_double_quant_saves_on_the_decoder(plan):
    c = component(plan, "decoder_linear")["bytes"]
    n = hand_decoder_linear()
    assert c["bf16"] == 2 * n
    assert c["nf4"] > c["nf4_dq"] + 0.04 * n  # 4 bytes vs ~1 byte of absmax per 64 weights
    assert math.isclose(c["nf4_dq"] / n, 0.5 + 1 / 64 + 4 / (64 * 256), rel_tol=1e-3)


def test_issue_targets_met(plan):
    rows = P.plan_targets(plan)
    assert len(rows) == 3
    for name, value, target, ok in rows:
        assert ok and value <= target, name
    dec, allw, run = rows
    assert 3.3 < dec[1] <= 3.4
    assert 7.0 < allw[1] <= 7.2
    nx = next(t for t in plan["targets"] if t["name"] == "Orin NX 16 GB")
    assert nx["quants"]["nf4_dq"]["fits"] and not nx["quants"]["bf16"]["fits"]
    assert run[1] == pytest.approx(plan["runtime"]["nf4_dq"]["total"] / 1e9)


def test_targets_fit_and_max_context(plan):
    by = {t["name"]: t for t in plan["targets"]}
    assert set(by) == {"Orin Nano 8 GB", "Orin NX 16 GB", "AGX Orin 64 GB", "RTX 24 GB"}
    assert not by["Orin Nano 8 GB"]["quants"]["nf4_dq"]["fits"]
    assert by["Orin Nano 8 GB"]["quants"]["nf4_dq"]["max_context_s"] is None
    assert all(by["AGX Orin 64 GB"]["quants"][q]["fits"] for q in P.QUANTS)
    nx = by["Orin NX 16 GB"]
    mc = nx["quants"]["nf4_dq"]["max_context_s"]
    assert mc >= 60
    at = P.memory_plan(context_s=mc)
    over = P.memory_plan(context_s=mc + 1.0)
    nx_at = next(t for t in at["targets"] if t["name"] == "Orin NX 16 GB")
    nx_over = next(t for t in over["targets"] if t["name"] == "Orin NX 16 GB")
    assert nx_at["quants"]["nf4_dq"]["fits"] and not nx_over["quants"]["nf4_dq"]["fits"]
    for t in plan["targets"]:
        for q in P.QUANTS:
            f = t["quants"][q]
            assert f["headroom"] == t["usable"] - f["need"] and f["fits"] == (f["headroom"] >= 0)


def test_runtime_total_adds_up(plan):
    for q in P.QUANTS:
        r = plan["runtime"][q]
        assert (
            r["total"]
            == r["weights"] + r["kv_cache"] + r["working"]
            == r["weights"] + r["kv_cache"] + sum(i["bytes"] for i in r["working_items"])
        )
    keys = {i["key"] for i in plan["runtime"]["nf4_dq"]["working_items"]}
    assert "dequant" in keys and "dequant" not in {i["key"] for i in plan["runtime"]["bf16"]["working_items"]}


def test_plan_is_json_and_versioned(plan):
    again = json.loads(json.dumps(plan))
    assert again == plan
    assert plan["version"] == P.PLAN_VERSION == 1


def test_render_lists_presets_targets_and_fits_the_terminal(plan):
    text = P.render_plan(plan)
    for t in P.TARGETS:
        assert t.name in text
    assert "57,344 B" in text and "46,080 tokens" in text
    assert len(re.findall(r" met$", text, re.M)) == 3 and "NOT MET" not in text
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= 92
    narrow = P.render_plan(plan, width=60)
    notes = narrow[narrow.index("Assumptions:") :].splitlines()
    assert max(len(line) for line in notes) <= 60


def test_tied_embeddings_counted_once():
    tiny = dict(
        P.QWEN25_VL_7B_CONFIG,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1000,
        tie_word_embeddings=True,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
        vision_config=dict(P.QWEN25_VL_7B_CONFIG["vision_config"], depth=1, hidden_size=32, out_hidden_size=64),
    )
    rs = ResamplerConfig(d_llm=64, n_llm_layers=2, injected_layers=(1,))
    p = P.memory_plan(qwen_config=tiny, resampler=rs)
    assert p["model"]["tied_lm_head"] is True
    assert component(p, "lm_head")["params"] == 0 and component(p, "embeddings")["params"] == 1000 * 64
    assert p["kv"]["bytes_per_token"] == 2 * 2 * 2 * 16 * 2
    with pytest.raises(ConfigError, match="d_llm"):
        P.memory_plan(qwen_config=tiny)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fps": 0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"context_s": -1}, "context_s"),
        ({"chunk_s": "x"}, "chunk_s"),
        ({"frame_size": (0, 10)}, "frame_size"),
        ({"frame_size": "big"}, "frame_size"),
        ({"text_tokens": -1}, "text_tokens"),
    ],
)
def test_bad_settings_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=re.escape(match)):
        P.memory_plan(**kwargs)
