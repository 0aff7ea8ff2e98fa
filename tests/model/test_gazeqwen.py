import numpy as np
import pytest
import torch

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.model.gazeqwen import MC_PROMPTS, Video, lettered_options, option_letters, option_texts

OPTIONS = ["A. red box", "B. green cup", "C. blue jar", "D. knife"]


def test_plain_path_equals_transformers_own_forward(tiny_gq, clip):
    """No scanpath: our pipeline (vision tower run separately, its output handed in) gives the logits transformers
    computes from input_ids + pixel_values_videos on its own, given the same (trained-rule) position ids."""
    gq = tiny_gq
    user, assistant = MC_PROMPTS["reference"].render("Which object?", OPTIONS)
    b = gq.collate([gq.prepare(clip, None, user, suffix=assistant)])
    ours = gq.prefill(b, logits_to_keep=0).logits
    theirs = gq.qwen(
        input_ids=b.input_ids,
        attention_mask=b.attention_mask,
        position_ids=b.position_ids,
        pixel_values_videos=b.pixel_values_videos,
        video_grid_thw=b.video_grid_thw,
        second_per_grid_ts=b.second_per_grid_ts,
        mm_token_type_ids=b.mm_token_type_ids,
    ).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_score_options_uses_the_released_reference_prompt(tiny_gq, clip, scanpath):
    """The exact text the released GazeQwen code scores (REFERENCE.md section 1), character by character: the video
    item then 'Question: ...\nOptions:\n...\n\nThe best option is:' in the user turn, the chat template's generation
    prompt, nothing in the assistant turn; the letters scored at the first assistant position."""
    gq = tiny_gq
    options = ["A. red box", "green cup", "C. blue jar", "D. knife"]  # one option without its letter gets "B."
    user, assistant = MC_PROMPTS["reference"].render("Which object did I look at first?", options)
    s = gq.prepare(clip, scanpath, user, suffix=assistant)
    n = s.video.n_video_tokens
    want = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|>" + "<|video_pad|>" * n + "<|vision_end|>"
        "Question: Which object did I look at first?\nOptions:\nA. red box\nB. green cup\nC. blue jar\nD. knife"
        "\n\nThe best option is:<|im_end|>\n<|im_start|>assistant\n"
    )
    assert gq.tokenizer.decode(s.input_ids) == want
    got = gq.score_options(clip, scanpath, "Which object did I look at first?", options)
    assert list(got) == ["A", "B", "C", "D"]
    # the same numbers as the logits at the last position (right after "<|im_start|>assistant\n"), read directly
    logits = gq.prefill(gq.collate([s]), logits_to_keep=1).logits[0, -1]
    ids = [gq.tokenizer.encode(k, add_special_tokens=False)[0] for k in "ABCD"]
    np.testing.assert_allclose(list(got.values()), logits[ids].tolist(), rtol=1e-6)
    plain = gq.score_options(clip, None, "Which object did I look at first?", options)
    assert plain != got  # the gaze matters (perturbed resampler)


def test_instruction_prompt_is_a_named_alternative(tiny_gq, clip):
    gq = tiny_gq
    user, assistant = MC_PROMPTS["instruction"].render("Which?", OPTIONS)
    text = gq.tokenizer.decode(gq.prepare(clip, None, user, suffix=assistant).input_ids)
    assert text.endswith(
        "D. knife\nAnswer with the option's letter from the given choices directly.<|im_end|>\n"
        "<|im_start|>assistant\nThe best option is:"
    )
    a = gq.score_options(clip, None, "Which?", OPTIONS, prompt="instruction")
    assert a != gq.score_options(clip, None, "Which?", OPTIONS)
    with pytest.raises(ConfigError, match="unknown multiple-choice prompt"):
        gq.score_options(clip, None, "Which?", OPTIONS, prompt="bogus")


def test_answer_streams_text(tiny_gq, clip, scanpath):
    pieces = list(tiny_gq.answer(clip, scanpath, "What am I looking at?", max_new_tokens=5))
    assert all(isinstance(p, str) and p for p in pieces)
    s = tiny_gq.timer.summary()
    for stage in ("preprocess", "qwen_vision", "vjepa", "resampler", "prefill"):
        assert s[stage]["count"] >= 1


def test_option_letters_and_input_errors():
    assert option_letters(["A. x", "B) y", "z"]) == ["A", "B", "C"]
    # every scored letter is in the prompt: options given without letters get them
    assert lettered_options([" box", "cup "]) == ["A. box", "B. cup"]
    assert lettered_options(["A. box", "B) cup"]) == ["A. box", "B) cup"]
    # letters as people type them: lower case or in brackets, said in the prompt as the upper-case letter scored
    # (before: "a) box" was option A with the text "a) box", shown as "A. a) box")
    typed = ["a) red box", "(b) cup", "c. mug", " (D) pen"]
    assert option_letters(typed) == ["A", "B", "C", "D"]
    assert lettered_options(typed) == ["A. red box", "B. cup", "C. mug", "D. pen"]
    assert option_texts(typed) == ["red box", "cup", "mug", "pen"]
    assert option_letters(["b) cup", "a) box"]) == ["B", "A"]  # the letter written, not the position
    # texts that merely start with a letter are not lettered
    plain = ["e.g. a cup", "a cup", "I think so", "x:y"]
    assert option_texts(plain) == plain
    assert option_letters(plain) == ["A", "B", "C", "D"]
    assert lettered_options(plain) == ["A. e.g. a cup", "B. a cup", "C. I think so", "D. x:y"]
    with pytest.raises(InputError, match="distinct letters"):
        option_letters(["box", "A. cup"])
    with pytest.raises(InputError, match="uint8"):
        Video(np.zeros((2, 8, 8, 3), np.float32), fps=1)
    with pytest.raises(InputError, match="fps"):
        Video(np.zeros((2, 8, 8, 3), np.uint8), fps=0)
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        from gazeqwen_edge.model.gaze_encoding import check_scanpath

        check_scanpath(np.zeros((3, 3)))


def _indexed_video(n: int, fps: float) -> Video:
    frames = np.zeros((n, 16, 16, 3), np.uint8)
    frames[:, 0, 0, 0], frames[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256  # each frame carries its index
    return Video(frames, fps=fps)


def _frame_index(frames: np.ndarray) -> np.ndarray:
    return frames[:, 0, 0, 0].astype(int) + 256 * frames[:, 0, 0, 1].astype(int)


@pytest.mark.parametrize("duration_s, sampling_fps", [(6.0, 1.0), (45.0, 0.5)])
def test_gaze_is_looked_up_at_the_time_of_each_steps_first_frame(tiny_gq, duration_s, sampling_fps):
    """Models trained here look the gaze up at the real time of the first frame Qwen gets for each temporal step."""
    fps = 5.0
    video = _indexed_video(int(duration_s * fps), fps)
    picked, used_fps = tiny_gq.sample_clip(video)
    assert used_fps == sampling_fps  # the reference policy by clip length
    s = tiny_gq.prepare(video, None, "Where?")
    assert len(s.video.step_times) == int(s.video.video_grid_thw[0, 0])
    first_frame_index = _frame_index(s.frames[0::2])
    np.testing.assert_allclose(s.video.step_times, first_frame_index / fps)
    assert s.video.second_per_grid_t == pytest.approx(2 / picked.sample_fps)  # what Qwen's 3-D positions use


def test_frame_cap_spreads_frames_over_the_whole_clip(tiny_gq):
    """A 60 s clip at 30 fps, 0.5 fps, capped to 8 frames (the reference evaluation): qwen-vl-utils keeps 8 frames
    spread from the first to the last (not 0..14 s), and Qwen is told their real rate: 8 / 1800 * 30 = 0.133 fps,
    15 s per temporal step."""
    from gazeqwen_edge.model.gazeqwen import GazeQwen

    gq = GazeQwen(
        tiny_gq.qwen, tiny_gq.tokenizer, min_pixels=tiny_gq.min_pixels, max_pixels=tiny_gq.max_pixels, max_frames=8
    )
    s = gq.prepare(_indexed_video(1800, 30.0), None, "Where?")
    idx = _frame_index(s.frames)
    assert idx.tolist() == [0, 257, 514, 771, 1028, 1285, 1542, 1799]  # linspace(0, 1799, 8), rounded
    assert s.video.second_per_grid_t == pytest.approx(15.0)
    np.testing.assert_allclose(s.video.step_times, [0, 514 / 30, 1028 / 30, 1542 / 30])


def test_reference_regime_looks_gaze_up_at_nominal_times():
    """A checkpoint of the "reference" regime (the authors'): step t at t * 2 / nominal fps (0, 4, 8, 12 s for the
    reference evaluation), whatever frames qwen-vl-utils kept (REFERENCE.md section 1)."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    gq = build_tiny_gazeqwen(regime="reference", max_frames=8)
    s = gq.prepare(_indexed_video(1800, 30.0), None, "Where?")
    np.testing.assert_allclose(s.video.step_times, [0, 4, 8, 12])
    with pytest.raises(ConfigError, match="regime"):
        build_tiny_gazeqwen(regime="bogus")


@pytest.mark.parametrize("src", ["not a valid hub id!!", "EMPTY_DIR"])
def test_from_pretrained_bad_qwen_source_is_an_input_error(tmp_path, monkeypatch, src):
    from gazeqwen_edge.model.gazeqwen import GazeQwen

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = str(tmp_path) if src == "EMPTY_DIR" else src
    with pytest.raises(InputError, match="cannot load Qwen2.5-VL|not a hub id") as e:
        GazeQwen.from_pretrained(src)
    assert e.value.path == src


def test_from_pretrained_refuses_a_model_that_is_not_qwen2_5_vl(tmp_path):
    """transformers loads another architecture's directory into Qwen2.5-VL with random weights and only a warning:
    we refuse it by its model_type."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from gazeqwen_edge.model.gazeqwen import GazeQwen

    GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0)
    ).save_pretrained(tmp_path)
    with pytest.raises(InputError, match="is a 'gpt2' model, not Qwen2.5-VL"):
        GazeQwen.from_pretrained(str(tmp_path), dtype=torch.float32)


def test_model_sources_that_cannot_load_fail_fast(tmp_path, monkeypatch):
    """Offline, transformers retries a hub id for about 30 s (printing each retry) before failing: a path that does not
    exist, a file, a string that is no hub id, and an uncached hub id with the hub unreachable are refused at once."""
    import time

    from gazeqwen_edge.model import gazeqwen as gqmod

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(gqmod, "_hub_reachable", lambda *a, **k: False)
    (tmp_path / "f").write_text("x")
    t0 = time.monotonic()
    for src, msg in [
        (str(tmp_path / "nope" / "x"), "no such model directory"),
        (str(tmp_path / "f"), "is a file"),
        ("[red]x[/]", "not a hub id"),
        ("someone/not-cached-model-xyz", "cannot be reached"),
    ]:
        with pytest.raises(InputError, match=msg):
            gqmod.GazeQwen.from_pretrained(src)
    assert time.monotonic() - t0 < 5
    assert gqmod.check_model_source(str(tmp_path)) is True  # a directory loads from disk only
    monkeypatch.setattr(gqmod, "_hub_reachable", lambda *a, **k: True)
    assert gqmod.check_model_source("someone/not-cached-model-xyz") is False  # may be downloaded
