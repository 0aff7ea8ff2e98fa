"""How a watch is scored (runtime/watches.watch_score): p(Yes) for letter models; for models that answer in words,
p(target's name) / p(own greedy answer). The greedy continuation is checked against the answer the stream decodes and
against the option-text scorer (two other routes through the same cache)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gazeqwen_edge.runtime.watches import IDENTIFY_QUESTION, YES_NO, Watch, p_yes, watch_score


@pytest.fixture()
def stream():
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.stream import VideoStream

    gq = build_tiny_gazeqwen(seed=0, perturb=0.5, injected_layers=(0, 1))
    vs = VideoStream(gq, frame_hw=(96, 128), fps=2.0)
    frames = np.random.default_rng(0).integers(0, 256, (4, 96, 128, 3), dtype=np.uint8)
    vs.prefill_steps(frames, np.arange(4) / 2.0, 0, np.array([[0.4, 0.5, 0.5, 1.0]]))
    return vs


def test_greedy_continuation_is_the_decoded_answer_and_its_log_likelihood(stream):
    gq = stream.gq
    before = stream.cache.get_seq_length()
    text = "".join(stream.answer(IDENTIFY_QUESTION, max_new_tokens=6))
    logits, next_pos = stream._question_prefill(IDENTIFY_QUESTION)
    prefilled = stream.cache.get_seq_length()
    ids, lp = gq.greedy_continuation(logits, stream.cache, next_pos, 6)
    assert stream.cache.get_seq_length() == prefilled  # the continuation was cut back
    assert len(ids) == 6 and gq.tokenizer.decode(ids, skip_special_tokens=True) == text  # the streamed answer's tokens
    (ref,) = gq.continuation_logprobs(logits, stream.cache, next_pos, [ids])
    assert lp == pytest.approx(ref, abs=1e-4)
    stream.cut_back()
    assert stream.cache.get_seq_length() == before


def test_answer_logprobs_are_the_targets_and_the_greedy_likelihoods(stream):
    gq = stream.gq
    before = stream.cache.get_seq_length()
    lp, lp_greedy = stream.answer_logprobs(IDENTIFY_QUESTION, "red circle", max_guess_tokens=5)
    assert stream.cache.get_seq_length() == before
    logits, next_pos = stream._question_prefill(IDENTIFY_QUESTION)
    (ref,) = gq.continuation_logprobs(logits, stream.cache, next_pos, [gq.answer_ids("red circle")])
    _, ref_greedy = gq.greedy_continuation(logits, stream.cache, next_pos, 5)
    stream.cut_back()
    assert (lp, lp_greedy) == pytest.approx((ref, ref_greedy), abs=1e-4)


def test_watch_score_by_protocol(stream, monkeypatch):
    w = Watch(1, "the red circle", "Monitor my gaze and alert me when I gaze on the <red circle>.")
    stream.gq.mc_protocol = "letter"
    assert watch_score(stream, w) == pytest.approx(p_yes(stream.score_mc(w.question, YES_NO)))
    stream.gq.mc_protocol = "option_text"
    lp, lpg = stream.answer_logprobs(IDENTIFY_QUESTION, "red circle")  # the article is dropped
    assert watch_score(stream, w) == pytest.approx(math.exp(min(0.0, lp - lpg)))
    monkeypatch.setattr(type(stream), "answer_logprobs", lambda self, q, a: (-1.0, -3.0))
    assert watch_score(stream, w) == 1.0  # better than the greedy guess: capped at 1
