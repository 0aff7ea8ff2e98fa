"""The training and evaluation pipeline on a toy StreamGaze-format set (conftest.py): the batched training forward
equals GazeQwen's own prefill, both scoring protocols equal the KV-cache paths the runtime uses, training is
reproducible and resumes exactly, the best checkpoint is a model directory that reloads to the same scores, stage 2's
LoRA merges to what peft computed, and the evaluator resumes and writes per-item results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gazeqwen_edge.model.gazeqwen import Video, mc_prompt, option_texts
from gazeqwen_edge.training.data import Clip, ClipConfig, ItemEncoder, encode_clip, load_clip
from gazeqwen_edge.training.forward import build_inputs, forward
from gazeqwen_edge.training.streamgaze import load_streamgaze
from gazeqwen_edge.training.trainer import TrainConfig, Trainer, augment_scanpath, predict

STREAM = {"policy": "stream", "scanpath": "stream", "stream_max_s": 3.0}


@pytest.fixture(scope="module")
def toy_items(toy_qa):
    s = load_streamgaze(toy_qa, toy_qa.parent / "videos", toy_qa.parent / "fixations")
    assert not s.problems
    return s.items


def test_batched_training_forward_equals_gazeqwen_prefill(toy_gq):
    """Items of different lengths in one batch, gaze on: the letter logits equal score_options of each alone."""
    gq = toy_gq
    with torch.no_grad():
        for p in gq.resampler.proj_outs:
            p.weight.normal_(0, 0.5)  # a gaze path that matters
    rng = np.random.default_rng(0)
    opts = ["A. red circle", "B. blue square"]
    encs, want = [], []
    for n in (8, 4):
        frames = rng.integers(0, 255, (n, 48, 64, 3), dtype=np.uint8)
        sp = np.array([[0.3, 0.4, 1.0, 2.0], [0.6, 0.5, 2.5, 0.8]], np.float32)
        video = Video(frames, 2.0)
        want.append(list(gq.score_options(video, sp, "Which?", opts).values()))
        picked, nominal = gq.sample_clip(video)
        encs.append(encode_clip(gq, Clip(frames[picked.indices], picked.times_s, picked.sample_fps, nominal, 0.0), sp))
    user, asst = mc_prompt("reference").render("Which?", opts)
    out = forward(gq, encs, build_inputs(gq, encs, [(user, asst)] * 2), logits_to_keep=1)
    ids = [gq.tokenizer.encode(x, add_special_tokens=False)[0] for x in "AB"]
    np.testing.assert_allclose(out.logits[:, -1, ids].detach().numpy(), np.array(want), atol=1e-5)
    no_gaze = forward(gq, encs, build_inputs(gq, encs, [(user, asst)] * 2), use_gaze=False, logits_to_keep=1)
    assert (no_gaze.logits - out.logits).abs().max() > 1e-3


def test_the_training_forward_feeds_each_step_its_latest_fixation_when_the_model_says_so(toy_gq):
    """step_fixations "latest" reaches the training forward: the whole scanpath under "latest" gives the logits of
    the scanpath cut by hand to each 1 s step's last fixation under "all" (and not those of the whole one)."""
    gq = toy_gq
    with torch.no_grad():
        for p in gq.resampler.proj_outs:
            p.weight.normal_(0, 0.5)
    frames = np.random.default_rng(1).integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
    scan = np.array([[0.2, 0.3, 0.2, 0.2], [0.7, 0.6, 0.7, 0.4], [0.4, 0.4, 1.25, 0.3], [0.8, 0.2, 1.725, 0.45]])
    cut = scan[[1, 3]]  # steps [0, 1] and [1, 2]: B (0.5-0.9 s) and D (1.5-1.95 s) started last
    picked, nominal = gq.sample_clip(Video(frames, 2.0))
    clip = Clip(frames[picked.indices], picked.times_s, picked.sample_fps, nominal, 0.0)
    user, asst = mc_prompt("reference").render("Which?", ["A. red circle", "B. blue square"])

    def logits(sp, rule):
        gq.resampler.config.step_fixations = rule
        try:
            encs = [encode_clip(gq, clip, sp)]
            return forward(gq, encs, build_inputs(gq, encs, [(user, asst)]), logits_to_keep=1).logits.detach()
        finally:
            gq.resampler.config.step_fixations = "all"

    want = logits(cut, "all")
    assert (logits(scan, "latest") - want).abs().max() < 1e-5
    assert (logits(scan, "all") - want).abs().max() > 1e-3


def test_predict_equals_the_kv_cache_scoring_paths(toy_gq, toy_items):
    """predict (one batched forward per option) == prefill once + each option scored through the KV cache
    (GazeQwen.continuation_logprobs, the runtime's path); letter scores == the prefill's letter logits."""
    gq = toy_gq
    with torch.no_grad():
        for p in gq.resampler.proj_outs:
            p.weight.normal_(0, 0.5)
    enc = ItemEncoder(gq, ClipConfig(**STREAM))
    items = toy_items[:3]
    encs = [enc.encode(it) for it in items]
    got = predict(gq, encs, items, "option_text", "reference", True)
    got_letters = predict(gq, encs, items, "letter", "reference", True)
    for it, e, g, gl in zip(items, encs, got, got_letters, strict=True):
        clip = load_clip(it, enc.videos, enc.clip)
        user, asst = mc_prompt("reference").render(it.question, it.options)
        s = gq.prepare_frames(clip.frames, clip.sample_fps, clip.times_s, clip.nominal_fps, e.scanpath, user, asst)
        batch = gq.collate([s])
        out = gq.prefill(batch)
        conts = [gq.answer_ids(t) for t in option_texts(it.options)]
        want = gq.continuation_logprobs(out.logits[:, -1], out.cache, int(batch.position_ids.max()) + 1, conts)
        np.testing.assert_allclose(list(g.values()), want, atol=1e-4)
        ids = [gq.tokenizer.encode(x, add_special_tokens=False)[0] for x in "ABCD"]
        np.testing.assert_allclose(list(gl.values()), out.logits[0, -1, ids].numpy(), atol=1e-5)


def test_scanpath_augmentation_is_the_references():
    rng = np.random.default_rng(0)
    scan = np.tile(np.array([[0.5, 0.5, 1.0, 0.3]], np.float32), (2000, 1))
    out = augment_scanpath(scan, rng, 0.02, 0.1)
    assert 0.87 < len(out) / len(scan) < 0.93  # p 0.1 dropped
    assert abs(float(np.std(out[:, 0])) - 0.02) < 0.003 and np.all(out[:, 2:] == scan[: len(out), 2:])
    one = augment_scanpath(scan[:1], np.random.default_rng(1), 0.0, 1.0)
    assert len(one) == 1  # a gaze item stays a gaze item


def _params(gq):
    return torch.cat([p.detach().flatten() for p in gq.resampler.parameters()])


def _cfg(**kw):
    base = dict(
        stage="1",
        objective="answer",
        epochs=2,
        lr=3e-3,
        batch_size=4,
        grad_accum=2,
        warmup_steps=1,
        clip=STREAM,
        save_every=1,
    )
    return TrainConfig(**{**base, **kw})


class Interrupt(Exception):
    pass


def test_training_is_reproducible_and_resumes_exactly(toy_items, tmp_path):
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    def fresh():
        return build_tiny_gazeqwen(seed=0, min_pixels=56 * 56, max_pixels=56 * 56, injected_layers=(0, 1))

    saves = []

    def save(gq, path, meta, lora):
        saves.append((path, meta["val_accuracy"]))

    a = fresh()
    Trainer(a, toy_items, [], _cfg(), tmp_path / "a", save).run()
    b = fresh()
    Trainer(b, toy_items, [], _cfg(), tmp_path / "b", save).run()
    assert torch.equal(_params(a), _params(b))  # same seed, same weights
    assert not torch.equal(_params(a), _params(fresh()))  # it trained

    def stop_at_3(done, total):
        if done == 3:
            raise Interrupt

    c = fresh()
    with pytest.raises(Interrupt):
        Trainer(c, toy_items, [], _cfg(), tmp_path / "c", save, progress=stop_at_3).run()
    state = json.loads((tmp_path / "c" / "last" / "state.json").read_text())
    assert state["step"] == 3 and 0 < state["skip"]  # stopped in the middle of the first epoch
    d = fresh()  # a new process: weights from last/
    Trainer(d, toy_items, [], _cfg(), tmp_path / "c", save).run()
    assert torch.equal(_params(a), _params(d))
    e = fresh()
    with pytest.raises(Exception, match="other settings"):
        Trainer(e, toy_items, [], _cfg(lr=1e-3), tmp_path / "c", save).run()
    f = fresh()
    Trainer(f, toy_items, [], _cfg(seed=1), tmp_path / "f", save).run()
    assert not torch.equal(_params(a), _params(f))


def test_ctrl_c_keeps_every_completed_step_and_the_rerun_ends_where_an_uninterrupted_run_does(
    toy_items, tmp_path, monkeypatch
):
    """Ctrl-C said "what was done is kept" but last/ was written every 50 steps only: up to 49 steps were lost and
    the rerun started over. Now last/ is written at the last completed step: a Ctrl-C between steps (here inside
    the third step's second micro-batch) drops only the step in progress; one during a step's update and logging
    (a real SIGINT, from the step's log line) is held until the step ends. Both reruns end with the weights of the
    uninterrupted run."""
    import os
    import signal

    import gazeqwen_edge.training.trainer as trainer_module
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    def fresh():
        return build_tiny_gazeqwen(seed=0, min_pixels=56 * 56, max_pixels=56 * 56, injected_layers=(0, 1))

    cfg = _cfg(save_every=50)  # no periodic save before the interrupt
    ref = fresh()
    Trainer(ref, toy_items, [], cfg, tmp_path / "ref", lambda *a: None).run()

    real_loss, calls = trainer_module.batch_loss, []

    def loss_then_ctrl_c(*a, **kw):
        calls.append(1)
        if len(calls) == 6:  # grad_accum 2: the 6th micro-batch is the second of step 3
            raise KeyboardInterrupt
        return real_loss(*a, **kw)

    monkeypatch.setattr(trainer_module, "batch_loss", loss_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        Trainer(fresh(), toy_items, [], cfg, tmp_path / "a", lambda *a: None).run()
    monkeypatch.setattr(trainer_module, "batch_loss", real_loss)
    assert json.loads((tmp_path / "a" / "last" / "state.json").read_text())["step"] == 2

    logged = []

    def log_then_sigint(rec):
        logged.append(rec)
        if rec.get("step") == 3 and "loss" in rec:
            os.kill(os.getpid(), signal.SIGINT)  # lands inside the step: held until it ends

    progressed = []
    with pytest.raises(KeyboardInterrupt):
        Trainer(
            fresh(), toy_items, [], cfg, tmp_path / "b", lambda *a: None, log=log_then_sigint,
            progress=lambda done, total: progressed.append(done),
        ).run()  # fmt: skip
    state = json.loads((tmp_path / "b" / "last" / "state.json").read_text())
    assert state["step"] == 3 and logged[-1]["step"] == 3
    assert progressed == [1, 2, 3]  # the step's bookkeeping after its log line ran before the Ctrl-C took effect
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back

    for d in ("a", "b"):
        resumed = fresh()
        Trainer(resumed, toy_items, [], cfg, tmp_path / d, lambda *a: None).run()
        assert torch.equal(_params(ref), _params(resumed)), d


def test_best_checkpoint_is_a_model_dir_that_reloads(toy_items, tmp_path):
    """stage lm then 1 through train_stages: best/ is a model directory with the best validation accuracy, its
    scores equal the trained model's; metrics.jsonl logs losses and validation accuracies."""
    from gazeqwen_edge.model.model_dir import load_model_dir
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.training.run import train_stages

    gq = build_tiny_gazeqwen(seed=0, min_pixels=56 * 56, max_pixels=56 * 56, injected_layers=(0, 1))
    kw = dict(
        objective="answer",
        clip="stream",
        clip_seconds=3.0,
        epochs=2,
        lr=3e-3,
        batch_size=4,
        grad_accum=1,
        warmup_steps=1,
    )
    r0 = train_stages(gq, toy_items, toy_items[:6], tmp_path / "lm", stage="lm", **kw)
    r1 = train_stages(gq, toy_items, toy_items[:6], tmp_path / "s1", stage="1", **kw)
    recs = [json.loads(x) for x in (tmp_path / "s1" / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_accuracy"] for r in recs if "val_accuracy" in r]
    assert len(vals) == 2 and round(r1.best_val, 5) == max(vals) and r0.best_dir is not None
    assert any("loss" in r for r in recs)
    loaded = load_model_dir(r1.best_dir)
    assert loaded.mc_protocol == "option_text" and loaded.meta["train_config"]["stage"] == "1"
    enc = ItemEncoder(loaded, ClipConfig(**{**STREAM, "stream_max_s": 3.0}))
    # the reloaded best model scores the validation items exactly as recorded when it was saved
    val_items = toy_items[:6]
    val_scores = predict(loaded, [enc.encode(it) for it in val_items], val_items, "option_text", "reference", True)
    acc = np.mean([max(sc, key=sc.get) == it.answer for sc, it in zip(val_scores, val_items, strict=True)])
    assert round(float(acc), 5) == round(r1.best_val, 5) == round(loaded.meta["val_accuracy"], 5)
    items = toy_items[:4]
    got = predict(loaded, [enc.encode(it) for it in items], items, "option_text", "reference", True)
    last_val = [r for r in recs if "val_accuracy" in r][-1]
    if last_val.get("best"):  # the last validation was the best: the in-memory model is the saved one
        enc2 = ItemEncoder(gq, ClipConfig(**{**STREAM, "stream_max_s": 3.0}))
        want = predict(gq, [enc2.encode(it) for it in items], items, "option_text", "reference", True)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(list(g.values()), list(w.values()), atol=1e-4)


def test_stage_2_lora_merges_to_what_peft_computed(toy_items, tmp_path):
    from gazeqwen_edge.model.model_dir import load_model_dir, save_model_dir
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.training.trainer import lora_state_dict

    gq = build_tiny_gazeqwen(seed=0, min_pixels=56 * 56, max_pixels=56 * 56, injected_layers=(0, 1))
    saved = {}

    def save(m, path, meta, lora):
        saved["lora"] = lora

    Trainer(gq, toy_items, [], _cfg(stage="2", epochs=1, lr=1e-2), tmp_path / "s2", save).run()
    lsd = lora_state_dict(gq)
    assert lsd and all(".q_proj." in k or ".v_proj." in k for k in lsd)
    assert any(float(v.abs().max()) > 0 for k, v in lsd.items() if "lora_B" in k)  # B left zero-init: trained
    items = toy_items[:3]
    enc = ItemEncoder(gq, ClipConfig(**STREAM))
    encs = [enc.encode(it) for it in items]
    want = predict(gq, encs, items, "option_text", "reference", True)  # through peft's LoRA layers
    # a model directory whose LLM is saved WITHOUT the adapters, the LoRA in the gaze checkpoint: merged at load
    base = build_tiny_gazeqwen(seed=0, min_pixels=56 * 56, max_pixels=56 * 56, injected_layers=(0, 1))
    base.resampler.load_state_dict(gq.resampler.state_dict())
    base.mc_protocol = "option_text"
    save_model_dir(base, tmp_path / "m", lora_state_dict=lsd, lora_config={"r": 8, "lora_alpha": 16})
    merged = load_model_dir(tmp_path / "m")
    got = predict(merged, encs, items, "option_text", "reference", True)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(list(g.values()), list(w.values()), atol=1e-4)


@pytest.mark.parametrize("variant", ["no_gaze", "visual_prompt", "gaze_text"])
def test_baseline_variants_train_without_the_resampler(toy_items, tmp_path, variant, monkeypatch):
    """Baselines get the same training as GazeQwen, their gaze through their own channel: the resampler never
    trains, visual_prompt encodes drawn frames, gaze_text puts the fixation list in every prompt."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.training import trainer as tr

    gq = build_tiny_gazeqwen(seed=0, min_pixels=56 * 56, max_pixels=56 * 56, injected_layers=(0, 1))
    before = _params(gq).clone()
    seen = {"draw": set(), "prompts": []}
    real_encode, real_prompt = ItemEncoder.encode, tr.item_prompt

    def encode(self, item, draw_gaze=False):
        seen["draw"].add(draw_gaze)
        return real_encode(self, item, draw_gaze)

    def prompt(item, name, gaze_text=None):
        seen["prompts"].append(real_prompt(item, name, gaze_text)[0])
        return real_prompt(item, name, gaze_text)

    monkeypatch.setattr(ItemEncoder, "encode", encode)
    monkeypatch.setattr(tr, "item_prompt", prompt)
    Trainer(gq, toy_items, [], _cfg(stage="2", epochs=1, variant=variant), tmp_path, lambda *a: None).run()
    assert torch.equal(_params(gq), before)  # no gaze through the resampler
    assert seen["draw"] == {variant == "visual_prompt"}
    with_text = [p for p in seen["prompts"] if "Gaze fixations (x, y" in p]
    assert (len(with_text) == len(seen["prompts"])) if variant == "gaze_text" else not with_text


def test_joint_stage_trains_the_llm_and_the_resampler_together(toy_gq):
    from gazeqwen_edge.training.trainer import trainable_parameters

    ids = {id(p) for p in trainable_parameters(toy_gq, "joint")}
    assert all(id(p) in ids for p in toy_gq.resampler.parameters())
    assert all(id(p) in ids for p in toy_gq.qwen.model.language_model.parameters())
    assert not any(id(p) in ids for p in toy_gq.qwen.model.visual.parameters())
    lm = {id(p) for p in trainable_parameters(toy_gq, "lm")}
    assert not any(id(p) in lm for p in toy_gq.resampler.parameters())
