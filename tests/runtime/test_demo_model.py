"""The shipped demo model (gazeqwen_edge/assets/demo_model, `make demo-model`) through the runtime. Scenes here are the
demo's (20 s, 320x240 at 30 fps, 4 objects), none of them a training scene (those are 8 s long)."""

from __future__ import annotations

import pytest

from gazeqwen_edge.runtime.models import DEMO_MODEL_DIR

pytestmark = pytest.mark.skipif(
    not (DEMO_MODEL_DIR / "gazeqwen.json").exists(), reason="no trained demo model shipped in this checkout"
)


@pytest.fixture(scope="module")
def demo_gq():
    from gazeqwen_edge.runtime.models import load_model

    return load_model("demo", sampling_fps=2.0)


def test_the_demo_model_is_the_trained_streaming_one(demo_gq):
    meta = demo_gq.meta
    clip = meta["train_config"]["clip"]
    assert clip["policy"] == "stream" and clip["scanpath"] == "stream" and clip["stream_max_s"] == 2.0
    assert demo_gq.mc_protocol == "option_text"
    assert demo_gq.resampler is not None and demo_gq.resampler.config.gaze_encoding == "spatial"
    assert meta["val_accuracy"] > 0.5


def test_it_identifies_the_gazed_object_on_held_out_scenes_and_needs_the_gaze(tmp_path, capsys):
    """`eval` on object-identification questions of 30 new benchmark scenes (seed 11, never trained on): well above
    chance (25 %) with the gaze, at chance with the resampler off. (Through the streaming session the model does
    worse and uses the gaze less: the closing notes of #10; that path is not asserted here.)"""
    import json

    from gazeqwen_edge.training.synthetic_benchmark import build_synthetic_benchmark
    from tests.cli.helpers import cli

    bench = tmp_path / "bench"
    build_synthetic_benchmark(bench, n_videos=30, seed=11, duration_s=8.0, n_objects=(4, 4), per_task=6)
    qa = tmp_path / "all.json"
    qa.write_text(
        json.dumps([e for sp in ("train", "val", "test") for e in json.loads((bench / f"{sp}.json").read_text())])
    )
    acc = {}
    for variant in ("gazeqwen", "no_gaze"):
        out = tmp_path / variant
        rc, _, err = cli(capsys, "eval", "--qa", qa, "--videos", bench / "videos", "--fixations", bench / "fixations",
                         "--tasks", "OI-E", "--variant", variant, "--out", out)  # fmt: skip
        assert rc == 0, err
        items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()[1:]]
        acc[variant] = sum(i["correct"] for i in items) / len(items)
    assert len(items) >= 20
    assert acc["gazeqwen"] >= 0.5 and acc["no_gaze"] <= 0.4, acc
