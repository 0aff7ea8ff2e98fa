"""The memory plan (`gazeqwen-edge export --plan`): what the real GazeQwen runtime needs on an edge device.

    plan = memory_plan(fps=2.0, frame_size=(1200, 1600), context_s=60.0)   # a JSON-able dict, PLAN_VERSION
    print(render_plan(plan))                                               # plain-text tables, < 100 columns
    for name, value, target, ok in plan_targets(plan): ...                 # the issue's three targets

Parameters are counted, not assumed: the published Qwen2.5-VL-7B-Instruct config (QWEN25_VL_7B_CONFIG) and the
V-JEPA 2.1 ViT-B/16 dimensions (VJEPA21_VITB) are instantiated on the meta device (shapes only, no weights, no
download) and their parameters walked module by module; the gaze resampler is built at ResamplerConfig's defaults.
Sizes are bytes; the text renders them in GB of 1e9 bytes.

Quantisation follows what the runtime loads: bitsandbytes NF4 (blocksize 64) on every nn.Linear except those under
QUANT_SKIP_MODULES (the vision tower and lm_head, REFERENCE.md section 6), i.e. the Linear weights of the LLM decoder
layers; everything else (embeddings, norms, biases, vision tower, lm_head, V-JEPA, resampler) stays bf16.

The runtime total adds the KV cache of the video context (the stream's pixel budget and frame rate) and a working
memory estimate; each target device subtracts a stated OS reserve, CUDA context and host-process allowance from its
memory. These allowances are assumptions, listed in the plan ("assumptions") and printed with it.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.model.config import ResamplerConfig
from gazeqwen_edge.model.preprocessing import VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, smart_resize

PLAN_VERSION = 1
GB = 1e9

# Qwen/Qwen2.5-VL-7B-Instruct, config.json as published on the Hugging Face hub (model repo of that name); the values
# that shape parameters and the KV cache are hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
# num_key_value_heads, vocab_size, tie_word_embeddings and vision_config. Same dims as REFERENCE.md section 1.
QWEN25_VL_7B_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "max_position_embeddings": 128000,
    "max_window_layers": 28,
    "model_type": "qwen2_5_vl",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32,
        "hidden_act": "silu",
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "spatial_patch_size": 14,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vocab_size": 152064,
}

# V-JEPA 2.1 ViT-B/16 at 384 px, what VideoEncoderConfig's default (torch.hub `vjepa2_1_vit_base_384`) loads:
# width 768, 12 blocks, 12 heads, MLP 3072 (ratio 4), patch 16, tubelet 2 (REFERENCE.md section 3, standard ViT-B).
# The 2.1 code is not in transformers, so its encoder is counted with transformers' VJEPA2 encoder at these dims as a
# stand-in (same layout: Conv3d tubelet embedding, pre-norm blocks with q/k/v/proj + GELU MLP, RoPE so no position
# table, final LayerNorm; the predictor is not loaded at inference and not counted). Parameters the 2.1 release adds
# beyond this layout (its modality embeddings, O(width) each) are left out.
VJEPA21_VITB: dict[str, Any] = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "mlp_ratio": 4.0,
    "patch_size": 16,
    "tubelet_size": 2,
    "crop_size": 384,
    "frames_per_clip": 16,
}

# Modules bitsandbytes leaves in full precision (BitsAndBytesConfig(llm_int8_skip_modules=...), REFERENCE section 6).
QUANT_SKIP_MODULES = ("model.visual", "lm_head")
# bitsandbytes 4-bit storage (bitsandbytes/functional.py quantize_4bit + QuantState, 0.50.2): two 4-bit codes per uint8;
# one float32 absmax per block of NF4_BLOCKSIZE weights (Params4bit's default blocksize); the NF4 code book (16 float32,
# QuantState.code). Double quant (compress_statistics=True): absmax - mean(absmax) is quantised by quantize_blockwise
# with blocksize 256 to uint8, keeping a float32 absmax per 256 absmax values (state2.absmax), its own copy of the 8-bit
# dynamic code (256 float32, state2.code) and the float32 offset.
NF4_BLOCKSIZE = 64
NF4_NESTED_BLOCKSIZE = 256
NF4_CODE_BYTES = 16 * 4
NF4_NESTED_CODE_BYTES = 256 * 4
NF4_OFFSET_BYTES = 4
BF16 = 2

QUANTS = ("bf16", "nf4", "nf4_dq")
QUANT_LABELS = {"bf16": "bf16", "nf4": "NF4", "nf4_dq": "NF4+DQ"}

DEFAULT_FRAME_SIZE = (1200, 1600)  # (height, width): Neon's scene camera, the stream's frame_hw (runtime/stream.py)
DEFAULT_FPS = 2.0  # the runtime's --fps
DEFAULT_CHUNK_S = 1.0  # the runtime's --chunk
DEFAULT_CONTEXT_S = 60.0  # the runtime's default --window
DEFAULT_TEXT_TOKENS = 512  # system prompt + question + answer held in the cache next to the video (an allowance)


@dataclass(frozen=True)
class Target:
    """A device the plan checks. memory_gb: nominal memory in GB (taken as memory_gb * 1e9 bytes, a little below the
    GiB the parts carry); shared: CPU and GPU share it (Jetson); reserve_gb: OS, desktop and firmware carve-outs (or
    the display on a desktop card); cuda_context_gb: CUDA context + cuBLAS/cuDNN handles and workspaces;
    host_gb: the Python process's own memory (interpreter, torch and library code, frame queues), charged only where
    it comes out of the same memory."""

    name: str
    memory_gb: float
    shared: bool
    reserve_gb: float
    cuda_context_gb: float
    host_gb: float

    @property
    def usable_bytes(self) -> int:
        return int(round((self.memory_gb - self.reserve_gb - self.cuda_context_gb - self.host_gb) * GB))


JETSON_RESERVE_GB = 2.0  # assumption: JetPack (Ubuntu + desktop) idles at ~1.5-2 GB, plus carve-outs
JETSON_CUDA_CONTEXT_GB = 1.0  # assumption: the CUDA context + libraries of a torch process on Jetson, ~1 GB
JETSON_HOST_GB = 0.5  # assumption: Python, torch and the session's frame buffers in the same memory
TARGETS: tuple[Target, ...] = (
    Target("Orin Nano 8 GB", 8.0, True, JETSON_RESERVE_GB, JETSON_CUDA_CONTEXT_GB, JETSON_HOST_GB),
    Target("Orin NX 16 GB", 16.0, True, JETSON_RESERVE_GB, JETSON_CUDA_CONTEXT_GB, JETSON_HOST_GB),
    Target("AGX Orin 64 GB", 64.0, True, JETSON_RESERVE_GB, JETSON_CUDA_CONTEXT_GB, JETSON_HOST_GB),
    Target("RTX 24 GB", 24.0, False, 0.5, 0.5, 0.0),  # display/driver 0.5 GB, CUDA context 0.5 GB in VRAM
)
ISSUE_TARGET_DEVICE = "Orin NX 16 GB"
ISSUE_DECODER_GB = 3.4
ISSUE_WEIGHTS_GB = 7.2


# ---------------------------------------------------------------------------------------------------- byte formulas
def nf4_bytes(numel: int, double_quant: bool, blocksize: int = NF4_BLOCKSIZE) -> int:
    """Bytes bitsandbytes keeps for one weight tensor of `numel` values quantised to NF4 (see the constants above):
    ceil(numel / 2) packed codes + per block of `blocksize` one float32 absmax (double_quant: one uint8, plus a
    float32 absmax per NF4_NESTED_BLOCKSIZE absmax values, the nested 8-bit code book and the float32 offset) + the
    NF4 code book. Raises ValueError for numel < 1 or blocksize < 1."""
    if numel < 1 or blocksize < 1:
        raise ValueError(f"need numel >= 1 and blocksize >= 1, got {numel}, {blocksize}")
    n_blocks = math.ceil(numel / blocksize)
    packed = math.ceil(numel / 2)
    if not double_quant:
        return packed + 4 * n_blocks + NF4_CODE_BYTES
    n_blocks2 = math.ceil(n_blocks / NF4_NESTED_BLOCKSIZE)
    return packed + n_blocks + 4 * n_blocks2 + NF4_NESTED_CODE_BYTES + NF4_OFFSET_BYTES + NF4_CODE_BYTES


def tensor_bytes(numel: int, quantised: bool, quant: str) -> int:
    """Bytes of one tensor at `quant` ("bf16", "nf4", "nf4_dq"): bf16 unless it is a quantised weight under NF4."""
    if quant not in QUANTS:
        raise ValueError(f"quant must be one of {QUANTS}, got {quant!r}")
    if quant == "bf16" or not quantised:
        return BF16 * numel
    return nf4_bytes(numel, double_quant=quant == "nf4_dq")


def kv_bytes_per_token(text_config) -> int:
    """Bytes of KV cache one token takes in bf16: 2 (K and V) x layers x KV heads x head dim x 2 B."""
    head_dim = getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads
    return 2 * text_config.num_hidden_layers * text_config.num_key_value_heads * head_dim * BF16


# ---------------------------------------------------------------------------------------------------- meta models
def qwen_meta_model(config: dict[str, Any] | None = None):
    """Qwen2_5_VLForConditionalGeneration of `config` (a config.json dict, default QWEN25_VL_7B_CONFIG) on the meta
    device: every parameter has its real shape and no storage. Raises ConfigError for a config transformers rejects."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    try:
        cfg = Qwen2_5_VLConfig(**dict(config or QWEN25_VL_7B_CONFIG))
        with torch.device("meta"):
            return Qwen2_5_VLForConditionalGeneration(cfg)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot build Qwen2.5-VL from this config ({e})") from e


def vjepa_meta_encoder(config: dict[str, Any] | None = None) -> nn.Module:
    """The V-JEPA encoder (transformers VJEPA2Model.encoder, predictor dropped) of `config` (VJEPA2Config keywords,
    default VJEPA21_VITB) on the meta device."""
    from transformers import VJEPA2Config, VJEPA2Model

    with torch.device("meta"):
        return VJEPA2Model(VJEPA2Config(**dict(config or VJEPA21_VITB))).encoder


def _skipped(name: str, skip: tuple[str, ...]) -> bool:
    return any(name == s or name.startswith(s + ".") for s in skip)


def qwen_components(model, skip: tuple[str, ...] = QUANT_SKIP_MODULES) -> dict[str, Any]:
    """Parameter counts of a (meta) Qwen2.5-VL by component, from its module tree.

    Returns {"vision", "embeddings", "decoder_other", "final_norm", "lm_head": int params;
    "decoder_linear": [numel of each quantised weight]; "tied": bool}. A parameter shared by two modules (tied
    lm_head) is counted once, under the first (the embeddings). Quantised = the weight of an nn.Linear not under
    `skip`. Raises ConfigError for a parameter outside the known components or a quantised weight outside the
    decoder layers (the layout changed: the plan would be wrong)."""
    quantised = {
        f"{name}.weight"
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and not _skipped(name, skip)
    }
    groups = {
        "model.visual.": "vision",
        "model.language_model.embed_tokens.": "embeddings",
        "model.language_model.layers.": "decoder",
        "model.language_model.norm.": "final_norm",
        "lm_head.": "lm_head",
    }
    out: dict[str, Any] = {k: 0 for k in ("vision", "embeddings", "decoder_other", "final_norm", "lm_head")}
    out["decoder_linear"] = []
    for name, p in model.named_parameters():  # shared parameters are yielded once
        group = next((g for prefix, g in groups.items() if name.startswith(prefix)), None)
        if group is None:
            raise ConfigError(f"memory plan: parameter {name} is outside the known Qwen2.5-VL components")
        if name in quantised:
            if group != "decoder":
                raise ConfigError(f"memory plan: {name} would be quantised but is not in the decoder layers")
            out["decoder_linear"].append(p.numel())
        else:
            out["decoder_other" if group == "decoder" else group] += p.numel()
    out["tied"] = model.lm_head.weight is model.get_input_embeddings().weight
    return out


def count_params(module: nn.Module) -> int:
    """Number of distinct parameters of a module."""
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------- the plan
def _component(key: str, name: str, params: int, tensors: list[int] | None = None) -> dict[str, Any]:
    """One row of the weights table: `tensors` (numel of each quantised weight) or `params` bf16 parameters."""
    if tensors is not None:
        b = {q: sum(tensor_bytes(n, True, q) for n in tensors) for q in QUANTS}
        return {
            "key": key,
            "name": name,
            "params": sum(tensors),
            "quantised": True,
            "tensors": len(tensors),
            "bytes": b,
        }
    return {"key": key, "name": name, "params": params, "quantised": False, "bytes": {q: BF16 * params for q in QUANTS}}


def _check_positive(name: str, value, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(None, f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InputError(None, f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def memory_plan(
    fps: float = DEFAULT_FPS,
    frame_size: tuple[int, int] = DEFAULT_FRAME_SIZE,
    context_s: float = DEFAULT_CONTEXT_S,
    chunk_s: float = DEFAULT_CHUNK_S,
    text_tokens: int = DEFAULT_TEXT_TOKENS,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int = VIDEO_MAX_PIXELS,
    qwen_config: dict[str, Any] | None = None,
    vjepa_config: dict[str, Any] | None = None,
    resampler: ResamplerConfig | None = None,
    targets: tuple[Target, ...] = TARGETS,
) -> dict[str, Any]:
    """The memory plan of the streaming runtime as a JSON-able dict (key "version" = PLAN_VERSION).

    fps: model frames per second (the runtime's --fps; 2 frames make one temporal step of 2 / fps s); frame_size:
    (height, width) px of the scene frames, resized within [min_pixels, max_pixels] as the stream does
    (model/preprocessing.smart_resize, factor patch x merge = 28); context_s: seconds of video kept in the KV cache
    (the runtime's --window; the stream evicts whole chunks, so one more chunk is held); chunk_s: seconds per
    prefilled chunk (rounded to whole steps, at least 1, as SessionConfig.chunk_steps); text_tokens: cache allowance
    for the prompt, question and answer. qwen_config / vjepa_config / resampler: the model (defaults: the published
    Qwen2.5-VL-7B, V-JEPA 2.1 ViT-B/384, the reference resampler).

    Working memory (bf16 activations at batch 1, summed): one decoder layer on one chunk of n video tokens (5 hidden-
    size tensors: residual, norm, query, attention output, gaze residual; the chunk's new K and V; gate, up and their
    product at the MLP width); the KV append (DynamicCache concatenates, so one layer's K and V exist twice for a
    moment); the vision tower on one chunk (float32 patches + one block: 7 hidden-width tensors and 3 at the MLP
    width); V-JEPA on one chunk (its float32 16-frame windows + one block: 7 width and 2 MLP-width tensors over the
    8 x 24 x 24 tokens of a window); the stream's float32 V-JEPA frame cache; under NF4 the bf16 copy bitsandbytes
    dequantises the largest Linear weight into for a multi-token matmul.

    Keys: version, sources, settings, model (parameter totals), components (weights table rows with bytes per
    quant), weights / qwen_weights / decoder_weights (bytes per quant), video (tokens per step/second/minute), kv
    (bytes per token/minute, context), runtime (per quant: weights, KV, working items and total), targets (per
    device: usable bytes and, per quant, need / headroom / fits / max_context_s), assumptions (strings).
    Raises InputError for bad numbers, ConfigError for an inconsistent model config.
    """
    fps = _check_positive("fps", fps)
    context_s = _check_positive("context_s", context_s, allow_zero=True)
    chunk_s = _check_positive("chunk_s", chunk_s)
    if not isinstance(text_tokens, int) or isinstance(text_tokens, bool) or text_tokens < 0:
        raise InputError(None, f"text_tokens must be an integer >= 0, got {text_tokens!r}")
    try:
        h, w = (int(x) for x in frame_size)
    except (TypeError, ValueError):
        raise InputError(None, f"frame_size must be (height, width), got {frame_size!r}") from None
    if min(h, w) <= 0:
        raise InputError(None, f"frame_size must be positive, got {h}x{w}")

    model = qwen_meta_model(qwen_config)
    qcfg = model.config
    tcfg, vcfg = qcfg.text_config, qcfg.vision_config
    parts = qwen_components(model)
    rcfg = resampler or ResamplerConfig()
    if rcfg.d_llm != tcfg.hidden_size:
        raise ConfigError(f"memory plan: resampler d_llm {rcfg.d_llm} != the LLM's hidden size {tcfg.hidden_size}")
    from gazeqwen_edge.model.resampler import GazeResampler

    with torch.device("meta"):
        n_resampler = count_params(GazeResampler(rcfg))
    vj = dict(vjepa_config or VJEPA21_VITB)
    n_vjepa = count_params(vjepa_meta_encoder(vj))

    lm_head_name = "lm_head (tied to the embeddings)" if parts["tied"] else "lm_head (untied, kept bf16)"
    components = [
        _component("vision", "vision tower (model.visual), kept bf16", parts["vision"]),
        _component("embeddings", "token embeddings", parts["embeddings"]),
        _component("decoder_linear", "decoder layers: Linear weights", 0, parts["decoder_linear"]),
        _component("decoder_other", "decoder layers: norms + biases", parts["decoder_other"]),
        _component("final_norm", "final norm", parts["final_norm"]),
        _component("lm_head", lm_head_name, parts["lm_head"]),
        _component("vjepa", "V-JEPA 2.1 ViT-B encoder", n_vjepa),
        _component("resampler", f"gaze resampler ({rcfg.n_modules} modules)", n_resampler),
    ]
    weights = {q: sum(c["bytes"][q] for c in components) for q in QUANTS}
    qwen_keys = ("vision", "embeddings", "decoder_linear", "decoder_other", "final_norm", "lm_head")
    qwen_weights = {q: sum(c["bytes"][q] for c in components if c["key"] in qwen_keys) for q in QUANTS}
    decoder = {q: sum(c["bytes"][q] for c in components if c["key"].startswith("decoder")) for q in QUANTS}

    # video tokens: Qwen's patch 14, 2x2 merge, temporal patch 2 (vision_config)
    factor = vcfg.patch_size * vcfg.spatial_merge_size
    rh, rw = smart_resize(h, w, factor, min_pixels, max_pixels)
    mh, mw = rh // factor, rw // factor
    tokens_per_step = mh * mw
    tp = vcfg.temporal_patch_size
    step_s = tp / fps
    chunk_steps = max(1, round(chunk_s * fps / tp))
    context_steps = math.ceil(context_s / step_s - 1e-9)
    kv_token = kv_bytes_per_token(tcfg)
    tokens_per_s = tokens_per_step / step_s
    video = {
        "resized_hw": [rh, rw],
        "merged_hw": [mh, mw],
        "tokens_per_step": tokens_per_step,
        "step_s": step_s,
        "chunk_steps": chunk_steps,
        "tokens_per_s": tokens_per_s,
        "tokens_per_min": tokens_per_s * 60,
    }

    def kv_tokens(steps: int) -> int:
        return (steps + chunk_steps) * tokens_per_step + text_tokens

    head_dim = getattr(tcfg, "head_dim", None) or tcfg.hidden_size // tcfg.num_attention_heads
    kv = {
        "layers": tcfg.num_hidden_layers,
        "kv_heads": tcfg.num_key_value_heads,
        "head_dim": head_dim,
        "bytes_per_token": kv_token,
        "bytes_per_min": int(round(tokens_per_s * 60 * kv_token)),
        "context_steps": context_steps,
        "context_tokens": kv_tokens(context_steps),
        "context_bytes": kv_tokens(context_steps) * kv_token,
    }

    biggest_linear = max(parts["decoder_linear"])

    def working(steps: int, quant: str) -> list[dict[str, Any]]:
        """Working-memory items (bytes) with `steps` context steps held, at `quant`."""
        n = chunk_steps * tokens_per_step
        kv_dim = tcfg.num_key_value_heads * head_dim
        patches = chunk_steps * (rh // vcfg.patch_size) * (rw // vcfg.patch_size)
        vd, vi = vcfg.hidden_size, vcfg.intermediate_size
        v_tokens = (vj["frames_per_clip"] // vj["tubelet_size"]) * (vj["crop_size"] // vj["patch_size"]) ** 2
        jd = vj["hidden_size"]
        jm = int(jd * vj["mlp_ratio"])
        frame_px = 3 * vj["crop_size"] ** 2
        items = [
            (
                "llm_chunk",
                "LLM decoder layer on one chunk",
                BF16 * n * (5 * tcfg.hidden_size + 2 * kv_dim + 3 * tcfg.intermediate_size),
            ),
            (
                "kv_append",
                "KV append (torch.cat copies one layer's K, V)",
                kv_tokens(steps) * kv_token // tcfg.num_hidden_layers,
            ),
            (
                "vision_chunk",
                "vision tower on one chunk (patches + one block)",
                patches * 3 * tp * vcfg.patch_size**2 * 4 + BF16 * patches * (4 * vd + 3 * vd + 3 * vi),
            ),
            (
                "vjepa_chunk",
                "V-JEPA on one chunk (windows + one block)",
                chunk_steps * (vj["frames_per_clip"] * frame_px * 4 + BF16 * v_tokens * (7 * jd + 2 * jm)),
            ),
            (
                "vjepa_frames",
                "V-JEPA frame cache (n_frames + 2 x chunk steps)",
                (vj["frames_per_clip"] + 2 * chunk_steps) * frame_px * 4,
            ),
        ]
        if quant != "bf16":
            items.append(("dequant", "NF4: bf16 copy of the largest Linear weight", BF16 * biggest_linear))
        return [{"key": k, "name": name, "bytes": int(b)} for k, name, b in items]

    def need(steps: int, quant: str) -> int:
        return weights[quant] + kv_tokens(steps) * kv_token + sum(i["bytes"] for i in working(steps, quant))

    runtime = {}
    for q in QUANTS:
        items = working(context_steps, q)
        runtime[q] = {
            "weights": weights[q],
            "kv_cache": kv["context_bytes"],
            "working": sum(i["bytes"] for i in items),
            "working_items": items,
            "total": need(context_steps, q),
        }

    def max_context_s(usable: int, quant: str) -> float | None:
        """Longest video context (whole steps, in s) that fits `usable` bytes; None if not even one chunk fits."""
        if need(0, quant) > usable:
            return None
        lo, hi = 0, 1
        while need(hi, quant) <= usable:
            lo, hi = hi, hi * 2
        while hi - lo > 1:  # need() grows with steps: bisect for the last step count that fits
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if need(mid, quant) <= usable else (lo, mid)
        return lo * step_s

    target_rows = []
    for t in targets:
        usable = t.usable_bytes
        fits = {}
        for q in QUANTS:
            total = runtime[q]["total"]
            fits[q] = {
                "need": total,
                "headroom": usable - total,
                "fits": total <= usable,
                "max_context_s": max_context_s(usable, q),
            }
        target_rows.append({**asdict(t), "memory": int(round(t.memory_gb * GB)), "usable": usable, "quants": fits})

    eager_scores = BF16 * tcfg.num_attention_heads * chunk_steps * tokens_per_step * kv_tokens(context_steps)
    assumptions = [
        "GB = 1e9 bytes. A device's memory is its nominal size in GB (the parts carry as many GiB, of which the OS "
        "sees a little less).",
        f"NF4: bitsandbytes 4-bit, blocksize {NF4_BLOCKSIZE}, on every Linear except {', '.join(QUANT_SKIP_MODULES)} "
        "(llm_int8_skip_modules); double quant (DQ) stores the absmax as uint8 with a float32 scale per 256. "
        "Embeddings, norms, biases, vision tower, lm_head, V-JEPA and resampler stay bf16.",
        "V-JEPA and the resampler are counted at bf16; GazeQwen.from_pretrained currently loads V-JEPA in float32 "
        f"(+{BF16 * n_vjepa / GB:.2f} GB) and the resampler in its checkpoint's dtype.",
        f"KV cache in bf16; the context holds {context_s:g} s of video plus one chunk (eviction drops whole chunks) "
        f"plus {text_tokens} text tokens.",
        "Working memory: the items listed, summed (the caching allocator keeps freed blocks, so the peaks of "
        "consecutive stages add up); attention through sdpa's memory-efficient kernels (no score matrix). Eager "
        f"attention would add {eager_scores / GB:.2f} GB of scores for one chunk against the whole context.",
        f"Jetson (shared memory): OS + desktop + carve-outs {JETSON_RESERVE_GB:g} GB, CUDA context and libraries "
        f"{JETSON_CUDA_CONTEXT_GB:g} GB, Python process {JETSON_HOST_GB:g} GB (assumed, not measured here); "
        "headless saves ~0.5-1 GB. Load a pre-quantised NF4 checkpoint there: quantising at load holds bf16 shards.",
        "RTX card: 0.5 GB for the display/driver and 0.5 GB CUDA context in VRAM; host memory is separate.",
    ]
    return {
        "version": PLAN_VERSION,
        "sources": {
            "qwen": "Qwen/Qwen2.5-VL-7B-Instruct config.json (published values)" if qwen_config is None else "custom",
            "vjepa": "V-JEPA 2.1 ViT-B/16 384 px dims on transformers' VJEPA2 encoder"
            if vjepa_config is None
            else "custom",
            "resampler": "ResamplerConfig defaults (the reference)" if resampler is None else "custom",
            "instantiated": "meta device (shapes, no weights)",
        },
        "settings": {
            "fps": fps,
            "frame_size": [h, w],
            "context_s": context_s,
            "chunk_s": chunk_s,
            "text_tokens": text_tokens,
            "min_pixels": min_pixels,
            "max_pixels": max_pixels,
        },
        "model": {
            "total_params": sum(c["params"] for c in components),
            "qwen_params": sum(c["params"] for c in components if c["key"] in qwen_keys),
            "tied_lm_head": parts["tied"],
            "quantised_tensors": len(parts["decoder_linear"]),
        },
        "components": components,
        "weights": weights,
        "qwen_weights": qwen_weights,
        "decoder_weights": decoder,
        "video": video,
        "kv": kv,
        "runtime": runtime,
        "targets": target_rows,
        "assumptions": assumptions,
    }


def plan_targets(plan: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """The issue's three targets as (name, value GB, target GB, met): the LLM decoder layers at NF4 + double quant
    <= 3.4 GB; all weights at NF4 + double quant (vision tower, embeddings, lm_head in bf16) <= 7.2 GB; the whole
    runtime at NF4 + double quant with the plan's video context needs no more than Orin NX 16 GB's usable memory.
    Raises ConfigError when the plan has no Orin NX 16 GB target."""
    dec = plan["decoder_weights"]["nf4_dq"] / GB
    allw = plan["weights"]["nf4_dq"] / GB
    nx = next((t for t in plan["targets"] if t["name"] == ISSUE_TARGET_DEVICE), None)
    if nx is None:
        raise ConfigError(f"the plan has no {ISSUE_TARGET_DEVICE} target")
    need = nx["quants"]["nf4_dq"]["need"] / GB
    usable = nx["usable"] / GB
    ctx = plan["settings"]["context_s"]
    return [
        ("LLM decoder layers, NF4 + double quant (GB)", dec, ISSUE_DECODER_GB, dec <= ISSUE_DECODER_GB),
        ("all weights, NF4 + DQ, rest bf16 (GB)", allw, ISSUE_WEIGHTS_GB, allw <= ISSUE_WEIGHTS_GB),
        (f"runtime, {ctx:g} s video, NF4 + DQ vs {ISSUE_TARGET_DEVICE} usable (GB)", need, usable, need <= usable),
    ]


# ---------------------------------------------------------------------------------------------------- rendering
def _gb(b: float, digits: int = 3) -> str:
    return f"{b / GB:.{digits}f}"


def _params(n: int) -> str:
    return f"{n / 1e6:,.1f} M"


def render_plan(plan: dict[str, Any], width: int | None = None) -> str:
    """The plan as plain text (no colour): weights per component and quant, video tokens and KV cache, working memory,
    runtime totals, the target devices (fits / headroom / longest video context) and the assumptions. Tables are at
    most 92 columns; the notes wrap at `width` (default 92, at most 99, at least 40)."""
    width = max(40, min(width or 92, 99))
    s, v, kv = plan["settings"], plan["video"], plan["kv"]
    out: list[str] = []
    add = out.append
    q3 = [QUANT_LABELS[q] for q in QUANTS]
    src = plan["sources"]
    add("GazeQwen memory plan (GB = 1e9 bytes)")
    for line in (
        f"LLM: {src['qwen']}; video encoder: {src['vjepa']}; resampler: {src['resampler']}; instantiated on the "
        f"{src['instantiated']}.",
    ):
        add(textwrap.fill(line, width=width))
    add("")
    add(f"{'Weights':<44}{'params':>12}{q3[0]:>12}{q3[1]:>12}{q3[2]:>12}")
    for c in plan["components"]:
        name = c["name"] + (" *" if c["quantised"] else "")
        b = c["bytes"]
        add(f"  {name:<42}{_params(c['params']):>12}{_gb(b['bf16']):>12}{_gb(b['nf4']):>12}{_gb(b['nf4_dq']):>12}")
    for label, key in (("Qwen2.5-VL alone", "qwen_weights"), ("all weights", "weights")):
        b = plan[key]
        n = plan["model"]["qwen_params" if key == "qwen_weights" else "total_params"]
        add(f"  {label:<42}{_params(n):>12}{_gb(b['bf16']):>12}{_gb(b['nf4']):>12}{_gb(b['nf4_dq']):>12}")
    add(f"  * quantised under NF4 ({plan['model']['quantised_tensors']} tensors); everything else stays bf16.")
    add("")
    h, w = s["frame_size"]
    rh, rw = v["resized_hw"]
    mh, mw = v["merged_hw"]
    add(
        f"Video: {s['fps']:g} fps, {w}x{h} frames -> {rw}x{rh} px -> {mw}x{mh} = {v['tokens_per_step']} tokens "
        f"per {v['step_s']:g} s step"
    )
    add(
        f"  KV cache per token: 2 (K, V) x {kv['layers']} layers x {kv['kv_heads']} KV heads x {kv['head_dim']} x "
        f"2 B = {kv['bytes_per_token']:,} B"
    )
    add(f"  per minute of video: {v['tokens_per_min']:,.0f} tokens, {_gb(kv['bytes_per_min'])} GB")
    add(
        f"  context: {s['context_s']:g} s + one {v['chunk_steps']}-step chunk + {s['text_tokens']} text tokens = "
        f"{kv['context_tokens']:,} tokens, {_gb(kv['context_bytes'])} GB"
    )
    add("")
    add(f"{'Runtime with ' + format(s['context_s'], 'g') + ' s of video (GB)':<56}{q3[0]:>12}{q3[1]:>12}{q3[2]:>12}")
    rt = plan["runtime"]
    add(f"  {'weights':<54}" + "".join(f"{_gb(rt[q]['weights']):>12}" for q in QUANTS))
    add(f"  {'KV cache':<54}" + "".join(f"{_gb(rt[q]['kv_cache']):>12}" for q in QUANTS))
    items = {i["key"]: i for q in QUANTS for i in rt[q]["working_items"]}
    for key, item in items.items():
        cells = []
        for q in QUANTS:
            b = next((i["bytes"] for i in rt[q]["working_items"] if i["key"] == key), None)
            cells.append(f"{'-' if b is None else _gb(b):>12}")
        add(f"  {'  ' + item['name']:<54}" + "".join(cells))
    add(f"  {'working memory':<54}" + "".join(f"{_gb(rt[q]['working']):>12}" for q in QUANTS))
    add(f"  {'total':<54}" + "".join(f"{_gb(rt[q]['total']):>12}" for q in QUANTS))
    add("")
    add("Targets (GB): usable = memory - OS reserve - CUDA context - host process")
    add("  cells: fits, headroom; max video: the longest context that fits at NF4+DQ")
    add(f"  {'device':<16}{'memory':>7}{'usable':>8}{q3[0]:>14}{q3[1]:>14}{q3[2]:>14}{'max video, DQ':>16}")
    for t in plan["targets"]:
        cells = []
        for q in QUANTS:
            f = t["quants"][q]
            cells.append(f"{'yes' if f['fits'] else 'no':>6} {f['headroom'] / GB:+7.2f}")
        mc = t["quants"]["nf4_dq"]["max_context_s"]
        mc_s = "none" if mc is None else f"{mc / 60:,.1f} min"
        add(f"  {t['name']:<16}{t['memory_gb']:>7.0f}{t['usable'] / GB:>8.2f}{''.join(cells)}{mc_s:>16}")
    add("")
    add("Issue targets:")
    for name, value, target, ok in plan_targets(plan):
        add(f"  {name:<66}{value:>8.3f} <= {target:<6.3f} {'met' if ok else 'NOT MET'}")
    add("")
    add("Assumptions:")
    for a in plan["assumptions"]:
        add(textwrap.fill(a, width=width, initial_indent="  - ", subsequent_indent="    "))
    return "\n".join(out) + "\n"
