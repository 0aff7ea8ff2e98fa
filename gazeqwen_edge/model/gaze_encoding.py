"""Gaze encodings for the resampler: which fixations are active at each temporal step, the reference DETR-style
sine/cosine code of the gaze point, and the spatial encoding (per-token offset code + Gaussian attention bias).

A scanpath is an (N, 4) float array of rows [x, y, mid_t, dur]: x, y normalised to [0, 1] of the scene frame,
mid_t and dur in seconds from the clip start. A fixation is active at time t if mid_t - dur/2 <= t <= mid_t + dur/2.
Everything past `GazeInputs` is plain tensors so the resampler stays tensor-in/tensor-out (exportable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gazeqwen_edge.errors import InputError


def check_scanpath(scanpath, name: str = "scanpath") -> np.ndarray:
    """Validate and return a scanpath as a float64 (N, 4) array (N may be 0). None -> empty."""
    if scanpath is None:
        return np.zeros((0, 4))
    a = np.asarray(scanpath, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim != 2 or a.shape[1] != 4:
        raise InputError(None, f"{name} must be an (N, 4) array of [x, y, mid_t, dur] rows, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(None, f"{name} contains NaN or infinite values")
    if (a[:, 3] < 0).any():
        raise InputError(None, f"{name} has negative fixation durations")
    return a


def active_fixations(
    scanpath, times: Sequence[float], span_s=0.0, latest: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Active fixations per time: those whose [mid - dur/2, mid + dur/2] overlaps [t, t + span_s] (span_s 0: active
    at the instant t, the reference rule; span_s > 0: at any moment of a temporal step that lasts span_s seconds, the
    stream regime). span_s: a number or one per time. latest: keep only the active fixation that started last (the
    first of those rows on a tie; ResamplerConfig.step_fixations "latest"). Returns points (T, K, 2) [x, y] and mask
    (T, K) bool, K = max active (>= 1)."""
    sp = check_scanpath(scanpath)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if len(sp) == 0:
        return np.zeros((len(t), 1, 2), np.float32), np.zeros((len(t), 1), bool)
    start = sp[:, 2] - sp[:, 3] / 2
    end = sp[:, 2] + sp[:, 3] / 2
    span = np.broadcast_to(np.asarray(span_s, dtype=np.float64), t.shape)
    act = (start[None, :] <= (t + span)[:, None]) & (t[:, None] <= end[None, :])  # (T, N)
    if latest:  # per time, the active fixation with the greatest start
        last = np.where(act, start[None, :], -np.inf).argmax(1)
        act = act & (np.arange(len(sp))[None, :] == last[:, None])
    k = max(1, int(act.sum(1).max()))
    points = np.zeros((len(t), k, 2), np.float32)
    mask = np.zeros((len(t), k), bool)
    for i in range(len(t)):
        idx = np.nonzero(act[i])[0]
        points[i, : len(idx)] = sp[idx, :2]
        mask[i, : len(idx)] = True
    return points, mask


@dataclass
class GazeInputs:
    """Batched gaze input of the resampler: points (B, T, K, 2), mask (B, T, K) bool, has_gaze (B,) bool
    (False for a sample whose scanpath is empty: its residual is zero)."""

    points: torch.Tensor
    mask: torch.Tensor
    has_gaze: torch.Tensor

    @classmethod
    def from_scanpaths(cls, scanpaths: Sequence, step_times, span_s=0.0, latest: bool = False) -> GazeInputs:
        """scanpaths: one per sample (None or (N, 4)); step_times: (T,) shared or (B, T) per sample, in seconds from
        each clip's start (the time of the first frame of each temporal step); span_s: how long a step lasts (0: gaze
        looked up at the instant, the reference regime; a step's duration in the stream regime), one number or one
        per sample; latest: each step keeps only its latest fixation (active_fixations)."""
        st = np.asarray(step_times, dtype=np.float64)
        if st.ndim == 1:
            st = np.broadcast_to(st, (len(scanpaths), len(st)))
        if st.shape[0] != len(scanpaths):
            raise InputError(None, f"{len(scanpaths)} scanpaths but step_times for {st.shape[0]} samples")
        spans = np.broadcast_to(np.asarray(span_s, dtype=np.float64), (len(scanpaths),))
        per = [active_fixations(sp, t, sp_s, latest) for sp, t, sp_s in zip(scanpaths, st, spans, strict=True)]
        k = max(p.shape[1] for p, _ in per)
        b, t = st.shape
        points = np.zeros((b, t, k, 2), np.float32)
        mask = np.zeros((b, t, k), bool)
        for i, (p, m) in enumerate(per):
            points[i, :, : p.shape[1]] = p
            mask[i, :, : m.shape[1]] = m
        has = np.array([len(check_scanpath(sp)) > 0 for sp in scanpaths], bool)
        return cls(torch.from_numpy(points), torch.from_numpy(mask), torch.from_numpy(has))

    def to(self, device) -> GazeInputs:
        return GazeInputs(self.points.to(device), self.mask.to(device), self.has_gaze.to(device))


def step_times(n_steps: int, sampling_fps: float, temporal_patch: int = 2, clip_start: float = 0.0) -> np.ndarray:
    """Time of temporal step t (reference): clip_start + t * temporal_patch / sampling_fps."""
    return clip_start + np.arange(n_steps) * temporal_patch / sampling_fps


def sincos_axis(values: torch.Tensor, half: int, temperature: float = 1e4, scale: float = 1.0) -> torch.Tensor:
    """The code of ONE coordinate axis: (...) values -> (..., half) with dim_t[i] = temperature^(2*floor(i/2)/half),
    sin of (scale*v)/dim_t on even i, cos on odd i, interleaved (half of `sincos_encoding`, bit for bit)."""
    i = torch.arange(half, device=values.device, dtype=torch.float32)
    dim_t = temperature ** (2 * torch.div(i, 2, rounding_mode="floor") / half)
    pos = values.float().unsqueeze(-1) * scale / dim_t  # (..., half)
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


def sincos_encoding(coords: torch.Tensor, dim: int, temperature: float = 1e4, scale: float = 1.0) -> torch.Tensor:
    """DETR-style code of (..., 2) [x, y] coordinates -> (..., dim): dim/2 for x then dim/2 for y; within each,
    dim_t[i] = temperature^(2*floor(i/2)/(dim/2)), sin of (scale*v)/dim_t on even i, cos on odd i, interleaved."""
    return sincos_axis(coords, dim // 2, temperature, scale).flatten(-2)  # x code then y code


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    m = mask.to(x.dtype)
    while m.dim() < x.dim():
        m = m.unsqueeze(-1)
    return (x * m).sum(dim) / m.sum(dim).clamp(min=1.0)


def reference_gaze_encoding(points: torch.Tensor, mask: torch.Tensor, dim: int, temperature: float = 1e4):
    """The reference G: mean of the sine/cosine codes of the active fixations; zeros where none is active.
    points (B, T, K, 2), mask (B, T, K) -> (B, T, dim)."""
    return _masked_mean(sincos_encoding(points, dim, temperature), mask, dim=2)


def token_centres(h: int, w: int, device=None) -> torch.Tensor:
    """(h*w, 2) [x, y] centres of a row-major h x w token grid, normalised to [0, 1]."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)


def spatial_gaze_parts(
    points: torch.Tensor,
    mask: torch.Tensor,
    grid_hw: tuple[int, int],
    dim: int,
    sigma: float = 0.1,
    temperature: float = 1e4,
    scale: float = 2 * math.pi,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The spatial encoding in its separable form: what `spatial_gaze_encoding` computes, without materialising a
    code per token and fixation.

    A token's code is [x code of its column's offset, y code of its row's offset] (each the mean over the active
    fixations), so the x half depends on the column only and the y half on the row only: h + w codes per step
    describe all h*w tokens, and a linear map of the code (the resampler's g_proj) splits into one map per half
    applied to w + h vectors, broadcast over the grid. The bias -(dx^2 + dy^2) / (2 sigma^2) is a row term plus a
    column term per fixation (its log-mean-exp over fixations is not separable and is formed per token: (K, h, w)).
    points (B, T, K, 2), mask (B, T, K) -> code_x (B, T, w, dim/2), code_y (B, T, h, dim/2), bias (B, T, h*w);
    steps without an active fixation get zero codes and zero bias.
    """
    h, w = grid_hw
    half = dim // 2
    xs = (torch.arange(w, device=points.device, dtype=torch.float32) + 0.5) / w  # token_centres' columns, exactly
    ys = (torch.arange(h, device=points.device, dtype=torch.float32) + 0.5) / h
    pts = points.float()
    off_x = xs - pts[..., 0:1]  # (B, T, K, w)
    off_y = ys - pts[..., 1:2]  # (B, T, K, h)
    code_x = _masked_mean(sincos_axis(off_x, half, temperature, scale), mask, dim=2)  # (B, T, w, half)
    code_y = _masked_mean(sincos_axis(off_y, half, temperature, scale), mask, dim=2)  # (B, T, h, half)
    # -(dx^2 + dy^2) / (2 sigma^2) per fixation and token, in the per-token formula's order: (B, T, K, h, w)
    logit = -((off_x**2).unsqueeze(-2) + (off_y**2).unsqueeze(-1)) / (2 * sigma**2)
    logit = logit.flatten(-2)  # (B, T, K, N) in Qwen's row-major token order
    logit = torch.where(mask.unsqueeze(-1), logit, torch.full_like(logit, -1e4))
    count = mask.sum(-1, keepdim=True).clamp(min=1).to(logit.dtype)  # (B, T, 1)
    bias = torch.logsumexp(logit, dim=2) - count.log()
    bias = torch.where(mask.any(-1, keepdim=True), bias, torch.zeros_like(bias))
    return code_x, code_y, bias


def spatial_gaze_encoding(
    points: torch.Tensor,
    mask: torch.Tensor,
    grid_hw: tuple[int, int],
    dim: int,
    sigma: float = 0.1,
    temperature: float = 1e4,
    scale: float = 2 * math.pi,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token gaze code and attention bias.

    Each token (centre c on the h x w grid, normalised) gets the sine/cosine code of its offset c - g from each
    active gaze point g (mean over active fixations), and a bias log(mean_k exp(-|c - g_k|^2 / (2 sigma^2))) that is
    -d^2/(2 sigma^2) for a single fixation. Steps without an active fixation get zero code and zero bias.
    points (B, T, K, 2), mask (B, T, K) -> code (B, T, N, dim), bias (B, T, N). The resampler uses the separable
    form (`spatial_gaze_parts`) and never builds the (B, T, N, dim) code; this expands it.
    """
    h, w = grid_hw
    code_x, code_y, bias = spatial_gaze_parts(points, mask, grid_hw, dim, sigma, temperature, scale)
    b, t, _, half = code_x.shape
    code = torch.cat(
        [code_x.unsqueeze(2).expand(b, t, h, w, half), code_y.unsqueeze(3).expand(b, t, h, w, half)], dim=-1
    )
    return code.reshape(b, t, h * w, 2 * half), bias
