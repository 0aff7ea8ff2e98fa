"""GazeQwen: Qwen2.5-VL (transformers) + a V-JEPA video encoder + the gaze resampler + an injector.

    gq = GazeQwen.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct", checkpoint="ckpt_dir", dtype=torch.bfloat16)
    for piece in gq.answer(Video(frames, fps=30), scanpath, "What am I looking at?"):
        print(piece, end="")
    logits = gq.score_options(Video(frames, 30), scanpath, "Which object ...?", ["A. box", "B. cup", ...])

video: (T, H, W, 3) uint8 RGB frames and their fps. scanpath: (N, 4) rows [x, y, mid_t, dur], x, y normalised to
[0, 1] of the frame, times in seconds from the clip start. Without a scanpath (None or empty) this is plain
Qwen2.5-VL: no V-JEPA, no resampler, nothing injected.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.model.gaze_encoding import GazeInputs, check_scanpath, step_times
from gazeqwen_edge.model.injection import Injector, make_injector, video_token_positions
from gazeqwen_edge.model.positions import rope_position_ids
from gazeqwen_edge.model.preprocessing import (
    FPS_MAX_FRAMES,
    VIDEO_MAX_PIXELS,
    VIDEO_MIN_PIXELS,
    FrameSample,
    VideoInputs,
    check_frames,
    default_sampling_fps,
    preprocess_video,
    sample_frame_indices,
)
from gazeqwen_edge.timing import StageTimer

VIDEO_PAD = "<|video_pad|>"
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
MC_SUFFIX = "The best option is:"


@dataclass
class Video:
    """A clip: (T, H, W, 3) uint8 RGB frames at `fps` frames per second (frame i at i / fps s from the clip start)."""

    frames: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        self.frames = check_frames(self.frames)
        if not self.fps > 0:
            raise InputError(None, f"video fps must be positive, got {self.fps}")

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps


@dataclass
class Reply:
    """What one answer produced: the generated text (or, for multiple choice, the chosen letter with every letter's
    logit in `scores`), the number of generated tokens, time to first token (s, from the question's arrival, its
    prefill included), and the video span it saw (s from the stream's origin; None when there was none)."""

    text: str = ""
    scores: dict[str, float] | None = None
    n_tokens: int = 0
    ttft_s: float | None = None
    video_span_s: tuple[float, float] | None = None


@dataclass
class Sample:
    """One prepared prompt: token ids, Qwen video inputs, the frames fed to Qwen, and the scanpath."""

    input_ids: list[int]
    video: VideoInputs
    frames: np.ndarray
    scanpath: np.ndarray


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, L) left-padded
    attention_mask: torch.Tensor  # (B, L)
    position_ids: torch.Tensor  # (3, B, L)
    mm_token_type_ids: torch.Tensor  # (B, L) 0 text, 2 video
    pixel_values_videos: torch.Tensor
    video_grid_thw: torch.Tensor  # (B, 3)
    second_per_grid_ts: torch.Tensor  # (B,)
    samples: list[Sample]


# An option's leading letter: "A. box", "B) cup", "C:x" as StreamGaze and most files write it, and the forms people
# type, "a) box", "(b) cup", "c. mug", where a lower-case or bracketed letter must be followed by a space ("e.g. a
# cup" and "a cup" are texts, not lettered options). Group 1, 2 or 3 holds the letter.
_LETTER = re.compile(r"\s*(?:\(([A-Za-z])\)|([a-z])[.):])\s+|\s*([A-Z])[.):]")


def _written_letter(option: str) -> tuple[str, bool] | None:
    """(the option's letter in upper case, whether it is written the reference way: an upper-case letter then '.',
    ')' or ':'), or None when the option starts with no letter."""
    m = _LETTER.match(option)
    if m is None:
        return None
    return (m.group(1) or m.group(2) or m.group(3)).upper(), m.group(3) is not None


def option_letters(options: Sequence[str]) -> list[str]:
    """'A. box' -> 'A' ('a) box' and '(a) box' too); options without a leading letter get A, B, C, ... by position.
    Letters must be unique: InputError."""
    out = []
    for i, o in enumerate(options):
        written = _written_letter(o)
        out.append(written[0] if written else chr(ord("A") + i))
    if len(set(out)) != len(out):
        raise InputError(None, f"options must have distinct letters, got {out} for {list(options)}")
    return out


def lettered_options(options: Sequence[str]) -> list[str]:
    """Each option as an 'L. text' line: kept as written when it starts with its upper-case letter ('A. box',
    'B) cup'), else the letter put in front of its text ('box' -> 'A. box', 'b) cup' -> 'B. cup'), so every scored
    letter appears in the prompt as the letter scored."""
    return [
        o.strip() if (_written_letter(o) or ("", False))[1] else f"{letter}. {text}"
        for o, letter, text in zip(options, option_letters(options), option_texts(options), strict=True)
    ]


def option_texts(options: Sequence[str]) -> list[str]:
    """Each option's text without its letter ('A. red circle', 'a) red circle' -> 'red circle'): what a model that
    answers in words says, scored by the option-text likelihood protocol."""
    return [_LETTER.sub("", o, count=1).strip() if _LETTER.match(o) else o.strip() for o in options]


# How a multiple-choice question is answered (a model's `mc_protocol`; eval's --protocol):
# "letter": the logits of the option letters at the first assistant position (the released GazeQwen protocol);
# "option_text": the log-likelihood of each option's text (+ end of turn) written as the assistant's answer, for small
# models that answer in words (REFERENCE.md section 6: a tiny LLM learns answer words, not the letter protocol).
MC_PROTOCOLS = ("letter", "option_text")


@dataclass(frozen=True)
class MCPrompt:
    """How a multiple-choice item is written: `user` is the text of the user turn (after the video item), built from
    {question} and {options} (the lettered option lines joined by newlines); `assistant` is written after the chat
    template's generation prompt (`<|im_start|>assistant\n`). The option letters are scored at the last position."""

    user: str
    assistant: str = ""

    def render(self, question: str, options: Sequence[str]) -> tuple[str, str]:
        """(user text, assistant prefix) for one item."""
        opts = "\n".join(lettered_options(options))
        return self.user.format(question=question, options=opts), self.assistant


MC_PROMPTS: dict[str, MCPrompt] = {
    # The released GazeQwen code, for training and evaluation (REFERENCE.md section 1): the user turn holds the video
    # and this text; nothing is written into the assistant turn, so the letters are scored at the first assistant
    # position. A converted checkpoint is comparable to the paper's numbers only under this prompt.
    "reference": MCPrompt("Question: {question}\nOptions:\n{options}\n\nThe best option is:"),
    # An alternative for other Qwen2.5-VL checkpoints: question, options and an answer instruction in the user turn,
    # "The best option is:" opening the assistant turn.
    "instruction": MCPrompt("{question}\n{options}\n" + MC_INSTRUCTION, MC_SUFFIX),
}


def mc_prompt(name: str) -> MCPrompt:
    """The named multiple-choice prompt of MC_PROMPTS; ConfigError for an unknown name."""
    if name not in MC_PROMPTS:
        raise ConfigError(f"unknown multiple-choice prompt {name!r}; choose from {', '.join(MC_PROMPTS)}")
    return MC_PROMPTS[name]


HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
HUB_HOST = "huggingface.co"


def _hub_reachable(host: str = HUB_HOST, port: int = 443, timeout_s: float = 2.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def check_model_source(src: str) -> bool:
    """Where a model will come from, checked before transformers is asked (which, offline, retries a hub id for about
    half a minute, printing each retry): True when it loads from disk only (a local directory, or a hub id already in
    the Hugging Face cache, or HF_HUB_OFFLINE set), False when it may be downloaded.
    Raises InputError for a path that does not exist, a string that is neither a directory nor a hub id, and a hub id
    that is not cached while huggingface.co cannot be reached."""
    import os

    p = Path(src).expanduser()
    if p.is_dir():
        return True
    if p.exists():
        raise InputError(src, "is a file; a model is a directory (config.json, weights, tokenizer) or a hub id")
    if not HUB_ID.match(src):
        raise InputError(src, "no such model directory, and not a hub id (like Qwen/Qwen2.5-VL-7B-Instruct)")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(src, "config.json"), str)
    except Exception:  # noqa: BLE001 - a malformed id or cache: decide by reachability below
        cached = False
    if cached or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return True
    if not _hub_reachable():
        raise InputError(
            src,
            f"is not in the local Hugging Face cache and {HUB_HOST} cannot be reached to download it",
            hint="download it on a machine with network (huggingface-cli download ID) and copy it, or pass a directory",
        )
    return False


def module_device(module) -> torch.device:
    """The device a module's inputs go to: its own `device` (the video encoders, the ONNX runners of
    gazeqwen_edge.export, which hold no parameters), else its first parameter's, else the CPU."""
    dev = getattr(module, "device", None)
    if dev is not None:
        return torch.device(dev)
    p = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


class GazeQwen:
    """Qwen2.5-VL + video encoder + gaze resampler + injector, assembled.

    qwen: a transformers Qwen2_5_VLForConditionalGeneration; tokenizer: its tokenizer; video_encoder / resampler:
    None for plain Qwen2.5-VL (no gaze path); injector: how residuals reach the decoder layers (default built by name
    from `injection`: "hooks", the reference forward hooks, or "fused", the residual add fused into the injected
    layers' forward; numerically equal, model/injection.py); min/max_pixels, max_frames, sampling_fps: the video
    budget (qwen-vl-utils' defaults); timer: where stage timings go; mc_protocol: "letter" or "option_text".
    Raises ConfigError when the resampler does not fit the LLM or the video encoder.
    """

    def __init__(
        self,
        qwen,
        tokenizer,
        video_encoder=None,
        resampler=None,
        *,
        injector: Injector | None = None,
        injection: str = "hooks",
        min_pixels: int = VIDEO_MIN_PIXELS,
        max_pixels: int = VIDEO_MAX_PIXELS,
        max_frames: int = FPS_MAX_FRAMES,
        sampling_fps: float | None = None,
        timer: StageTimer | None = None,
        mc_protocol: str = "letter",
    ):
        if mc_protocol not in MC_PROTOCOLS:
            raise ConfigError(f"mc_protocol must be one of {', '.join(MC_PROTOCOLS)}, got {mc_protocol!r}")
        self.mc_protocol = mc_protocol
        self.meta: dict = {}  # how the model was trained, when it came from a model directory (model_dir.py)
        self.qwen = qwen
        self.tokenizer = tokenizer
        self.video_encoder = video_encoder
        self.resampler = resampler
        self.min_pixels, self.max_pixels, self.max_frames = min_pixels, max_pixels, max_frames
        self.sampling_fps = sampling_fps
        self.timer = timer if timer is not None else StageTimer()
        cfg = qwen.config
        self.video_token_id = int(cfg.video_token_id)
        vc = cfg.vision_config
        self.patch_size, self.temporal_patch, self.merge = vc.patch_size, vc.temporal_patch_size, vc.spatial_merge_size
        if resampler is not None:
            rc = resampler.config
            tc = cfg.text_config
            if rc.d_llm != tc.hidden_size or rc.n_llm_layers != tc.num_hidden_layers:
                raise ConfigError(
                    f"resampler is for an LLM of hidden {rc.d_llm} x {rc.n_llm_layers} layers, the loaded Qwen has "
                    f"hidden {tc.hidden_size} x {tc.num_hidden_layers} layers"
                )
            if video_encoder is None:
                raise ConfigError("a resampler needs a video encoder")
            if rc.d_vjepa != video_encoder.hidden_size:
                raise ConfigError(
                    f"resampler expects {rc.d_vjepa}-d video features, the video encoder gives {video_encoder.hidden_size}"
                )
            self.injector = injector if injector is not None else make_injector(injection, rc.injected_layers)
            self.injector.attach(qwen)
        else:
            self.injector = None
        self._eos_ids = {
            i for i in (tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")) if i is not None
        }
        if tokenizer.eos_token_id is not None:
            self._eos_ids.add(tokenizer.eos_token_id)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        qwen: str,
        checkpoint: str | None = None,
        video_encoder=None,
        dtype: torch.dtype = torch.bfloat16,
        device: str = "cpu",
        **kwargs,
    ) -> GazeQwen:
        """Load Qwen2.5-VL (hub id or local dir), the video encoder (a VideoEncoderConfig or a VideoEncoder; default
        V-JEPA 2.1 ViT-B/384 from torch.hub) and the resampler checkpoint (our format; None: no gaze path). A
        checkpoint's stage-2 LoRA is merged into the LLM weights. kwargs go to GazeQwen (pixel budget, fps, timer)."""
        from transformers import AutoConfig, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        from gazeqwen_edge.model.checkpoint import load_checkpoint
        from gazeqwen_edge.model.config import VideoEncoderConfig
        from gazeqwen_edge.model.lora import merge_lora
        from gazeqwen_edge.model.video_encoder import VideoEncoder, load_video_encoder

        local_only = check_model_source(qwen)
        try:
            cfg = AutoConfig.from_pretrained(qwen, local_files_only=local_only)
            if getattr(cfg, "model_type", None) != "qwen2_5_vl":  # transformers would load it with random weights
                raise InputError(
                    qwen,
                    f"is a {getattr(cfg, 'model_type', 'unknown')!r} model, not Qwen2.5-VL (model_type 'qwen2_5_vl')",
                    hint="pass a Qwen2.5-VL hub id or directory, e.g. Qwen/Qwen2.5-VL-7B-Instruct",
                )
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(qwen, dtype=dtype, local_files_only=local_only)
            model = model.to(device).eval()
            tok = AutoTokenizer.from_pretrained(qwen, local_files_only=local_only)
        except (OSError, ValueError) as e:  # not found / not a model dir (OSError), malformed hub id (ValueError)
            raise InputError(qwen, f"cannot load Qwen2.5-VL ({e})") from e
        resampler, encoder = None, None
        if checkpoint is not None:
            ck = load_checkpoint(checkpoint)
            resampler = ck.resampler.to(device).eval()
            if ck.lora_state_dict:  # stage 2: merge the LLM LoRA into the loaded weights
                merge_lora(model, ck.lora_state_dict, ck.lora_config)
            if isinstance(video_encoder, VideoEncoder):
                encoder = video_encoder
            else:
                encoder = load_video_encoder(video_encoder or VideoEncoderConfig(), device=device)
        return cls(model, tok, encoder, resampler, **kwargs)

    def close(self) -> None:
        """Remove the injection hooks from the LLM (the Qwen model is then plain again)."""
        if self.injector is not None:
            self.injector.detach()

    @property
    def device(self) -> torch.device:
        return next(self.qwen.parameters()).device

    # ------------------------------------------------------------------ inputs
    def sample_clip(self, video: Video) -> tuple[FrameSample, float]:
        """Which frames of the clip Qwen gets (qwen-vl-utils' policy: `sample_frame_indices`) and the nominal sampling
        fps they were asked at (the reference policy by clip length unless `sampling_fps` was set)."""
        fps = min(self.sampling_fps or default_sampling_fps(video.duration_s), video.fps)
        return sample_frame_indices(len(video.frames), video.fps, fps, self.max_frames), fps

    def build_prompt(self, text: str, n_video_tokens: int, suffix: str = "") -> list[int]:
        """Token ids of one user turn (the video item, then `text`) under the tokenizer's chat template with the
        generation prompt, `suffix` written after it into the assistant turn; the video item expanded to
        `n_video_tokens` <|video_pad|> tokens."""
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]
        s = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if s.count(VIDEO_PAD) != 1:
            raise ConfigError(f"the tokenizer's chat template must render one {VIDEO_PAD} for a video item")
        s = s.replace(VIDEO_PAD, VIDEO_PAD * n_video_tokens) + suffix
        return self.tokenizer(s, add_special_tokens=False)["input_ids"]

    @property
    def regime(self) -> str:
        """The resampler's regime ("reference" or "stream", ResamplerConfig); "stream" without a resampler."""
        return self.resampler.config.regime if self.resampler is not None else "stream"

    @property
    def latest_fixation(self) -> bool:
        """Whether each temporal step gives the resampler only its latest fixation (ResamplerConfig.step_fixations
        "latest"), not every one it finds."""
        return self.resampler is not None and self.resampler.config.step_fixations == "latest"

    def gaze_inputs(self, scanpaths, times, second_per_grid_t) -> GazeInputs:
        """The resampler's gaze input under this model's rules, the one place they are applied (full prefill, stream
        and training forward alike): each step looks the fixations up over `gaze_span_s` and keeps only its latest
        when `latest_fixation`. scanpaths: one (N, 4) array or None per sample; times: the steps' starts, (T,) or
        (B, T) seconds from each clip's start; second_per_grid_t: a step's duration in seconds, one number or one per
        sample."""
        per_sample = np.broadcast_to(np.asarray(second_per_grid_t, dtype=np.float64), (len(scanpaths),))
        spans = [self.gaze_span_s(s) for s in per_sample]
        return GazeInputs.from_scanpaths(scanpaths, times, spans, latest=self.latest_fixation)

    def gaze_span_s(self, second_per_grid_t: float) -> float:
        """How long a temporal step's gaze look-up lasts: 0 in the reference regime (the released code looks the gaze
        up at one instant per step), the step's duration in the stream regime (a fixation made while the step's
        frames were shown counts, so one that began after the step's first frame is not missed)."""
        return 0.0 if self.regime == "reference" else float(second_per_grid_t)

    def preprocess(self, frames: np.ndarray, sampling_fps: float, frame_times: np.ndarray) -> VideoInputs:
        """Model frames (T, H, W, 3) uint8 -> Qwen2.5-VL video inputs with this model's pixel budget and patching;
        sampling_fps is the rate Qwen is told, frame_times (T,) the frames' seconds from the clip start."""
        return preprocess_video(
            frames,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            patch_size=self.patch_size,
            temporal_patch=self.temporal_patch,
            merge_size=self.merge,
            sampling_fps=sampling_fps,
            frame_times=frame_times,
        )

    def prepare(self, video: Video, scanpath, text: str, suffix: str = "") -> Sample:
        """Sample and preprocess the clip, tokenise the prompt, check the scanpath. In the "stream" regime each
        temporal step takes the fixations active during its real time span (gaze_span_s); in the "reference" regime at
        clip_start + t * 2 / nominal fps, as the released code does (REFERENCE.md section 1)."""
        picked, nominal_fps = self.sample_clip(video)
        return self.prepare_frames(
            video.frames[picked.indices], picked.sample_fps, picked.times_s, nominal_fps, scanpath, text, suffix
        )

    def prepare_frames(
        self,
        frames: np.ndarray,
        sample_fps: float,
        frame_times: np.ndarray,
        nominal_fps: float,
        scanpath,
        text: str,
        suffix: str = "",
    ) -> Sample:
        """`prepare` for frames already sampled (T, H, W, 3) uint8: sample_fps is the rate Qwen is told (its 3-D
        positions), frame_times (T,) their seconds from the clip start, nominal_fps the rate asked for (the reference
        regime's gaze look-up times)."""
        with self.timer.stage("preprocess"):
            vi = self.preprocess(frames, sample_fps, frame_times)
            if self.regime == "reference":
                vi.step_times = step_times(len(vi.step_times), nominal_fps, self.temporal_patch)
            ids = self.build_prompt(text, vi.n_video_tokens, suffix)
        return Sample(ids, vi, frames, check_scanpath(scanpath))

    def collate(self, samples: Sequence[Sample]) -> Batch:
        """Left-pad prepared samples into one batch with their 3-D position ids (the trained rule)."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        length = max(len(s.input_ids) for s in samples)
        ids = torch.full((len(samples), length), pad, dtype=torch.long)
        am = torch.zeros((len(samples), length), dtype=torch.long)
        for i, s in enumerate(samples):
            ids[i, length - len(s.input_ids) :] = torch.tensor(s.input_ids)
            am[i, length - len(s.input_ids) :] = 1
        mm = ((ids == self.video_token_id) & (am == 1)).long() * 2
        grid = torch.cat([s.video.video_grid_thw for s in samples])
        spg = torch.tensor([s.video.second_per_grid_t for s in samples])
        # the trained 3-D position rule, never transformers' own (it changed in 5.3: positions.py)
        pos = rope_position_ids(
            ids,
            self.video_token_id,
            [s.video.merged_grid for s in samples],
            spg.tolist(),
            self.qwen.config.vision_config.tokens_per_second,
            attention_mask=am,
        )
        pv = torch.cat([s.video.pixel_values_videos for s in samples])
        return Batch(ids, am, pos, mm, pv, grid, spg, list(samples))

    # ------------------------------------------------------------------ gaze path
    def gaze_residuals(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor] | None:
        """V-JEPA features -> resampler residuals (M, B, T, N, D) and the video token positions (B, P); None when no
        sample of the batch has a scanpath (or there is no resampler)."""
        if self.resampler is None or not any(len(s.scanpath) for s in batch.samples):
            return None
        grids = {tuple(s.video.video_grid_thw[0].tolist()) for s in batch.samples}
        if len(grids) != 1:
            raise InputError(None, f"a batch with gaze needs one video size, got grids {sorted(grids)}")
        t, h, w = grids.pop()
        merged = (t, h // self.merge, w // self.merge)
        dev = module_device(self.resampler)
        with self.timer.stage("vjepa"):
            if self.regime == "reference":
                feats = self.video_encoder.features([s.frames for s in batch.samples], merged)
            else:
                feats = torch.cat([self.video_encoder.clip_stream_features(s.frames, merged) for s in batch.samples])
            feats = feats.to(dev)
        gaze = self.gaze_inputs(
            [s.scanpath for s in batch.samples],
            np.stack([s.video.step_times for s in batch.samples]),
            [s.video.second_per_grid_t for s in batch.samples],
        ).to(dev)
        with self.timer.stage("resampler"), torch.no_grad():
            res = self.resampler(feats, gaze.points, gaze.mask, gaze.has_gaze)
        positions = video_token_positions(batch.input_ids, self.video_token_id)
        return res, positions

    # ------------------------------------------------------------------ forward passes
    @torch.no_grad()
    def prefill(self, batch: Batch, logits_to_keep: int = 1):
        """Qwen vision tower, gaze residuals, and one prefill forward with the residuals injected. Returns the
        model output (logits of the last `logits_to_keep` positions, the KV cache)."""
        from transformers import DynamicCache

        dev = self.device
        with self.timer.stage("qwen_vision"):
            vout = self.qwen.model.get_video_features(
                batch.pixel_values_videos.to(dev), batch.video_grid_thw.to(dev), return_dict=True
            )
        gaze = self.gaze_residuals(batch)
        cache = DynamicCache(config=self.qwen.config)
        kwargs = dict(
            input_ids=batch.input_ids.to(dev),
            attention_mask=batch.attention_mask.to(dev),
            position_ids=batch.position_ids.to(dev),
            mm_encoder_outputs={"video": vout},
            cache=cache,
            use_cache=True,
            logits_to_keep=logits_to_keep,
        )
        with self.timer.stage("prefill"):
            if self.injector is None:
                out = self.qwen(**kwargs)
            else:
                with self.injector.inject(*(gaze or (None, None))):
                    out = self.qwen(**kwargs)
        return out

    @torch.no_grad()
    def score_batch(self, samples: Sequence[Sample], letters: Sequence[str]) -> torch.Tensor:
        """(B, n_options) logits of the option letters at the last position of each prompt."""
        ids = []
        for letter in letters:
            enc = self.tokenizer.encode(letter, add_special_tokens=False)
            if not enc:
                raise ConfigError(f"the tokenizer cannot encode option letter {letter!r}")
            ids.append(enc[0])
        out = self.prefill(self.collate(samples), logits_to_keep=1)
        return out.logits[:, -1, ids].float().cpu()

    def score_options(
        self, video: Video, scanpath, question: str, options: Sequence[str], prompt: str = "reference"
    ) -> dict[str, float]:
        """The reference evaluation protocol: the logits of the option letters at the last position of the named
        multiple-choice prompt (MC_PROMPTS; default "reference", the released code's prompt). Letter ids are the first
        id of `tokenizer.encode(letter)` without special tokens. Returns {letter: logit}; the prediction is the
        argmax. Raises InputError for no options or repeated letters, ConfigError for an unknown prompt."""
        if not options:
            raise InputError(None, "score_options needs at least one option")
        letters = option_letters(options)
        user, assistant = mc_prompt(prompt).render(question, options)
        with self.timer.stage("score_options"):
            s = self.prepare(video, scanpath, user, suffix=assistant)
            logits = self.score_batch([s], letters)[0]
        return dict(zip(letters, logits.tolist(), strict=True))

    def answer_ids(self, text: str) -> list[int]:
        """Token ids of `text` written as the assistant's answer, closed by the end-of-turn token: what the
        option-text protocol scores and what training on answer words learns (tokenised apart from the prompt, which
        ends with the chat template's `<|im_start|>assistant\n`)."""
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return self.tokenizer.encode(text, add_special_tokens=False) + [end]

    @torch.no_grad()
    def continuation_logprobs(self, logits: torch.Tensor, cache, next_pos: int, continuations) -> list[float]:
        """Sum of log-probabilities of each token sequence in `continuations` written after a prefilled prompt:
        logits (1, vocab) of the prompt's last position, its KV cache (cut back to the prompt after each), the
        position of the next token. Text positions advance by 1 on all three rotary axes (positions.py)."""
        first = torch.log_softmax(logits[0].float(), dim=-1)
        out = []
        for ids in continuations:
            lp = float(first[ids[0]])
            if len(ids) > 1:
                n = len(ids) - 1
                pos = torch.arange(next_pos, next_pos + n, device=self.device).view(1, 1, n).expand(3, 1, n)
                with self.timer.stage("score_continuation"):
                    o = self.qwen(
                        input_ids=torch.tensor([ids[:-1]], device=self.device),
                        position_ids=pos,
                        cache=cache,
                        use_cache=True,
                    )
                lps = torch.log_softmax(o.logits[0].float(), dim=-1)
                lp += float(lps[torch.arange(n), torch.tensor(ids[1:])].sum())
                cache.crop(-n)  # back to the prompt (crop takes the number of tokens to drop, negative)
            out.append(lp)
        return out

    @torch.no_grad()
    def greedy_continuation(self, logits: torch.Tensor, cache, next_pos: int, max_tokens: int) -> tuple[list, float]:
        """The greedy continuation of a prefilled prompt (logits (1, vocab) of its last position, its KV cache, the
        next position), up to and including the end-of-turn token or `max_tokens` tokens: (token ids, the sum of
        their log-probabilities). Untimed (a helper of scoring, not an answer); the cache is cut back to the
        prompt."""
        ids, lp, n_fed = [], 0.0, 0
        cur = logits[0].float()
        try:
            for step in range(max_tokens):
                lps = torch.log_softmax(cur, dim=-1)
                tok = int(lps.argmax())
                ids.append(tok)
                lp += float(lps[tok])
                if tok in self._eos_ids or step == max_tokens - 1:
                    break
                pos = torch.full((3, 1, 1), next_pos + step, device=self.device)
                o = self.qwen(
                    input_ids=torch.tensor([[tok]], device=self.device), position_ids=pos, cache=cache, use_cache=True
                )
                n_fed += 1
                cur = o.logits[0, -1].float()
        finally:
            if n_fed:
                cache.crop(-n_fed)
        return ids, lp

    def score_option_texts(
        self, video: Video, scanpath, question: str, options: Sequence[str], prompt: str = "reference"
    ) -> dict[str, float]:
        """The option-text likelihood protocol: {letter: log p(option text + end of turn | prompt)} under the named
        multiple-choice prompt (the prompt is prefilled once, each option's text scored after it); argmax is the
        prediction. Raises InputError for no options or repeated letters."""
        if not options:
            raise InputError(None, "score_option_texts needs at least one option")
        letters = option_letters(options)
        user, assistant = mc_prompt(prompt).render(question, options)
        with self.timer.stage("score_options"):
            batch = self.collate([self.prepare(video, scanpath, user, suffix=assistant)])
            out = self.prefill(batch)
            conts = [self.answer_ids(t) for t in option_texts(options)]
            lps = self.continuation_logprobs(out.logits[:, -1], out.cache, int(batch.position_ids.max()) + 1, conts)
        return dict(zip(letters, lps, strict=True))

    def score_mc(
        self,
        video: Video,
        scanpath,
        question: str,
        options: Sequence[str],
        prompt: str = "reference",
        protocol: str | None = None,
    ) -> dict[str, float]:
        """{letter: score} of a multiple-choice question under `protocol` (MC_PROTOCOLS; None: the model's own
        `mc_protocol`): letter logits or option-text log-likelihoods. The prediction is the argmax."""
        protocol = protocol or self.mc_protocol
        if protocol == "letter":
            return self.score_options(video, scanpath, question, options, prompt)
        if protocol == "option_text":
            return self.score_option_texts(video, scanpath, question, options, prompt)
        raise ConfigError(f"unknown multiple-choice protocol {protocol!r}; choose from {', '.join(MC_PROTOCOLS)}")

    @torch.no_grad()
    def answer(
        self,
        video: Video,
        scanpath,
        question: str,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
        reply: Reply | None = None,
        stop=None,
    ) -> Iterator[str]:
        """Stream the answer as text pieces (greedy when temperature is 0). Gaze residuals are injected into the
        prefill only; decoding reads them through the KV cache. `reply` and `stop`: see `decode`."""
        t0 = time.perf_counter()
        batch = self.collate([self.prepare(video, scanpath, question)])
        out = self.prefill(batch)
        next_pos = int(batch.position_ids.max()) + 1
        yield from self.decode(
            out.logits[:, -1], out.cache, next_pos, t0, max_new_tokens, temperature, seed, reply=reply, stop=stop
        )

    @torch.no_grad()
    def decode(
        self,
        logits: torch.Tensor,
        cache,
        next_pos: int,
        t0: float,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
        reply: Reply | None = None,
        stop=None,
    ) -> Iterator[str]:
        """Decode one sequence after its prefill: logits (1, vocab) of the prompt's last position, its KV cache, the
        position of the next token, and t0 (perf_counter s) the question arrived. Greedy when temperature is 0, else
        sampled (seeded). Pieces come from an incremental detokeniser (each token decoded once); bytes it still holds
        at the end (an answer ending inside a multi-byte character) are flushed as the tokenizer decodes them, so the
        pieces join to the decoded answer. Fills `reply` (text, n_tokens, ttft_s: to the first chosen token, an
        end-of-turn token too, prefill included); `stop()` returning True ends the answer early."""
        from tokenizers.decoders import DecodeStream

        reply = reply if reply is not None else Reply()
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        decoder = DecodeStream(skip_special_tokens=True)
        raw = getattr(self.tokenizer, "_tokenizer", None)
        ids: list[int] = []
        for step in range(max_new_tokens):
            with self.timer.stage("first_token") if step == 0 else nullcontext():
                if temperature > 0:
                    probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
                    tok = int(torch.multinomial(probs[0], 1, generator=gen))
                else:
                    tok = int(logits[0].argmax())
            if step == 0:
                reply.ttft_s = time.perf_counter() - t0
                self.timer.add("ttft_from_model_start", reply.ttft_s)
            if tok in self._eos_ids or (stop is not None and stop()):
                break
            reply.n_tokens += 1
            ids.append(tok)
            piece = decoder.step(raw, tok) if raw is not None else self.tokenizer.decode([tok])
            if piece:
                reply.text += piece
                yield piece
            if step == max_new_tokens - 1:
                break
            with self.timer.stage("decode"):
                o = self.qwen(
                    input_ids=torch.tensor([[tok]], device=self.device),
                    position_ids=torch.full((3, 1, 1), next_pos, dtype=torch.long, device=self.device),
                    cache=cache,
                    use_cache=True,
                )
            next_pos += 1
            logits = o.logits[:, -1]
        full = self.tokenizer.decode(ids, skip_special_tokens=True)
        if full.startswith(reply.text) and len(full) > len(reply.text):
            rest = full[len(reply.text) :]
            reply.text = full
            yield rest
