import numpy as np
import pytest
import torch

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.gazeqwen import MC_SUFFIX, Video, mc_text, option_letters

OPTIONS = ["A. red box", "B. green cup", "C. blue jar", "D. knife"]


def test_plain_path_equals_transformers_own_forward(tiny_gq, clip):
    """No scanpath: our pipeline (explicit 3-D positions, vision tower run separately) gives the logits that
    transformers computes from input_ids + pixel_values_videos + mm_token_type_ids on its own."""
    gq = tiny_gq
    s = gq.prepare(clip, None, gq.mc_text("Which object?", OPTIONS), suffix=MC_SUFFIX)
    b = gq.collate([s])
    ours = gq.prefill(b, logits_to_keep=0).logits
    theirs = gq.qwen(
        input_ids=b.input_ids,
        attention_mask=b.attention_mask,
        pixel_values_videos=b.pixel_values_videos,
        video_grid_thw=b.video_grid_thw,
        second_per_grid_ts=b.second_per_grid_ts,
        mm_token_type_ids=b.mm_token_type_ids,
    ).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_score_options_protocol(tiny_gq, clip, scanpath):
    gq = tiny_gq
    s = gq.prepare(clip, scanpath, gq.mc_text("Which object?", OPTIONS), suffix=MC_SUFFIX)
    text = gq.tokenizer.decode(s.input_ids)
    assert text.endswith("<|im_start|>assistant\nThe best option is:")
    assert text.count("<|video_pad|>") == s.video.n_video_tokens
    got = gq.score_options(clip, scanpath, "Which object?", OPTIONS)
    assert list(got) == ["A", "B", "C", "D"]
    # the same numbers as the logits at the last position, read directly
    logits = gq.prefill(gq.collate([s]), logits_to_keep=1).logits[0, -1]
    ids = [gq.tokenizer.encode(k, add_special_tokens=False)[0] for k in "ABCD"]
    np.testing.assert_allclose(list(got.values()), logits[ids].tolist(), rtol=1e-6)
    plain = gq.score_options(clip, None, "Which object?", OPTIONS)
    assert plain != got  # the gaze matters (perturbed resampler)


def test_answer_streams_text(tiny_gq, clip, scanpath):
    pieces = list(tiny_gq.answer(clip, scanpath, "What am I looking at?", max_new_tokens=5))
    assert all(isinstance(p, str) and p for p in pieces)
    s = tiny_gq.timer.summary()
    for stage in ("preprocess", "qwen_vision", "vjepa", "resampler", "prefill"):
        assert s[stage]["count"] >= 1


def test_option_letters_and_input_errors():
    assert option_letters(["A. x", "B) y", "z"]) == ["A", "B", "C"]
    # every scored letter is in the prompt: options given without letters get them
    assert mc_text("Which?", [" box", "cup "]).splitlines()[1:3] == ["A. box", "B. cup"]
    assert mc_text("Which?", ["A. box", "B) cup"]).splitlines()[1:3] == ["A. box", "B) cup"]
    with pytest.raises(InputError, match="distinct letters"):
        option_letters(["box", "A. cup"])
    with pytest.raises(InputError, match="uint8"):
        Video(np.zeros((2, 8, 8, 3), np.float32), fps=1)
    with pytest.raises(InputError, match="fps"):
        Video(np.zeros((2, 8, 8, 3), np.uint8), fps=0)
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        from gazeqwen_edge.model.gaze_encoding import check_scanpath

        check_scanpath(np.zeros((3, 3)))


@pytest.mark.parametrize("duration_s, sampling_fps", [(6.0, 1.0), (45.0, 0.5)])
def test_gaze_is_looked_up_at_the_time_of_each_steps_first_frame(tiny_gq, duration_s, sampling_fps):
    """REFERENCE: frame time of temporal step t = clip_start + t * 2 / fps. The time at which the gaze path looks up
    the active fixations equals the recording time of the first frame Qwen gets for that step."""
    fps = 5.0
    n = int(duration_s * fps)
    frames = np.zeros((n, 16, 16, 3), np.uint8)
    frames[:, 0, 0, 0], frames[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256  # each frame carries its index
    video = Video(frames, fps=fps)
    got, used_fps = tiny_gq.sample_clip(video)
    assert used_fps == sampling_fps  # the reference policy by clip length
    s = tiny_gq.prepare(video, None, "Where?")
    t_steps = s.video.step_times
    assert len(t_steps) == int(s.video.video_grid_thw[0, 0])
    first_frame_index = got[0::2, 0, 0, 0].astype(int) + 256 * got[0::2, 0, 0, 1].astype(int)
    np.testing.assert_allclose(t_steps, first_frame_index / fps)
    np.testing.assert_allclose(t_steps, np.arange(len(t_steps)) * 2 / sampling_fps)
    assert s.video.second_per_grid_t == 2 / sampling_fps  # what Qwen's 3-D positions use for the same steps


@pytest.mark.parametrize("src", ["not a valid hub id!!", "EMPTY_DIR"])
def test_from_pretrained_bad_qwen_source_is_an_input_error(tmp_path, monkeypatch, src):
    from gazeqwen_edge.model.gazeqwen import GazeQwen

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = str(tmp_path) if src == "EMPTY_DIR" else src
    with pytest.raises(InputError, match="cannot load Qwen2.5-VL") as e:
        GazeQwen.from_pretrained(src)
    assert e.value.path == src
