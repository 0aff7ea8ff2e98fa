"""Streamed == full: a video prefilled chunk by chunk into one KV cache, then a question, gives the logits of one full
prefill of the same video and question (fp32, tiny model, residuals on), also after answers were cut back and more
chunks arrived."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.model.gazeqwen import Video
from gazeqwen_edge.runtime.stream import VideoStream

QUESTION = "What am I looking at?"
OPTIONS = ["A. red box", "B. green cup", "C. blue jar"]


def _stream(gq, frames, times, scanpath, chunk_steps, upto_step, vs=None):
    vs = vs or VideoStream(gq, frames.shape[1:3], fps=2.0)
    step = vs.n_steps
    while step < upto_step:
        k = min(chunk_steps, upto_step - step)
        a, b = 2 * step, 2 * (step + k)
        vs.prefill_steps(frames[a:b], times[a:b], step, scanpath, window=[(i, frames[i]) for i in range(b)])
        step += k
    return vs


def _full_logits(gq, frames, scanpath, question):
    s = gq.prepare(Video(frames, fps=2.0), scanpath, question)
    return gq.prefill(gq.collate([s])).logits[0, -1].float()


@pytest.mark.parametrize("n_steps, chunk_steps", [(2, 1), (5, 2), (12, 3)])
def test_streamed_question_logits_equal_one_full_prefill(stream_gq, model_frames, fixed_scanpath, n_steps, chunk_steps):
    frames, times = model_frames
    vs = _stream(stream_gq, frames, times, fixed_scanpath, chunk_steps, n_steps)
    got = vs.question_logits(QUESTION)
    want = _full_logits(stream_gq, frames[: 2 * n_steps], fixed_scanpath, QUESTION)
    assert (got - want).abs().max() < 1e-4
    no_gaze = _full_logits(stream_gq, frames[: 2 * n_steps], None, QUESTION)
    assert (want - no_gaze).abs().max() > 1e-3  # the residuals are on and matter


def test_equal_after_answers_are_cut_back_and_more_chunks_arrive(stream_gq, model_frames, fixed_scanpath):
    frames, times = model_frames
    vs = _stream(stream_gq, frames, times, fixed_scanpath, 2, 4)
    first = "".join(vs.answer(QUESTION, max_new_tokens=5))
    scores = vs.score_options("Which object?", OPTIONS)
    want_scores = stream_gq.score_options(Video(frames[:8], 2.0), fixed_scanpath, "Which object?", OPTIONS)
    np.testing.assert_allclose(list(scores.values()), list(want_scores.values()), atol=1e-4)
    _stream(stream_gq, frames, times, fixed_scanpath, 1, 9, vs)
    got = vs.question_logits(QUESTION)
    want = _full_logits(stream_gq, frames[:18], fixed_scanpath, QUESTION)
    assert (got - want).abs().max() < 1e-4
    assert isinstance(first, str)


def test_streamed_answer_equals_the_full_path_answer(stream_gq, model_frames, fixed_scanpath):
    """Greedy decoding on the stream (incremental detokeniser) writes the text GazeQwen.answer writes."""
    frames, times = model_frames
    vs = _stream(stream_gq, frames, times, fixed_scanpath, 3, 6)
    eos = stream_gq._eos_ids
    stream_gq._eos_ids = set()
    try:
        ours = "".join(vs.answer(QUESTION, max_new_tokens=8))
        theirs = "".join(stream_gq.answer(Video(frames[:12], 2.0), fixed_scanpath, QUESTION, max_new_tokens=8))
    finally:
        stream_gq._eos_ids = eos
    assert ours == theirs
    assert vs.cache.get_seq_length() == vs.video_end  # cut back


def test_sliding_window_keeps_the_prefix_and_the_newest_chunks(stream_gq, model_frames, fixed_scanpath):
    frames, times = model_frames
    vs = VideoStream(stream_gq, frames.shape[1:3], fps=2.0, window_s=3.0)
    _stream(stream_gq, frames, times, fixed_scanpath, 1, 10, vs)
    span = vs.video_span_s
    assert span[1] - span[0] <= 3.0 + 0.5 and vs.evicted_steps > 0
    assert vs.cache.get_seq_length() == vs.first_video_pos + len(vs.chunks) * vs.tokens_per_step
    logits = vs.question_logits(QUESTION)
    assert torch.isfinite(logits).all()


def test_bad_use_is_refused(stream_gq, model_frames):
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    frames, times = model_frames
    vs = VideoStream(stream_gq, frames.shape[1:3], fps=2.0)
    with pytest.raises(InputError, match="no video has arrived"):
        vs.question_logits(QUESTION)
    with pytest.raises(InputError, match="2k frames"):
        vs.prefill_steps(frames[:3], times[:3], 0)
    vs.prefill_steps(frames[:2], times[:2], 0)
    with pytest.raises(InputError, match="comes before"):
        vs.prefill_steps(frames[:2], times[:2], 0)
    with pytest.raises(ConfigError, match="reference"):
        VideoStream(build_tiny_gazeqwen(regime="reference"), frames.shape[1:3])


def test_streamed_option_text_scores_equal_the_full_path(stream_gq, model_frames, fixed_scanpath):
    frames, times = model_frames
    vs = _stream(stream_gq, frames, times, fixed_scanpath, 2, 4)
    got = vs.score_option_texts("Which object?", OPTIONS)
    want = stream_gq.score_option_texts(Video(frames[:8], 2.0), fixed_scanpath, "Which object?", OPTIONS)
    np.testing.assert_allclose(list(got.values()), list(want.values()), atol=1e-4)
    assert vs.cache.get_seq_length() == vs.video_end  # cut back to the video
