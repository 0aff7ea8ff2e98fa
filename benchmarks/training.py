"""Training and evaluation throughput of the tiny GazeQwen on a small synthetic gaze benchmark, with and without the
frozen encoders' outputs cached, and the memory it took (peak RSS), side by side in one run.

    .venv/bin/python benchmarks/training.py [--videos 6] [--steps 20] [--threads 1]

Without a cache every step decodes its clips and runs Qwen's vision tower and V-JEPA again; with it (the trainer's
default in memory, --cache-dir on disk) only the LLM and the resampler run after the first epoch.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per measurement (batch 8)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.training.data import ClipConfig, ItemEncoder
    from gazeqwen_edge.training.streamgaze import load_streamgaze
    from gazeqwen_edge.training.synthetic_benchmark import build_synthetic_benchmark
    from gazeqwen_edge.training.trainer import TrainConfig, batch_loss, predict, trainable_parameters

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        build_synthetic_benchmark(root, n_videos=args.videos, duration_s=12.0)
        items = load_streamgaze(root / "train.json", root / "videos", root / "fixations").items
        gq = build_tiny_gazeqwen(seed=0, injected_layers=(0, 1))
        clip = ClipConfig(policy="stream", scanpath="stream", stream_max_s=6.0)
        cfg = TrainConfig(stage="1", objective="answer", clip=clip.__dict__)
        params = trainable_parameters(gq, "1")
        opt = torch.optim.AdamW(params, lr=3e-4)
        bs = 8
        n = min(len(items), args.steps * bs)
        print(f"{len(items)} training items from {args.videos} videos; {n} per measurement; {args.threads} thread(s)")
        rows = []
        for cached in (False, True):
            enc = ItemEncoder(gq, clip, memory=cached)
            if cached:  # fill the cache first (what the first epoch does)
                for it in items[:n]:
                    enc.encode(it)
            t0 = time.perf_counter()
            for i in range(0, n, bs):
                chunk = items[i : i + bs]
                loss = batch_loss(gq, [enc.encode(it) for it in chunk], chunk, cfg, True)
                loss.backward()
                opt.step()
                opt.zero_grad()
            train_sps = n / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.no_grad():
                for i in range(0, n, 16):
                    chunk = items[i : i + 16]
                    predict(gq, [enc.encode(it) for it in chunk], chunk, "option_text", "reference", True)
            eval_sps = n / (time.perf_counter() - t0)
            rows.append((cached, train_sps, eval_sps))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'features':<12}{'train samples/s':>18}{'eval samples/s':>18}")
        for cached, tr, ev in rows:
            print(f"{'cached' if cached else 'recomputed':<12}{tr:>18.1f}{ev:>18.1f}")
        print(
            f"cache speed-up: train {rows[1][1] / rows[0][1]:.1f}x, eval {rows[1][2] / rows[0][2]:.1f}x; "
            f"peak RSS {rss:.0f} MiB"
        )


if __name__ == "__main__":
    main()
