"""How a watch is scored (runtime/watches.watch_score): p(Yes) for letter models; for models that answer in words,
p(target's name) / p(own answer: the greedy reply or "nothing", whichever is likelier). The greedy continuation is checked against the answer the stream decodes and
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


def test_the_models_own_answer_is_an_alternative_where_it_is_likelier_than_the_greedy_reply(stream):
    """Greedy decoding takes the likeliest token at each step, not the likeliest reply: an alternative reply (the
    demo model's "nothing") can be likelier. answer_logprobs' second value is then the alternative's."""
    gq = stream.gq
    logits, next_pos = stream._question_prefill(IDENTIFY_QUESTION)
    greedy_ids, _ = gq.greedy_continuation(logits, stream.cache, next_pos, 5)
    stream.cut_back()
    # the greedy reply's first word alone, then the end of turn: likelier than 5 tokens of this random model's reply
    alternatives = ("nothing", gq.tokenizer.decode(greedy_ids[:1]))
    lp, lp_own = stream.answer_logprobs(IDENTIFY_QUESTION, "red circle", max_guess_tokens=5, alternatives=alternatives)
    logits, next_pos = stream._question_prefill(IDENTIFY_QUESTION)
    refs = gq.continuation_logprobs(logits, stream.cache, next_pos, [gq.answer_ids(a) for a in alternatives])
    _, ref_greedy = gq.greedy_continuation(logits, stream.cache, next_pos, 5)
    stream.cut_back()
    assert max(refs) > ref_greedy  # (here an alternative wins: the check below has something to tell apart)
    assert lp_own == pytest.approx(max(ref_greedy, *refs), abs=1e-4)
    assert stream.answer_logprobs(IDENTIFY_QUESTION, "red circle", max_guess_tokens=5)[1] == pytest.approx(
        ref_greedy, abs=1e-4
    )


def test_the_runtime_says_nothing_as_the_model_was_trained_to():
    from gazeqwen_edge.runtime.watches import NOTHING
    from gazeqwen_edge.training.tasks import NOTHING as TRAINED

    assert NOTHING == TRAINED


def test_watch_score_by_protocol(stream, monkeypatch):
    w = Watch(1, "the red circle", "Monitor my gaze and alert me when I gaze on the <red circle>.")
    stream.gq.mc_protocol = "letter"
    assert watch_score(stream, w) == pytest.approx(p_yes(stream.score_mc(w.question, YES_NO)))
    stream.gq.mc_protocol = "option_text"
    lp, lpg = stream.answer_logprobs(IDENTIFY_QUESTION, "red circle", alternatives=("nothing",))  # no article
    assert watch_score(stream, w) == pytest.approx(math.exp(min(0.0, lp - lpg)))
    # the name in lower case, as the model says it (before: "Green Star" never fired where "green star" did)
    shouted = Watch(2, "The RED Circle", "Monitor my gaze and alert me when I gaze on the <RED Circle>.")
    assert watch_score(stream, shouted) == pytest.approx(watch_score(stream, w))
    upper, _ = stream.answer_logprobs(IDENTIFY_QUESTION, "RED Circle")
    assert abs(upper - lp) > 1e-3  # (the model tells the two spellings apart: the check above has power)
    monkeypatch.setattr(type(stream), "answer_logprobs", lambda self, q, a, **kw: (-1.0, -3.0))
    assert watch_score(stream, w) == 1.0  # better than the greedy guess: capped at 1
    # the model's own answer is the greedy reply or "nothing", whichever is likelier (answer_logprobs' alternatives)
    fake = {(): (-2.0, -3.0), ("nothing",): (-2.0, -1.0)}
    monkeypatch.setattr(type(stream), "answer_logprobs", lambda self, q, a, alternatives=(): fake[tuple(alternatives)])
    assert watch_score(stream, w) == pytest.approx(math.exp(-1.0))
