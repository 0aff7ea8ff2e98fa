"""Qwen2.5-VL video preprocessing without a transformers processor (and without torchvision).

Frames -> smart resize to multiples of 28 within a pixel budget (PIL bicubic, as transformers' PIL backend) ->
rescale 1/255 and normalise with Qwen's (OpenAI CLIP) mean/std -> patchify with temporal patch 2 in the order the
vision tower expects (t, h-block, w-block, merge-row, merge-col, C, temporal, patch-row, patch-col).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gazeqwen_edge.errors import InputError

QWEN_MEAN = (0.48145466, 0.4578275, 0.40821073)
QWEN_STD = (0.26862954, 0.26130258, 0.27577711)
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 1280
) -> tuple[int, int]:
    """Height and width rounded to multiples of `factor`, total pixels within [min_pixels, max_pixels], aspect ratio
    kept as closely as possible (Qwen2-VL's rule)."""
    if min(height, width) <= 0:
        raise InputError(None, f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise InputError(None, f"frame aspect ratio must be below 200, got {height}x{width}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def default_sampling_fps(duration_s: float) -> float:
    """The reference evaluation's frame rate by clip length: <=30 s 1 fps, <=60 s 0.5, <=300 s 0.2, else 0.1."""
    if duration_s <= 30:
        return 1.0
    if duration_s <= 60:
        return 0.5
    if duration_s <= 300:
        return 0.2
    return 0.1


FRAME_FACTOR = 2  # qwen-vl-utils: the number of sampled frames is a multiple of this (Qwen's temporal patch)
FPS_MIN_FRAMES = 4  # qwen-vl-utils: at least this many frames when sampling by fps
FPS_MAX_FRAMES = 768  # qwen-vl-utils: at most this many


@dataclass(frozen=True)
class FrameSample:
    """Which frames of a clip are fed to Qwen, and the timing Qwen is told.

    indices: (n,) int64 frame indices into the clip, ascending (may repeat when the clip is shorter than the minimum).
    times_s: (n,) float64 time of each kept frame in seconds from the clip start (index / clip fps).
    sample_fps: frames per second Qwen is told, qwen-vl-utils' `n / total_frames * video_fps` (the mean rate of the
        kept frames over the clip); second_per_grid_t = temporal_patch / sample_fps.
    """

    indices: np.ndarray
    times_s: np.ndarray
    sample_fps: float


def _floor_by(x: float, factor: int) -> int:
    return int(math.floor(x / factor)) * factor


def _ceil_by(x: float, factor: int) -> int:
    return int(math.ceil(x / factor)) * factor


def sample_frame_indices(
    n_frames: int,
    fps: float,
    sampling_fps: float,
    max_frames: int = FPS_MAX_FRAMES,
    min_frames: int = FPS_MIN_FRAMES,
) -> FrameSample:
    """The frames fed to Qwen, as qwen-vl-utils picks them (its `smart_nframes` + `torch.linspace(...).round()`), the
    policy Qwen2.5-VL and GazeQwen were trained and evaluated with:

    n = clamp(n_frames / fps * sampling_fps, ceil2(min_frames), floor2(min(max_frames, n_frames))), floored to a
    multiple of 2; the kept indices are spread evenly from the first to the last frame of the clip (so a frame cap
    thins the whole clip instead of keeping its beginning), and sample_fps = n / n_frames * fps.
    A clip of a single frame keeps it (Qwen pads the temporal patch by repeating it).

    Raises InputError for an empty clip, non-positive or non-finite rates, or max_frames < 2.
    """
    if n_frames <= 0:
        raise InputError(None, "the video has no frames")
    if not (fps > 0 and sampling_fps > 0 and math.isfinite(fps) and math.isfinite(sampling_fps)):
        raise InputError(None, f"fps must be positive and finite, got fps={fps}, sampling_fps={sampling_fps}")
    if max_frames < FRAME_FACTOR:
        raise InputError(None, f"max_frames must be >= {FRAME_FACTOR}, got {max_frames}")
    if n_frames < FRAME_FACTOR:
        return FrameSample(np.zeros(1, np.int64), np.zeros(1), float(fps))
    lo = _ceil_by(min_frames, FRAME_FACTOR)
    hi = _floor_by(min(max_frames, n_frames), FRAME_FACTOR)
    n = _floor_by(min(max(n_frames / fps * sampling_fps, lo), hi, n_frames), FRAME_FACTOR)
    idx = torch.linspace(0, n_frames - 1, n).round().long().numpy()
    return FrameSample(idx, idx / fps, n / n_frames * fps)


@dataclass
class VideoInputs:
    """What Qwen2.5-VL's model needs for one video, plus the bookkeeping the gaze path needs."""

    pixel_values_videos: torch.Tensor  # (grid_t * grid_h * grid_w, 3 * temporal_patch * patch * patch) float32
    video_grid_thw: torch.Tensor  # (1, 3) int64
    n_video_tokens: int  # number of <|video_pad|> tokens = grid_t * grid_h * grid_w / merge^2
    resized_hw: tuple[int, int]
    second_per_grid_t: float = 1.0  # seconds per temporal step (temporal_patch / sample fps): Qwen's 3-D positions
    step_times: np.ndarray | None = None  # (grid_t,) time of the first frame of each step, s from the clip start

    @property
    def merged_grid(self) -> tuple[int, int, int]:
        t, h, w = (int(v) for v in self.video_grid_thw[0])
        return t, h // 2, w // 2


def check_frames(frames) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise InputError(None, f"video frames must be shaped (T, H, W, 3) RGB, got {a.shape}")
    if a.dtype != np.uint8:
        raise InputError(None, f"video frames must be uint8, got {a.dtype}")
    if a.shape[0] == 0:
        raise InputError(None, "the video has no frames")
    return a


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, height, width, 3) uint8 with PIL bicubic (same as transformers' PIL backend)."""
    from PIL import Image

    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BICUBIC)) for f in frames])


def normalise(frames: np.ndarray, mean=QWEN_MEAN, std=QWEN_STD) -> np.ndarray:
    """uint8 (..., 3) -> float32 channels-last: (x * 1/255 in float64 -> float32 - mean) / std, computed in float32."""
    x = (frames.astype(np.float64) * (1 / 255)).astype(np.float32)
    return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


def patchify(
    frames: np.ndarray, patch_size: int = 14, temporal_patch: int = 2, merge_size: int = 2
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(T, H, W, C) float -> (grid_t*grid_h*grid_w, C*temporal*patch*patch) and the grid (T padded by repeating the
    last frame to a multiple of temporal_patch)."""
    t, h, w, c = frames.shape
    if h % (patch_size * merge_size) or w % (patch_size * merge_size):
        raise InputError(None, f"frame size {h}x{w} is not a multiple of {patch_size * merge_size}")
    if pad := -t % temporal_patch:
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
        t += pad
    gt, gh, gw = t // temporal_patch, h // patch_size, w // patch_size
    x = frames.transpose(0, 3, 1, 2).reshape(
        gt, temporal_patch, c, gh // merge_size, merge_size, patch_size, gw // merge_size, merge_size, patch_size
    )
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * temporal_patch * patch_size * patch_size)), (gt, gh, gw)


def preprocess_video(
    frames,
    *,
    min_pixels: int = VIDEO_MIN_PIXELS,
    max_pixels: int = VIDEO_MAX_PIXELS,
    patch_size: int = 14,
    temporal_patch: int = 2,
    merge_size: int = 2,
    sampling_fps: float = 1.0,
    frame_times: np.ndarray | None = None,
) -> VideoInputs:
    """Already-sampled frames (T, H, W, 3) uint8 RGB -> VideoInputs for Qwen2.5-VL.

    sampling_fps: the rate Qwen is told (second_per_grid_t = temporal_patch / sampling_fps); frame_times: (T,) seconds
    of each frame from the clip start (default i / sampling_fps), from which each temporal step's gaze look-up time
    (its first frame's time) is taken."""
    frames = check_frames(frames)
    if frame_times is None:
        frame_times = np.arange(len(frames)) / sampling_fps
    frame_times = np.asarray(frame_times, dtype=np.float64)
    if frame_times.shape != (len(frames),):
        raise InputError(None, f"frame_times must be shaped ({len(frames)},), got {frame_times.shape}")
    h, w = smart_resize(frames.shape[1], frames.shape[2], patch_size * merge_size, min_pixels, max_pixels)
    x = normalise(resize_frames(frames, h, w))
    pv, (gt, gh, gw) = patchify(x, patch_size, temporal_patch, merge_size)
    spg = temporal_patch / sampling_fps
    return VideoInputs(
        pixel_values_videos=torch.from_numpy(pv),
        video_grid_thw=torch.tensor([[gt, gh, gw]], dtype=torch.long),
        n_video_tokens=gt * gh * gw // merge_size**2,
        resized_hw=(h, w),
        second_per_grid_t=spg,
        step_times=frame_times[::temporal_patch].copy(),
    )
