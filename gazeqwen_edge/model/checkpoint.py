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

from gazeqwen_edge.errors import ConfigError, InputError, write_bytes_atomic
from gazeqwen_edge.model.config import ResamplerConfig, load_json
from gazeqwen_edge.model.lora import parse_lora_state_dict
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
    """Write a gaze checkpoint directory at `path`: the resampler's weights (safetensors, float tensors as they
    are), its config and `meta` (JSON), and LoRA weights and config when given. Returns the directory. Raises
    InputError when `path` is a file, OSError (with its errno) when the disk refuses a write; each weights file is
    replaced atomically, so a failed save leaves the one before."""
    from safetensors.torch import save  # (into bytes, written by us: a full disk raises its OSError)

    d = Path(path)
    if d.exists() and not d.is_dir():
        raise InputError(d, "exists and is not a directory (a checkpoint is a directory)")
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in resampler.state_dict().items()}
    write_bytes_atomic(d / WEIGHTS_FILE, save(state, metadata={"format": FORMAT}))
    cfg = {"format": FORMAT, "resampler": resampler.config.to_dict(), "meta": meta or {}, "lora": bool(lora_state_dict)}
    (d / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    if lora_state_dict:
        lora = {k: v.detach().to("cpu").contiguous() for k, v in lora_state_dict.items()}
        write_bytes_atomic(d / LORA_FILE, save(lora))
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
    fmt = cfg_json.get("format") if isinstance(cfg_json, dict) else type(cfg_json).__name__
    if fmt != FORMAT:
        raise InputError(d / CONFIG_FILE, f"not a {FORMAT} checkpoint config (format={fmt!r})")
    rc = cfg_json.get("resampler")
    if not isinstance(rc, dict):
        raise InputError(d / CONFIG_FILE, "has no 'resampler' object")
    rc = dict(rc)
    if gaze_encoding is not None:
        rc["gaze_encoding"] = gaze_encoding
    try:
        cfg = ResamplerConfig.from_dict(rc)
    except ConfigError as e:  # a value no run of ours writes: name the file it is in
        raise InputError(d / CONFIG_FILE, e.message, hint="rewrite it with `gazeqwen-edge train` or fix it") from None

    def read(p: Path) -> dict[str, torch.Tensor]:
        try:
            return load_file(str(p), device=str(device))
        except (SafetensorError, OSError) as e:
            raise InputError(p, f"cannot read safetensors ({e})") from e

    wpath = d / WEIGHTS_FILE
    if not wpath.is_file():
        raise InputError(wpath, "missing resampler weights")
    state = read(wpath)
    check_state_dict(state, cfg, wpath)
    model = GazeResampler(cfg).to(device)
    model.load_state_dict(state, strict=True)
    lora, lora_cfg = {}, None
    if (d / LORA_FILE).is_file():
        lora = read(d / LORA_FILE)
        lora_cfg = load_json(d / LORA_CONFIG_FILE) if (d / LORA_CONFIG_FILE).is_file() else None
        if lora_cfg is not None and not isinstance(lora_cfg, dict):
            raise InputError(d / LORA_CONFIG_FILE, f"must be a JSON object, got {type(lora_cfg).__name__}")
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
        f"{k} {tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k]).__name__} != {exp[k]}"
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
    if saved is not None and not isinstance(saved, dict):
        raise InputError(where, f"the checkpoint's 'config' must be a dict, got {type(saved).__name__}")
    saved = saved or {}
    for k, v in saved.items():
        if k in sizes or k == "n_layers":
            if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
                raise InputError(where, f"the checkpoint's config has a non-integer {k}={v!r}")
    for k, v in saved.items():
        if k in sizes and int(v) != int(sizes[k]):
            raise InputError(where, f"saved config says {k}={v} but the weights have {k}={sizes[k]}")
    if "n_layers" in saved and int(saved["n_layers"]) not in (n_mod, n_llm):
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


def _load_error_reason(e: Exception) -> str:
    """The part of a torch.load failure that says what is wrong (torch's weights-only message is a page of advice,
    including loading with weights_only=False, which we never do)."""
    text = str(e)
    m = re.search(r"WeightsUnpickler error: (.*?)(?:\s+(?:Please use|Check the documentation)|$)", text, re.S)
    reason = m.group(1) if m else text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {' '.join(reason.split())[:200]}"


def read_reference_checkpoint(src: str | PathLike) -> dict[str, Any]:
    p = Path(src)
    if p.is_dir():
        raise InputError(p, "is a directory; expected the authors' checkpoint file (best_model.pt)")
    if not p.is_file():
        raise InputError(p, "file not found")
    with open(p, "rb") as f:
        head = f.read(2)
    if head not in (b"PK", b"\x80\x02") and not head.startswith(b"\x80"):  # torch.save: a zip, or a legacy pickle
        raise InputError(
            p,
            "is not a torch checkpoint (torch.save writes a zip archive or a pickle; this file is neither)",
            hint="give the authors' checkpoint file (best_model.pt)",
        )
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and weights-only errors: all mean "not a loadable torch checkpoint"
        raise InputError(
            p,
            f"cannot read as a torch checkpoint with weights_only=True ({_load_error_reason(e)})",
            hint="it must be a torch.save'd dict of tensors and plain values; re-save one that holds other objects "
            "(e.g. a peft LoraConfig) with trusted code, converting them to dicts",
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
    state = dict(ckpt["state_dict"])
    odd = [f"{k!r} ({type(v).__name__})" for k, v in state.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if odd:
        raise InputError(src, f"state_dict must map names to tensors; {len(odd)} entries do not, e.g. {odd[:3]}")
    cfg = infer_reference_config(state, ckpt.get("config"), injected_layers, gaze_encoding, where=src)
    check_state_dict(state, cfg, src)
    model = GazeResampler(cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    lora = ckpt.get("lora_state_dict") or {}
    if not isinstance(lora, dict) or not all(isinstance(v, torch.Tensor) for v in lora.values()):
        raise InputError(src, "lora_state_dict must be a dict of tensors")
    lora_config = ckpt.get("lora_config")
    if lora_config is not None and not isinstance(lora_config, dict):
        raise InputError(src, f"lora_config must be a dict, got {type(lora_config).__name__}")
    try:  # what merge_lora will need at load time: only LLM attention LoRA keys, each with its A and B
        parse_lora_state_dict(lora)
    except InputError as e:
        raise InputError(src, e.problem) from e
    return save_checkpoint(
        dst, model, lora, lora_config, meta={"converted_from": str(Path(src).name), "source": "reference"}
    )
