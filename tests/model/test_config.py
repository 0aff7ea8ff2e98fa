import pytest

from gazeqwen_edge.errors import ConfigError
from gazeqwen_edge.model.config import GazeQwenConfig, ResamplerConfig, load_json, save_json


def test_resampler_config_json_round_trip(tmp_path):
    cfg = ResamplerConfig(d_llm=64, n_llm_layers=4, injected_layers=(1, 3), gaze_encoding="spatial", spatial_sigma=0.2)
    save_json(cfg, tmp_path / "c.json")
    back = ResamplerConfig.from_dict(load_json(tmp_path / "c.json"))
    assert back == cfg
    assert back.injected_layers == (1, 3)


def test_gazeqwen_config_round_trip():
    cfg = GazeQwenConfig(qwen="some/dir", sampling_fps=0.5)
    assert GazeQwenConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(injected_layers=(6, 28)), "outside"),
        (dict(injected_layers=()), "empty"),
        (dict(injected_layers=(3, 3)), "duplicates"),
        (dict(gaze_encoding="magic"), "gaze_encoding"),
        (dict(d_latent=0), "d_latent"),
        (dict(spatial_sigma=0.0), "spatial_sigma"),
    ],
)
def test_resampler_config_rejects(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        ResamplerConfig(**kwargs)


def test_unknown_keys_rejected():
    with pytest.raises(ConfigError, match="unknown keys"):
        ResamplerConfig.from_dict({"d_llm": 64, "bogus": 1})


@pytest.mark.parametrize(
    "video_encoder, words",
    [({"backend": "tiny", "bogus": 1}, "unknown keys"), ({"n_frames": "8"}, "integer"), (5, "JSON object")],
)
def test_gazeqwen_config_rejects_bad_video_encoder(video_encoder, words):
    with pytest.raises(ConfigError, match=words):
        GazeQwenConfig.from_dict({"video_encoder": video_encoder})
