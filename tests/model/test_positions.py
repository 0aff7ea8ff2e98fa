"""3-D rotary positions: the rule Qwen2.5-VL was trained with (REFERENCE.md section 1), on hand-computed cases;
transformers' get_rope_index is an oracle only for the tokens up to the end of the video (it changed the text after a
video in 5.3)."""

import pytest
import torch

from gazeqwen_edge.model.positions import (
    after_video_position,
    rope_position_ids,
    text_position_ids,
    video_position_ids,
)

V = 9  # video token id in the hand-made sequences


def test_text_after_video_follows_the_trained_rule_not_max_hw():
    """The issue's case: 8 temporal steps at 0.5 fps (second_per_grid 4 s), tokens_per_second 2, a merged grid under
    57 a side: the first text token after the video is at P + 7 * 8 + 1 = P + 57 (transformers >= 5.3: P + max(H, W))."""
    p = 15
    assert after_video_position(p, 8, (12, 16), tokens_per_second=2, second_per_grid_t=4.0) == p + 57
    # a short clip whose grid is wider than its temporal range: the width axis holds the largest id
    assert after_video_position(p, 2, (12, 16), tokens_per_second=2, second_per_grid_t=1.0) == p + 15 + 1
    # fractional spacing truncates like Qwen's `.long()`: 3 steps x 2 x 1.5 s -> offsets 0, 3, 6
    assert after_video_position(0, 3, (2, 2), tokens_per_second=2, second_per_grid_t=1.5) == 7


def test_whole_sequence_hand_computed():
    """[text x3][video: 2 steps x 2 x 3][text x2], tokens_per_second 2, second_per_grid 2 s (1 fps)."""
    ids = torch.tensor([[1, 2, 3] + [V] * 12 + [4, 5]])
    pos = rope_position_ids(ids, V, [(2, 2, 3)], [2.0], tokens_per_second=2)
    t, h, w = pos[:, 0].tolist()
    assert t[:3] == h[:3] == w[:3] == [0, 1, 2]
    assert t[3:15] == [3] * 6 + [7] * 6  # step 1 at P + int(1 * 2 * 2)
    assert h[3:15] == [3, 3, 3, 4, 4, 4] * 2
    assert w[3:15] == [3, 4, 5] * 4
    assert t[15:] == h[15:] == w[15:] == [8, 9]  # max(7, 4, 5) + 1, not P + max(2, 3) = 6


def test_left_padding_and_two_samples():
    ids = torch.tensor([[0, 0, 1] + [V] * 4 + [2], [1, 1, 1] + [V] * 4 + [2]])
    am = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [1] * 8])
    pos = rope_position_ids(ids, V, [(1, 2, 2), (2, 1, 2)], [2.0, 2.0], tokens_per_second=2, attention_mask=am)
    assert pos[:, 0, :2].eq(0).all()  # padding
    assert pos[0, 0, 2:].tolist() == [0, 1, 1, 1, 1, 3]  # one step: text after at max(1, 2, 2) + 1 = 3
    assert pos[0, 1].tolist() == [0, 1, 2, 3, 3, 7, 7, 8]  # two steps 4 apart
    with pytest.raises(ValueError, match="does not match"):
        rope_position_ids(ids, V, [(1, 2, 3), (2, 1, 2)], [2.0, 2.0], 2, attention_mask=am)


def test_video_tokens_equal_get_rope_index_and_text_after_does_not(tiny_gq, clip, scanpath):
    """transformers' own get_rope_index agrees on everything up to the end of the video span (the independent oracle
    for the video tokens); after it the two rules differ by design."""
    gq = tiny_gq
    s = gq.prepare(clip, scanpath, "What am I looking at?")
    b = gq.collate([s])
    theirs, _ = gq.qwen.model.get_rope_index(
        b.input_ids,
        mm_token_type_ids=b.mm_token_type_ids,
        video_grid_thw=b.video_grid_thw,
        second_per_grid_ts=b.second_per_grid_ts,
        attention_mask=b.attention_mask,
    )
    ids = b.input_ids[0]
    p = int((ids == gq.video_token_id).nonzero()[0])
    t, h, w = s.video.merged_grid
    end = p + t * h * w
    assert torch.equal(b.position_ids[:, :, :end], theirs[:, :, :end])
    tps = gq.qwen.config.vision_config.tokens_per_second
    want_after = p + max(int((t - 1) * tps * s.video.second_per_grid_t), h - 1, w - 1) + 1
    assert int(b.position_ids[0, 0, end]) == want_after
    assert want_after != int(theirs[0, 0, end])  # this clip is long enough for the rules to disagree


def test_piecewise_positions_equal_whole(tiny_gq, clip, scanpath):
    """One temporal chunk at a time (what the streaming runtime does) gives the positions of the whole sequence."""
    gq = tiny_gq
    s = gq.prepare(clip, scanpath, "What am I looking at?")
    b = gq.collate([s])
    ids = b.input_ids[0]
    p = int((ids == gq.video_token_id).nonzero()[0])
    t, h, w = s.video.merged_grid
    n_after = ids.shape[0] - p - t * h * w
    tps = gq.qwen.config.vision_config.tokens_per_second
    spg = s.video.second_per_grid_t
    pieces = [text_position_ids(0, p)]
    for step in range(t):
        pieces.append(video_position_ids(p, step, step + 1, (h, w), tps, spg))
    pieces.append(text_position_ids(after_video_position(p, t, (h, w), tps, spg), n_after))
    assert torch.equal(torch.cat(pieces, dim=2), b.position_ids)
