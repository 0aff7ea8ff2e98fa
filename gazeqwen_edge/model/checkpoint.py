"""Checkpoints: our format is a directory with `config.json` (format tag + ResamplerConfig) and
`resampler.safetensors`, plus `lora.safetensors` + `lora_config.json` when a stage-2 LoRA was trained.

`convert_reference_checkpoint` reads the authors' `best_model.pt` (a torch.save dict with `state_dict`, `config`,
`lora_state_dict`, `lora_config`) with `weights_only=True` and writes our format, checking every key and shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.config import ResamplerConfig, load_json
from gazeqwen_edge.model.resampler import GazeResampler

FORMAT = "gazeqwen-edge/resampler-v1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "resampler.safetensors"
LORA_FILE = "lora.safetensors"
LORA_CONFIG_FILE = "lora_config.json"
REFERENCE_INJECTED_LAYERS = (6, 13, 20, 27)


@dataclass
class Checkpoint:
    resampler: GazeResampler
    lora_state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    lora_config: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def expected_shapes(cfg: ResamplerConfig) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of a resampler with this config (built on the meta device: no memory)."""
    with torch.device("meta"):
        m = GazeResampler(cfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def save_checkpoint(
    path: str | PathLike,
    resampler: GazeResampler,
    lora_state_dict: dict[str, torch.Tensor] | None = None,
    lora_config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    from safetensors.torch import save_file

    d = Path(path)
    if d.exists() and not d.is_dir():
        raise InputError(d, "exists and is not a directory (a checkpoint is a directory)")
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in resampler.state_dict().items()}
    save_file(state, str(d / WEIGHTS_FILE), metadata={"format": FORMAT})
    cfg = {"format": FORMAT, "resampler": resampler.config.to_dict(), "meta": meta or {}, "lora": bool(lora_state_dict)}
    (d / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    if lora_state_dict:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in lora_state_dict.items()}, str(d / LORA_FILE))
        (d / LORA_CONFIG_FILE).write_text(json.dumps(lora_config or {}, indent=2, default=str) + "\n")
    return d


def load_checkpoint(path: str | PathLike, gaze_encoding: str | None = None, device="cpu") -> Checkpoint:
    """Load our checkpoint directory. gaze_encoding overrides the saved one (both encodings share parameters)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(path)
    if not d.is_dir():
        raise InputError(d, "not a checkpoint directory (expected config.json + resampler.safetensors)")
    cfg_json = load_json(d / CONFIG_FILE)
    if not isinstance(cfg_json, dict) or cfg_json.get("format") != FORMAT:
        raise InputError(d / CONFIG_FILE, f"not a {FORMAT} checkpoint config (format={cfg_json.get('format')!r})")
    rc = dict(cfg_json["resampler"])
    if gaze_encoding is not None:
        rc["gaze_encoding"] = gaze_encoding
    cfg = ResamplerConfig.from_dict(rc)
    wpath = d / WEIGHTS_FILE
    if not wpath.is_file():
        raise InputError(wpath, "missing resampler weights")
    try:
        state = load_file(str(wpath), device=str(device))
    except (SafetensorError, OSError) as e:
        raise InputError(wpath, f"cannot read safetensors ({e})") from e
    check_state_dict(state, cfg, wpath)
    model = GazeResampler(cfg).to(device)
    model.load_state_dict(state, strict=True)
    lora, lora_cfg = {}, None
    if (d / LORA_FILE).is_file():
        lora = load_file(str(d / LORA_FILE), device=str(device))
        lora_cfg = load_json(d / LORA_CONFIG_FILE) if (d / LORA_CONFIG_FILE).is_file() else None
    return Checkpoint(model, lora, lora_cfg, cfg_json.get("meta", {}))


def check_state_dict(state: dict[str, Any], cfg: ResamplerConfig, where) -> None:
    """Raise InputError naming missing, unexpected and mis-shaped keys."""
    exp = expected_shapes(cfg)
    missing = sorted(set(exp) - set(state))
    unexpected = sorted(set(state) - set(exp))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:4])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:4])})")
    bad = [
        f"{k} {tuple(state[k].shape)} != {exp[k]}"
        for k in sorted(set(exp) & set(state))
        if not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != exp[k]
    ]
    if bad:
        problems.append(f"{len(bad)} mis-shaped tensors (e.g. {'; '.join(bad[:3])})")
    if problems:
        raise InputError(where, "state dict does not match the resampler layout: " + "; ".join(problems))


def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.fullmatch(k))})


def infer_reference_config(
    state: dict[str, torch.Tensor],
    saved: dict[str, Any] | None,
    injected_layers=None,
    gaze_encoding: str = "reference",
    where=None,
) -> ResamplerConfig:
    """ResamplerConfig of a reference-layout state dict (sizes from the tensors, checked against its saved config)."""
    try:
        n_mod = _count(state, r"latents\.(\d+)")
        n_blocks = _count(state, r"q_projs\.0\.(\d+)\.weight")
        n_latents, d_latent = state["latents.0"].shape
        d_vjepa = state["proj_ins.0.weight"].shape[1]
        d_llm = state["proj_outs.0.weight"].shape[0]
        n_llm = state["amplitude"].shape[0]
        ff_mult = state["ff_blocks.0.0.1.weight"].shape[0] // d_latent
    except (KeyError, IndexError, ValueError, AttributeError) as e:
        raise InputError(where, f"state dict is not in the reference resampler layout (missing/odd {e})") from e
    sizes = dict(d_vjepa=d_vjepa, d_llm=d_llm, n_latents=n_latents, d_latent=d_latent, n_blocks=n_blocks)
    for k, v in (saved or {}).items():
        if k in sizes and int(v) != int(sizes[k]):
            raise InputError(where, f"saved config says {k}={v} but the weights have {k}={sizes[k]}")
    if saved and "n_layers" in saved and int(saved["n_layers"]) not in (n_mod, n_llm):
        raise InputError(
            where, f"saved config n_layers={saved['n_layers']} matches neither {n_mod} modules nor {n_llm}"
        )
    if injected_layers is None:
        if n_mod == len(REFERENCE_INJECTED_LAYERS) and n_llm == 28:
            injected_layers = REFERENCE_INJECTED_LAYERS
        else:
            raise InputError(
                where,
                f"cannot tell which of the {n_llm} LLM layers the {n_mod} resampler modules inject into",
                hint="pass the injected layers explicitly (--injected-layers 6,13,20,27)",
            )
    if len(injected_layers) != n_mod:
        raise InputError(where, f"{len(injected_layers)} injected layers given for {n_mod} resampler modules")
    return ResamplerConfig(
        **{k: int(v) for k, v in sizes.items()},
        ff_mult=int(ff_mult),
        injected_layers=tuple(injected_layers),
        n_llm_layers=int(n_llm),
        gaze_encoding=gaze_encoding,
    )


def read_reference_checkpoint(src: str | PathLike) -> dict[str, Any]:
    p = Path(src)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and weights-only errors: all mean "not a loadable torch checkpoint"
        raise InputError(
            p, f"cannot read as a torch checkpoint with weights_only=True ({type(e).__name__}: {str(e)[:200]})"
        ) from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or not isinstance(ckpt["state_dict"], dict):
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(p, f"not a GazeQwen reference checkpoint: expected a dict with 'state_dict', got {keys}")
    return ckpt


def convert_reference_checkpoint(
    src: str | PathLike, dst: str | PathLike, injected_layers=None, gaze_encoding: str = "reference"
) -> Path:
    """best_model.pt (reference layout) -> our checkpoint directory. Returns the directory."""
    ckpt = read_reference_checkpoint(src)
    state = {k: v for k, v in ckpt["state_dict"].items()}
    cfg = infer_reference_config(state, ckpt.get("config"), injected_layers, gaze_encoding, where=src)
    check_state_dict(state, cfg, src)
    model = GazeResampler(cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    lora = ckpt.get("lora_state_dict") or {}
    if not isinstance(lora, dict) or not all(isinstance(v, torch.Tensor) for v in lora.values()):
        raise InputError(src, "lora_state_dict must be a dict of tensors")
    return save_checkpoint(
        dst, model, lora, ckpt.get("lora_config"), meta={"converted_from": str(Path(src).name), "source": "reference"}
    )
