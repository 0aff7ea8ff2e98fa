import torch

from gazeqwen_edge.model.positions import after_video_position, text_position_ids, video_position_ids


def test_piecewise_positions_equal_get_rope_index(tiny_gq, clip, scanpath):
    gq = tiny_gq
    s = gq.prepare(clip, scanpath, "What am I looking at?")
    b = gq.collate([s])
    want = b.position_ids  # transformers' get_rope_index
    ids = b.input_ids[0]
    p = int((ids == gq.video_token_id).nonzero()[0])
    t, h, w = s.video.merged_grid
    n_after = ids.shape[0] - p - t * h * w
    tps = gq.qwen.config.vision_config.tokens_per_second
    pieces = [text_position_ids(0, p)]
    for step in range(t):  # one temporal chunk at a time
        pieces.append(video_position_ids(p, step, step + 1, (h, w), tps, s.video.second_per_grid_t))
    pieces.append(text_position_ids(after_video_position(p, (h, w)), n_after))
    assert torch.equal(torch.cat(pieces, dim=2), want)
