"""The streaming KV cache: a video prefilled one temporal chunk at a time as it arrives, each question prefilled on
top of it, answered, and cut back off, so a question costs its own tokens, not the video's.

    vs = VideoStream(gq, frame_hw=(1200, 1600), fps=2.0)          # prefills the system turn + "<|vision_start|>"
    vs.prefill_steps(frames, times_s, first_step=0, scanpath=rows, window=window_frames)   # 2k model frames
    for piece in vs.answer("What am I looking at?"):               # prefill the question only, decode
        print(piece, end="")
    vs.score_options("Which object?", ["A. box", "B. cup"])         # letter logits (MC_PROMPTS)

The token layout is exactly what `GazeQwen.build_prompt` writes for one video and one question (the chat template
split at the video item), with the trained 3-D positions (`model/positions.py`): the video's first token at P (the
prefix length), step s at P + int(s * tokens_per_second * 2 / fps), the question at the video span's largest position
+ 1. So the logits after N streamed chunks equal those of one full prefill of the same video and question
(`benchmarks/streaming.py --check`). Only the "stream" regime streams (ResamplerConfig.regime): a step's V-JEPA
features come from the causal window ending with its frames, so they never change once seen.

A sliding window (`window_s`) evicts the oldest chunks' keys and values while keeping the prefix. That is an
approximation, not an identity: the remaining video tokens keep the positions and the attention history they were
prefilled with (they attended to the evicted chunks when they were computed), and the question then sits further
from the system turn than in any full prefill of the kept frames. The logit change it causes is measured in the
tests and by `benchmarks/streaming.py`.

Live, a chunk is prefilled when its last frame arrives, before all of its gaze is known, and its newest frame can be a
step older than a question. So the newest chunks keep their inputs (`refresh_chunks`): `refresh_gaze` prefills them
again with the gaze known later, and `question_view` re-pairs their frames to end at a newer frame for one question
(both tested equal to one full prefill of what they show the model).

Not thread-safe: one thread (the session's model worker) drives a VideoStream.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.model.gaze_encoding import GazeInputs, check_scanpath
from gazeqwen_edge.model.gazeqwen import (
    VIDEO_PAD,
    GazeQwen,
    Reply,
    mc_prompt,
    module_device,
    option_letters,
    option_texts,
)
from gazeqwen_edge.model.positions import after_video_position, text_position_ids, video_position_ids
from gazeqwen_edge.model.preprocessing import resize_frames, smart_resize


@dataclass
class ChunkInputs:
    """What re-prefilling a chunk with other gaze needs (kept for the newest chunks only, see
    `VideoStream.refresh_gaze`): embeds (1, k*N, hidden) its Qwen vision embeddings; feats (k, Hm, Wm, D) float32 its
    V-JEPA features, None when it was prefilled before any gaze (then it cannot take gaze later); step_times (k,) the
    first-frame time of each step (seconds from the origin); points (1, k, K, 2) / mask (1, k, K) the gaze it was
    prefilled with; frames (2k, H, W, 3) uint8 and times_s (2k,) its model frames (for `VideoStream.question_view`).
    """

    embeds: torch.Tensor
    feats: torch.Tensor | None
    step_times: np.ndarray
    points: torch.Tensor
    mask: torch.Tensor
    frames: np.ndarray | None = None
    times_s: np.ndarray | None = None


@dataclass
class Chunk:
    """One prefilled chunk: global temporal steps [first_step, first_step + n_steps), its span [start, end) of cache
    indices, and the time (seconds from the stream origin) of its first and last model frame; `inputs` is kept while
    the chunk may still be re-prefilled with newer gaze (VideoStream.refresh_gaze)."""

    first_step: int
    n_steps: int
    start: int
    end: int
    t0_s: float
    t1_s: float
    inputs: ChunkInputs | None = field(default=None, repr=False, compare=False)


def prompt_pieces(gq: GazeQwen, text: str = "", assistant: str = "") -> tuple[list[int], list[int]]:
    """Token ids before and after the video item of one user turn (system turn, "<|im_start|>user\\n<|vision_start|>"
    | "<|vision_end|>{text}<|im_end|>\\n<|im_start|>assistant\\n{assistant}"), tokenised exactly as
    `GazeQwen.build_prompt` tokenises the whole (the split is at special tokens, so the pieces join to the same ids).
    """
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
    s = gq.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if s.count(VIDEO_PAD) != 1:
        raise ConfigError(f"the tokenizer's chat template must render one {VIDEO_PAD} for a video item")
    before, after = s.split(VIDEO_PAD)
    enc = gq.tokenizer
    return enc(before, add_special_tokens=False)["input_ids"], enc(after + assistant, add_special_tokens=False)[
        "input_ids"
    ]


@dataclass
class _PreparedView:
    """A question view's gaze-free encodings (VideoStream.prepare_view): key (tail frame index, the stream's n_steps,
    first step, cache start) it was made for, the re-paired frames' times (2k,) s, Qwen's vision embeddings
    (1, k*N, hidden), V-JEPA features (k, Hm, Wm, D) or None, the steps' first-frame times (k,) s."""

    key: tuple[int, int, int, int]
    times: np.ndarray
    embeds: torch.Tensor
    feats: torch.Tensor | None
    step_times: np.ndarray


class VideoStream:
    """A Qwen2.5-VL KV cache that grows by temporal chunks of video (with gaze residuals injected) and answers
    questions on top of it.

    gq: a GazeQwen whose resampler (if any) is of the "stream" regime. frame_hw: (height, width) px of the model
    frames (the scene camera's), fixed for the stream. fps: model frames per second (two frames make one temporal
    step). window_s: keep at most this many seconds of video in the cache (None: keep all). refresh_chunks: how many
    of the newest chunks keep their inputs so that `refresh_gaze` can re-prefill them with gaze known later (0: none;
    a live session keeps 2, session.REFRESH_CHUNKS).
    Times are seconds from the stream's origin on the device clock (the session's first record).
    Raises ConfigError for a reference-regime model or a bad fps/window/refresh_chunks.
    """

    def __init__(
        self,
        gq: GazeQwen,
        frame_hw: tuple[int, int],
        fps: float = 2.0,
        window_s: float | None = None,
        refresh_chunks: int = 0,
    ):
        if gq.regime != "stream":
            raise ConfigError(
                "this checkpoint was trained in the 'reference' regime (clip-wide V-JEPA features), which cannot be "
                "streamed",
                hint="the runtime answers such checkpoints by re-encoding each question's clip (reference mode)",
            )
        if not (np.isfinite(fps) and fps > 0):
            raise ConfigError(f"model fps must be a positive number, got {fps}")
        if window_s is not None and not (np.isfinite(window_s) and window_s > 0):
            raise ConfigError(f"the sliding window must be a positive number of seconds, got {window_s}")
        if not (isinstance(refresh_chunks, int) and refresh_chunks >= 0):
            raise ConfigError(f"refresh_chunks must be a whole number >= 0, got {refresh_chunks!r}")
        self.gq = gq
        self.refresh_chunks = refresh_chunks
        self.fps = float(fps)
        self.window_s = window_s
        self.temporal_patch = gq.temporal_patch
        self.second_per_grid_t = self.temporal_patch / self.fps
        factor = gq.patch_size * gq.merge
        self.frame_hw = (int(frame_hw[0]), int(frame_hw[1]))
        self.resized_hw = smart_resize(*self.frame_hw, factor, gq.min_pixels, gq.max_pixels)
        self.merged_hw = (self.resized_hw[0] // factor, self.resized_hw[1] // factor)
        self.tokens_per_step = self.merged_hw[0] * self.merged_hw[1]
        self.tokens_per_second = gq.qwen.config.vision_config.tokens_per_second
        self._prepared: dict[int, torch.Tensor] = {}  # V-JEPA-ready frames by model frame index
        self.chunks: deque[Chunk] = deque()
        self.evicted_steps = 0
        self._view_span: tuple[float, float] | None = None  # while a question_view is in place
        from transformers import DynamicCache

        self.cache = DynamicCache(config=gq.qwen.config)
        prefix, _ = prompt_pieces(gq)
        self.first_video_pos = len(prefix)  # P: position (and cache index) of the video's first token
        with torch.no_grad(), gq.timer.stage("prefill_prefix"):
            gq.qwen(
                input_ids=torch.tensor([prefix], device=gq.device),
                position_ids=text_position_ids(0, len(prefix)).to(gq.device),
                cache=self.cache,
                use_cache=True,
                logits_to_keep=1,
            )
        self.video_end = len(prefix)  # cache length at the end of the video (questions are cut back to it)

    # ------------------------------------------------------------------ video
    @property
    def n_steps(self) -> int:
        """Global index of the step after the last prefilled one (0 before any video)."""
        return self.chunks[-1].first_step + self.chunks[-1].n_steps if self.chunks else 0

    @property
    def video_span_s(self) -> tuple[float, float] | None:
        """(first, last) model-frame time in the cache, seconds from the origin; None before any video."""
        if self._view_span is not None:
            return self._view_span
        return (self.chunks[0].t0_s, self.chunks[-1].t1_s) if self.chunks else None

    def _windows(
        self, first_step: int, n_steps: int, window: Sequence[tuple[int, np.ndarray]], offset: int = 0
    ) -> torch.Tensor:
        """(n_steps, n_frames, 3, S, S) causal V-JEPA windows of the chunk's steps from `window`, the stream's model
        frames (index, (H, W, 3) uint8) that the windows need (frames before the stream's first repeat frame 0).
        offset: the steps' frames start `offset` frames later than the grid's (question_view's steps end one frame
        later); then frames already prepared count as available too."""
        enc = self.gq.video_encoder
        frames = dict(window)
        lo, hi = min(frames), max(frames)
        if offset:
            lo = min(lo, min(self._prepared, default=lo))
        per_step = []
        for s in range(first_step, first_step + n_steps):
            end = s * self.temporal_patch + self.temporal_patch - 1 + offset
            per_step.append([min(max(i, lo), hi) for i in range(end - enc.n_frames + 1, end + 1)])
        needed = sorted({i for idx in per_step for i in idx})
        missing = [i for i in needed if i not in self._prepared]
        if missing:
            for i, x in zip(missing, enc.prepare_frames(np.stack([frames[i] for i in missing])), strict=True):
                self._prepared[i] = x
        for i in sorted(self._prepared):  # forget frames older than any window still to come
            if i >= needed[0]:
                break
            del self._prepared[i]
        out = [torch.stack([self._prepared[i] for i in idx]) for idx in per_step]
        return torch.stack(out)

    @torch.no_grad()
    def prefill_steps(
        self,
        frames: np.ndarray,
        times_s: np.ndarray,
        first_step: int,
        scanpath=None,
        window: Sequence[tuple[int, np.ndarray]] | None = None,
        refresh: bool = False,
    ) -> Chunk:
        """Encode and prefill one chunk of whole temporal steps.

        frames: (2k, H, W, 3) uint8 model frames of global steps first_step .. first_step + k - 1 (frame 2s + j of the
        stream is frames[2(s - first_step) + j]); times_s: (2k,) their times; scanpath: (N, 4) rows [x, y, mid_t, dur]
        known now (times on the same origin), None or empty for no gaze; window: the stream's model frames
        (index, frame) covering every step's causal V-JEPA window (default: this chunk's frames only); refresh: first
        re-prefill the kept chunks whose gaze `scanpath` changes (`refresh_gaze`), so that a check right after this
        chunk (a watch) sees their whole gaze.
        Returns the Chunk; evicts old chunks when a window is set. Raises InputError for malformed frames or a step
        that does not come after the last prefilled one.
        """
        frames = np.asarray(frames)
        times_s = np.asarray(times_s, dtype=np.float64)
        if frames.ndim != 4 or len(frames) == 0 or len(frames) % self.temporal_patch or frames.shape[-1] != 3:
            raise InputError(None, f"a chunk is 2k frames (2k, H, W, 3), got {frames.shape}")
        if times_s.shape != (len(frames),):
            raise InputError(None, f"times_s must be shaped ({len(frames)},), got {times_s.shape}")
        if first_step < self.n_steps:
            raise InputError(None, f"step {first_step} comes before the stream's next step {self.n_steps}")
        k = len(frames) // self.temporal_patch
        if refresh:
            self.refresh_gaze(scanpath)
        if tuple(frames.shape[1:3]) != self.frame_hw:
            frames = resize_frames(frames, *self.frame_hw)
        sp = check_scanpath(scanpath)
        embeds, feats, step_times, gaze = self._encode(frames, times_s, first_step, sp, window)
        start = self.cache.get_seq_length()
        self._prefill_chunk(first_step, embeds, feats, gaze)
        chunk = Chunk(first_step, k, start, self.cache.get_seq_length(), float(times_s[0]), float(times_s[-1]))
        if self.refresh_chunks:
            chunk.inputs = ChunkInputs(embeds, feats, step_times, gaze.points, gaze.mask, frames, times_s)
        self.chunks.append(chunk)
        if len(self.chunks) > self.refresh_chunks:
            self.chunks[-1 - self.refresh_chunks].inputs = None  # only the newest chunks can be refreshed
        self.video_end = chunk.end
        if self.window_s is not None:
            # the video held runs from the oldest chunk's first frame to the end of the newest one's last frame
            # (1/fps after it): at most window_s seconds of it stay (a 2 s window holds 2 steps at 2 fps, as a 2 s
            # training clip does; comparing last-frame times instead kept 3 steps, and through the session the demo
            # model, trained on 2 s clips, named the gazed object in 36 of 64 held-out demo questions, not 40)
            self._evict(chunk.t1_s + 1.0 / self.fps - self.window_s)
        return chunk

    def _encode(self, frames, times_s, first_step: int, sp: np.ndarray, window, offset: int = 0):
        """Qwen's vision embeddings (1, k*N, hidden), the V-JEPA features (k, Hm, Wm, D) (None without gaze or a
        resampler), the steps' first-frame times (k,) and their gaze, for 2k model frames (frame_hw) of steps
        first_step.. whose frames start `offset` frames after the grid's (see _windows)."""
        embeds, feats, step_times = self._encode_video(frames, times_s, first_step, len(sp) > 0, window, offset)
        return embeds, feats, step_times, self._gaze(sp, step_times)

    def _encode_video(self, frames, times_s, first_step: int, with_feats: bool, window, offset: int = 0):
        """The gaze-free part of `_encode`: (embeds, feats, step_times); feats only `with_feats` (and a resampler)."""
        gq, k = self.gq, len(frames) // self.temporal_patch
        with gq.timer.stage("preprocess"):
            vi = gq.preprocess(frames, self.fps, times_s)
        dev = gq.device
        with gq.timer.stage("qwen_vision"):
            vout = gq.qwen.model.get_video_features(
                vi.pixel_values_videos.to(dev), vi.video_grid_thw.to(dev), return_dict=True
            )
            embeds = torch.cat(vout.pooler_output).unsqueeze(0)  # (1, k*N, hidden)
        feats = None
        if gq.resampler is not None and with_feats:
            base = first_step * self.temporal_patch + offset
            win = window if window is not None else [(base + i, f) for i, f in enumerate(frames)]
            with gq.timer.stage("vjepa"):
                feats = gq.video_encoder.stream_features(self._windows(first_step, k, win, offset), self.merged_hw)
        elif window is not None and gq.resampler is not None:
            self._windows(first_step, k, window, offset)  # keep the V-JEPA frame cache warm for the next chunk
        return embeds, feats, np.asarray(vi.step_times, dtype=np.float64)

    def _gaze(self, sp: np.ndarray, step_times: np.ndarray) -> GazeInputs:
        """The resampler's gaze input for steps starting at step_times (seconds from the origin): the fixations of
        `sp` active in [t, t + the model's gaze span), or only the latest of them, as the model says
        (`GazeQwen.gaze_inputs`)."""
        return self.gq.gaze_inputs([sp], step_times[None], self.second_per_grid_t)

    def _prefill_chunk(self, first_step: int, embeds: torch.Tensor, feats: torch.Tensor | None, gaze) -> None:
        """Prefill one chunk's vision embeddings (1, k*N, hidden) at the cache's end, at the trained positions of
        steps first_step.., with the residuals the resampler makes from its V-JEPA features and gaze (none when
        feats is None or there is no resampler)."""
        gq, dev = self.gq, self.gq.device
        k = embeds.shape[1] // self.tokens_per_step
        residuals = None
        if feats is not None and gq.resampler is not None:
            rdev = module_device(gq.resampler)
            with gq.timer.stage("resampler"):
                residuals = gq.resampler(feats[None].to(rdev), gaze.points, gaze.mask, gaze.has_gaze.to(rdev))
        pos = video_position_ids(
            self.first_video_pos,
            first_step,
            first_step + k,
            self.merged_hw,
            self.tokens_per_second,
            self.second_per_grid_t,
        )
        kwargs = dict(inputs_embeds=embeds, position_ids=pos.to(dev), cache=self.cache, use_cache=True)
        with gq.timer.stage("prefill_chunk"):
            if gq.injector is None:
                gq.qwen(**kwargs, logits_to_keep=1)
            else:
                positions = torch.arange(embeds.shape[1]).unsqueeze(0)
                with gq.injector.inject(residuals, positions if residuals is not None else None):
                    gq.qwen(**kwargs, logits_to_keep=1)

    @torch.no_grad()
    def refresh_gaze(self, scanpath) -> int:
        """Re-prefill the newest chunks whose gaze input changed, with `scanpath` ((N, 4) rows [x, y, mid_t, dur],
        the gaze known now, same origin); returns how many chunks were re-prefilled (0: nothing changed or nothing
        can be refreshed).

        Why: a step's gaze is every fixation active in [its first frame, + one step) (`GazeQwen.gaze_span_s`), which
        ends half a step after its last frame, when a live chunk is prefilled; a fixation begun at the end of the
        newest chunk (typically the one the wearer makes while asking) is missing from its residuals. Training and
        `eval` see it (their clip ends at the question). Measured with the demo model through the session on 104 demo
        questions (13 scenes): 61.5 % right with the refresh, 57.7 % without. Only chunks that kept their
        inputs (the `refresh_chunks` newest) are compared; the cache is cut back to the first one that changed and
        it and every later chunk are prefilled again (a chunk prefilled before any gaze has no V-JEPA features and
        keeps no gaze). The refreshed gaze stays: later questions see it too.
        """
        self.cut_back()
        sp = check_scanpath(scanpath)
        kept = self._kept()
        if self.gq.resampler is None or not kept:
            return 0
        new = [self._gaze(sp, c.inputs.step_times) for c in kept]
        first = next(
            (
                i
                for i, (c, g) in enumerate(zip(kept, new, strict=True))
                if c.inputs.feats is not None
                and not (torch.equal(c.inputs.mask, g.mask) and torch.equal(c.inputs.points, g.points))
            ),
            None,
        )
        if first is None:
            return 0
        redo = kept[first:]
        self.cache.crop(redo[0].start - self.cache.get_seq_length())  # negative: tokens to remove
        with self.gq.timer.stage("gaze_refresh"):
            for c, g in zip(redo, new[first:], strict=True):
                if c.inputs.feats is None:
                    g = self._gaze(np.zeros((0, 4), np.float32), c.inputs.step_times)
                self._prefill_chunk(c.first_step, c.inputs.embeds, c.inputs.feats, g)
                c.inputs.points, c.inputs.mask = g.points, g.mask
                if self.cache.get_seq_length() != c.end:
                    raise RuntimeError(f"refreshed chunk ends at {self.cache.get_seq_length()}, not {c.end}")
        return len(redo)

    def _kept(self) -> list[Chunk]:
        """The newest chunks that kept their inputs, oldest first (a suffix of the cache's chunks; [] when none)."""
        out = []
        for c in reversed(self.chunks):
            if c.inputs is None:
                break
            out.append(c)
        return out[::-1]

    def _evict(self, before_s: float) -> None:
        """Drop the keys and values of every chunk that began before `before_s` (never the newest); a small tolerance
        (a tenth of a frame) keeps a chunk that begins on the boundary despite jittered frame times."""
        while len(self.chunks) > 1 and self.chunks[0].t0_s < before_s - 0.1 / self.fps:
            old = self.chunks.popleft()
            n = old.end - old.start
            for layer in self.cache.layers:
                if getattr(layer, "keys", None) is None:
                    continue
                layer.keys = torch.cat([layer.keys[..., : old.start, :], layer.keys[..., old.end :, :]], dim=-2)
                layer.values = torch.cat([layer.values[..., : old.start, :], layer.values[..., old.end :, :]], dim=-2)
            for c in self.chunks:
                c.start -= n
                c.end -= n
            self.video_end -= n
            self.evicted_steps += old.n_steps

    def prepare_view(self, tail_index: int, tail_frame: np.ndarray, tail_time_s: float) -> _PreparedView | None:
        """The encoders' part of `question_view` (preprocess, Qwen's vision tower, V-JEPA), which needs no gaze: run
        while a question waits for its gaze to settle, so its view then only looks the gaze up, runs the resampler
        and prefills. None when the view would not be made. Valid until the stream changes (checked)."""
        self.cut_back()
        kept = self._kept()
        if not kept or tail_index != 2 * self.n_steps:
            return None
        tail = np.asarray(tail_frame)[None]
        if tuple(tail.shape[1:3]) != self.frame_hw:
            tail = resize_frames(tail, *self.frame_hw)
        frames = np.concatenate([c.inputs.frames for c in kept] + [tail])[1:]
        times = np.concatenate([c.inputs.times_s for c in kept] + [np.array([tail_time_s])])[1:]
        first, start = kept[0].first_step, kept[0].start
        window = [(2 * first + 1 + i, f) for i, f in enumerate(frames)]
        with self.gq.timer.stage("question_view_encode"):
            embeds, feats, step_times = self._encode_video(frames, times, first, True, window, offset=1)
        return _PreparedView((tail_index, self.n_steps, first, start), times, embeds, feats, step_times)

    @contextmanager
    def question_view(
        self, tail_index: int, tail_frame: np.ndarray, tail_time_s: float, scanpath, prepared=None
    ) -> Iterator[bool]:
        """For one question: the kept chunks' steps re-paired to end at a newer model frame, in place of them until
        the block ends (then the cache is as before). Yields True when the view is in place, False when nothing was
        done (no kept chunks, or the frame is not the one right after the cache's last).

        tail_index: the stream's model-frame index of `tail_frame` (H, W, 3) uint8, taken at tail_time_s (seconds from
        the origin), which must be 2 * n_steps (the odd frame a session holds for its next step); scanpath: (N, 4) rows
        known at the question.

        Why: the session prefills whole steps of two frames, so the newest frame in the cache is up to one step older
        than the question (1 s at 2 fps) while training clips end at the question. The kept chunks' frames minus
        their first, plus the new frame, make as many steps again (same step indices and positions, V-JEPA windows
        one frame later, gaze re-looked-up with `scanpath`); the video then ends at the newest frame and still spans
        the same time. Cost: the encoders and one prefill of those steps, plus a copy of their keys and values.
        `prepared`: this view's `prepare_view` (made since the stream last changed), whose encodings it then uses.
        """
        self.cut_back()
        kept = self._kept()
        if not kept or tail_index != 2 * self.n_steps:
            yield False
            return
        first, start = kept[0].first_step, kept[0].start
        if prepared is None or prepared.key != (tail_index, self.n_steps, first, start):
            prepared = self.prepare_view(tail_index, tail_frame, tail_time_s)
        times = prepared.times
        sp = check_scanpath(scanpath)
        saved = [
            (layer, layer.keys[..., start:, :].clone(), layer.values[..., start:, :].clone())
            for layer in self.cache.layers
            if getattr(layer, "keys", None) is not None
        ]
        saved_end, saved_span = self.video_end, self._view_span
        try:
            with self.gq.timer.stage("question_view"):
                self.cache.crop(start - self.cache.get_seq_length())
                gaze = self._gaze(sp, prepared.step_times)
                self._prefill_chunk(first, prepared.embeds, prepared.feats if len(sp) else None, gaze)
            self.video_end = self.cache.get_seq_length()
            self._view_span = (float(self.chunks[0].t0_s if kept[0] is not self.chunks[0] else times[0]), tail_time_s)
            yield True
        finally:
            self.cache.crop(start - self.cache.get_seq_length())
            for layer, k, v in saved:
                layer.keys = torch.cat([layer.keys, k], dim=-2)
                layer.values = torch.cat([layer.values, v], dim=-2)
            self.video_end, self._view_span = saved_end, saved_span

    # ------------------------------------------------------------------ questions
    def _question_prefill(self, text: str, assistant: str = ""):
        """Prefill the question's tokens after the video; returns (logits of its last position, next position)."""
        if not self.chunks:
            raise InputError(None, "no video has arrived yet", hint="ask again once the scene camera delivers frames")
        dev = self.gq.device
        with self.gq.timer.stage("question_prompt"):  # rendered, tokenised, its positions built
            _, suffix = prompt_pieces(self.gq, text, assistant)
            first = after_video_position(
                self.first_video_pos, self.n_steps, self.merged_hw, self.tokens_per_second, self.second_per_grid_t
            )
            ids = torch.tensor([suffix], device=dev)
            positions = text_position_ids(first, len(suffix)).to(dev)
        with self.gq.timer.stage("prefill_question"):
            out = self.gq.qwen(
                input_ids=ids,
                position_ids=positions,
                cache=self.cache,
                use_cache=True,
                logits_to_keep=1,
            )
        return out.logits[:, -1], first + len(suffix)

    def cut_back(self) -> None:
        """Remove everything after the video from the cache (a question and its answer)."""
        extra = self.cache.get_seq_length() - self.video_end
        if extra > 0:
            self.cache.crop(-extra)

    @torch.no_grad()
    def question_logits(self, text: str, assistant: str = "") -> torch.Tensor:
        """(vocab,) float32 logits at the last position of a question prefilled after the video (then cut back)."""
        try:
            logits, _ = self._question_prefill(text, assistant)
            return logits[0].float().cpu()
        finally:
            self.cut_back()

    @torch.no_grad()
    def score_options(self, question: str, options: Sequence[str], prompt: str = "reference") -> dict[str, float]:
        """{letter: logit} of the option letters at the last position of the named multiple-choice prompt
        (MC_PROMPTS), as `GazeQwen.score_options` computes them for a full prefill."""
        if not options:
            raise InputError(None, "a multiple-choice question needs at least one option")
        letters = option_letters(options)
        user, assistant = mc_prompt(prompt).render(question, options)
        ids = [self.gq.tokenizer.encode(x, add_special_tokens=False)[0] for x in letters]
        logits = self.question_logits(user, assistant)
        return dict(zip(letters, logits[ids].tolist(), strict=True))

    @torch.no_grad()
    def score_option_texts(self, question: str, options: Sequence[str], prompt: str = "reference") -> dict[str, float]:
        """{letter: log p(option text + end of turn)} after the video so far (the option-text protocol), as
        `GazeQwen.score_option_texts` computes them for a full prefill; the cache is cut back afterwards."""
        if not options:
            raise InputError(None, "a multiple-choice question needs at least one option")
        letters = option_letters(options)
        user, assistant = mc_prompt(prompt).render(question, options)
        try:
            logits, next_pos = self._question_prefill(user, assistant)
            conts = [self.gq.answer_ids(t) for t in option_texts(options)]
            lps = self.gq.continuation_logprobs(logits, self.cache, next_pos, conts)
        finally:
            self.cut_back()
        return dict(zip(letters, lps, strict=True))

    @torch.no_grad()
    def answer_logprobs(
        self, question: str, answer: str, max_guess_tokens: int = 12, alternatives: Sequence[str] = ()
    ) -> tuple[float, float]:
        """After the video so far, with `question` asked without options (the way `answer` asks it): (log p(answer's
        words + end of turn), log p of the model's own answer, end of turn included): the greedy reply's, or that of
        one of `alternatives` where it is more likely (greedy decoding takes the likeliest token at each step, not the
        likeliest reply: "white" + "circle" can win over "nothing" while "nothing" as a whole is likelier). Their
        difference says how far `answer` is from what the model would say (0 when it is that). One prefill; the
        cache is cut back."""
        try:
            logits, next_pos = self._question_prefill(question)
            conts = [self.gq.answer_ids(a) for a in (answer, *alternatives)]
            lp, *lp_alternatives = self.gq.continuation_logprobs(logits, self.cache, next_pos, conts)
            _, lp_greedy = self.gq.greedy_continuation(logits, self.cache, next_pos, max_guess_tokens)
        finally:
            self.cut_back()
        return lp, max([lp_greedy, *lp_alternatives])

    def score_mc(self, question: str, options: Sequence[str], prompt: str = "reference") -> dict[str, float]:
        """{letter: score} under the model's own multiple-choice protocol (`GazeQwen.mc_protocol`)."""
        if self.gq.mc_protocol == "option_text":
            return self.score_option_texts(question, options, prompt)
        return self.score_options(question, options, prompt)

    @torch.no_grad()
    def answer(
        self, question: str, max_new_tokens: int = 64, reply: Reply | None = None, stop: callable = None
    ) -> Iterator[str]:
        """Stream the greedy answer to a question about the video so far, piece by piece (an incremental
        detokeniser: each token is decoded once). Fills `reply` (text, n_tokens, ttft_s, video_span_s) as it goes;
        `stop()` returning True ends the answer early (barge-in). The cache is cut back to the video afterwards."""
        reply = reply if reply is not None else Reply()
        reply.video_span_s = self.video_span_s
        t0 = time.perf_counter()
        try:
            logits, next_pos = self._question_prefill(question)
            yield from self.gq.decode(logits, self.cache, next_pos, t0, max_new_tokens, reply=reply, stop=stop)
        finally:
            self.cut_back()
