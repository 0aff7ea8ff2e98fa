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
    # 3 s of video: the oldest kept frame to the end of the newest (its time + 1/fps), 3 one-step chunks at 2 fps
    assert span[1] + 0.5 - span[0] == 3.0 and len(vs.chunks) == 3 and vs.evicted_steps == 7
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


# Fixations [x, y, mid_t, dur] over 4 steps (spans [0,1) .. [3,4)). Two begin after the last frame (t = s + 0.5) of
# the step whose span holds them: D (2.7-2.95) in step 2's, C (3.6-3.95) in step 3's.
LATE_SCANPATH = np.array(
    [[0.2, 0.3, 0.75, 1.3], [0.7, 0.6, 1.85, 1.3], [0.9, 0.1, 2.825, 0.25], [0.5, 0.8, 3.775, 0.35]], np.float32
)


def _known_at(scanpath, t_s):
    """The rows a live scanpath holds at t_s: fixations begun by then, the one in progress cut at t_s."""
    rows = scanpath[scanpath[:, 2] - scanpath[:, 3] / 2 <= t_s].copy()
    start = rows[:, 2] - rows[:, 3] / 2
    end = np.minimum(rows[:, 2] + rows[:, 3] / 2, t_s)
    rows[:, 2], rows[:, 3] = (start + end) / 2, end - start
    return rows


def _live_stream(gq, frames, times, n_steps, refresh_chunks):
    """One-step chunks, each prefilled with the gaze known when its last frame arrived (as the session does)."""
    vs = VideoStream(gq, frames.shape[1:3], fps=2.0, refresh_chunks=refresh_chunks)
    for s in range(n_steps):
        a, b = 2 * s, 2 * s + 2
        rows = _known_at(LATE_SCANPATH, times[b - 1])
        vs.prefill_steps(frames[a:b], times[a:b], s, rows, window=[(i, frames[i]) for i in range(b)])
    return vs


def test_refreshing_the_newest_chunks_gives_the_full_prefill_with_the_gaze_known_at_the_question(
    stream_gq, model_frames
):
    """A question at t = 4 s knows fixations D and C, which begun after their chunks were prefilled: re-prefilling the
    two newest chunks with that gaze gives the logits of one full prefill with the whole scanpath."""
    frames, times = model_frames
    want = _full_logits(stream_gq, frames[:8], LATE_SCANPATH, QUESTION)
    vs = _live_stream(stream_gq, frames, times, 4, refresh_chunks=2)
    stale = vs.question_logits(QUESTION)
    assert (stale - want).abs().max() > 1e-3  # the chunks' own gaze misses D and C
    assert vs.refresh_gaze(_known_at(LATE_SCANPATH, 4.0)) == 2
    assert (vs.question_logits(QUESTION) - want).abs().max() < 1e-4
    assert vs.cache.get_seq_length() == vs.video_end == vs.chunks[-1].end
    assert vs.refresh_gaze(_known_at(LATE_SCANPATH, 4.0)) == 0  # nothing new: no prefill
    # the refreshed gaze stays when more video arrives
    vs.prefill_steps(frames[8:10], times[8:10], 4, LATE_SCANPATH, window=[(i, frames[i]) for i in range(10)])
    assert (
        vs.question_logits(QUESTION) - _full_logits(stream_gq, frames[:10], LATE_SCANPATH, QUESTION)
    ).abs().max() < 1e-4


def test_only_the_kept_chunks_are_refreshed(stream_gq, model_frames):
    frames, times = model_frames
    want = _full_logits(stream_gq, frames[:8], LATE_SCANPATH, QUESTION)
    one = _live_stream(stream_gq, frames, times, 4, refresh_chunks=1)
    assert one.refresh_gaze(LATE_SCANPATH) == 1  # step 3 only: step 2 still lacks D
    assert (one.question_logits(QUESTION) - want).abs().max() > 1e-3
    assert [c.inputs is not None for c in one.chunks] == [False, False, False, True]
    none = _live_stream(stream_gq, frames, times, 4, refresh_chunks=0)
    assert none.refresh_gaze(LATE_SCANPATH) == 0


def test_a_refresh_before_a_chunk_completes_the_older_chunks_gaze(stream_gq, model_frames):
    """prefill_steps(refresh=True) (watch checks): the chunks before the new one get the gaze known now."""
    frames, times = model_frames
    vs = _live_stream(stream_gq, frames, times, 3, refresh_chunks=2)
    rows = _known_at(LATE_SCANPATH, 3.5)  # D has ended, C not begun
    vs.prefill_steps(frames[6:8], times[6:8], 3, rows, window=[(i, frames[i]) for i in range(8)], refresh=True)
    want = _full_logits(stream_gq, frames[:8], rows, QUESTION)
    assert (vs.question_logits(QUESTION) - want).abs().max() < 1e-4


def _two_one_step_chunks(gq, model_frames, scanpath):
    """(frames, times, stream): frames 0-3 prefilled as two one-step chunks, frame 0 made equal to frame 1 (so the
    stream's causal V-JEPA windows see what a clip of frames 1.. sees: it repeats its first frame)."""
    frames, times = model_frames
    frames = frames.copy()
    frames[0] = frames[1]
    vs = VideoStream(gq, frames.shape[1:3], fps=2.0, refresh_chunks=2)
    for s in range(2):
        vs.prefill_steps(
            frames[2 * s : 2 * s + 2],
            times[2 * s : 2 * s + 2],
            s,
            scanpath,
            window=list(enumerate(frames[: 2 * s + 2])),
        )
    return frames, times, vs


def test_a_question_view_ends_the_video_at_a_newer_frame_and_leaves_the_cache_as_it_was(
    stream_gq, model_frames, fixed_scanpath
):
    """Two one-step chunks (frames 0-3) and the odd frame 4 a session holds: the view re-pairs the kept steps as
    (1, 2), (3, 4), which must give the logits of one full prefill of the clip of frames 1-4 (frame 0 is made equal
    to frame 1, so that the stream's causal V-JEPA windows see what the clip's, which repeat its first frame, see);
    afterwards the cache answers as before the view."""
    frames, times, vs = _two_one_step_chunks(stream_gq, model_frames, fixed_scanpath)
    before = vs.question_logits(QUESTION)
    clip_scanpath = fixed_scanpath.copy()
    clip_scanpath[:, 2] -= times[1]
    want = _full_logits(stream_gq, frames[1:5], clip_scanpath, QUESTION)
    assert (before - want).abs().max() > 1e-3  # the view changes the answer
    with vs.question_view(4, frames[4], times[4], fixed_scanpath) as on:
        assert on and vs.video_span_s == (times[1], times[4])
        got = vs.question_logits(QUESTION)
    assert (got - want).abs().max() < 1e-4
    assert (vs.question_logits(QUESTION) - before).abs().max() < 1e-6
    assert vs.video_span_s == (times[0], times[3]) and vs.cache.get_seq_length() == vs.video_end
    with vs.question_view(5, frames[5], times[5], fixed_scanpath) as on:  # not the frame after the cache's last
        assert not on


def test_a_view_prepared_before_the_gaze_settles_gives_the_same_logits(stream_gq, model_frames, fixed_scanpath):
    """A question waiting for its gaze runs its view's encoders first (prepare_view, no gaze); the view then looks
    the gaze up with the settled fixations. The logits equal one full prefill of the clip, as an unprepared view's;
    a preparation made before the stream changed (another chunk) is not used."""
    frames, times, vs = _two_one_step_chunks(stream_gq, model_frames, fixed_scanpath)
    clip_scanpath = fixed_scanpath.copy()
    clip_scanpath[:, 2] -= times[1]
    want = _full_logits(stream_gq, frames[1:5], clip_scanpath, QUESTION)
    prepared = vs.prepare_view(4, frames[4], times[4])
    assert prepared is not None and vs.prepare_view(5, frames[5], times[5]) is None
    calls = []
    real = vs._encode_video
    vs._encode_video = lambda *a, **k: calls.append(1) or real(*a, **k)
    with vs.question_view(4, frames[4], times[4], fixed_scanpath, prepared=prepared) as on:
        assert on
        got = vs.question_logits(QUESTION)
    assert calls == []  # the encoders ran before, not again
    assert (got - want).abs().max() < 1e-4
    # the stream moves on: that preparation is stale, and the view encodes afresh (equal to an unprepared view)
    vs.prefill_steps(frames[4:6], times[4:6], 2, fixed_scanpath, window=list(enumerate(frames[:6])))
    with vs.question_view(6, frames[6], times[6], fixed_scanpath) as on:
        fresh = vs.question_logits(QUESTION)
    calls.clear()
    with vs.question_view(6, frames[6], times[6], fixed_scanpath, prepared=prepared) as on:
        assert on and calls == [1]
        assert (vs.question_logits(QUESTION) - fresh).abs().max() < 1e-6


def test_latest_fixation_rule_reaches_the_stream_and_the_full_prefill(stream_gq, model_frames):
    """step_fixations "latest": the stream and one full prefill of the whole scanpath both equal the full prefill,
    under "all", of the scanpath cut by hand to each 1 s step's last fixation (B, D, F, G), and differ from "all"."""
    frames, times = model_frames
    both = [[0.2, 0.3, 0.2, 0.2], [0.7, 0.6, 0.7, 0.4], [0.4, 0.4, 1.25, 0.3], [0.8, 0.2, 1.725, 0.45],
            [0.3, 0.7, 2.35, 0.3], [0.6, 0.8, 2.775, 0.35], [0.5, 0.5, 3.3, 0.4]]  # fmt: skip
    scan = np.array(both, np.float32)  # (start, end): A .1-.3 B .5-.9 | C 1.1-1.4 D 1.5-1.95 | E F | G 3.1-3.5
    cut = scan[[1, 3, 5, 6]]
    cfg = stream_gq.resampler.config
    assert cfg.step_fixations == "all"
    want = _full_logits(stream_gq, frames[:8], cut, QUESTION)
    mixed = _full_logits(stream_gq, frames[:8], scan, QUESTION)
    try:
        cfg.step_fixations = "latest"
        full = _full_logits(stream_gq, frames[:8], scan, QUESTION)
        streamed = _stream(stream_gq, frames, times, scan, 2, 4).question_logits(QUESTION)
    finally:
        cfg.step_fixations = "all"
    assert (full - want).abs().max() < 1e-5 and (streamed - want).abs().max() < 1e-4
    assert (mixed - want).abs().max() > 1e-3
