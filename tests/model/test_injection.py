"""Injection into the tiny Qwen2.5-VL: exact no-op when untrained, only video tokens touched, prefill only, batching."""

import pytest
import torch

from gazeqwen_edge.model.injection import HookInjector, decoder_layers, video_token_positions


def full_logits(gq, samples):
    return gq.prefill(gq.collate(samples), logits_to_keep=0).logits


def first_video_index(sample, vid):
    return sample.input_ids.index(vid)


def test_untrained_resampler_leaves_logits_bit_identical(clip, scanpath):
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    gq = build_tiny_gazeqwen(seed=0, perturb=0.0)
    with_gaze = gq.prepare(clip, scanpath, "What am I looking at?")
    plain = gq.prepare(clip, None, "What am I looking at?")
    a = full_logits(gq, [with_gaze])
    assert gq.injector.fired == list(gq.resampler.config.injected_layers)  # the residuals were really added
    b = full_logits(gq, [plain])
    assert gq.injector.fired == []
    assert torch.equal(a, b)


def test_residuals_change_logits_only_through_video_tokens(tiny_gq, clip, scanpath):
    gq = tiny_gq
    s_gaze = gq.prepare(clip, scanpath, "What am I looking at?")
    s_plain = gq.prepare(clip, None, "What am I looking at?")
    vid = gq.video_token_id
    first = first_video_index(s_gaze, vid)
    positions = torch.tensor(s_gaze.input_ids) == vid
    last_video = int(torch.nonzero(positions).max())

    # what the first injected layer outputs: a hook registered after the injector's sees the injected tensor
    layer = gq.resampler.config.injected_layers[0]
    seen = []
    h = decoder_layers(gq.qwen)[layer].register_forward_hook(lambda m, a, o: seen.append(o.detach().clone()))
    try:
        la = full_logits(gq, [s_gaze])
        lb = full_logits(gq, [s_plain])
    finally:
        h.remove()
    changed = (seen[0] - seen[1]).abs().amax(-1)[0] > 0
    assert torch.equal(changed, positions)  # at the injected layer: exactly the video tokens changed

    diff = (la - lb).abs().amax(-1)[0]
    assert torch.all(diff[:first] == 0)  # before the video: bit-identical (causal)
    assert torch.all(diff[last_video + 1 :] > 1e-5)  # after it: the gaze shows in every text position


def test_hooks_inject_in_prefill_not_in_decode(tiny_gq, clip, scanpath):
    gq = tiny_gq
    calls = []
    orig = gq.injector._apply

    def spy(layer, hidden):
        out = orig(layer, hidden)
        calls.append((layer, hidden.shape[1], out is not None))
        return out

    gq.injector._apply = spy
    saved_eos = gq._eos_ids
    gq._eos_ids = set()  # force a few decode steps
    try:
        pieces = list(gq.answer(clip, scanpath, "What am I looking at?", max_new_tokens=4))
    finally:
        gq.injector._apply = orig
        gq._eos_ids = saved_eos
    assert pieces and all(isinstance(p, str) for p in pieces)
    layers = gq.resampler.config.injected_layers
    prefill = [c for c in calls if c[1] > 1]
    decode = [c for c in calls if c[1] == 1]
    assert [(c[0], c[2]) for c in prefill] == [(x, True) for x in layers]
    assert len(decode) == 3 * len(layers) and not any(c[2] for c in decode)


def test_generate_inside_inject_matches_our_decoding(tiny_gq, clip, scanpath, monkeypatch):
    """transformers' generate() (prefill + cached decode, its positions from get_rope_index + rope deltas) with the
    injector armed for one forward gives the same greedy tokens as GazeQwen.answer: injection happens in the prefill
    only. generate() is given the trained position rule through get_rope_index (transformers >= 5.3 has another)."""
    from gazeqwen_edge.model.positions import rope_position_ids

    gq = tiny_gq
    saved_eos = gq._eos_ids
    gq._eos_ids = set()
    try:
        ours = "".join(gq.answer(clip, scanpath, "Where did I put the knife?", max_new_tokens=6))
    finally:
        gq._eos_ids = saved_eos
    batch = gq.collate([gq.prepare(clip, scanpath, "Where did I put the knife?")])
    res, pos = gq.gaze_residuals(batch)

    def trained_rope_index(
        input_ids,
        mm_token_type_ids,
        image_grid_thw=None,
        video_grid_thw=None,
        second_per_grid_ts=None,
        attention_mask=None,
        **kw,
    ):
        p = rope_position_ids(
            input_ids,
            gq.video_token_id,
            [s.video.merged_grid for s in batch.samples],
            second_per_grid_ts.tolist(),
            gq.qwen.config.vision_config.tokens_per_second,
            attention_mask,
        )
        return p, (p.amax(dim=(0, 2)) + 1 - input_ids.shape[1]).unsqueeze(1)

    monkeypatch.setattr(gq.qwen.model, "get_rope_index", trained_rope_index)
    gq.qwen.model.rope_deltas = None
    with gq.injector.inject(res, pos):
        out = gq.qwen.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            pixel_values_videos=batch.pixel_values_videos,
            video_grid_thw=batch.video_grid_thw,
            second_per_grid_ts=batch.second_per_grid_ts,
            mm_token_type_ids=batch.mm_token_type_ids,
            max_new_tokens=6,
            min_new_tokens=6,
            do_sample=False,
        )
    assert gq.injector.fired == list(gq.resampler.config.injected_layers)
    theirs = gq.tokenizer.decode(out[0, batch.input_ids.shape[1] :], skip_special_tokens=True)
    assert ours == theirs


def test_batched_equals_per_sample(tiny_gq, clip, scanpath):
    gq = tiny_gq
    letters = ["A", "B", "C", "D"]
    samples = [
        gq.prepare(clip, scanpath, "What am I looking at?"),
        gq.prepare(clip, scanpath[1:], "Which object is the user looking at right now? red or blue"),
        gq.prepare(clip, None, "Where?"),
    ]
    assert len({len(s.input_ids) for s in samples}) == 3  # different lengths: left padding is exercised
    batched = gq.score_batch(samples, letters)
    for i, s in enumerate(samples):
        torch.testing.assert_close(batched[i], gq.score_batch([s], letters)[0], rtol=1e-4, atol=1e-5)
    plain0 = gq.prepare(clip, None, "What am I looking at?")
    assert not torch.allclose(batched[0], gq.score_batch([plain0], letters)[0])  # the gaze did act in the batch


def test_video_token_positions_with_padding():
    ids = torch.tensor([[0, 0, 5, 9, 9, 9, 7], [5, 9, 9, 9, 7, 0, 0]])
    assert video_token_positions(ids, 9).tolist() == [[3, 4, 5], [1, 2, 3]]
    with pytest.raises(Exception, match="different numbers"):
        video_token_positions(torch.tensor([[9, 9, 1], [9, 1, 1]]), 9)


def test_injector_rejects_mismatched_shapes(tiny_gq):
    inj = HookInjector([1, 3])
    with pytest.raises(ValueError, match="residual sets"):
        with inj.inject(torch.zeros(3, 1, 2, 8), torch.zeros(1, 2, dtype=torch.long)):
            pass
    with pytest.raises(ValueError, match="do not exist"):
        HookInjector([9]).attach(tiny_gq.qwen)
