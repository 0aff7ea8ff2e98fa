"""From a `QAItem` to what the model reads: the clip's frames (decoded from its video), the scanpath, and the outputs
of the frozen encoders (Qwen's vision tower, V-JEPA), cached so that an epoch after the first only runs the LLM and
the resampler.

Clip policies (how many frames of which span, told at which rate):
- "reference": the item's window (tasks.clip_window) sampled by the reference's fps rule, capped at `max_frames`
  (the released code: 3 in training, 8 in evaluation), gaze look-up per the model's regime. GazeQwen's numbers.
- "stream": what our live runtime feeds: the item's window at the runtime's model-frame rate (`stream_fps`, 2 by
  default as `run`/`replay` --fps), the last `stream_max_s` seconds at most, every frame kept. Models trained here
  for the runtime use it, so they see the features and 3-D positions they are later run with.

Scanpath protocols (training.streamgaze.item_scanpath): "reference" drops the fixation in progress at the question
time (the released code keeps fixations whose midpoint is in the window); "stream" keeps it, cut at the question
time, as the live runtime sees it. Our models are trained with "stream".
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import socket
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from gazeqwen_edge.errors import ConfigError, InputError, write_bytes_atomic
from gazeqwen_edge.model.preprocessing import sample_frame_indices
from gazeqwen_edge.training.tasks import QAItem

CLIP_POLICIES = ("reference", "stream")
CACHE_FORMAT = 1


@dataclass(frozen=True)
class ClipConfig:
    """policy: "reference" or "stream" (module docstring); max_frames: the reference policy's frame cap;
    stream_fps, stream_max_s: the stream policy's model-frame rate (Hz) and longest span (s); scanpath: "reference"
    or "stream" (training.streamgaze.item_scanpath)."""

    policy: str = "reference"
    max_frames: int = 8
    stream_fps: float = 2.0
    stream_max_s: float = 60.0
    scanpath: str = "reference"

    def __post_init__(self) -> None:
        if self.policy not in CLIP_POLICIES:
            raise ConfigError(f"clip policy must be one of {', '.join(CLIP_POLICIES)}, got {self.policy!r}")
        if self.scanpath not in CLIP_POLICIES:
            raise ConfigError(f"scanpath protocol must be one of {', '.join(CLIP_POLICIES)}, got {self.scanpath!r}")
        if not (self.max_frames >= 2 and self.stream_fps > 0 and self.stream_max_s > 0):
            raise ConfigError("need max_frames >= 2, stream_fps > 0 and stream_max_s > 0")

    def key(self) -> str:
        return json.dumps([self.policy, self.max_frames, self.stream_fps, self.stream_max_s, self.scanpath])


@dataclass
class Clip:
    """The frames of one item's clip: (T, H, W, 3) uint8 RGB; times_s (T,) seconds from the clip start; sample_fps
    the rate Qwen is told (its 3-D positions); nominal_fps the rate asked for; start_s the clip start in video s."""

    frames: np.ndarray
    times_s: np.ndarray
    sample_fps: float
    nominal_fps: float
    start_s: float


class VideoFrames:
    """Frames of video files by index, the files' frame rates, and a small LRU of decoded frames (a clip's frames
    are often shared by the items of the same video). Decoding: device._io.RandomAccessVideo."""

    def __init__(self, max_frames_cached: int = 4096):
        self._videos: dict[Path, object] = {}
        self._fps: dict[Path, float] = {}
        self._frames: OrderedDict[tuple[Path, int], np.ndarray] = OrderedDict()
        self.max_frames_cached = max_frames_cached

    def _open(self, path: Path):
        from gazeqwen_edge.device._io import RandomAccessVideo, probe_video

        if path not in self._videos:
            info = probe_video(path, count=False)
            if not info.fps > 0:
                raise InputError(path, "the video does not state its frame rate")
            self._videos[path] = RandomAccessVideo(path)
            self._fps[path] = float(info.fps)
        return self._videos[path]

    def fps(self, path: Path) -> float:
        self._open(path)
        return self._fps[path]

    def n_frames(self, path: Path) -> int:
        return len(self._open(path))

    def frame(self, path: Path, index: int) -> np.ndarray:
        key = (path, int(index))
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        img = self._open(path).rgb(int(index))
        self._frames[key] = img
        if len(self._frames) > self.max_frames_cached:
            self._frames.popitem(last=False)
        return img

    def close(self) -> None:
        for v in self._videos.values():
            v.close()
        self._videos.clear()
        self._frames.clear()


def clip_frame_indices(
    video_fps: float, n_video_frames: int, window: tuple[float, float], sampling_fps: float, cfg: ClipConfig
) -> tuple[np.ndarray, float, float, float]:
    """Which frames of a video (fps, frame count) an item's clip holds under the clip policy: (indices into the
    video, sample fps told to Qwen, nominal fps, clip start s). Raises InputError when the window holds no frame."""
    start_s, end_s = window
    if cfg.policy == "stream":
        start_s = max(start_s, end_s - cfg.stream_max_s)
    first = max(0, math.ceil(start_s * video_fps - 1e-6))
    last = min(n_video_frames - 1, math.floor(end_s * video_fps + 1e-6))
    if last < first:
        raise InputError(None, f"the clip window {start_s:.2f}-{end_s:.2f} s holds no video frame")
    n = last - first + 1
    if cfg.policy == "stream":
        # the runtime's model frames: one every 1 / stream_fps s, the newest at the question time, whole steps of 2
        step = video_fps / cfg.stream_fps
        k = int((n - 1) // step) + 1
        k = max(2, k - k % 2)
        idx = np.round(last - step * np.arange(k)[::-1]).astype(np.int64)
        idx = np.clip(idx, first, last)
        return idx, cfg.stream_fps, cfg.stream_fps, start_s
    picked = sample_frame_indices(n, video_fps, sampling_fps, cfg.max_frames)
    return picked.indices + first, picked.sample_fps, sampling_fps, first / video_fps


def load_clip(item: QAItem, videos: VideoFrames, cfg: ClipConfig) -> Clip:
    """Decode the frames of an item's clip (clip_frame_indices). InputError for unreadable videos or empty windows."""
    fps = videos.fps(item.video)
    idx, sample_fps, nominal, start_s = clip_frame_indices(
        fps, videos.n_frames(item.video), item.window, item.sampling_fps, cfg
    )
    frames = np.stack([videos.frame(item.video, int(i)) for i in idx])
    times = idx / fps - start_s
    return Clip(frames, times.astype(np.float64), float(sample_fps), float(nominal), float(start_s))


def model_cache_key(gq) -> str:
    """What identifies a model's frozen encoders for the feature cache: a fingerprint of the weights of Qwen's vision
    tower and of the video encoder (every tensor's shape and first 4096 values), the regime and the pixel budget. A
    cached feature is never reused for another encoder or frame size, and is reused by every model that shares them
    (a stage-2 run from a stage-1 model reads the features the first run cached)."""
    h = hashlib.sha256(f"{gq.regime}|{gq.min_pixels}-{gq.max_pixels}".encode())
    mods = [gq.qwen.model.visual] + ([gq.video_encoder] if gq.video_encoder is not None else [])
    for mod in mods:
        for name, t in mod.state_dict().items():
            h.update(f"{name}{tuple(t.shape)}".encode())
            h.update(t.detach().flatten()[:4096].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class Encoded:
    """An item's frozen-encoder outputs (what training re-reads every epoch):
    vision: (n_video_tokens, d_llm) float32, Qwen's merged video embeddings; grid: (t, h, w) Qwen's patch grid
    (unmerged, as video_grid_thw); second_per_grid_t: s per temporal step; step_times: (t,) gaze look-up time of each
    step, s from the clip start (per the model's regime); features: (t, h/2, w/2, d_vjepa) float32 V-JEPA features
    aligned to the merged grid (None when the model has no gaze path); scanpath: (N, 4) float32 rows
    [x, y, mid_t, dur] relative to the clip start."""

    vision: torch.Tensor
    grid: tuple[int, int, int]
    second_per_grid_t: float
    step_times: np.ndarray
    features: torch.Tensor | None
    scanpath: np.ndarray

    @property
    def n_video_tokens(self) -> int:
        return int(self.vision.shape[0])

    @property
    def merged_grid(self) -> tuple[int, int, int]:
        t, h, w = self.grid
        return t, h // 2, w // 2


class ItemEncoder:
    """Runs the frozen encoders of a GazeQwen over items and caches their outputs in memory and (with `cache_dir`)
    on disk, keyed by item, clip configuration, visual-prompt flag and the encoders' identity (`model_key`), so a
    cached feature is never reused for another model or another clip.

    draw_gaze: the visual-prompt baseline (training.baselines.draw_gaze_prompt on the frames; the scanpath is still
    returned for metrics but no gaze reaches the model through the resampler)."""

    def __init__(
        self, gq, clip: ClipConfig, cache_dir: Path | None = None, model_key: str = "", videos=None, memory: bool = True
    ):
        self.gq, self.clip = gq, clip
        self.memory = memory  # keep outputs in memory (False: recompute every time, as without a feature cache)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.model_key = model_key
        self.videos = videos if videos is not None else VideoFrames()
        self._mem: dict[str, Encoded] = {}
        self.hits = self.misses = 0

    def _key(self, item: QAItem, draw_gaze: bool) -> str:
        src = json.dumps(
            [CACHE_FORMAT, self.model_key, self.clip.key(), draw_gaze, str(item.video), item.window, item.sampling_fps]
        )
        return hashlib.sha256(src.encode()).hexdigest()[:32]

    def scanpath(self, item: QAItem, clip_start_s: float) -> np.ndarray:
        """The item's scanpath over its clip (which may start after the item's window: the stream policy's longest
        span), rows relative to the clip start, under the configured scanpath protocol."""
        from gazeqwen_edge.training.streamgaze import item_scanpath

        if item.fixation_csv is None:
            return np.zeros((0, 4), np.float32)
        return item_scanpath(replace(item, window=(clip_start_s, item.window[1])), self.clip.scanpath)

    @torch.no_grad()
    def encode(self, item: QAItem, draw_gaze: bool = False) -> Encoded:
        key = self._key(item, draw_gaze)
        if key in self._mem:
            self.hits += 1
            return self._mem[key]
        path = self.cache_dir / f"{key}.pt" if self.cache_dir else None
        if path is not None and path.is_file():
            try:
                d = torch.load(path, weights_only=False)
                enc = Encoded(**d)
                if self.memory:
                    self._mem[key] = enc
                self.hits += 1
                return enc
            except Exception:  # a torn file from a killed run: recompute it
                path.unlink(missing_ok=True)
        self.misses += 1
        enc = self._compute(item, draw_gaze)
        if self.memory:
            self._mem[key] = enc
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a name of this process's own (host and pid): processes of a data-parallel run that encode the same
            # item each write their own file, and the atomic rename lets the last (identical) one win
            buf = io.BytesIO()
            torch.save(enc.__dict__, buf)  # (into bytes: a full disk then raises its OSError, not "unexpected pos")
            write_bytes_atomic(path, buf.getvalue(), tmp_suffix=f".{socket.gethostname()}-{os.getpid()}.tmp")
        return enc

    def _compute(self, item: QAItem, draw_gaze: bool) -> Encoded:
        clip = load_clip(item, self.videos, self.clip)
        return encode_clip(self.gq, clip, self.scanpath(item, clip.start_s), draw_gaze)


@torch.no_grad()
def encode_clip(gq, clip: Clip, scanpath: np.ndarray, draw_gaze: bool = False) -> Encoded:
    """Run a GazeQwen's frozen encoders over one clip: Qwen's vision tower (on frames with the gaze drawn for the
    visual-prompt baseline) and, when the model has a gaze path, V-JEPA in the model's regime."""
    frames = clip.frames
    if draw_gaze:
        from gazeqwen_edge.training.baselines import draw_gaze_prompt

        frames = draw_gaze_prompt(frames, clip.times_s, scanpath)
    vi = gq.prepare_frames(frames, clip.sample_fps, clip.times_s, clip.nominal_fps, None, "").video
    dev = gq.device
    out = gq.qwen.model.get_video_features(vi.pixel_values_videos.to(dev), vi.video_grid_thw.to(dev), return_dict=True)
    vision = out.pooler_output[0].float().cpu()
    feats = None
    if gq.resampler is not None:
        merged = vi.merged_grid
        if gq.regime == "reference":
            feats = gq.video_encoder.features([frames], merged)
        else:
            feats = gq.video_encoder.clip_stream_features(frames, merged)
        feats = feats[0].float().cpu()
    grid = tuple(int(x) for x in vi.video_grid_thw[0])
    scan = np.asarray(scanpath, np.float32).reshape(-1, 4)
    return Encoded(vision, grid, float(vi.second_per_grid_t), np.asarray(vi.step_times), feats, scan)
