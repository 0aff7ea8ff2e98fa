"""The same model on two torch devices, through the runtime's path: does the demo model (and its NF4 edge bundle) give
the same question logits on a GPU as on the CPU, with the same frames and the same scanpath?

For each variant, a VideoStream (runtime/stream.py: chunks prefilled as a live session does, gaze residuals injected)
is fed one fixed clip (a synthetic scene of the demo's kind, rendered once, so both devices see the same uint8 frames)
with the scanpath the scene's wearer made, then asked the demo's open question; the question's last-position logits are
compared with the CPU fp32 demo model's:

- demo model, fp32, on the CPU (the reference; must be 0);
- demo model, fp32 and bf16, on `--device`;
- its NF4 bundle (bitsandbytes, ONNX gaze path when onnxruntime is installed), on the CPU and on `--device`.

Printed: max |logit difference|, the reference's largest |logit| for scale, whether the top token agrees, and the
greedy answers. Two frame sizes: the Neon scene camera's 1600 x 1200 (a grid the bundle has a resampler graph for) and
200 x 200 (one it has not: the bundle's PyTorch resampler).

    python benchmarks/devices.py --device cuda [--out DIR]

`--device cpu` checks the script here (the device rows are then the CPU rows, printed once; about a minute). Writes
DIR/devices.json when --out is given. Needs the quant extra for the NF4 rows (skipped, and said, without it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]  # this checkout's package

import numpy as np  # noqa: E402
import torch  # noqa: E402

QUESTION = "Which object is the user currently gazing at?"
FRAME_SIZES = ((1200, 1600), (200, 200))  # (height, width)
SECONDS, FPS = 4.0, 2.0


def clip(hw: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames (N, H, W, 3) uint8, their times s from the clip start, scanpath rows [x, y, mid_t, dur] normalised /
    seconds): a demo-kind synthetic scene rendered at FPS for SECONDS, and its wearer's true fixations in it."""
    from gazeqwen_edge.device.synthetic import SyntheticScene

    scene = SyntheticScene(seed=seed, duration_s=SECONDS + 1.0, width=hw[1], height=hw[0])
    times = np.arange(int(SECONDS * FPS)) / FPS
    frames = np.stack([scene.render(scene.start_ns + int(round(t * 1e9))) for t in times])
    rows = []
    for f in scene.fixations:
        mid = (f.start_ns + f.end_ns) / 2e9 - scene.start_ns / 1e9
        if 0 <= mid <= SECONDS:
            rows.append([f.x / scene.width, f.y / scene.height, mid, (f.end_ns - f.start_ns) / 1e9])
    return frames, times, np.array(rows, dtype=np.float64).reshape(-1, 4)


def question(gq, frames, times, scanpath) -> tuple[torch.Tensor, str]:
    """(last-position logits (vocab,) float32 on the CPU, greedy answer) of QUESTION after the clip, via VideoStream."""
    from gazeqwen_edge.runtime.stream import VideoStream

    vs = VideoStream(gq, frame_hw=frames.shape[1:3], fps=FPS)
    vs.prefill_steps(frames, times, 0, scanpath)
    logits = vs.question_logits(QUESTION).reshape(-1).float().cpu()
    answer = "".join(vs.answer(QUESTION, max_new_tokens=8))
    return logits, answer


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--device", default="cuda", help="the torch device compared with the CPU (default cuda)")
    ap.add_argument("--out", type=Path, default=None, help="write devices.json here")
    a = ap.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(
            "error: --device cuda but torch sees no CUDA device\n  hint: run with --device cpu to check the script"
        )
    from gazeqwen_edge.runtime.models import load_model

    variants = {
        "demo fp32, cpu": lambda: load_model("demo", device="cpu", dtype="float32"),
        f"demo fp32, {a.device}": lambda: load_model("demo", device=a.device, dtype="float32"),
        f"demo bf16, {a.device}": lambda: load_model("demo", device=a.device, dtype="bfloat16"),
    }
    tmp = tempfile.TemporaryDirectory()
    if importlib.util.find_spec("bitsandbytes") is None:
        print("NF4 rows skipped: bitsandbytes is not installed (pip install -e '.[quant]')")
    else:
        from gazeqwen_edge.export.bundle import write_bundle

        bundle = Path(tmp.name) / "nf4"
        onnx = importlib.util.find_spec("onnxruntime") is not None
        t0 = time.perf_counter()
        write_bundle(
            load_model("demo", device="cpu", dtype="float32"),
            bundle,
            source={"model": "demo"},
            rebuild="gazeqwen-edge export",
            quant="nf4",
            onnx=onnx,
        )
        print(f"exported the demo model's NF4 bundle (ONNX gaze path: {onnx}) in {time.perf_counter() - t0:.0f} s")
        variants["NF4 bundle, cpu"] = lambda: load_model(None, bundle=bundle, device="cpu", dtype="float32")
        variants[f"NF4 bundle, {a.device}"] = lambda: load_model(None, bundle=bundle, device=a.device, dtype="auto")

    rows = []
    for hw in FRAME_SIZES:
        frames, times, scanpath = clip(hw)
        ref = None
        for name, make in variants.items():
            gq = make()
            logits, answer = question(gq, frames, times, scanpath)
            if ref is None:
                ref = (logits, answer)
            rows.append(
                {
                    "frame_hw": list(hw),
                    "variant": name,
                    "max_abs_logit_diff": float((logits - ref[0]).abs().max()),
                    "logit_scale": float(ref[0].abs().max()),
                    "top1_agrees": bool(logits.argmax() == ref[0].argmax()),
                    "answer": answer,
                    "answer_equal": answer == ref[1],
                }
            )
            del gq
    tmp.cleanup()
    print(f"\n{torch.__version__}, compared with the demo model in fp32 on the CPU; question: {QUESTION!r}")
    print(f"{'frames':<10} {'variant':<24} {'max|diff|':>10} {'scale':>7} {'top1':>5}  answer")
    for r in rows:
        hw = "x".join(map(str, r["frame_hw"][::-1]))
        top = "same" if r["top1_agrees"] else "DIFF"
        print(
            f"{hw:<10} {r['variant']:<24} {r['max_abs_logit_diff']:>10.4g} {r['logit_scale']:>7.3f} {top:>5}  "
            f"{r['answer']!r}{'' if r['answer_equal'] else ' (differs)'}"
        )
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "devices.json").write_text(json.dumps({"device": a.device, "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
