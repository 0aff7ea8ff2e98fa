"""A GazeQwen model directory: everything `run`, `replay`, `eval` and `train` need to assemble one model.

    model_dir/
      gazeqwen.json   {"format": "gazeqwen-edge-model/1", "qwen": "qwen" | hub id | path, "video_encoder": {...},
                       "checkpoint": "gaze" | null, "min_pixels", "max_pixels", "max_frames", "sampling_fps",
                       "mc_protocol", "meta": {...}}
      qwen/           (optional) a Qwen2.5-VL saved with save_pretrained + its tokenizer (small models whose LLM
                      was trained here, e.g. the demo model); a large model is named by hub id or path instead
      vjepa/          (optional) a V-JEPA 2 saved with save_pretrained (video_encoder.source "vjepa")
      gaze/           (optional) our resampler checkpoint (model/checkpoint.py), LoRA included

Relative paths in gazeqwen.json are resolved against the directory, so it can be moved or shipped in a package.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gazeqwen_edge.errors import InputError, disk_errors

MODEL_FORMAT = "gazeqwen-edge-model/1"
MODEL_FILE = "gazeqwen.json"


def is_model_dir(path) -> bool:
    return Path(path, MODEL_FILE).is_file()


def save_model_dir(
    gq,
    path,
    *,
    qwen_source: str | None = None,
    save_llm: bool = True,
    meta: dict[str, Any] | None = None,
    lora_state_dict=None,
    lora_config=None,
) -> Path:
    """Write `gq` as a model directory. save_llm: write the Qwen2.5-VL weights and tokenizer into qwen/ (else
    `qwen_source`, a hub id or path, is recorded); the video encoder's weights go to vjepa/ when it is a transformers
    V-JEPA 2 (the tiny one included); the resampler (and LoRA) to gaze/. Returns the directory. A disk that refuses
    the weights raises OSError with its errno (errors.disk_errors)."""
    from transformers.utils import logging as hf_logging

    from gazeqwen_edge.model.checkpoint import save_checkpoint
    from gazeqwen_edge.model.video_encoder import TransformersVJEPA2Encoder

    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()  # "Writing model shards" bars on every save of a training run
    if save_llm:
        with disk_errors(d / "qwen"):  # a full disk: OSError with its errno, not safetensors' own error
            gq.qwen.save_pretrained(d / "qwen")
            gq.tokenizer.save_pretrained(d / "qwen")
        qwen = "qwen"
    elif qwen_source:
        qwen = qwen_source
    else:
        raise InputError(d, "needs the LLM's hub id or path when its weights are not saved")
    venc = None
    if gq.video_encoder is not None:
        if not isinstance(gq.video_encoder, TransformersVJEPA2Encoder):
            raise InputError(d, "only transformers V-JEPA 2 encoders can be saved into a model directory")
        with disk_errors(d / "vjepa"):
            gq.video_encoder.model.save_pretrained(d / "vjepa")
        venc = {"backend": "transformers", "source": "vjepa", "n_frames": gq.video_encoder.n_frames}
    ck = None
    if gq.resampler is not None:
        save_checkpoint(d / "gaze", gq.resampler, lora_state_dict, lora_config, meta=meta)
        ck = "gaze"
    cfg = {
        "format": MODEL_FORMAT,
        "qwen": qwen,
        "video_encoder": venc,
        "checkpoint": ck,
        "min_pixels": gq.min_pixels,
        "max_pixels": gq.max_pixels,
        "max_frames": gq.max_frames,
        "sampling_fps": gq.sampling_fps,
        "mc_protocol": gq.mc_protocol,
        "meta": meta or {},
    }
    (d / MODEL_FILE).write_text(json.dumps(cfg, indent=2) + "\n")
    return d


def read_model_config(path) -> dict[str, Any]:
    """gazeqwen.json of a model directory, checked. InputError for a missing/invalid file or another format."""
    from gazeqwen_edge.model.config import load_json

    d = Path(path)
    cfg = load_json(d / MODEL_FILE)
    if not isinstance(cfg, dict) or cfg.get("format") != MODEL_FORMAT:
        raise InputError(d / MODEL_FILE, f"not a {MODEL_FORMAT} model file")
    return cfg


def load_model_dir(path, device: str = "cpu", dtype: torch.dtype = torch.float32, **kwargs):
    """Assemble the GazeQwen a model directory describes (kwargs override GazeQwen's settings, e.g. timer,
    sampling_fps). Raises InputError for a missing or broken directory."""
    from transformers.utils import logging as hf_logging

    from gazeqwen_edge.model.config import VideoEncoderConfig
    from gazeqwen_edge.model.gazeqwen import GazeQwen

    d = Path(path)
    cfg = read_model_config(d)
    hf_logging.disable_progress_bar()  # "Loading weights" bars for a few-MB model: noise on stderr

    def local(p):
        return str(d / p) if p is not None and (d / p).exists() else p

    venc = cfg.get("video_encoder")
    video_encoder = None
    if venc:
        venc = dict(venc)
        venc["source"] = local(venc.get("source"))
        video_encoder = VideoEncoderConfig.from_dict(venc)
    settings = {
        k: cfg[k] for k in ("min_pixels", "max_pixels", "max_frames", "sampling_fps", "mc_protocol") if k in cfg
    }
    settings.update({k: v for k, v in kwargs.items() if v is not None or k not in settings})
    ck = cfg.get("checkpoint")
    gq = GazeQwen.from_pretrained(
        local(cfg["qwen"]),
        checkpoint=local(ck) if ck else None,
        video_encoder=video_encoder,
        dtype=dtype,
        device=device,
        **settings,
    )
    gq.meta = cfg.get("meta") or {}  # how it was trained (train config, validation accuracy)
    return gq
