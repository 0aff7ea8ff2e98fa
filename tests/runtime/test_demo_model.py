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


def _session_accuracy(gq, seeds, n=8):
    """Share of the demo's scripted questions (n per scene) the session answers right, replayed in lockstep with the
    demo's settings (fixation detector, the model's 2 s window)."""
    from gazeqwen_edge.cli.runtime import model_window_s
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.runtime.demo import demo_questions
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE

    right = total = 0
    for seed in seeds:
        scene = SyntheticScene(seed=seed, duration_s=20.0, width=320, height=240, object_scale=DEFAULT_OBJECT_SCALE)
        qs = demo_questions(scene, n=n)
        res = replay(scene, gq, SessionConfig(window_s=model_window_s(gq), max_new_tokens=4), None, qs)
        right += sum(r.answer == r.meta["answer"] for r in res.records if r.options)
        total += len(qs)
    return right / total, total


def test_through_the_streaming_session_it_names_the_gazed_object_of_new_demo_scenes(demo_gq):
    """The demo's own path (lockstep replay, fixation detector, the model's 2 s window, each question refreshing the
    newest chunks' gaze, ending the video at the newest frame and reading its fixations once the gaze has settled) on
    8 demo scenes (nothing trained or fitted on them; 20-21 were looked into while the gaze settle was built): 52 of 64 questions with the current model (81.2 %, chance 25 %; 47 without the
    gaze settle; the previous model got 43, 40 without the question view). With the previous model, the window that
    held 3 steps for a model trained on 2 s clips got 36 of them."""
    acc, n = _session_accuracy(demo_gq, range(20, 28))
    assert n == 64 and acc >= 46 / 64, acc
