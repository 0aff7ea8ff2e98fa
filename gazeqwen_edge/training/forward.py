"""One differentiable forward of GazeQwen over a batch of encoded items (training and batched evaluation).

It is `GazeQwen.prefill` with the frozen encoders' outputs read from the cache (training.data.Encoded): token
embeddings with Qwen's video embeddings put at the `<|video_pad|>` positions (what Qwen2.5-VL's forward does with
`pixel_values_videos`), the trained 3-D position rule (model/positions.py), and the resampler's residuals injected at
the video tokens of the injected layers (model/injection.py), with gradients when asked. Items of different clip
lengths share a batch: their temporal steps go through the resampler as one row list (it works per step), and each
item's residuals are padded to the batch's longest video span with zeros at index 0 (an exact no-op).
`tests/training/test_forward.py` checks it against `GazeQwen.prefill` / `score_options`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.positions import rope_position_ids
from gazeqwen_edge.training.data import Encoded


@dataclass
class Inputs:
    """A left-padded batch: input_ids / attention_mask (B, L) int64, position_ids (3, B, L), labels (B, L) int64 (-100
    outside the answer tokens), prompt_len (B,) the index of each prompt's last token."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor
    last_prompt_index: torch.Tensor


def build_inputs(gq, encs: Sequence[Encoded], prompts: Sequence[tuple[str, str]], answers=None) -> Inputs:
    """Token ids of each item's prompt (user text, assistant prefix) with its video span, followed by its answer ids
    (a list of token ids, or None/[] for none) which are the labels; left-padded, with the trained 3-D positions."""
    answers = answers if answers is not None else [None] * len(encs)
    seqs, lab, last = [], [], []
    for enc, (user, assistant), ans in zip(encs, prompts, answers, strict=True):
        ids = gq.build_prompt(user, enc.n_video_tokens, assistant)
        ans = list(ans or [])
        seqs.append(ids + ans)
        lab.append([-100] * len(ids) + ans)
        last.append(len(ids) - 1)
    length = max(len(s) for s in seqs)
    pad = gq.tokenizer.pad_token_id if gq.tokenizer.pad_token_id is not None else 0
    b = len(seqs)
    input_ids = torch.full((b, length), pad, dtype=torch.long)
    am = torch.zeros((b, length), dtype=torch.long)
    labels = torch.full((b, length), -100, dtype=torch.long)
    last_idx = torch.zeros(b, dtype=torch.long)
    for i, (s, lb, li) in enumerate(zip(seqs, lab, last, strict=True)):
        off = length - len(s)
        input_ids[i, off:] = torch.tensor(s)
        am[i, off:] = 1
        labels[i, off:] = torch.tensor(lb)
        last_idx[i] = off + li
    pos = rope_position_ids(
        input_ids,
        gq.video_token_id,
        [e.merged_grid for e in encs],
        [e.second_per_grid_t for e in encs],
        gq.qwen.config.vision_config.tokens_per_second,
        attention_mask=am,
    )
    return Inputs(input_ids, am, pos, labels, last_idx)


def gaze_residuals(gq, encs: Sequence[Encoded], input_ids: torch.Tensor, use_gaze: bool = True):
    """(residuals (M, B, P, D), positions (B, P)) for the batch, differentiable in the resampler; None when there is
    no resampler, `use_gaze` is False or no item has a scanpath. Items' video spans may differ in length (P is the
    longest; shorter ones padded with zero residuals at index 0)."""
    if gq.resampler is None or not use_gaze or not any(len(e.scanpath) for e in encs):
        return None
    hw = {e.merged_grid[1:] for e in encs}
    if len(hw) != 1:
        raise InputError(None, f"a batch with gaze needs one frame size, got merged grids {sorted(hw)}")
    dev = next(gq.resampler.parameters()).device
    feats = torch.cat([e.features for e in encs]).unsqueeze(0).to(dev)  # (1, sum T, h, w, d)
    per = [gq.gaze_inputs([e.scanpath], e.step_times, e.second_per_grid_t) for e in encs]
    k = max(g.points.shape[2] for g in per)
    pts = torch.cat([torch.nn.functional.pad(g.points, (0, 0, 0, k - g.points.shape[2])) for g in per], dim=1)
    msk = torch.cat([torch.nn.functional.pad(g.mask, (0, k - g.mask.shape[2])) for g in per], dim=1)
    res = gq.resampler(feats, pts.to(dev), msk.to(dev), None)  # (M, 1, sum T, N, D)
    m, _, _, n, d = res.shape
    steps = [e.merged_grid[0] for e in encs]
    p_max = max(steps) * n
    out = res.new_zeros((m, len(encs), p_max, d))
    positions = torch.zeros((len(encs), p_max), dtype=torch.long)
    t0 = 0
    for i, (e, t) in enumerate(zip(encs, steps, strict=True)):
        if len(e.scanpath):  # an empty scanpath gives an exact zero residual (REFERENCE.md section 1)
            out[:, i, : t * n] = res[:, 0, t0 : t0 + t].reshape(m, t * n, d)
        vid = torch.nonzero(input_ids[i] == gq.video_token_id).flatten()
        if len(vid) != t * n:
            raise InputError(None, f"item {i}: {len(vid)} video tokens for {t} x {n} residual rows")
        positions[i, : t * n] = vid
        t0 += t
    return out, positions


def forward(gq, encs: Sequence[Encoded], inputs: Inputs, use_gaze: bool = True, logits_to_keep: int = 0, cache=None):
    """The model output (logits (B, L or logits_to_keep, vocab)) of one forward over the batch; differentiable in
    whatever is trainable (resampler, LoRA, LLM). The video embeddings are taken from the cache. `cache`: a KV cache
    to fill (generation after it), None for none."""
    qwen = gq.qwen
    dev = gq.device
    ids = inputs.input_ids.to(dev)
    emb = qwen.model.get_input_embeddings()(ids)
    vid = ids == gq.video_token_id
    vision = torch.cat([e.vision for e in encs]).to(dev, emb.dtype)
    if int(vid.sum()) != vision.shape[0]:
        raise InputError(None, f"{int(vid.sum())} video tokens for {vision.shape[0]} video embeddings")
    emb = emb.masked_scatter(vid.unsqueeze(-1), vision)
    gaze = gaze_residuals(gq, encs, inputs.input_ids, use_gaze)
    kwargs = dict(
        inputs_embeds=emb,
        attention_mask=inputs.attention_mask.to(dev),
        position_ids=inputs.position_ids.to(dev),
        use_cache=cache is not None,
        logits_to_keep=logits_to_keep,
    )
    if cache is not None:
        kwargs["cache"] = cache
    if gq.injector is None or gaze is None:
        return qwen(**kwargs)
    with gq.injector.inject(gaze[0], gaze[1].to(dev)):
        return qwen(**kwargs)


def letter_ids(tokenizer, letters: Sequence[str]) -> list[int]:
    """The first token id of each letter without special tokens (the released code's letter ids)."""
    return [tokenizer.encode(x, add_special_tokens=False)[0] for x in letters]


def answer_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) sum of log p of the label tokens (labels != -100) given logits (B, L, V) of the same sequence (the
    prediction for token j is at position j - 1)."""
    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tgt = labels[:, 1:].to(lp.device)
    mask = tgt != -100
    got = lp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (got * mask).sum(1)
