"""The tiny model's vision pre-stage (`train-vision`, training/vision_pretrain.py): labels from the scene generator,
scenes no benchmark split holds, only the vision tower trained, a model directory `train --model` starts from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.cli.helpers import cli
from tests.training.test_cli_errors import _assert_user_error


@pytest.fixture(scope="module")
def scene():
    from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE, make_scene

    return make_scene(1_000_003, duration_s=8.0, n_objects=(4, 4), object_scale=DEFAULT_OBJECT_SCALE)


def test_token_labels_name_the_object_under_each_token_centre(scene):
    from gazeqwen_edge.device.synthetic import COLOURS, SHAPES
    from gazeqwen_edge.training.vision_pretrain import token_labels

    mh, mw = 6, 9  # not square: rows and columns swapped would put labels off the objects
    t = 3.0
    lab = token_labels(scene, t, (mh, mw)).reshape(mh, mw, 2)
    t_ns = scene.start_ns + int(t * 1e9)
    on_object = 0
    for r in range(mh):
        for c in range(mw):
            name = scene.object_at((c + 0.5) / mw * scene.width, (r + 0.5) / mh * scene.height, t_ns)
            if name is None:
                assert tuple(lab[r, c]) == (len(COLOURS), len(SHAPES))
            else:
                on_object += 1
                assert (list(COLOURS)[lab[r, c, 0]], SHAPES[lab[r, c, 1]]) == tuple(name.split())
    assert 0 < on_object < mh * mw  # both kinds of token are checked
    # a label at another time differs where objects moved (the label is taken at the sample's own frame)
    assert not np.array_equal(lab, token_labels(scene, 7.5, (mh, mw)).reshape(mh, mw, 2))


def test_pretraining_scenes_are_none_of_any_benchmark_split():
    from gazeqwen_edge.training.synthetic_benchmark import SCENE_SEED_RANGE, scene_seeds
    from gazeqwen_edge.training.vision_pretrain import HELD_OUT_SEED0_FACTOR, TRAIN_SEED0_FACTOR

    drawn = [s for seed in (0, 1, 7) for split in scene_seeds(seed, 3000).values() for s in split]
    assert max(drawn) < SCENE_SEED_RANGE <= TRAIN_SEED0_FACTOR * SCENE_SEED_RANGE
    assert HELD_OUT_SEED0_FACTOR > TRAIN_SEED0_FACTOR  # training scenes run up to (factor + 1) x range at most


def _tiny():
    from gazeqwen_edge.cli.training import _model

    return _model("tiny", None, "cpu", "spatial", "stream", 112 * 84, (2, 32), (2, 32))


@pytest.mark.parametrize("max_pixels", [224 * 224, 3136])  # the demo's 6 x 9 merged grid; a budget below min
def test_a_batch_is_what_the_model_s_own_preprocessing_gives_the_original_frames(scene, max_pixels):
    from gazeqwen_edge.cli.training import _model
    from gazeqwen_edge.training.vision_pretrain import STEP_S, _batch, render_samples, token_labels

    gq = _model("tiny", None, "cpu", "spatial", "stream", max_pixels, (2, 32), (2, 32))
    samples = render_samples(gq, [scene.seed], 4, np.random.default_rng(5))
    times = np.random.default_rng(5).uniform(STEP_S, 8.0 - 0.1, 4)  # the samples' times, drawn as render_samples does
    full = np.stack([scene.render(scene.start_ns + int(round(x * 1e9))) for x in (times[0] - STEP_S, times[0])])
    ref = gq.preprocess(full, 1 / STEP_S, np.array([0.0, STEP_S]))
    pv, grid, labels = _batch(gq, samples[:2])
    n = ref.pixel_values_videos.shape[0]
    assert torch.equal(pv[:n], ref.pixel_values_videos) and pv.shape[0] == 2 * n
    assert grid.tolist() == ref.video_grid_thw.tolist() * 2
    # labelled at the second frame (the objects move: 3 of these 4 samples' labels differ at the first)
    for (_, lab), t in zip(samples, times, strict=True):
        assert np.array_equal(lab, token_labels(scene, t, ref.merged_grid[1:]))
    assert labels.shape == (2 * n // gq.merge**2, 2)  # one label per merged token


def test_pretrain_trains_the_vision_tower_only_and_writes_a_model_train_starts_from(tmp_path):
    from gazeqwen_edge.model.model_dir import load_model_dir
    from gazeqwen_edge.training.vision_pretrain import VisionPretrainConfig, pretrain_vision

    gq = _tiny()
    before = {k: v.clone() for k, v in gq.qwen.state_dict().items()}
    vj = {k: v.clone() for k, v in gq.video_encoder.model.state_dict().items()}
    rs = {k: v.clone() for k, v in gq.resampler.state_dict().items()}
    cfg = VisionPretrainConfig(steps=40, scenes=6, held_out=2, batch_size=8, lr=5e-3)
    res = pretrain_vision(gq, tmp_path / "v", cfg, eval_every=20)
    after = gq.qwen.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("model.visual.") for k in changed), sorted(changed)[:5]
    assert any("merger" in k for k in changed) and any("patch_embed" in k for k in changed)
    assert all(torch.equal(vj[k], v) for k, v in gq.video_encoder.model.state_dict().items())
    assert all(torch.equal(rs[k], v) for k, v in gq.resampler.state_dict().items())
    assert not any(p.requires_grad for p in gq.qwen.model.visual.parameters())  # frozen for what follows
    recs = [json.loads(x) for x in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [20, 40]
    # it learns: 40 steps on 12 samples fit them (colour well above the 1-in-9 of an untrained head)
    assert recs[-1]["train_colour_acc"] > 0.5, recs
    loaded = load_model_dir(res.model_dir)
    assert loaded.meta["vision_pretrain"]["steps"] == 40
    assert loaded.meta["vision_pretrain"]["shape_acc"] == pytest.approx(res.shape_acc)
    for k, v in loaded.qwen.model.visual.state_dict().items():
        assert torch.equal(v, gq.qwen.model.visual.state_dict()[k]), k
    assert loaded.max_pixels == gq.max_pixels and loaded.resampler.config == gq.resampler.config


def test_train_vision_cli_sizes_the_tower_and_train_starts_from_it(capsys, tmp_path):
    from gazeqwen_edge.model.model_dir import load_model_dir
    from tests.training.conftest import write_toy_set

    out = tmp_path / "vision"
    small = ["--max-pixels", "3136", "--tiny-llm", "2x32", "--held-out", "1", "--scenes", "2", "--batch-size", "2"]
    rc, text, err = cli(capsys, "train-vision", "--out", out, "--steps", "2", "--tiny-vision", "1x64", *small)
    assert rc == 0, err
    assert "held-out object tokens: colour" in text
    vc = load_model_dir(out / "best").qwen.config.vision_config
    assert (vc.depth, vc.hidden_size, vc.fullatt_block_indexes) == (1, 64, [0])
    qa = write_toy_set(tmp_path / "toy", n_videos=2)
    args = ["--qa", qa, "--val", qa, "--max-steps", "1", "--epochs", "1", "--grad-accum", "1", "--stage", "joint"]
    rc, _, err = cli(capsys, "train", *args, "--out", tmp_path / "joint", "--model", out / "best")
    assert rc == 0, err
    assert load_model_dir(tmp_path / "joint" / "best").qwen.config.vision_config.hidden_size == 64


def test_train_vision_keeps_an_earlier_runs_directory(capsys, tmp_path):
    """Before: a rerun into the same --out silently replaced the earlier run's trained tower (half an hour of work),
    and the refusal of other directories offered to resume, which train-vision cannot."""
    earlier = tmp_path / "v"
    (earlier / "best").mkdir(parents=True)
    (earlier / "metrics.jsonl").write_text('{"step": 500}\n')
    rc, _, err = cli(capsys, "train-vision", "--out", earlier, "--steps", "2", "--scenes", "2", "--held-out", "1")
    _assert_user_error(rc, err, "already exists and is not empty; give a new directory")
    assert "resume" not in err and (earlier / "metrics.jsonl").read_text() == '{"step": 500}\n'


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--tiny-vision", "0x64"], ["--tiny-vision '0x64' is not LAYERSxHIDDEN with 1-32", "e.g. --tiny-vision"]),
        (["--tiny-vision", "2x48"], ["a multiple of 32"]),
        (["--scenes", "3", "--batch-size", "7"], ["--batch-size 7 is larger than the 6 training samples", "--scenes"]),
    ],
)
def test_train_vision_refuses_bad_sizes_before_any_work(capsys, tmp_path, extra, needles):
    rc, _, err = cli(capsys, "train-vision", "--out", tmp_path / "v", *extra)
    _assert_user_error(rc, err, *needles)
    assert not (tmp_path / "v" / "metrics.jsonl").exists()


def test_pretraining_twice_with_one_seed_gives_the_same_tower_and_another_seed_does_not(tmp_path):
    """`make demo-model` starts from `train-vision`'s tower: its reproducibility needs the pre-stage to be
    deterministic (the tiny model's initialisation, the rendered samples, the batch order and the head)."""
    from gazeqwen_edge.training.vision_pretrain import VisionPretrainConfig, pretrain_vision

    towers = []
    for run, seed in enumerate((0, 0, 1)):
        gq = _tiny()
        cfg = VisionPretrainConfig(steps=6, scenes=4, held_out=1, batch_size=4, lr=5e-3, seed=seed)
        torch.manual_seed(1000 + run)  # whatever the process drew before: the seed alone must decide
        pretrain_vision(gq, tmp_path / f"v{run}", cfg, eval_every=6)
        towers.append({k: v.clone() for k, v in gq.qwen.model.visual.state_dict().items()})
    assert all(torch.equal(towers[0][k], towers[1][k]) for k in towers[0])
    assert not all(torch.equal(towers[0][k], towers[2][k]) for k in towers[0])
