"""The option-text protocol (small models that answer in words): each option's text + end of turn scored after one
prefill of the prompt equals the log-likelihood from one independent full forward of prompt + answer; a model
directory (what `train` writes) reloads to the same scores and keeps its protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gazeqwen_edge.errors import ConfigError
from gazeqwen_edge.model.gazeqwen import GazeQwen, mc_prompt, option_texts

OPTIONS = ["A. red circle", "B. blue square", "C) cup", "green star"]


def test_option_texts_strip_letters_only():
    assert option_texts(OPTIONS) == ["red circle", "blue square", "cup", "green star"]


def _independent(gq, clip, scanpath, question, options):
    """log p(option text + <|im_end|> | prompt) from ONE full forward of the whole sequence (no cache reuse)."""
    user, assistant = mc_prompt("reference").render(question, options)
    out = {}
    for letter, text in zip("ABCD", option_texts(options), strict=False):
        cont = gq.answer_ids(text)
        s = gq.prepare(clip, scanpath, user, suffix=assistant)
        s.input_ids = s.input_ids + cont
        logits = gq.prefill(gq.collate([s]), logits_to_keep=len(cont) + 1).logits[0, :-1].float()
        lp = torch.log_softmax(logits, -1)[torch.arange(len(cont)), torch.tensor(cont)]
        out[letter] = float(lp.sum())
    return out


def test_option_text_scores_equal_an_independent_full_forward(tiny_gq, clip, scanpath):
    got = tiny_gq.score_option_texts(clip, scanpath, "Which object?", OPTIONS)
    want = _independent(tiny_gq, clip, scanpath, "Which object?", OPTIONS)
    assert list(got) == ["A", "B", "C", "D"]
    np.testing.assert_allclose(list(got.values()), list(want.values()), atol=1e-4)
    # the end-of-turn token is part of each option's score (an answer that goes on is not the option)
    assert tiny_gq.answer_ids("cup")[-1] == tiny_gq.tokenizer.convert_tokens_to_ids("<|im_end|>")
    # gaze matters through the prefill's KV cache
    no_gaze = tiny_gq.score_option_texts(clip, None, "Which object?", OPTIONS)
    assert max(abs(got[k] - no_gaze[k]) for k in got) > 1e-3


def test_score_mc_follows_the_models_protocol(tiny_gq, clip, scanpath):
    letters = tiny_gq.score_mc(clip, scanpath, "Which?", OPTIONS)
    assert letters == tiny_gq.score_options(clip, scanpath, "Which?", OPTIONS)
    words = tiny_gq.score_mc(clip, scanpath, "Which?", OPTIONS, protocol="option_text")
    assert words == tiny_gq.score_option_texts(clip, scanpath, "Which?", OPTIONS)
    with pytest.raises(ConfigError):
        tiny_gq.score_mc(clip, scanpath, "Which?", OPTIONS, protocol="bogus")


def test_model_dir_round_trip_keeps_scores_and_protocol(tiny_gq, clip, scanpath, tmp_path):
    from gazeqwen_edge.model.model_dir import is_model_dir, load_model_dir, save_model_dir

    tiny_gq.mc_protocol = "option_text"
    try:
        save_model_dir(tiny_gq, tmp_path / "m", meta={"note": "test"})
        want = tiny_gq.score_mc(clip, scanpath, "Which?", OPTIONS)
    finally:
        tiny_gq.mc_protocol = "letter"
    assert is_model_dir(tmp_path / "m")
    loaded = load_model_dir(tmp_path / "m")
    assert isinstance(loaded, GazeQwen) and loaded.mc_protocol == "option_text" and loaded.meta == {"note": "test"}
    assert (loaded.min_pixels, loaded.max_pixels) == (tiny_gq.min_pixels, tiny_gq.max_pixels)
    got = loaded.score_mc(clip, scanpath, "Which?", OPTIONS)
    np.testing.assert_allclose(list(got.values()), list(want.values()), atol=1e-5)
