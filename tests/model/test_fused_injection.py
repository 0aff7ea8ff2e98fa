"""Residual injection fused into the decoder layers (FusedInjector) against the reference hooks (HookInjector):
equal logits (fp32, <= 1e-5) in a full prefill, a chunked streaming prefill and cached decoding; no hooks; the state
dict untouched; detach restores the plain layers."""

import numpy as np
import pytest
import torch

from gazeqwen_edge.model.injection import FusedInjector, HookInjector, decoder_layers, make_injector


@pytest.fixture(scope="module")
def pair():
    """The same tiny GazeQwen twice (same seed, perturbed resampler so the gaze acts): hooks, fused."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    torch.set_num_threads(1)
    hooks = build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5, injection="hooks")
    fused = build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5, injection="fused")
    return hooks, fused


def test_fused_layers_have_no_hooks_and_keep_their_state_dict(pair):
    hooks, fused = pair
    assert isinstance(fused.injector, FusedInjector) and isinstance(hooks.injector, HookInjector)
    layers = fused.resampler.config.injected_layers
    mods = decoder_layers(fused.qwen)
    for i in layers:
        assert not mods[i]._forward_hooks and not mods[i]._forward_pre_hooks
        assert type(mods[i]).__name__.startswith("GazeFused")
    assert all(decoder_layers(hooks.qwen)[i]._forward_hooks for i in layers)
    assert list(fused.qwen.state_dict()) == list(hooks.qwen.state_dict())


def test_full_prefill_equals_hooks(pair, clip, scanpath):
    hooks, fused = pair
    logits = []
    for gq in pair:
        batch = gq.collate([gq.prepare(clip, scanpath, "What am I looking at?")])
        logits.append(gq.prefill(batch, logits_to_keep=0).logits)
        assert gq.injector.fired == list(gq.resampler.config.injected_layers)
    torch.testing.assert_close(logits[1], logits[0], rtol=0, atol=1e-5)
    plain = fused.collate([fused.prepare(clip, None, "What am I looking at?")])
    assert (fused.prefill(plain, logits_to_keep=0).logits - logits[1]).abs().max() > 1e-4  # the gaze acted


def _streamed(gq, clip, scanpath):
    """Prefill the clip chunk by chunk (2 temporal steps, then 1) into a VideoStream, then answer greedily: the
    question's logits and the decoded text."""
    from gazeqwen_edge.runtime.stream import VideoStream

    frames = clip.frames[::5][:6]  # 1 fps -> 6 model frames, 3 temporal steps
    times = np.arange(6, dtype=np.float64)
    vs = VideoStream(gq, frame_hw=frames.shape[1:3], fps=1.0)
    vs.prefill_steps(frames[:4], times[:4], 0, scanpath)
    vs.prefill_steps(frames[4:], times[4:], 2, scanpath)
    q = vs.question_logits("What am I looking at?")
    saved = gq._eos_ids
    gq._eos_ids = set()  # force every decode step
    try:
        text = "".join(vs.answer("What am I looking at?", max_new_tokens=6))
    finally:
        gq._eos_ids = saved
    return q, text


def test_streamed_prefill_and_decode_equal_hooks(pair, clip, scanpath):
    (qh, th), (qf, tf) = (_streamed(gq, clip, scanpath) for gq in pair)
    torch.testing.assert_close(qf, qh, rtol=0, atol=1e-5)
    assert tf == th and tf


def test_decode_logits_equal_hooks_and_inject_nothing(pair, clip, scanpath):
    """Greedy decoding after a gaze prefill: every step's logits equal the hooks' path; the fused layers add nothing
    to decoded tokens (fired stays empty after the prefill consumed the residuals)."""
    per_model = []
    for gq in pair:
        batch = gq.collate([gq.prepare(clip, scanpath, "What am I looking at?")])
        out = gq.prefill(batch)
        cache, logits = out.cache, out.logits[:, -1]
        pos = int(batch.position_ids.max()) + 1
        steps = [logits]
        for _ in range(4):
            tok = logits.argmax(-1, keepdim=True)
            with gq.injector.inject(None, None), torch.no_grad():
                o = gq.qwen(input_ids=tok, position_ids=torch.full((3, 1, 1), pos), cache=cache, use_cache=True)
            assert gq.injector.fired == []
            logits = o.logits[:, -1]
            steps.append(logits)
            pos += 1
        per_model.append(torch.stack(steps))
    torch.testing.assert_close(per_model[1], per_model[0], rtol=0, atol=1e-5)


def test_fused_is_differentiable_like_hooks(pair, clip, scanpath):
    """Training through the fused path: the resampler's gradients equal the hooks' path."""
    grads = []
    for gq in pair:
        batch = gq.collate([gq.prepare(clip, scanpath, "What am I looking at?")])
        res, pos = gq.gaze_residuals(batch)
        res = res.detach().requires_grad_(True)
        vout = gq.qwen.model.get_video_features(batch.pixel_values_videos, batch.video_grid_thw, return_dict=True)
        with gq.injector.inject(res, pos):
            out = gq.qwen(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                mm_encoder_outputs={"video": vout},
            )
        out.logits[0, -1].logsumexp(-1).backward()
        grads.append(res.grad)
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-7)


def test_detach_restores_plain_layers_and_reattach_is_refused():
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    gq = build_tiny_gazeqwen(seed=0, perturb=0.5, injection="fused")
    mods = decoder_layers(gq.qwen)
    layer = gq.resampler.config.injected_layers[0]
    plain_cls = type(decoder_layers(build_tiny_gazeqwen(seed=0).qwen)[0])
    with pytest.raises(ValueError, match="already has a fused injector"):
        FusedInjector([layer]).attach(gq.qwen)
    gq.close()
    assert all(type(m) is plain_cls for m in mods)
    assert not hasattr(mods[layer], "_gaze_injector")


def test_fused_rejects_positions_outside_the_forward(pair):
    _, fused = pair
    res = torch.zeros(len(fused.injector.layers), 1, 3, fused.qwen.config.text_config.hidden_size)
    with pytest.raises(ValueError, match="do not fit hidden states"):
        with fused.injector.inject(res, torch.tensor([[0, 1, 7]])), torch.no_grad():
            fused.qwen(input_ids=torch.tensor([[1, 2, 3]]), position_ids=torch.arange(3).expand(3, 1, 3))


def test_make_injector_names():
    assert isinstance(make_injector("fused", [1]), FusedInjector)
    assert isinstance(make_injector("hooks", [1]), HookInjector)
    with pytest.raises(ValueError, match="fused, hooks"):
        make_injector("fast", [1])


def test_each_layer_fires_once_per_inject(pair, clip, scanpath):
    """A second forward inside the same `inject` block (generate()'s first decode step) gets no residual."""
    _, fused = pair
    batch = fused.collate([fused.prepare(clip, scanpath, "What am I looking at?")])
    res, pos = fused.gaze_residuals(batch)
    vout = fused.qwen.model.get_video_features(batch.pixel_values_videos, batch.video_grid_thw, return_dict=True)
    kw = dict(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        mm_encoder_outputs={"video": vout},
    )
    with fused.injector.inject(res, pos), torch.no_grad():
        first = fused.qwen(**kw).logits
        second = fused.qwen(**kw).logits
    assert fused.injector.fired == list(fused.resampler.config.injected_layers)
    with torch.no_grad():
        plain = fused.qwen(**kw).logits
    torch.testing.assert_close(second, plain, rtol=0, atol=0)
    assert (first - plain).abs().max() > 1e-4


@pytest.mark.slow
def test_fused_under_torch_compile_equals_eager(clip, scanpath):
    """The language model compiled with torch.compile (inductor, CPU) runs the fused injection: the same logits as
    eager, and the residuals were added (fired)."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    gq = build_tiny_gazeqwen(seed=0, perturb=0.5, injection="fused")
    batch = gq.collate([gq.prepare(clip, scanpath, "What am I looking at?")])
    eager = gq.prefill(batch, logits_to_keep=0).logits
    gq.qwen.model.language_model = torch.compile(gq.qwen.model.language_model)
    compiled = gq.prefill(batch, logits_to_keep=0).logits
    assert gq.injector.fired == list(gq.resampler.config.injected_layers)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)
    plain = gq.collate([gq.prepare(clip, None, "What am I looking at?")])
    assert (gq.prefill(plain, logits_to_keep=0).logits - compiled).abs().max() > 1e-4


def test_left_padded_batch_equals_hooks(pair, clip, scanpath):
    """Samples of different lengths (left padding: the video tokens start at different indices, the scatter path)
    and one sample (contiguous: the slice path) give the hooks' scores."""
    scores = []
    for gq in pair:
        samples = [
            gq.prepare(clip, scanpath, "What am I looking at?"),
            gq.prepare(clip, scanpath[1:], "Which object is the user looking at right now? red or blue"),
        ]
        scores.append((gq.score_batch(samples, list("ABCD")), gq.score_batch(samples[:1], list("ABCD"))))
    torch.testing.assert_close(scores[1][0], scores[0][0], rtol=0, atol=1e-5)
    torch.testing.assert_close(scores[1][1], scores[0][1], rtol=0, atol=1e-5)
