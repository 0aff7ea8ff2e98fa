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
