"""Gaze resampler cost at the reference size (4 modules x 2.70M params, d_llm 3584): one batched call for all
injected layers and all temporal steps, against one call per temporal step (how the reference runs it).

    .venv/bin/python benchmarks/resampler.py [--quick] [--steps 8] [--grid 16] [--encoding spatial]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gazeqwen_edge.model.config import ResamplerConfig
from gazeqwen_edge.model.gaze_encoding import GazeInputs
from gazeqwen_edge.model.resampler import GazeResampler


def timed(fn, reps: int) -> float:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    fn()  # warm-up
    out = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps and repetitions (a few seconds)")
    ap.add_argument("--steps", type=int, default=8, help="temporal steps T (16 Qwen frames -> 8)")
    ap.add_argument("--grid", type=int, default=16, help="merged grid side (448 px frames -> 16x16 video tokens)")
    ap.add_argument("--encoding", choices=["reference", "spatial"], default="reference")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    if a.quick:
        a.steps, a.grid = min(a.steps, 4), min(a.grid, 12)
    reps = 3 if a.quick else 10
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    cfg = ResamplerConfig(gaze_encoding=a.encoding)
    r = GazeResampler(cfg).eval().to(a.device)
    feats = torch.randn(1, a.steps, a.grid, a.grid, cfg.d_vjepa, device=a.device)
    gi = GazeInputs.from_scanpaths([[[0.4, 0.5, 1.0, 30.0]]], [2.0 * t for t in range(a.steps)]).to(a.device)

    def batched():
        with torch.no_grad():
            return r(feats, gi.points, gi.mask, gi.has_gaze)

    def per_step():
        with torch.no_grad():
            return [
                r(feats[:, t : t + 1], gi.points[:, t : t + 1], gi.mask[:, t : t + 1], gi.has_gaze)
                for t in range(a.steps)
            ]

    n_tok = a.grid * a.grid
    out = batched()
    print(f"resampler ({a.encoding}): {cfg.n_modules} modules x {r.module_parameter_count(0) / 1e6:.2f}M params")
    print(
        f"input: T={a.steps} steps x {n_tok} video tokens; output {tuple(out.shape)} = {out.numel() * 4 / 1e6:.1f} MB"
    )
    tb, ts = timed(batched, reps), timed(per_step, reps)
    print(f"batched, all layers and steps in one call: {tb:8.1f} ms   ({tb / a.steps:.1f} ms per step)")
    print(f"one call per temporal step:                {ts:8.1f} ms   (x{ts / tb:.2f} of batched)")
    print(f"device {a.device}, threads {torch.get_num_threads()}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
