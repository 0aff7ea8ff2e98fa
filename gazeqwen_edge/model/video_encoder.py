"""Video encoders (V-JEPA) behind one small interface, and the alignment of their features to Qwen's video grid.

    enc = load_video_encoder(VideoEncoderConfig(backend="transformers", source="facebook/vjepa2-vitl-fpc64-256"))
    pixels = enc.prepare(frames)               # (n_frames, 3, S, S): even sampling, resize, ImageNet normalisation
    feats = enc.encode(pixels[None])           # (B, n_frames / tubelet, S/p, S/p, D)
    aligned = align_features(feats, (T, Hm, Wm))  # Qwen's temporal steps x merged grid: (B, T, Hm, Wm, D)

Backends: transformers `VJEPA2Model` (hub id or local dir), torch.hub V-JEPA 2.1 entries (`facebookresearch/vjepa2`,
e.g. `vjepa2_1_vit_base_384`; needs network or a populated torch hub cache), and the tiny random config.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.model.config import VideoEncoderConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sample_even(n_available: int, n_frames: int) -> np.ndarray:
    """n_frames indices spread evenly over n_available frames; the last frame repeated when there are fewer."""
    if n_available <= 0:
        raise InputError(None, "the video has no frames")
    if n_available >= n_frames:
        return np.round(np.linspace(0, n_available - 1, n_frames)).astype(np.int64)
    return np.concatenate([np.arange(n_available), np.full(n_frames - n_available, n_available - 1)]).astype(np.int64)


def align_features(features: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """(B, Tj, hj, wj, D) encoder features -> (B, T, H, W, D): trilinear to T temporal steps (space kept), then
    bilinear to the H x W merged grid of the LLM's video tokens (REFERENCE: temporal first, then spatial)."""
    t, h, w = grid
    b, tj, hj, wj, d = features.shape
    x = features.permute(0, 4, 1, 2, 3).float()  # (B, D, Tj, hj, wj)
    if tj != t:
        x = F.interpolate(x, size=(t, hj, wj), mode="trilinear", align_corners=False)
    x = x.permute(0, 2, 1, 3, 4).reshape(b * t, d, hj, wj)
    if (hj, wj) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x.reshape(b, t, d, h, w).permute(0, 1, 3, 4, 2).to(features.dtype).contiguous()


class VideoEncoder(nn.Module):
    """Interface: subclasses set the geometry and implement `_tokens(pixels) -> (B, N, D)` (time-major tokens)."""

    n_frames: int = 16
    crop_size: int = 384
    patch_size: int = 16
    tubelet_size: int = 2
    hidden_size: int = 768

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.n_frames // self.tubelet_size, self.crop_size // self.patch_size, self.crop_size // self.patch_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def prepare(self, frames) -> torch.Tensor:
        """(T, H, W, 3) uint8 RGB frames (the clip fed to Qwen) -> (n_frames, 3, S, S) float32: n_frames spread evenly
        over the clip (the last repeated when there are fewer), each resized to S x S (bilinear, antialiased) and
        normalised with the ImageNet mean/std (REFERENCE.md section 1)."""
        a = np.asarray(frames)
        if a.ndim != 4 or a.shape[-1] != 3:
            raise InputError(None, f"video frames must be shaped (T, H, W, 3) RGB, got {a.shape}")
        return self.prepare_frames(a[sample_even(len(a), self.n_frames)])

    def _tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, n_frames, 3, S, S) -> (B, n_frames / tubelet, S / patch, S / patch, D)."""
        if pixels.dim() != 5 or tuple(pixels.shape[1:]) != (self.n_frames, 3, self.crop_size, self.crop_size):
            raise InputError(
                None,
                f"video encoder input must be (B, {self.n_frames}, 3, {self.crop_size}, {self.crop_size}), "
                f"got {tuple(pixels.shape)}",
            )
        tokens = self._tokens(pixels.to(self.device, self.dtype))
        t, h, w = self.grid
        if tokens.shape[1] != t * h * w:
            raise ConfigError(f"video encoder returned {tokens.shape[1]} tokens, expected {t}x{h}x{w}={t * h * w}")
        return tokens.reshape(pixels.shape[0], t, h, w, tokens.shape[-1])

    def features(self, clips, grid: tuple[int, int, int]) -> torch.Tensor:
        """The "reference" regime: a list of (T, H, W, 3) uint8 clips -> aligned features (B, T, Hm, Wm, D) float32
        (n_frames spread over each clip, the encoder's temporal tokens resampled to the T steps)."""
        pixels = torch.stack([self.prepare(c) for c in clips])
        return align_features(self.encode(pixels).float(), grid)

    def prepare_frames(self, frames) -> torch.Tensor:
        """(N, H, W, 3) uint8 RGB -> (N, 3, S, S) float32, each frame resized and normalised on its own (no temporal
        sampling): what the "stream" regime keeps per model frame."""
        a = np.asarray(frames)
        if a.ndim != 4 or a.shape[-1] != 3 or len(a) == 0:
            raise InputError(None, f"video frames must be shaped (N, H, W, 3) RGB with N >= 1, got {a.shape}")
        x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-2:] != (self.crop_size, self.crop_size):
            x = F.interpolate(x, size=(self.crop_size, self.crop_size), mode="bilinear", antialias=True)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x - mean) / std

    def window_indices(self, n_available: int, step: int, temporal_patch: int = 2) -> np.ndarray:
        """(n_frames,) indices of the causal window of temporal step `step` among `n_available` model frames: the
        n_frames frames ending with the step's last frame (index step * temporal_patch + temporal_patch - 1); indices
        past the last available frame repeat it (as Qwen pads an odd count), indices before 0 repeat frame 0."""
        end = step * temporal_patch + temporal_patch - 1
        return np.clip(np.arange(end - self.n_frames + 1, end + 1), 0, n_available - 1)

    @torch.no_grad()
    def stream_features(self, windows: torch.Tensor, merged_hw: tuple[int, int]) -> torch.Tensor:
        """The "stream" regime: (K, n_frames, 3, S, S) prepared causal windows (one per temporal step, each ending with
        its step's frames) -> (K, Hm, Wm, D) float32: the last temporal token of each window (the encoder's tubelet
        covers the same two frames as Qwen's temporal patch when tubelet_size == 2), bilinear to the merged grid."""
        if self.tubelet_size != 2:
            raise ConfigError(
                f"the stream regime pairs the encoder's last tubelet with Qwen's temporal patch of 2 frames; this encoder's"
                f" tubelet is {self.tubelet_size}"
            )
        feats = self.encode(windows).float()  # (K, Tj, hj, wj, D)
        last = feats[:, -1:]  # (K, 1, hj, wj, D)
        return align_features(last, (1, *merged_hw))[:, 0]

    def clip_stream_features(self, frames, grid: tuple[int, int, int], temporal_patch: int = 2) -> torch.Tensor:
        """The "stream" regime over a whole clip of model frames (N, H, W, 3) uint8 with T = grid[0] steps ->
        (1, T, Hm, Wm, D) float32, equal to what a stream computes step by step over the same frames."""
        prepared = self.prepare_frames(frames)
        t = grid[0]
        idx = np.stack([self.window_indices(len(prepared), s, temporal_patch) for s in range(t)])
        return self.stream_features(prepared[torch.from_numpy(idx)], grid[1:])[None]


class TransformersVJEPA2Encoder(VideoEncoder):
    """transformers' VJEPA2Model encoder (predictor skipped). Input size must equal the config's crop_size."""

    def __init__(self, model, n_frames: int | None = None):
        super().__init__()
        self.model = model
        cfg = model.config
        self.crop_size = int(cfg.crop_size)
        p = cfg.patch_size
        self.patch_size = int(p if isinstance(p, int) else p[0])
        self.tubelet_size = int(cfg.tubelet_size)
        self.hidden_size = int(cfg.hidden_size)
        self.n_frames = int(n_frames or min(16, cfg.frames_per_clip))
        if self.n_frames % self.tubelet_size:
            raise ConfigError(f"n_frames {self.n_frames} must be a multiple of the tubelet size {self.tubelet_size}")

    @classmethod
    def from_pretrained(cls, source: str, dtype=torch.float32, device="cpu", n_frames: int | None = None):
        from transformers import VJEPA2Model

        try:
            model = VJEPA2Model.from_pretrained(source, dtype=dtype)
        except OSError as e:
            raise InputError(source, f"cannot load a V-JEPA 2 model ({e})") from e
        return cls(model.to(device).eval(), n_frames)

    def _tokens(self, pixels):
        return self.model(pixel_values_videos=pixels, skip_predictor=True).last_hidden_state


class TorchHubVJEPA21Encoder(VideoEncoder):
    """V-JEPA 2.1 encoders from torch.hub `facebookresearch/vjepa2` (`vjepa2_1_vit_{base,large,giant,gigantic}_384`).
    The native encoder takes (B, C, T, H, W) and returns (B, N, D) tokens in time-major order."""

    def __init__(
        self,
        encoder: nn.Module,
        crop_size: int = 384,
        patch_size: int = 16,
        tubelet_size: int = 2,
        n_frames: int = 16,
    ):
        super().__init__()
        self.encoder = encoder
        self.crop_size, self.patch_size, self.tubelet_size = crop_size, patch_size, tubelet_size
        self.hidden_size = int(getattr(encoder, "embed_dim", 768))
        if n_frames % tubelet_size:
            raise ConfigError(f"n_frames {n_frames} must be a multiple of the tubelet size {tubelet_size}")
        self.n_frames = int(n_frames)

    @classmethod
    def from_hub(
        cls,
        entry: str = "vjepa2_1_vit_base_384",
        repo: str = "facebookresearch/vjepa2",
        device="cpu",
        dtype=torch.float32,
        n_frames: int = 16,
    ):
        try:
            loaded = torch.hub.load(repo, entry, pretrained=True, trust_repo=True)
        except Exception as e:  # network, cache or entry errors all mean "cannot load this encoder"
            raise InputError(
                f"{repo}:{entry}",
                f"cannot load the torch.hub V-JEPA 2.1 encoder ({type(e).__name__}: {e})",
                hint="needs network access or a populated torch hub cache (~/.cache/torch/hub)",
            ) from e
        encoder = loaded[0] if isinstance(loaded, (tuple, list)) else loaded
        crop = 384 if entry.endswith("_384") else 256
        return cls(encoder.to(device=device, dtype=dtype).eval(), crop_size=crop, n_frames=n_frames)

    def _tokens(self, pixels):
        out = self.encoder(pixels.permute(0, 2, 1, 3, 4))  # (B, C, T, H, W)
        return out[0] if isinstance(out, (tuple, list)) else out


# The "tiny" backend: a 2-layer V-JEPA 2 with random weights (64 px crop, 8 frames, hidden 96), for tests and the demo.
# It lives here, not in tiny.py, so that the loading code depends on no test helper (tiny.py builds on this module).
TINY_VJEPA2 = dict(
    patch_size=16,
    crop_size=64,
    frames_per_clip=8,
    tubelet_size=2,
    hidden_size=96,
    num_attention_heads=4,
    num_hidden_layers=2,
    mlp_ratio=2.0,
    num_pooler_layers=1,
    pred_hidden_size=32,
    pred_num_attention_heads=2,
    pred_num_hidden_layers=1,
)


def tiny_vjepa2_config():
    """transformers' VJEPA2Config of the tiny random backend (TINY_VJEPA2)."""
    from transformers import VJEPA2Config

    return VJEPA2Config(**TINY_VJEPA2)


def load_video_encoder(cfg: VideoEncoderConfig, dtype=torch.float32, device="cpu", seed: int = 0) -> VideoEncoder:
    """Build the video encoder a VideoEncoderConfig names: transformers' VJEPA2Model (hub id or local dir), a torch.hub
    V-JEPA 2.1 entry, or the tiny random model (weights from `seed`). Raises ConfigError for a bad config and
    InputError when the weights cannot be loaded."""
    cfg.validate()
    if cfg.backend == "transformers":
        return TransformersVJEPA2Encoder.from_pretrained(cfg.source, dtype=dtype, device=device, n_frames=cfg.n_frames)
    if cfg.backend == "torch_hub":
        return TorchHubVJEPA21Encoder.from_hub(cfg.source, device=device, dtype=dtype, n_frames=cfg.n_frames)
    from transformers import VJEPA2Model

    torch.manual_seed(seed)
    return TransformersVJEPA2Encoder(VJEPA2Model(tiny_vjepa2_config()).to(device=device, dtype=dtype).eval())
