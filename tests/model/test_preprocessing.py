"""Our Qwen2.5-VL video preprocessing against transformers' own image processor and smart_resize."""

import numpy as np
import pytest
import torch
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.model.preprocessing import (
    default_sampling_fps,
    patchify,
    preprocess_video,
    sample_frame_indices,
    smart_resize,
)


@pytest.mark.parametrize(
    "hw, min_px, max_px",
    [((90, 130), 56 * 56, 28 * 28 * 40), ((480, 640), 56 * 56, 28 * 28 * 64), ((30, 41), 112 * 112, 28 * 28 * 64)],
)
def test_equals_transformers_image_processor(hw, min_px, max_px):
    """A still image is a video of two identical frames: same pixel_values, same grid, bit for bit."""
    rng = np.random.default_rng(hw[0])
    img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    ref = Qwen2VLImageProcessorPil(min_pixels=min_px, max_pixels=max_px)(images=[img], return_tensors="pt")
    ours = preprocess_video(np.stack([img, img]), min_pixels=min_px, max_pixels=max_px)
    torch.testing.assert_close(ours.pixel_values_videos, ref["pixel_values"], rtol=0, atol=0)
    assert ours.video_grid_thw.tolist() == ref["image_grid_thw"].tolist()
    t, h, w = ref["image_grid_thw"][0].tolist()
    assert ours.n_video_tokens == t * h * w // 4


@pytest.mark.parametrize("n_frames", [4, 5])
def test_distinct_frames_equal_transformers_per_frame_patches(n_frames):
    """A video of DISTINCT frames: transformers' image processor resizes and normalises each frame on its own and lays
    one out as (patch, C, temporal, 14, 14) with the frame copied into both temporal slots. The video's patch of step t
    must hold frame 2t in temporal slot 0 and frame 2t+1 in slot 1 (the last frame repeated for an odd count): a swap
    of the frames inside a temporal patch, or of two steps, changes these numbers."""
    rng = np.random.default_rng(n_frames)
    frames = rng.integers(0, 256, (n_frames, 90, 130, 3), dtype=np.uint8)
    proc = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=28 * 28 * 40)
    per_frame = [proc(images=[f], return_tensors="pt") for f in frames]
    n_patch = per_frame[0]["pixel_values"].shape[0]
    slots = [p["pixel_values"].reshape(n_patch, 3, 2, 14, 14)[:, :, 0] for p in per_frame]  # (patch, C, 14, 14)
    slots += [slots[-1]] * (n_frames % 2)
    want = torch.cat([torch.stack(slots[2 * t : 2 * t + 2], dim=2) for t in range(len(slots) // 2)])
    ours = preprocess_video(frames, min_pixels=56 * 56, max_pixels=28 * 28 * 40)
    torch.testing.assert_close(ours.pixel_values_videos, want.reshape(want.shape[0], -1), rtol=0, atol=0)
    assert ours.video_grid_thw.tolist() == [[len(slots) // 2, *per_frame[0]["image_grid_thw"][0, 1:].tolist()]]


def test_smart_resize_matches_transformers():
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(20, 2000, 2))
        lo = int(rng.integers(1, 200)) * 28 * 28
        hi = lo + int(rng.integers(0, 2000)) * 28 * 28
        assert smart_resize(h, w, 28, lo, hi) == hf_smart_resize(h, w, 28, lo, hi)


def test_frame_order_and_temporal_padding():
    """Three frames: padded to four by repeating the last; each patch row holds frames (2t, 2t+1) of one 14x14 patch."""
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((3, 56, 84, 3)).astype(np.float32)
    pv, (gt, gh, gw) = patchify(frames)
    assert (gt, gh, gw) == (2, 4, 6)
    row = pv.reshape(gt, gh // 2, gw // 2, 2, 2, 3, 2, 14, 14)
    # temporal step 1, merged block (1, 2), inner (0, 1) -> patch row 2, patch col 5; second frame = repeated frame 2
    np.testing.assert_array_equal(row[1, 1, 2, 0, 1, :, 1], frames[2, 28:42, 70:84].transpose(2, 0, 1))
    np.testing.assert_array_equal(row[0, 0, 0, 1, 0, :, 0], frames[0, 14:28, 0:14].transpose(2, 0, 1))


def test_video_inputs_run_through_the_vision_tower(tiny_gq):
    rng = np.random.default_rng(0)
    vi = preprocess_video(rng.integers(0, 256, (4, 60, 90, 3), dtype=np.uint8), min_pixels=56 * 56, max_pixels=84 * 84)
    out = tiny_gq.qwen.model.visual(vi.pixel_values_videos, grid_thw=vi.video_grid_thw).pooler_output
    assert out.shape[0] == vi.n_video_tokens


def test_sampling_policy_and_indices():
    assert [default_sampling_fps(d) for d in (10, 30, 45, 200, 400)] == [1.0, 1.0, 0.5, 0.2, 0.1]
    picked = sample_frame_indices(300, fps=30, sampling_fps=1.0)
    assert picked.indices.tolist() == [round(i * 299 / 9) for i in range(10)]  # 10 frames, first to last
    assert picked.sample_fps == 1.0
    np.testing.assert_allclose(picked.times_s, picked.indices / 30)
    assert len(sample_frame_indices(300, 30, 1.0, max_frames=4).indices) == 4
    # qwen-vl-utils' bounds: at least 4 frames when the clip has them, an even count, the training cap of 3 -> 2
    assert len(sample_frame_indices(90, 30, 1.0).indices) == 4
    assert len(sample_frame_indices(300, 30, 1.0, max_frames=3).indices) == 2
    assert sample_frame_indices(1, 30, 1.0).indices.tolist() == [0]
    with pytest.raises(InputError):
        sample_frame_indices(0, 30, 1.0)
    with pytest.raises(InputError):
        sample_frame_indices(10, float("nan"), 1.0)
    with pytest.raises(InputError):
        preprocess_video(np.zeros((2, 10, 10), np.uint8))
