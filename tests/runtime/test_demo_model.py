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


def test_the_runtime_answers_the_demo_questions_better_than_chance(demo_gq):
    """Object identification in demo sessions through the streaming session: 8 questions in each of 3 scenes, 4
    options each (chance 25 %). The evaluator scores the same model at 70 % on held-out benchmark scenes; the
    runtime at about half that (the closing notes of #10 name the cause: the model was trained on 2 s clips whose
    positions start at 0, the session's steps keep their place in the session). This guards the runtime feeding the
    model what it was trained on; a lost gaze path, swapped axes or shifted frames bring it to chance."""
    from gazeqwen_edge.cli.runtime import model_window_s
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.runtime.demo import demo_questions
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE

    right = n = 0
    for seed in (0, 1, 2):
        scene = SyntheticScene(seed=seed, duration_s=20.0, width=320, height=240, object_scale=DEFAULT_OBJECT_SCALE)
        qs = demo_questions(scene, n=8)
        res = replay(scene, demo_gq, SessionConfig(window_s=model_window_s(demo_gq), max_new_tokens=4), None, qs)
        right += sum(1 for r in res.records if r.options and r.answer == r.meta["answer"])
        n += len(qs)
    assert n >= 20
    assert right / n >= 0.4, f"{right} of {n}"
