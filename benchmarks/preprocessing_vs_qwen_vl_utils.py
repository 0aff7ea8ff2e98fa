"""Our Qwen2.5-VL video preprocessing against qwen-vl-utils (the frame picking and the torchvision resize the released
GazeQwen code and Qwen2.5-VL's own training use). Needs torchvision and qwen-vl-utils, which PyPI's torchvision cannot
install beside this project's pinned CPU torch: run it once in a scratch venv, e.g.

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 transformers==5.24.0 \\
        qwen-vl-utils==0.0.14 opencv-python-headless pillow numpy
    PYTHONPATH=. /tmp/tv/bin/python benchmarks/preprocessing_vs_qwen_vl_utils.py

It prints (1) whether our frame indices and sample fps equal qwen-vl-utils' smart_nframes + linspace over a grid of
clip lengths, rates and caps, and (2) how far our PIL bicubic resize is from torchvision's bicubic + antialias resize
(uint8 levels) on synthetic scene frames, smooth and noise images, and what that makes of the normalised pixel values.
Without torchvision it says so and exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer images")
    args = ap.parse_args()
    try:
        import torch
        import torchvision.transforms.functional as TF
        from qwen_vl_utils.vision_process import smart_nframes
        from torchvision.transforms import InterpolationMode
    except ImportError as e:
        print(f"skipped: needs torchvision and qwen-vl-utils in a scratch venv ({e})")
        return 0

    from gazeqwen_edge.model.preprocessing import (
        QWEN_STD,
        VIDEO_MAX_PIXELS,
        VIDEO_MIN_PIXELS,
        resize_frames,
        sample_frame_indices,
        smart_resize,
    )

    # (1) frame picking
    cases = mismatches = 0
    for total, fps, sfps, cap in itertools.product(
        [2, 3, 5, 17, 90, 299, 1800, 7201], [10.0, 24.0, 29.97, 30.0], [0.1, 0.2, 0.5, 1.0, 2.0], [3, 8, 32, 768]
    ):
        ele = {"fps": sfps, "max_frames": cap}
        try:
            n = smart_nframes(ele, total_frames=total, video_fps=fps)
        except (ValueError, AssertionError):
            continue  # qwen-vl-utils refuses (e.g. a cap below 2 frames after flooring)
        want_idx = torch.linspace(0, total - 1, n).round().long().numpy()
        want_fps = n / max(total, 1e-6) * fps
        got = sample_frame_indices(total, fps, sfps, max_frames=cap)
        cases += 1
        if got.indices.tolist() != want_idx.tolist() or abs(got.sample_fps - want_fps) > 1e-12:
            mismatches += 1
    print(f"frame picking: {cases - mismatches}/{cases} cases equal qwen-vl-utils (indices and sample fps)")

    # (2) resize
    rng = np.random.default_rng(0)
    images: dict[str, np.ndarray] = {"noise 1600x1200": rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)}
    yy, xx = np.mgrid[0:1200, 0:1600]
    smooth = 127.5 + 60 * np.sin(xx / 37.0) + 60 * np.cos(yy / 53.0 + xx / 91.0)
    images["smooth 1600x1200"] = np.repeat(smooth[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)
    try:
        from gazeqwen_edge.device.records import SceneFrame
        from gazeqwen_edge.device.synthetic import SyntheticScene

        scene = SyntheticScene(seed=3, duration_s=2, width=1600, height=1200, fps=2)
        for i, r in enumerate(scene.records(kinds={SceneFrame})):
            images[f"synthetic scene frame {i} 1600x1200"] = r.rgb
            if args.quick or i >= 2:
                break
    except ImportError as e:
        print(f"(no synthetic scene frames: {e})")
    std = np.asarray(QWEN_STD, np.float32)
    print(
        f"{'image':34s} {'resized':>9s} {'max |d|':>8s} {'mean |d|':>9s} {'>1 level':>9s} {'max |d| normalised':>19s}"
    )
    worst = 0
    for name, img in images.items():
        h, w = smart_resize(img.shape[0], img.shape[1], 28, VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS)
        ours = resize_frames(img[None], h, w)[0].astype(np.int16)
        t = torch.from_numpy(img).permute(2, 0, 1)[None]
        theirs = TF.resize(t, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True)[0]
        theirs = theirs.permute(1, 2, 0).numpy().astype(np.int16)
        d = np.abs(ours - theirs)
        worst = max(worst, int(d.max()))
        dn = float((d.max() / 255.0) / std.min())
        print(f"{name:34s} {w:>4d}x{h:<4d} {int(d.max()):8d} {d.mean():9.3f} {100 * (d > 1).mean():8.2f}% {dn:19.4f}")
    print(f"worst resize difference: {worst} uint8 levels")

    # (3) patch layout of a video of distinct frames against transformers' video processor (torchvision backend),
    # given frames already at the target size so that only normalisation and patch order are compared
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from gazeqwen_edge.model.preprocessing import preprocess_video

    frames = rng.integers(0, 256, (6, 84, 112, 3), dtype=np.uint8)
    ref = Qwen2VLVideoProcessor()(
        videos=[torch.from_numpy(frames).permute(0, 3, 1, 2)],
        do_resize=False,
        do_sample_frames=False,
        return_tensors="pt",
    )
    ours = preprocess_video(frames, min_pixels=56 * 56, max_pixels=84 * 112)
    same_grid = ours.video_grid_thw.tolist() == ref["video_grid_thw"].tolist()
    diff = float((ours.pixel_values_videos - ref["pixel_values_videos"]).abs().max())
    print(f"6 distinct frames vs Qwen2VLVideoProcessor: grid equal {same_grid}, max |difference| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
