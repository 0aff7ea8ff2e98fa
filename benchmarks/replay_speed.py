"""Replay speed of a recorded session vs real time.

Writes `--minutes` of a synthetic scene (200 Hz gaze + 30 fps scene video, ground-truth fixations) to a temporary
session directory with the Recorder, then replays that directory through `open_source` (CSV parsing + H.264 decoding
of every frame to RGB arrays, every record built; no pacing, nothing else done with them) and prints how many times
faster than real time that is. Target: >= 20x for 10 minutes at 320x240. Also printed: the synthetic source itself (rendering every frame)
and a gaze-only replay.

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
from gazeqwen_edge.device.session import record_source  # noqa: E402
from gazeqwen_edge.device.synthetic import SyntheticScene  # noqa: E402
from gazeqwen_edge.timing import StageTimer  # noqa: E402


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
    timer = StageTimer()
    with tempfile.TemporaryDirectory(prefix="gq_replay_") as tmp:
        out = Path(tmp) / "session"
        with timer.stage("generate+record"):
            scene = SyntheticScene(seed=args.seed, duration_s=minutes * 60, width=w, height=h)
            rec = record_source(scene, out, spec=f"synthetic:{args.seed}")
        syn_s = min(minutes, 2.0) * 60  # the first 2 minutes are enough for its rate (and keep the run < 1 min)
        with timer.stage("synthetic source (render only)"):
            n_syn = sum(1 for _ in SyntheticScene(seed=args.seed, duration_s=syn_s, width=w, height=h).records())
        size_mb = sum(p.stat().st_size for p in out.iterdir()) / 1e6
        counts: Counter = Counter()
        with timer.stage("replay (decode only)"):
            with open_source(out) as src:
                for r in src.records():
                    counts[type(r).__name__] += 1
        with timer.stage("replay gaze+fixations only"):
            with open_source(out) as src:
                n_gaze_only = sum(1 for _ in src.records({GazeSample}))
    s = timer.summary()
    dur = minutes * 60
    replay_s = s["replay (decode only)"]["total_ms"] / 1e3
    speed = dur / replay_s
    print(f"recording: {dur:.0f} s synthetic, {w}x{h} @ 30 fps + 200 Hz gaze, {size_mb:.1f} MB on disk")
    print(f"  written: {rec.counts['gaze']} gaze, {rec.counts['frames']} frames, {rec.counts['fixations']} fixations")
    print(f"  replayed: {dict(counts)}")
    for name, st in s.items():
        span = syn_s if name.startswith("synthetic") else dur
        print(
            f"  {name:32s} {st['total_ms'] / 1e3:7.2f} s for {span:4.0f} s  ({span / (st['total_ms'] / 1e3):7.1f}x real time)"
        )
    print(f"replay speed: {speed:.1f}x real time (target >= 20x)  [{'OK' if speed >= 20 else 'BELOW TARGET'}]")
    assert n_syn > 0
    assert counts["GazeSample"] == rec.counts["gaze"] == n_gaze_only and counts["SceneFrame"] == rec.counts["frames"]
    if args.json:
        print(json.dumps({"duration_s": dur, "size": [w, h], "replay_s": replay_s, "speed_x": speed}))


if __name__ == "__main__":
    main()
