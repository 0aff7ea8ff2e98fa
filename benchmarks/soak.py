"""Soak: a live session against the simulator for a long time (default 30 minutes), through the official client.

The simulator loops a synthetic scene (320x240 at 30 fps, 200 Hz gaze) with 5 % packet loss and leaves the network
for 3 s every 5 minutes; the session (tiny models, live pace, recording everything to a temporary session
directory) is asked a question every 20 s. Printed: resident memory per minute (a curve) and its growth after the
warm-up (target < 10 %), questions answered (target: all), chunks skipped (target 0 at 1x real time), reconnects.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--quick]    # --quick: 3 minutes, a disconnect every minute
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="how long to run")
    ap.add_argument("--quick", action="store_true", help="3 minutes, a disconnect every minute")
    ap.add_argument("--question-every", type=float, default=20.0, help="seconds between questions")
    args = ap.parse_args()
    minutes = 3.0 if args.quick else args.minutes
    disconnect_every = 60.0 if args.quick else 300.0

    import torch

    from gazeqwen_edge.device.neon import NeonLiveSource
    from gazeqwen_edge.device.simulator import NeonSimulator
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.session import Session, SessionConfig
    from gazeqwen_edge.runtime.sinks import Sink

    torch.set_num_threads(1)

    class Count(Sink):
        def __init__(self):
            self.ok = self.failed = 0
            self.notices: dict[str, int] = {}

        def answered(self, record):
            if record.error:
                self.failed += 1
            else:
                self.ok += 1

        def notice(self, kind, message, t_s):
            self.notices[kind] = self.notices.get(kind, 0) + 1

    gq = build_tiny_gazeqwen(perturb=0.05, sampling_fps=2.0)
    sink = Count()
    scene = SyntheticScene(seed=7, duration_s=120.0, width=320, height=240)
    sim = NeonSimulator(scene, loop=True).start()
    sim.faults.drop_percent = 5.0
    curve: list[tuple[float, float]] = []
    asked = 0
    with tempfile.TemporaryDirectory() as tmp, NeonLiveSource("127.0.0.1", sim.port) as neon:
        session = Session(neon, gq, SessionConfig(max_new_tokens=16), out_dir=Path(tmp) / "soak", sinks=[sink])
        session.start()
        t0 = time.monotonic()
        next_q, next_d, next_m = t0 + 5.0, t0 + disconnect_every, t0
        try:
            while (now := time.monotonic()) - t0 < minutes * 60:
                if now >= next_m:
                    curve.append(((now - t0) / 60, rss_mib()))
                    next_m += 60.0
                if now >= next_q:
                    session.ask("What am I looking at?")
                    asked += 1
                    next_q += args.question_every
                if now >= next_d:
                    threading.Thread(target=sim.disconnect, kwargs={"for_s": 3.0}, daemon=True).start()
                    next_d += disconnect_every
                time.sleep(0.2)
            time.sleep(3.0)  # the last question
            curve.append(((time.monotonic() - t0) / 60, rss_mib()))
        finally:
            session.stop()
            sim.stop()
        stats = session.stats
    warm = curve[min(2, len(curve) - 1)][1]
    growth = (curve[-1][1] - warm) / warm * 100
    print(f"soak: {minutes:g} min live against the simulator (5 % loss, a 3 s disconnect every {disconnect_every:g} s)")
    print("resident memory (MiB) per minute: " + " ".join(f"{m:.0f}:{r:.0f}" for m, r in curve))
    ok = sink.ok
    rows = [
        ("RSS growth after warm-up (minute 2 -> end)", f"{growth:+.1f} %", "< 10 %", growth < 10),
        ("questions answered", f"{ok} of {asked}", "all", ok == asked),
        (
            "chunks skipped at 1x real time",
            f"{stats.chunks_skipped} of {stats.chunks_skipped + stats.chunks_prefilled}",
            "0",
            stats.chunks_skipped == 0,
        ),
        (
            "disconnect / reconnect notices",
            f"{sink.notices.get('disconnected', 0)} / {sink.notices.get('reconnected', 0)}",
            "",
            None,
        ),
        ("gaze samples received", str(stats.records.get("GazeSample", 0)), "", None),
    ]
    for name, value, target, good in rows:
        print(f"{name:44s} {value:>14s} {target:>8s}  {'' if good is None else ('pass' if good else 'SHORT')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
