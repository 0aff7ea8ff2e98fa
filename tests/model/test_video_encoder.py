import numpy as np
import torch
import torch.nn.functional as F

from gazeqwen_edge.model.config import VideoEncoderConfig
from gazeqwen_edge.model.video_encoder import VideoEncoder, align_features, load_video_encoder, sample_even


def test_tiny_vjepa_shapes_and_alignment():
    enc = load_video_encoder(VideoEncoderConfig(backend="tiny"))
    assert (enc.n_frames, enc.crop_size, enc.hidden_size, enc.grid) == (8, 64, 96, (4, 4, 4))
    frames = np.random.default_rng(0).integers(0, 256, (5, 50, 70, 3), dtype=np.uint8)
    pixels = enc.prepare(frames)
    assert pixels.shape == (8, 3, 64, 64)
    feats = enc.encode(pixels[None])
    assert feats.shape == (1, 4, 4, 4, 96)
    # the encoder's own token order is time-major: n = t*h*w + row*w + col
    tokens = enc.model(pixel_values_videos=pixels[None], skip_predictor=True).last_hidden_state
    torch.testing.assert_close(feats[0, 2, 1, 3], tokens[0, 2 * 16 + 1 * 4 + 3])
    out = enc.features([frames, frames], (3, 2, 5))
    assert out.shape == (2, 3, 2, 5, 96)


class _IndexEncoder(VideoEncoder):
    """Returns each token's own index as its feature, to check the token -> (t, row, col) layout."""

    def __init__(self):
        super().__init__()
        self.n_frames, self.crop_size, self.patch_size, self.tubelet_size, self.hidden_size = 4, 32, 16, 2, 1
        self.w = torch.nn.Parameter(torch.zeros(1))

    def _tokens(self, pixels):
        return torch.arange(8, dtype=torch.float32).view(1, 8, 1).expand(pixels.shape[0], 8, 1)


def test_token_layout_and_align_reference():
    enc = _IndexEncoder()
    feats = enc.encode(torch.zeros(1, 4, 3, 32, 32))
    assert feats[0, :, :, :, 0].tolist() == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    # alignment = trilinear in time (space kept) then bilinear in space, each as torch defines it
    x = torch.randn(2, 8, 6, 6, 3)
    got = align_features(x, (5, 4, 3))
    step1 = F.interpolate(x.permute(0, 4, 1, 2, 3), size=(5, 6, 6), mode="trilinear", align_corners=False)
    step2 = F.interpolate(step1.permute(0, 2, 1, 3, 4).reshape(10, 3, 6, 6), size=(4, 3), mode="bilinear")
    torch.testing.assert_close(got, step2.reshape(2, 5, 3, 4, 3).permute(0, 1, 3, 4, 2))
    torch.testing.assert_close(align_features(x, (8, 6, 6)), x)  # same grid: identity


def test_sample_even():
    assert sample_even(3, 6).tolist() == [0, 1, 2, 2, 2, 2]
    assert sample_even(31, 4).tolist() == [0, 10, 20, 30]


class _HubEncoder(torch.nn.Module):
    """Stands in for a torch.hub V-JEPA 2.1 encoder: takes (B, C, T, H, W), returns (B, N, D) tokens in time-major
    order whose first feature is the token's own index."""

    embed_dim = 5

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, t, h, w = x.shape
        assert c == 3, "channels must come second"
        n = (t // 2) * (h // 16) * (w // 16)
        idx = torch.arange(n, dtype=x.dtype).view(1, n, 1).expand(b, n, 1)
        return torch.cat([idx, x.new_zeros(b, n, self.embed_dim - 1)], dim=-1)


def test_torch_hub_loading_code(monkeypatch):
    """The real from_hub/load_video_encoder code with torch.hub.load answered locally (no network here): the
    (encoder, predictor) tuple, crop size from the entry name, hidden size, n_frames and dtype from the config, the
    (B, T, C, H, W) -> (B, C, T, H, W) input and the time-major token layout."""
    calls = []

    def fake_load(repo, entry, **kw):
        calls.append((repo, entry, kw))
        return _HubEncoder(), object()

    monkeypatch.setattr(torch.hub, "load", fake_load)
    enc = load_video_encoder(
        VideoEncoderConfig(backend="torch_hub", source="vjepa2_1_vit_base_384", n_frames=4), dtype=torch.float64
    )
    assert calls == [("facebookresearch/vjepa2", "vjepa2_1_vit_base_384", {"pretrained": True, "trust_repo": True})]
    assert (enc.n_frames, enc.crop_size, enc.hidden_size, enc.grid) == (4, 384, 5, (2, 24, 24))
    assert enc.dtype == torch.float64
    feats = enc.encode(torch.zeros(1, 4, 3, 384, 384))
    assert feats.shape == (1, 2, 24, 24, 5)
    assert feats[0, 1, 2, 3, 0] == 1 * 24 * 24 + 2 * 24 + 3

    def failing_load(repo, entry, **kw):
        raise RuntimeError("no network")

    monkeypatch.setattr(torch.hub, "load", failing_load)
    import pytest

    from gazeqwen_edge.errors import InputError

    with pytest.raises(InputError, match="torch hub cache"):
        load_video_encoder(VideoEncoderConfig(backend="torch_hub"))


def test_stream_regime_windows_end_with_each_steps_frames():
    """Step s's causal window is the encoder's n_frames model frames ending with frame 2s+1 (clamped at the clip's
    first and last frame); its last tubelet covers exactly Qwen's temporal patch (2s, 2s+1)."""
    enc = load_video_encoder(VideoEncoderConfig(backend="tiny"))  # n_frames 8
    assert enc.window_indices(10, 0).tolist() == [0, 0, 0, 0, 0, 0, 0, 1]
    assert enc.window_indices(10, 2).tolist() == [0, 0, 0, 1, 2, 3, 4, 5]
    assert enc.window_indices(10, 4).tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    assert enc.window_indices(11, 5).tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 10][-8:]  # odd count: last frame twice


def test_stream_features_per_step_equal_the_whole_clip_and_only_see_the_past():
    """The stream regime over a clip equals the same computation step by step over a growing buffer (what the
    runtime does), and a step's features do not change when later frames arrive or differ."""
    enc = load_video_encoder(VideoEncoderConfig(backend="tiny"))
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (10, 40, 60, 3), dtype=np.uint8)
    whole = enc.clip_stream_features(frames, (5, 2, 3))
    assert whole.shape == (1, 5, 2, 3, 96)
    prepared = enc.prepare_frames(frames)
    for s in range(5):
        seen = prepared[: 2 * s + 2]  # the stream has seen the frames up to this step's
        win = seen[torch.from_numpy(enc.window_indices(len(seen), s))]
        torch.testing.assert_close(enc.stream_features(win[None], (2, 3))[0], whole[0, s])
    changed = frames.copy()
    changed[6:] = 255 - changed[6:]  # the future (steps 3, 4) differs
    other = enc.clip_stream_features(changed, (5, 2, 3))
    torch.testing.assert_close(other[:, :3], whole[:, :3])
    assert not torch.allclose(other[:, 3:], whole[:, 3:])
