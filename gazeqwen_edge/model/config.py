"""Configurations of the gaze resampler and of the whole GazeQwen model, with JSON round trip and validation."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

from gazeqwen_edge.errors import ConfigError, InputError

GAZE_ENCODINGS = ("reference", "spatial")
REGIMES = ("reference", "stream")
STEP_FIXATIONS = ("all", "latest")


@dataclass
class ResamplerConfig:
    """Sizes of the gaze resampler ("f_theta"). Defaults are the reference (Qwen2.5-VL-7B + V-JEPA 2.1 ViT-B).

    gaze_encoding: "reference" adds one DETR sine/cosine code of the active fixation(s) to every key (the paper's
    method); "spatial" gives every video token the code of its own offset from the gaze point on its key and adds a
    Gaussian bias -d^2 / (2 sigma^2) to the latents' attention logits toward tokens near the gaze. Both use the same
    parameters, so one checkpoint layout serves both.

    step_fixations: which of the fixations a temporal step finds (at its instant, or over its span in the stream
    regime) it gives the resampler: "all" (the reference, and every checkpoint trained before the option) or
    "latest" (ours: only the one that started last, the one in progress at the step's end or the last before it).
    A stream step lasts 1 s at 2 fps and holds about three fixations of 0.2-0.4 s, often on different objects; with
    all of them the Gaussian bias mixes those objects and nothing says which one is looked at now (README
    "Training and evaluation": the demo model named the gazed object in 96 % of questions whose last second held
    one fixated place, 70 % where it held three).

    gaze_mark (ours, off in the reference and in every checkpoint trained before it): each video token's residual
    also gets a learned mark, one d_latent vector per injected module (`gaze_marks.{m}`, the only parameters the
    reference layout lacks), weighted by the token's Gaussian proximity to the active fixations
    mean_k exp(-|c - g_k|^2 / (2 spatial_sigma^2)) in [0, 1] (0 on steps without an active fixation), whatever the
    gaze encoding. Without it a token's residual is chosen by that token's own feature alone, so the gazed object's
    tokens are told from their neighbours only by what their features carry; with it they are marked by where they
    are.

    regime: how video features and gaze times are fed, fixed at training time, so a checkpoint always runs in the
    regime it was trained in (the runtime reads it from here):
    - "reference" (the released code, for converted authors' checkpoints): V-JEPA sees 16 frames spread over the whole
      clip, its 8 temporal tokens resampled trilinearly to Qwen's steps; each step looks the gaze up at the nominal
      time clip_start + t * 2 / fps. A feature of step t depends on the whole clip, so a stream cannot reuse it: the
      runtime re-encodes the question's clip window per question.
    - "stream" (what our training produces and the runtime streams): step t's features come from one V-JEPA pass over
      the causal window of the last `n_frames` model frames ending with step t's two frames (the first frame repeated
      before the stream starts), its last temporal token resized to the merged grid; each step takes the fixations
      active at any moment of its real time span (its first frame to the next step's: GazeQwen.gaze_span_s). A step's features never change once it is seen, so each chunk is encoded
      once and its KV cache kept.
    """

    d_vjepa: int = 768
    d_llm: int = 3584
    n_latents: int = 32
    d_latent: int = 256
    n_blocks: int = 2
    ff_mult: int = 4
    injected_layers: tuple[int, ...] = (6, 13, 20, 27)
    n_llm_layers: int = 28
    gaze_encoding: str = "reference"
    regime: str = "reference"
    temperature: float = 1e4
    spatial_sigma: float = 0.1
    spatial_scale: float = 2 * math.pi
    gaze_mark: bool = False
    step_fixations: str = "all"

    def __post_init__(self) -> None:
        self.injected_layers = tuple(int(x) for x in self.injected_layers)
        self.validate()

    @property
    def n_modules(self) -> int:
        return len(self.injected_layers)

    def validate(self) -> None:
        for name in ("d_vjepa", "d_llm", "n_latents", "d_latent", "n_blocks", "ff_mult", "n_llm_layers"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"resampler config: {name} must be a positive integer, got {v!r}")
        if self.d_latent % 4:
            raise ConfigError(
                f"resampler config: d_latent must be a multiple of 4 (two sine/cosine halves), got {self.d_latent}"
            )
        if not self.injected_layers:
            raise ConfigError("resampler config: injected_layers is empty")
        if len(set(self.injected_layers)) != len(self.injected_layers):
            raise ConfigError(f"resampler config: injected_layers has duplicates: {list(self.injected_layers)}")
        bad = [x for x in self.injected_layers if not 0 <= x < self.n_llm_layers]
        if bad:
            raise ConfigError(
                f"resampler config: injected layers {bad} are outside the LLM's {self.n_llm_layers} layers "
                f"(0..{self.n_llm_layers - 1})"
            )
        if self.gaze_encoding not in GAZE_ENCODINGS:
            raise ConfigError(
                f"resampler config: gaze_encoding must be one of {', '.join(GAZE_ENCODINGS)}, got {self.gaze_encoding!r}"
            )
        if self.regime not in REGIMES:
            raise ConfigError(f"resampler config: regime must be one of {', '.join(REGIMES)}, got {self.regime!r}")
        if not self.spatial_sigma > 0:
            raise ConfigError(f"resampler config: spatial_sigma must be > 0, got {self.spatial_sigma}")
        if not self.temperature > 0:
            raise ConfigError(f"resampler config: temperature must be > 0, got {self.temperature}")
        if self.step_fixations not in STEP_FIXATIONS:
            raise ConfigError(
                f"resampler config: step_fixations must be one of {', '.join(STEP_FIXATIONS)}, "
                f"got {self.step_fixations!r}"
            )
        if not isinstance(self.gaze_mark, bool):
            raise ConfigError(f"resampler config: gaze_mark must be true or false, got {self.gaze_mark!r}")

    def feature_shape(self, shape) -> tuple:
        """(B, T, H, W) of resampler input features shaped (B, T, H, W, d_vjepa); ValueError for another rank or
        width (the module and its ONNX runner refuse the same inputs)."""
        if len(shape) != 5:
            raise ValueError(f"features must be (B, T, H, W, d_vjepa), got {tuple(shape)}")
        b, t, h, w, dv = shape  # kept as given: symbolic sizes stay symbolic under torch.onnx.export
        if dv != self.d_vjepa:
            raise ValueError(f"features have {dv} channels, the resampler expects d_vjepa={self.d_vjepa}")
        return b, t, h, w

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["injected_layers"] = list(self.injected_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResamplerConfig:
        return _from_dict(cls, d, "resampler config")


@dataclass
class VideoEncoderConfig:
    """Which V-JEPA backend to load: "transformers" (VJEPA2Model, hub id or local dir), "torch_hub" (V-JEPA 2.1 hub
    entries such as vjepa2_1_vit_base_384) or "tiny" (random weights, for tests and the demo)."""

    backend: str = "torch_hub"
    source: str = "vjepa2_1_vit_base_384"
    n_frames: int = 16

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoEncoderConfig:
        return _from_dict(cls, d, "video encoder config")

    def validate(self) -> None:
        if self.backend not in ("transformers", "torch_hub", "tiny"):
            raise ConfigError(f"video encoder backend must be transformers, torch_hub or tiny, got {self.backend!r}")
        if not isinstance(self.n_frames, int) or isinstance(self.n_frames, bool):
            raise ConfigError(f"video encoder n_frames must be an integer, got {self.n_frames!r}")
        if self.n_frames < 2 or self.n_frames % 2:
            raise ConfigError(f"video encoder n_frames must be an even number >= 2, got {self.n_frames}")


@dataclass
class GazeQwenConfig:
    """Everything needed to assemble a GazeQwen: the Qwen2.5-VL source, the video encoder, the resampler, and the
    video budget (pixels per frame, frames per clip)."""

    qwen: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    video_encoder: VideoEncoderConfig = field(default_factory=VideoEncoderConfig)
    resampler: ResamplerConfig = field(default_factory=ResamplerConfig)
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    max_frames: int = 768
    sampling_fps: float | None = None  # None: the reference policy by clip length

    def __post_init__(self) -> None:
        if not isinstance(self.video_encoder, VideoEncoderConfig):
            self.video_encoder = VideoEncoderConfig.from_dict(self.video_encoder)
        if not isinstance(self.resampler, ResamplerConfig):
            self.resampler = ResamplerConfig.from_dict(self.resampler)
        self.video_encoder.validate()
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")
        if self.sampling_fps is not None and not self.sampling_fps > 0:
            raise ConfigError(f"sampling_fps must be > 0, got {self.sampling_fps}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["resampler"] = self.resampler.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GazeQwenConfig:
        return _from_dict(cls, d, "GazeQwen config")


def _from_dict(cls, d: Any, what: str):
    """Build a config dataclass from a JSON object, naming unknown keys and wrong types as ConfigErrors."""
    if not isinstance(d, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{what}: unknown keys {unknown} (known: {sorted(known)})")
    try:
        return cls(**d)
    except TypeError as e:
        raise ConfigError(f"{what}: {e}") from e


def save_json(obj: Any, path: str | PathLike) -> None:
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def load_json(path: str | PathLike) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(p, f"not valid JSON ({e})") from e
