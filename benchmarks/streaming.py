"""The streaming session with the tiny models (Qwen2.5-VL: 4 layers, hidden 64; V-JEPA 2: 2 layers, hidden 96; resampler
8 latents x 32 at 2 layers), side by side in one run:

- streamed == full: max |logit difference| of a question after S seconds streamed chunk by chunk vs one full prefill;
- time to first token (TTFT) after 5 s and after 60 s of streamed video (target ratio 60 s / 5 s <= 1.2), beside
  re-encoding the whole clip per question (target: streamed >= 20x faster at 60 s);
- a live-paced session (1x real time) on a synthetic scene: chunks skipped (target 0) and gaze samples lost while the
  model is busy (target 0).

    .venv/bin/python benchmarks/streaming.py [--quick] [--check --seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

MODEL = (
    "streaming: tiny GazeQwen (Qwen2.5-VL 4 layers hidden 64, V-JEPA 2 2 layers hidden 96, resampler 8 latents x 32, "
    "2 blocks), random weights, fp32, 1 CPU thread"
)


def frames_and_scanpath(seconds: float, fps: float = 2.0, seed: int = 0):
    """Model frames of a synthetic scene at `fps` and its ground-truth fixations as scanpath rows."""
    from gazeqwen_edge.device.records import Fixation, SceneFrame
    from gazeqwen_edge.device.synthetic import SyntheticScene

    scene = SyntheticScene(seed=seed, duration_s=seconds, width=160, height=120, fps=fps, gaze_hz=200)
    frames, rows = [], []
    for r in scene.records(kinds={SceneFrame, Fixation}):
        if isinstance(r, SceneFrame):
            frames.append(r.rgb)
        else:
            mid = ((r.start_ns + r.end_ns) / 2 - scene.start_ns) / 1e9
            rows.append([r.x / 160, r.y / 120, mid, (r.end_ns - r.start_ns) / 1e9])
    n = len(frames) // 2 * 2
    return np.stack(frames[:n]), np.arange(n) / fps, np.asarray(rows, np.float32).reshape(-1, 4)


def stream(gq, frames, times, rows, chunk_steps: int = 1):
    from gazeqwen_edge.runtime.stream import VideoStream

    vs = VideoStream(gq, frames.shape[1:3], fps=2.0)
    for s in range(0, len(frames) // 2, chunk_steps):
        a, b = 2 * s, min(2 * (s + chunk_steps), len(frames))
        vs.prefill_steps(frames[a:b], times[a:b], s, rows, window=[(i, frames[i]) for i in range(max(0, a - 16), b)])
    return vs


def check(gq, seconds: float) -> float:
    from gazeqwen_edge.model.gazeqwen import Video

    frames, times, rows = frames_and_scanpath(seconds)
    vs = stream(gq, frames, times, rows, chunk_steps=2)
    got = vs.question_logits("What am I looking at?")
    s = gq.prepare(Video(frames, 2.0), rows, "What am I looking at?")
    want = gq.prefill(gq.collate([s])).logits[0, -1].float()
    return float((got - want).abs().max())


def window_change(gq, seconds: float = 30.0, window_s: float = 10.0) -> float:
    """Max |logit difference| between a stream that evicted everything but the last `window_s` seconds and one full
    prefill of just the kept frames (how far the sliding window is from re-encoding what it keeps)."""
    from gazeqwen_edge.model.gazeqwen import Video
    from gazeqwen_edge.runtime.stream import VideoStream

    frames, times, rows = frames_and_scanpath(seconds)
    vs = VideoStream(gq, frames.shape[1:3], fps=2.0, window_s=window_s)
    for s in range(len(frames) // 2):
        a, b = 2 * s, 2 * s + 2
        vs.prefill_steps(frames[a:b], times[a:b], s, rows, window=[(i, frames[i]) for i in range(max(0, a - 16), b)])
    got = vs.question_logits("What am I looking at?")
    first = 2 * vs.chunks[0].first_step
    kept_rows = rows.copy()
    kept_rows[:, 2] -= times[first]
    s = gq.prepare(Video(frames[first:], 2.0), kept_rows, "What am I looking at?")
    want = gq.prefill(gq.collate([s])).logits[0, -1].float()
    return float((got - want).abs().max()), float(want.abs().max())


def ttft(gq, seconds: float, reps: int) -> tuple[float, float]:
    """Median TTFT (ms) of a question after `seconds` of streamed video, and of the same question re-encoding the
    whole clip (vision tower, V-JEPA, resampler, full prefill)."""
    from gazeqwen_edge.model.gazeqwen import Reply, Video

    frames, times, rows = frames_and_scanpath(seconds)
    vs = stream(gq, frames, times, rows)
    streamed, full = [], []
    for _ in range(reps):
        reply = Reply()
        for _piece in vs.answer("What am I looking at?", max_new_tokens=1, reply=reply):
            pass
        streamed.append(reply.ttft_s * 1e3)
        t0 = time.perf_counter()
        next(iter(gq.answer(Video(frames, 2.0), rows, "What am I looking at?", max_new_tokens=1)), None)
        full.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(streamed), statistics.median(full)


def live(gq, seconds: float) -> dict:
    """A session at 1x real time on a synthetic scene (30 fps 320x240, 200 Hz gaze): skipped chunks, lost gaze."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.questions import ScheduledQuestion
    from gazeqwen_edge.runtime.session import Session, SessionConfig

    qs = [ScheduledQuestion(t, "What am I looking at?") for t in np.arange(2.0, seconds, 5.0)]
    with open_source("synthetic:5", duration_s=seconds, width=320, height=240) as src:
        s = Session(src, gq, SessionConfig(max_new_tokens=8), speed=1.0, scheduled=qs)
        s.start()
        s.wait()
        s.stop()
    expected_gaze = int(round(seconds * 200))
    return {
        "chunks_skipped": s.stats.chunks_skipped,
        "chunks_prefilled": s.stats.chunks_prefilled,
        "gaze_lost": expected_gaze - s.stats.records.get("GazeSample", 0),
        "answered": s.stats.answered,
        "questions": s.stats.questions,
    }


def rows(quick: bool, device: str = "cpu") -> list[dict]:
    """Time to first token as benchmarks/suite.py rows: streamed after 5 s and 60 s of video, their ratio (target
    <= 1.2) and re-encoding the 60 s clip per question vs streamed (target >= 20x). quick: 7 repetitions (else 21)."""
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    torch.set_num_threads(1)
    gq = build_tiny_gazeqwen(perturb=0.5, sampling_fps=2.0, device=device)
    reps = 7 if quick else 21
    s5, _ = ttft(gq, 5.0, reps)
    s60, f60 = ttft(gq, 60.0, reps)
    g = "time to first token"
    return [
        {"group": g, "figure": "streamed, after 5 s of video", "value": s5, "unit": "ms", "shown": f"{s5:.1f} ms"},
        {"group": g, "figure": "streamed, after 60 s of video", "value": s60, "unit": "ms", "shown": f"{s60:.1f} ms"},
        {
            "group": g,
            "figure": "streamed 60 s / 5 s",
            "value": s60 / s5,
            "unit": "x",
            "shown": f"{s60 / s5:.2f}x",
            "target": "<= 1.2x",
            "ok": s60 / s5 <= 1.2,
        },
        {
            "group": g,
            "figure": "re-prefill / streamed at 60 s",
            "value": f60 / s60,
            "unit": "x",
            "shown": f"{f60 / s60:.0f}x ({f60:.0f} ms)",
            "target": ">= 20x",
            "ok": f60 / s60 >= 20,
        },
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and a shorter live run")
    ap.add_argument("--check", action="store_true", help="only print streamed-vs-full max |difference|")
    ap.add_argument("--seconds", type=float, default=20.0, help="video length for --check")
    args = ap.parse_args()
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

    torch.set_num_threads(1)
    gq = build_tiny_gazeqwen(perturb=0.5, sampling_fps=2.0)
    if args.check:
        if not (args.seconds >= 1 and np.isfinite(args.seconds)):
            print("error: --seconds must be >= 1", file=sys.stderr)
            return 2
        print(
            f"streamed vs full prefill, {args.seconds:g} s of video: max |logit difference| {check(gq, args.seconds):.2e}"
        )
        return 0
    reps = 7 if args.quick else 21
    diff = check(gq, 12.0 if args.quick else 30.0)
    s5, f5 = ttft(gq, 5.0, reps)
    s60, f60 = ttft(gq, 60.0, reps)
    lv = live(gq, 10.0 if args.quick else 60.0)
    wdiff, wscale = window_change(gq)
    rows = [
        ("streamed == full prefill, max |logit diff|", f"{diff:.1e}", "<= 1e-4", diff <= 1e-4),
        ("TTFT streamed after 5 s (ms)", f"{s5:.1f}", "", None),
        ("TTFT streamed after 60 s (ms)", f"{s60:.1f}", "", None),
        ("TTFT 60 s / 5 s", f"{s60 / s5:.2f}", "<= 1.2", s60 / s5 <= 1.2),
        ("TTFT re-encoding the clip, 5 s / 60 s (ms)", f"{f5:.0f} / {f60:.0f}", "", None),
        ("re-encode / streamed at 60 s", f"{f60 / s60:.0f}x", ">= 20x", f60 / s60 >= 20),
        ("sliding window 10 s of 30 s vs re-prefill of the kept frames", f"{wdiff:.1e}", "", None),
        ("  largest |logit| of that re-prefill, for scale", f"{wscale:.1e}", "", None),
        (
            "chunks skipped at 1x real time",
            f"{lv['chunks_skipped']} of {lv['chunks_skipped'] + lv['chunks_prefilled']}",
            "0",
            lv["chunks_skipped"] == 0,
        ),
        ("gaze samples lost while the model is busy", str(lv["gaze_lost"]), "0", lv["gaze_lost"] == 0),
        (
            "questions answered in the live run",
            f"{lv['answered']} of {lv['questions']}",
            "all",
            lv["answered"] == lv["questions"],
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'streaming session, tiny models, 1 CPU thread':{width}s}  {'value':>14s}  {'target':>8s}")
    for name, value, target, ok in rows:
        mark = "" if ok is None else ("pass" if ok else "SHORT")
        print(f"{name:{width}s}  {value:>14s}  {target:>8s}  {mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
