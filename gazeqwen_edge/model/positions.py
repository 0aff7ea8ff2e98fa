"""Qwen2.5-VL 3-D rotary position ids as the model was trained, whole or piece by piece (for streaming a video one
temporal chunk at a time).

The trained rule (Qwen2.5-VL's original implementation, transformers <= 5.2; REFERENCE.md section 1):
- text tokens advance by 1 on all three axes (temporal, height, width);
- the video token of global temporal step t, merged row r, column c, with P the position of the video's first token,
  gets (P + int(t * tokens_per_second * second_per_grid_t), P + r, P + c);
- the first text token after a video span is at (the largest position id of that span over all three axes) + 1;
- decoding continues at the last position + 1.

transformers 5.3 and later (still 5.24) start the text after a video at P + max(H, W) instead (transformers issue
#45381), which for clips of more than a few temporal steps puts the question inside the video's temporal range, a
layout the model never saw in training. So GazeQwen always passes these position ids itself; transformers'
`get_rope_index` agrees with them only on the tokens up to the end of the first video span.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def text_position_ids(start: int, n: int, batch: int = 1) -> torch.Tensor:
    """(3, batch, n) int64 positions start..start+n-1 on all three axes."""
    return torch.arange(start, start + n).view(1, 1, n).expand(3, batch, n).clone()


def temporal_offsets(t_begin: int, t_end: int, tokens_per_second: float, second_per_grid_t: float) -> torch.Tensor:
    """(t_end - t_begin,) int64 temporal position offsets int(t * tokens_per_second * second_per_grid_t) of global
    temporal steps t in [t_begin, t_end). tokens_per_second is the vision config's (2 for Qwen2.5-VL-7B);
    second_per_grid_t is the seconds one temporal step spans (temporal_patch / sampling fps)."""
    return (torch.arange(t_begin, t_end, dtype=torch.float64) * (tokens_per_second * second_per_grid_t)).long()


def video_position_ids(
    first_video_pos: int,
    t_begin: int,
    t_end: int,
    merged_hw: tuple[int, int],
    tokens_per_second: float,
    second_per_grid_t: float,
    batch: int = 1,
) -> torch.Tensor:
    """(3, batch, (t_end - t_begin) * H * W) int64 positions of the video tokens of global temporal steps
    [t_begin, t_end) in Qwen's order (step-major, then merged rows, then columns), H x W the merged grid,
    P = first_video_pos the position of the video's first token (its step 0, row 0, column 0)."""
    h, w = merged_hw
    t = temporal_offsets(t_begin, t_end, tokens_per_second, second_per_grid_t)
    tt, hh, ww = torch.meshgrid(t, torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([tt.reshape(-1), hh.reshape(-1), ww.reshape(-1)]) + first_video_pos
    return pos.view(3, 1, -1).expand(3, batch, -1).clone()


def after_video_position(
    first_video_pos: int,
    n_steps: int,
    merged_hw: tuple[int, int],
    tokens_per_second: float,
    second_per_grid_t: float,
) -> int:
    """Position of the first text token after a video span of `n_steps` temporal steps (steps 0..n_steps-1) on a merged
    H x W grid that starts at P = first_video_pos: the span's largest position id over all three axes, plus 1.

    Example (the 7B config, tokens_per_second 2): 8 steps at 0.5 fps (second_per_grid_t 4 s) with H, W < 57 ->
    P + int(7 * 2 * 4) + 1 = P + 57, where transformers >= 5.3 would give P + max(H, W).
    For a stream, n_steps is the number of steps prefilled so far."""
    if n_steps < 1:
        raise ValueError(f"a video span has at least one temporal step, got {n_steps}")
    h, w = merged_hw
    last_t = int(temporal_offsets(n_steps - 1, n_steps, tokens_per_second, second_per_grid_t)[0])
    return first_video_pos + max(last_t, h - 1, w - 1) + 1


def rope_position_ids(
    input_ids: torch.Tensor,
    video_token_id: int,
    video_grids: Sequence[tuple[int, int, int]],
    second_per_grid_ts: Sequence[float],
    tokens_per_second: float,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """3-D position ids of a whole (left- or right-padded) batch under the trained rule.

    input_ids: (B, L) int64; every maximal run of `video_token_id` is one video, taking the next (T, H, W) MERGED grid
    of `video_grids` and the next `second_per_grid_ts` entry, in batch order then sequence order (as transformers
    pairs video_grid_thw rows with videos). attention_mask: (B, L), 0 on padding; padded positions get 0.
    Returns (3, B, L) int64.

    Raises ValueError when a run's length does not equal T * H * W of its grid or there are fewer grids than runs.
    """
    b, length = input_ids.shape
    out = torch.zeros(3, b, length, dtype=torch.long)
    grids = iter(video_grids)
    spgs = iter(second_per_grid_ts)
    mask = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
    for i in range(b):
        idx = mask[i].nonzero().flatten()
        ids = input_ids[i, idx]
        is_video = (ids == video_token_id).tolist()
        pieces, nxt, k = [], 0, 0
        while k < len(is_video):
            j = k
            while j < len(is_video) and is_video[j] == is_video[k]:
                j += 1
            if not is_video[k]:
                pieces.append(text_position_ids(nxt, j - k)[:, 0])
                nxt += j - k
            else:
                try:
                    t, h, w = next(grids)
                    spg = float(next(spgs))
                except StopIteration:
                    raise ValueError("more video token runs than video grids") from None
                if t * h * w != j - k:
                    raise ValueError(f"a run of {j - k} video tokens does not match its merged grid {t}x{h}x{w}")
                pieces.append(video_position_ids(nxt, 0, t, (h, w), tokens_per_second, spg)[:, 0])
                nxt = after_video_position(nxt, t, (h, w), tokens_per_second, spg)
            k = j
        if pieces:
            out[:, i, idx] = torch.cat(pieces, dim=1)
    return out
