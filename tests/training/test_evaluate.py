"""The evaluator: every variant and protocol over the same items, per-item results with predictions, resumable
(a finished item is never redone; another variant into the same log is refused), errors recorded per item; and the
`eval` / `train` commands end to end on a toy set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gazeqwen_edge.errors import ConfigError, InputError
from gazeqwen_edge.training.data import ClipConfig
from gazeqwen_edge.training.evaluate import evaluate_items, variant_label
from gazeqwen_edge.training.streamgaze import load_streamgaze

CLIP = ClipConfig(policy="stream", scanpath="stream", stream_max_s=3.0)


@pytest.fixture(scope="module")
def toy_items(toy_qa):
    return load_streamgaze(toy_qa, toy_qa.parent / "videos", toy_qa.parent / "fixations").items


@pytest.fixture()
def gq(toy_gq):
    with torch.no_grad():
        for p in toy_gq.resampler.proj_outs:
            p.weight.normal_(0, 0.5)
    return toy_gq


def _items(out):
    return json.loads((out / "results.json").read_text())["items"]


@pytest.mark.parametrize("variant", ["gazeqwen", "no_gaze", "visual_prompt", "gaze_text"])
def test_every_variant_scores_every_item(gq, toy_items, tmp_path, variant):
    items = toy_items[:5]
    summary = evaluate_items(
        gq, items, tmp_path, {"model": "toy", "qa_file": "toy"}, variant=variant, protocol="option_text", clip=CLIP
    )
    assert summary["n_items"] == 5 and summary["errors"] == 0
    got = _items(tmp_path)
    assert [r["item_id"] for r in got] == [it.item_id for it in items]
    assert all(r["prediction"] in "ABCD" and r["error"] is None and len(r["scores"]) == 4 for r in got)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["variant"] == variant_label(gq, variant) and doc["protocol"] == "option_text"
    assert (tmp_path / "results.md").read_text().count("|") > 4
    # a gaze variant's label names only the encoding; the step rule and the gaze mark are in the header too
    c = gq.resampler.config
    rules = f"encoding {c.gaze_encoding}, step fixations {c.step_fixations}, gaze mark {'on' if c.gaze_mark else 'off'}"
    assert doc.get("gaze_rules") == (rules if variant == "gazeqwen" else None)
    assert (f"- gaze_rules: {rules}" in (tmp_path / "results.md").read_text()) == (variant == "gazeqwen")


def test_variants_change_what_the_model_sees(gq, toy_items, tmp_path):
    """gaze changes the scores only through the variant's channel: resampler, drawn frames or the prompt text."""
    items = toy_items[:3]
    scores = {}
    for v in ("gazeqwen", "no_gaze", "visual_prompt", "gaze_text"):
        evaluate_items(
            gq, items, tmp_path / v, {"model": "toy", "qa_file": "toy"}, variant=v, protocol="reference", clip=CLIP
        )
        scores[v] = np.array([list(r["scores"].values()) for r in _items(tmp_path / v)])
    for v in ("gazeqwen", "visual_prompt", "gaze_text"):
        assert np.abs(scores[v] - scores["no_gaze"]).max() > 1e-4, v


def test_resume_skips_finished_items_and_refuses_another_variant(gq, toy_items, tmp_path, monkeypatch):
    head = {"model": "toy", "qa_file": "toy"}
    evaluate_items(gq, toy_items[:3], tmp_path, head, protocol="reference", clip=CLIP)
    first = _items(tmp_path)
    import gazeqwen_edge.training.evaluate as ev

    calls = []
    real = ev.predict
    monkeypatch.setattr(
        ev, "predict", lambda gq_, encs, items, *a, **k: calls.append(len(items)) or real(gq_, encs, items, *a, **k)
    )
    evaluate_items(gq, toy_items[:5], tmp_path, head, protocol="reference", clip=CLIP)
    assert sum(calls) == 2  # only the two new items
    again = _items(tmp_path)
    assert again[:3] == first and len(again) == 5
    with pytest.raises(InputError):
        evaluate_items(gq, toy_items[:5], tmp_path, head, variant="no_gaze", protocol="reference", clip=CLIP)
    # a model with other gaze rules under the same name (another demo model): refused, not mixed into this log
    cfg = gq.resampler.config
    monkeypatch.setattr(cfg, "step_fixations", "latest" if cfg.step_fixations == "all" else "all")
    with pytest.raises(InputError, match="gaze_rules"):
        evaluate_items(gq, toy_items[:5], tmp_path, head, protocol="reference", clip=CLIP)


def test_an_unreadable_clip_is_an_error_record_not_a_crash(gq, toy_items, tmp_path):
    from dataclasses import replace

    broken = replace(toy_items[0], item_id="broken/1.1", video=tmp_path / "missing.mp4")
    summary = evaluate_items(
        gq, [broken, toy_items[1]], tmp_path / "o", {"model": "toy", "qa_file": "toy"}, protocol="reference", clip=CLIP
    )
    got = {r["item_id"]: r for r in _items(tmp_path / "o")}
    assert got["broken/1.1"]["error"] and got["broken/1.1"]["prediction"] is None
    assert got[toy_items[1].item_id]["error"] is None
    assert summary["errors"] == 1


def test_generation_protocol_extracts_a_letter_from_the_text(gq, toy_items, tmp_path):
    evaluate_items(
        gq,
        toy_items[:2],
        tmp_path,
        {"model": "toy", "qa_file": "toy"},
        protocol="generation",
        clip=CLIP,
        max_new_tokens=4,
    )
    for r in _items(tmp_path):
        assert r["scores"] is None and isinstance(r["text"], str)


def test_gaze_variants_need_a_resampler_of_that_encoding(gq):
    assert variant_label(gq, "gazeqwen") == "gazeqwen_spatial"
    with pytest.raises(ConfigError):
        variant_label(gq, "gazeqwen_reference")
    with pytest.raises(ConfigError):
        variant_label(gq, "bogus")


def test_train_and_eval_commands_end_to_end(toy_qa, tmp_path):
    """`train --stage lm` writes best/ (a model directory), `eval --model best` scores the items with it; rerunning
    eval resumes; a bad --qa is one error line."""
    from typer.testing import CliRunner

    from gazeqwen_edge.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--qa",
            str(toy_qa),
            "--val",
            str(toy_qa),
            "--out",
            str(out),
            "--stage",
            "lm",
            "--objective",
            "answer",
            "--max-pixels",
            "3136",
            "--clip-seconds",
            "3",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--grad-accum",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (out / "best" / "gazeqwen.json").is_file() and (out / "metrics.jsonl").is_file()
    meta = json.loads((out / "best" / "gazeqwen.json").read_text())["meta"]
    assert meta["train_config"]["clip"]["stream_max_s"] == 3.0  # --clip-seconds reaches the trainer
    ev = tmp_path / "eval"
    args = ["eval", "--qa", str(toy_qa), "--out", str(ev), "--model", str(out / "best"), "--limit", "6"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads((ev / "results.json").read_text())
    assert doc["protocol"] == "option_text" and len(doc["items"]) == 6  # the model's own protocol
    assert "Overall" in r.output
    assert doc["clip"]["policy"] == "stream" and doc["clip"]["stream_max_s"] == 3.0  # the clip it was trained on
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and len(json.loads((ev / "results.json").read_text())["items"]) == 6
    r = runner.invoke(app, [*args, "--clip", "reference"])  # resumed under another clip: refused, not mixed
    assert isinstance(r.exception, InputError) and "clip policy: log has 'stream', this run 'reference'" in str(
        r.exception
    ), r.output
    # --clip stream is the model's own stream clip (3 s here), not a 60 s one: it resumes the run of --clip auto
    r = runner.invoke(app, [*args, "--clip", "stream"])
    assert r.exit_code == 0, r.output
