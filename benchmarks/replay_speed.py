"""Replay speed of a recorded session vs real time.

Writes `--minutes` of a synthetic scene (200 Hz gaze + 30 fps scene video, ground-truth fixations) to a temporary
session directory with the Recorder, then replays that directory through `open_source` (CSV parsing + H.264 decoding
of every frame to RGB arrays, every record built; no pacing, nothing else done with them) and prints how many times
faster than real time that is. Target: >= 20x for 10 minutes at 320x240. Also printed: the synthetic source itself (rendering every frame)
and a gaze-only replay. `rows()` (benchmarks/suite.py) adds the same recording replayed through the streaming session
with the tiny model encoding every chunk (target >= 1x real time).

    .venv/bin/python benchmarks/replay_speed.py            # 10 minutes
    .venv/bin/python benchmarks/replay_speed.py --quick    # 1 minute
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gazeqwen_edge.device import GazeSample, open_source  # noqa: E402
from gazeqwen_edge.device.record import record as record_source  # noqa: E402
from gazeqwen_edge.device.synthetic import SyntheticScene  # noqa: E402
from gazeqwen_edge.timing import StageTimer  # noqa: E402

MODEL = "replay with model encoding: tiny GazeQwen (as streaming), lockstep, 1 s chunks at 2 fps, detector fixations"


def measure(minutes: float, w: int, h: int, seed: int = 0, model_device: str | None = None) -> dict:
    """Record `minutes` of a synthetic scene (w x h at 30 fps + 200 Hz gaze) to a temporary session directory, time
    its replays (module docstring) and, when `model_device` is given, also replay it through the streaming session
    (runtime/replay.py) with the tiny GazeQwen on that device in lockstep (as fast as the model goes; no questions).
    Returns dur_s (recorded seconds), replay_s and speed_x (decode-only replay), the StageTimer summary, record
    counts (written: rec_counts, replayed: counts, gaze-only: n_gaze_only), syn_s / n_syn (the synthetic source
    timed alone), size_mb, and with a model: model_wall_s, model_speed_x (recorded seconds / wall seconds),
    chunks_prefilled and chunks_skipped."""
    timer = StageTimer()
    out_fig: dict = {}
    with tempfile.TemporaryDirectory(prefix="gq_replay_") as tmp:
        out = Path(tmp) / "session"
        with timer.stage("generate+record"):
            scene = SyntheticScene(seed=seed, duration_s=minutes * 60, width=w, height=h)
            rec = record_source(scene, out, spec=f"synthetic:{seed}")
        syn_s = min(minutes, 2.0) * 60  # the first 2 minutes are enough for its rate (and keep the run < 1 min)
        with timer.stage("synthetic source (render only)"):
            n_syn = sum(1 for _ in SyntheticScene(seed=seed, duration_s=syn_s, width=w, height=h).records())
        size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        counts: Counter = Counter()
        with timer.stage("replay (decode only)"):
            with open_source(out) as src:
                for r in src.records():
                    counts[type(r).__name__] += 1
        with timer.stage("replay gaze+fixations only"):
            with open_source(out) as src:
                n_gaze_only = sum(1 for _ in src.records({GazeSample}))
        if model_device is not None:
            from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
            from gazeqwen_edge.runtime.replay import replay
            from gazeqwen_edge.runtime.session import SessionConfig

            gq = build_tiny_gazeqwen(perturb=0.5, sampling_fps=2.0, device=model_device)
            with open_source(out) as src:
                res = replay(src, gq, SessionConfig(), None, speed=None)
            out_fig.update(
                model_wall_s=res.wall_s,
                model_speed_x=minutes * 60 / res.wall_s,
                chunks_prefilled=res.stats.chunks_prefilled,
                chunks_skipped=res.stats.chunks_skipped,
            )
    s = timer.summary()
    replay_s = s["replay (decode only)"]["total_ms"] / 1e3
    return {
        "dur_s": minutes * 60,
        "replay_s": replay_s,
        "speed_x": minutes * 60 / replay_s,
        "summary": s,
        "rec_counts": rec.counts,
        "counts": counts,
        "n_gaze_only": n_gaze_only,
        "syn_s": syn_s,
        "n_syn": n_syn,
        "size_mb": size_mb,
        **out_fig,
    }


def check(m: dict) -> None:
    """Raise AssertionError unless the replay gave back every record written (else its speed means nothing)."""
    assert m["n_syn"] > 0
    c, rc = m["counts"], m["rec_counts"]
    assert c["GazeSample"] == rc["gaze"] == m["n_gaze_only"] and c["SceneFrame"] == rc["frames"]


def rows(quick: bool, device: str = "cpu") -> list[dict]:
    """Replay speed as benchmarks/suite.py rows, 320x240: decode only (target >= 20x real time) and through the
    streaming session with the tiny model encoding every chunk on `device` (target >= 1x: a replay must at least keep
    up with real time). quick: 1 minute recorded (else 10)."""
    m = measure(1.0 if quick else 10.0, 320, 240, model_device=device)
    check(m)
    g, dur = "replay vs real time", f"{m['dur_s']:.0f} s"
    skipped = f", {m['chunks_skipped']} of {m['chunks_skipped'] + m['chunks_prefilled']} chunks skipped"
    return [
        {
            "group": g,
            "figure": f"decode only, {dur} of 320x240",
            "value": m["speed_x"],
            "unit": "x real time",
            "shown": f"{m['speed_x']:.1f}x",
            "target": ">= 20x",
            "ok": m["speed_x"] >= 20,
        },
        {
            "group": g,
            "figure": f"with model encoding, {dur}",
            "value": m["model_speed_x"],
            "unit": "x real time",
            "shown": f"{m['model_speed_x']:.1f}x" + skipped,
            "target": ">= 1x",
            "ok": m["model_speed_x"] >= 1,
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the synthetic recording (default 10)")
    ap.add_argument("--quick", action="store_true", help="1 minute instead of --minutes")
    ap.add_argument("--size", default="320x240", help="scene frame size (default 320x240)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line too")
    args = ap.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    w, h = (int(v) for v in args.size.lower().split("x"))
    m = measure(minutes, w, h, args.seed)
    s, dur, replay_s, speed, syn_s = m["summary"], m["dur_s"], m["replay_s"], m["speed_x"], m["syn_s"]
    rec_counts = m["rec_counts"]
    print(f"recording: {dur:.0f} s synthetic, {w}x{h} @ 30 fps + 200 Hz gaze, {m['size_mb']:.1f} MB on disk")
    print(f"  written: {rec_counts['gaze']} gaze, {rec_counts['frames']} frames, {rec_counts['fixations']} fixations")
    print(f"  replayed: {dict(m['counts'])}")
    for name, st in s.items():
        span = syn_s if name.startswith("synthetic") else dur
        print(
            f"  {name:32s} {st['total_ms'] / 1e3:7.2f} s for {span:4.0f} s  ({span / (st['total_ms'] / 1e3):7.1f}x real time)"
        )
    print(f"replay speed: {speed:.1f}x real time (target >= 20x)  [{'OK' if speed >= 20 else 'BELOW TARGET'}]")
    check(m)
    if args.json:
        print(json.dumps({"duration_s": dur, "size": [w, h], "replay_s": replay_s, "speed_x": speed}))


if __name__ == "__main__":
    main()
