"""End-to-end latency and sustained throughput: Neon simulator -> network (loopback) -> official client -> our live
source -> the consumer.

    .venv/bin/python benchmarks/neon_latency.py            # 60 s at 200 Hz gaze + 30 fps scene video (640x480)
    .venv/bin/python benchmarks/neon_latency.py --quick    # 10 s

Prints:
- latency of gaze: from the moment the simulator sends a sample (wall clock) to the moment the consumer gets the
  GazeSample from `NeonLiveSource.get()`, p50/p95/max; the same for scene frames (from the frame's send time: this
  includes H.264 decoding and the client's one-frame parser delay);
- delivery over the run at 0 % injected drop: samples and frames sent vs delivered, missing ones, largest gap.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from gazeqwen_edge.device.records import GazeSample, SceneFrame  # noqa: E402
from gazeqwen_edge.timing import StageTimer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 s instead of 60 s")
    ap.add_argument("--seconds", type=float, default=None, help="measurement length (default 60, --quick 10)")
    ap.add_argument("--size", default="640x480", help="scene size WxH (default 640x480)")
    ap.add_argument("--drop-percent", type=float, default=0.0, help="inject packet loss (default 0)")
    args = ap.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    w, h = (int(v) for v in args.size.split("x"))

    from gazeqwen_edge.device.neon import NeonLiveSource
    from gazeqwen_edge.device.simulator import NeonSimulator
    from gazeqwen_edge.device.synthetic import SyntheticScene

    src = SyntheticScene(seed=0, duration_s=seconds + 8.0, width=w, height=h, fps=30.0, gaze_hz=200.0)
    sent: dict[str, dict[int, float]] = {"gaze": {}, "world": {}}
    lock = threading.Lock()

    def on_send(stream: str, device_ns: int, wall: float) -> None:
        if stream in sent:
            with lock:
                d = sent[stream]
                if device_ns not in d:  # a frame is several packets: keep the first
                    d[device_ns] = wall

    sim = NeonSimulator(src, audio="tone", start_lead_s=0.5)
    sim.faults.drop_percent = args.drop_percent
    sim.send_log = on_send
    sim.start()
    timer = StageTimer(window=1_000_000)
    got: dict[str, list[int]] = {"gaze": [], "world": []}
    try:
        neon = NeonLiveSource("127.0.0.1", sim.port, streams=("gaze", "world"))  # default buffers
        # warm up: wait for the first frame, then measure a window that both streams fully cover
        t_first = time.monotonic()
        while time.monotonic() - t_first < 10:
            r = neon.get(0.1)
            if isinstance(r, SceneFrame):
                break
        t0_ns = time.time_ns() + 200_000_000
        t1_ns = t0_ns + int(seconds * 1e9)
        print(f"measuring {seconds:.0f} s of 200 Hz gaze + 30 fps {w}x{h} video, drop {args.drop_percent} % ...")
        delivered: dict[str, list[tuple[int, float]]] = {"gaze": [], "world": []}
        while time.time_ns() < t1_ns + 1_000_000_000:
            r = neon.get(0.05)
            now = time.time()
            if isinstance(r, GazeSample | SceneFrame):
                stream = "gaze" if isinstance(r, GazeSample) else "world"
                if t0_ns <= r.ts_ns < t1_ns:
                    got[stream].append(r.ts_ns)
                    delivered[stream].append((r.ts_ns, now))
        stats = neon.stats()
        neon.close()
    finally:
        sim.stop()

    from rich.console import Console

    con = Console(width=120)
    for stream, label in (("gaze", "gaze samples"), ("world", "scene frames")):
        with lock:
            want_map = {t: w for t, w in sent[stream].items() if t0_ns - 10**6 <= t < t1_ns + 10**6}
        want = np.array(sorted(want_map), dtype=np.int64)
        # the client carries time as float seconds: match received to sent timestamps within 0.1 ms
        matched = set()
        for ts, now in delivered[stream]:
            i = int(np.searchsorted(want, ts))
            cands = [j for j in (i - 1, i) if 0 <= j < len(want) and abs(int(want[j]) - ts) < 100_000]
            if not cands:
                continue
            j = cands[0]
            matched.add(j)
            name = "gaze" if stream == "gaze" else "frame"
            timer.add(f"{name}: sent -> delivered", now - want_map[int(want[j])])
            timer.add(f"{name}: its timestamp -> delivered", now - ts / 1e9)
        in_window = [j for j, t in enumerate(want) if t0_ns <= t < t1_ns]
        missing = [j for j in in_window if j not in matched]
        ts_sorted = sorted(got[stream])
        gap = max((b - a for a, b in zip(ts_sorted, ts_sorted[1:], strict=False)), default=0) / 1e6
        con.print(
            f"{label}: sent {len(in_window)}, delivered {len(got[stream])} ({len(got[stream]) / seconds:.1f}/s), "
            f"missing {len(missing)} ({100 * len(missing) / max(1, len(in_window)):.2f} %), largest gap {gap:.1f} ms",
            soft_wrap=True,
        )
    con.print(timer.table("Neon simulator -> NeonLiveSource latency (loopback, one clock)"))
    con.print(f"ring buffer drops (consumer too slow): {stats['dropped_oldest']}; reconnects: {stats['reconnects']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
