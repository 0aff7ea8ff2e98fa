"""Qwen2.5-VL 3-D rotary position ids, computed piece by piece (for streaming a video one temporal chunk at a time).

Rules (transformers 5.23 `get_rope_index`): text tokens get start + i on all three axes; the video token of global
temporal step t, merged row r, column c, with P the index of the first video token, gets
(P + int(t * tokens_per_second * second_per_grid_t), P + r, P + c); the first text token after the video is at
P + max(H, W) with H x W the merged grid; every later token at previous + 1; decoding continues at last + 1.
"""

from __future__ import annotations

import torch


def text_position_ids(start: int, n: int, batch: int = 1) -> torch.Tensor:
    """(3, batch, n) positions start..start+n-1 on all axes."""
    return torch.arange(start, start + n).view(1, 1, n).expand(3, batch, n).clone()


def video_position_ids(
    first_video_pos: int,
    t_begin: int,
    t_end: int,
    merged_hw: tuple[int, int],
    tokens_per_second: float,
    second_per_grid_t: float,
    batch: int = 1,
) -> torch.Tensor:
    """(3, batch, (t_end - t_begin) * H * W) positions of the video tokens of global temporal steps
    [t_begin, t_end), H x W the merged grid, P = first_video_pos the sequence position of the video's first token."""
    h, w = merged_hw
    t = (torch.arange(t_begin, t_end, dtype=torch.float64) * (tokens_per_second * second_per_grid_t)).long()
    tt, hh, ww = torch.meshgrid(t, torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([tt.reshape(-1), hh.reshape(-1), ww.reshape(-1)]) + first_video_pos
    return pos.view(3, 1, -1).expand(3, batch, -1).clone()


def after_video_position(first_video_pos: int, merged_hw: tuple[int, int]) -> int:
    """Position of the first text token after a video of merged grid H x W that starts at P."""
    return first_video_pos + max(merged_hw)
