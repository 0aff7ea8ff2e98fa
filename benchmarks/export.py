"""Export for the edge, side by side in one run:

- gaze overhead of residual injection: time to first token (TTFT: one prefill of an 8-step clip + question, with the
  residuals injected at 4 of 8 layers) and per-token cached decode, for no gaze (plain Qwen), forward hooks and the
  fused injection. Target: fused within 2 % of no gaze on both. Model: a random Qwen2.5-VL text model of 8 layers,
  hidden 256 (the tiny config scaled up; fp32, CPU, 1 thread), residuals precomputed (the resampler is timed below).
  Rounds run the three variants back to back in a shuffled order; the ratio is the median of per-round ratios,
  so drift and a busy machine slow all three alike.
- the encoder + resampler on onnxruntime vs eager PyTorch (benchmarks/export_onnx.py; target >= 1.5x faster, both
  gaze encodings).

    .venv/bin/python benchmarks/export.py [--quick] [--rounds N] [--decode-tokens N] [--no-onnx]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

LAYERS, HIDDEN, INJECTED = 8, 256, (1, 3, 5, 7)
STEPS, GRID = 8, (6, 8)  # 8 temporal steps of 6 x 8 merged tokens = 384 video tokens


MODEL = (
    f"gaze overhead: random Qwen2.5-VL text model, {LAYERS} layers, hidden {HIDDEN}, fp32, residuals at layers "
    f"{list(INJECTED)}, {STEPS * GRID[0] * GRID[1]} video + 24 text tokens"
)


def build(device: str = "cpu"):
    """The benchmark's Qwen2.5-VL (on `device`) and a prompt of text + video placeholder tokens + question (input ids
    (1, L) on `device`)."""
    from gazeqwen_edge.model.tiny import tiny_qwen, tiny_tokenizer

    tok = tiny_tokenizer()
    qwen = tiny_qwen(seed=0, tokenizer=tok, n_layers=LAYERS, hidden=HIDDEN).to(device)
    vid = qwen.config.video_token_id
    n_video = STEPS * GRID[0] * GRID[1]
    ids = [1, 2, 3, 4] + [vid] * n_video + list(range(5, 25))
    return qwen, torch.tensor([ids], device=device), vid


def _sync(device) -> None:
    """Wait for queued CUDA work so that the clock reads the time it took (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_variant(qwen, ids, vid, injector, residuals, decode_tokens: int) -> tuple[float, float]:
    """(TTFT s, decode s per token) of one round: a full prefill (video tokens embedded as text ids here: the cost of
    the decoder is what is compared) with the residuals injected, the first token, then cached greedy decoding."""
    from transformers import DynamicCache

    from gazeqwen_edge.model.injection import video_token_positions

    dev = ids.device
    pos = video_token_positions(ids, vid)
    emb = qwen.get_input_embeddings()(ids)
    position_ids = torch.arange(ids.shape[1], device=dev).view(1, 1, -1).expand(3, 1, -1)
    cache = DynamicCache(config=qwen.config)
    with torch.no_grad():
        _sync(dev)
        t0 = time.perf_counter()
        kw = dict(inputs_embeds=emb, position_ids=position_ids, cache=cache, use_cache=True, logits_to_keep=1)
        if injector is None:
            out = qwen(**kw)
        else:
            with injector.inject(residuals, pos):
                out = qwen(**kw)
        tok = out.logits[:, -1].argmax(-1, keepdim=True)
        _sync(dev)
        ttft = time.perf_counter() - t0
        nxt = ids.shape[1]
        t1 = time.perf_counter()
        for i in range(decode_tokens):
            o = qwen(
                input_ids=tok, position_ids=torch.full((3, 1, 1), nxt + i, device=dev), cache=cache, use_cache=True
            )
            tok = o.logits[:, -1].argmax(-1, keepdim=True)
        _sync(dev)
        decode = (time.perf_counter() - t1) / decode_tokens
    return ttft, decode


def overhead_rows(rounds: int, decode_tokens: int, device: str = "cpu") -> list[dict]:
    """Time no gaze, hooks and fused injection (module docstring) on `device` (1 CPU thread). One dict per (TTFT,
    decode/token) x variant: figure, variant, ms (median of the rounds), x_none (median of per-round ratios to no
    gaze), the same as text (value, ratio), target text and ok (fused only: x_none <= 1.02; None otherwise)."""
    from gazeqwen_edge.model.injection import FusedInjector, HookInjector

    torch.set_num_threads(1)
    qwen, ids, vid = build(device)
    n_video = int((ids == vid).sum())
    residuals = torch.randn(len(INJECTED), 1, n_video, HIDDEN, device=device) * 0.01
    variants = {"none": None, "hooks": HookInjector(INJECTED), "fused": FusedInjector(INJECTED)}
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    order = list(variants)
    rng = random.Random(0)
    for r in range(rounds + 1):  # round 0 warms up
        rng.shuffle(order)  # no variant always runs first or last in a round
        for name in order:
            inj = variants[name]
            if inj is not None:
                inj.attach(qwen)
            try:
                t = time_variant(qwen, ids, vid, inj, residuals, decode_tokens)
            finally:
                if inj is not None:
                    inj.detach()
            if r:
                times[name].append(t)
    rows = []
    for i, what in enumerate(("TTFT", "decode/token")):
        for name in ("none", "hooks", "fused"):
            # the median of per-round ratios: each round's variants ran back to back, so drift cancels
            ratio = statistics.median(a[i] / b[i] for a, b in zip(times[name], times["none"], strict=True))
            ms = statistics.median(t[i] for t in times[name]) * 1e3
            rows.append(
                {
                    "figure": f"{what} {name}",
                    "what": what,
                    "variant": name,
                    "ms": ms,
                    "x_none": ratio,
                    "value": f"{ms:.2f} ms",
                    "ratio": f"{ratio:.3f}x none",
                    "target": "<= 1.02x none" if name == "fused" else "",
                    "ok": ratio <= 1.02 if name == "fused" else None,
                }
            )
    return rows


def rows(quick: bool, device: str = "cpu") -> list[dict]:
    """The gaze-overhead figures as benchmarks/suite.py rows: no gaze in ms, hooks and fused as a multiple of no gaze
    (fused: target <= 1.02x). quick: 3 rounds, 8 decoded tokens (else 15 and 32)."""
    out = []
    for r in overhead_rows(3 if quick else 15, 8 if quick else 32, device):
        base = {"group": "gaze overhead", "figure": r["figure"], "target": r["target"], "ok": r["ok"]}
        if r["variant"] == "none":
            out.append({**base, "value": r["ms"], "unit": "ms", "shown": f"{r['ms']:.2f} ms"})
        else:
            shown = f"{r['x_none']:.3f}x none ({r['ms']:.2f} ms)"
            out.append({**base, "value": r["x_none"], "unit": "x none", "shown": shown})
    return out


def print_rows(title: str, rows: list[dict]) -> None:
    print(title)
    for r in rows:
        mark = "" if r.get("ok") is None else ("pass" if r["ok"] else "SHORT")
        print(f"  {r['figure']:<34} {r['value']:>12}  {r.get('ratio', ''):<16} {r.get('target', ''):<16} {mark}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--decode-tokens", type=int, default=32)
    ap.add_argument("--no-onnx", action="store_true", help="leave out the onnxruntime vs PyTorch rows")
    ap.add_argument("--quick", action="store_true", help="3 rounds, 8 decoded tokens (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.decode_tokens = 3, 8
    print(f"torch {torch.__version__}, 1 thread for the overhead rows; CPU")
    print(f"model: Qwen2.5-VL text, {LAYERS} layers, hidden {HIDDEN}, injected at {list(INJECTED)}; "
          f"{STEPS * GRID[0] * GRID[1]} video tokens + 24 text tokens; {args.rounds} shuffled rounds, median of per-round ratios")  # fmt: skip
    print_rows("gaze overhead (no gaze / hooks / fused)", overhead_rows(args.rounds, args.decode_tokens))
    if not args.no_onnx:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from export_onnx import onnx_rows

        rows = [
            {
                "figure": r["name"],
                "value": f"{r['onnx_ms']:.1f} ms",
                "ratio": f"{r['speedup']:.2f}x eager",
                "target": f">= {r['target']}x eager",
                "ok": r["speedup"] >= r["target"],
            }
            for r in onnx_rows()
        ]
        print_rows("encoder + resampler: onnxruntime vs eager PyTorch (2 threads)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
