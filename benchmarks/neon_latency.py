"""End-to-end latency and sustained throughput: Neon simulator -> network (loopback) -> official client -> our live
source -> the consumer.

    .venv/bin/python benchmarks/neon_latency.py            # 60 s at 200 Hz gaze + 30 fps scene video (640x480)
    .venv/bin/python benchmarks/neon_latency.py --quick    # 10 s

Prints:
- latency of gaze: from the moment the simulator sends a sample (wall clock) to the moment the consumer gets the
  GazeSample from `NeonLiveSource.get()`, p50/p95/max; the same for scene frames (from the frame's send time: this
  includes H.264 decoding and the client's one-frame parser delay);
- delivery over the run at 0 % injected drop: samples and frames sent vs delivered, missing ones, largest gap.
`rows()` gives benchmarks/suite.py the two p95 figures against their targets (TARGET_GAZE_P95_MS, TARGET_FRAME_P95_MS:
the reasons are given where they are set).
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

# targets (the issue gives none; ours, with the reason): gaze p95 <= 20 ms, four samples at 200 Hz, so that transport
# stays a small part of the fixation detector's 60 ms reporting budget (benchmarks/fixation_detector.py); scene frame
# p95 <= 100 ms, three frames at 30 fps and a fifth of the 0.5 s between two model frames (2 fps), so a chunk is
# complete a moment after its last frame was captured
TARGET_GAZE_P95_MS = 20.0
TARGET_FRAME_P95_MS = 100.0


def measure(
    seconds: float, w: int = 640, h: int = 480, drop_percent: float = 0.0, log=print, window_s: float | None = None
) -> dict:
    """Serve a synthetic scene (w x h at 30 fps, 200 Hz gaze) from the Neon simulator on loopback, receive it with
    NeonLiveSource (official client, default buffers) and measure `seconds` after a warm-up. Returns timer (a
    StageTimer: "gaze: sent -> delivered", "frame: sent -> delivered", and from the record's own timestamp, seconds),
    streams ({"gaze"/"world": sent, delivered, missing, largest gap ms}) and stats (the live source's counters).
    `log` gets the one progress line. window_s: read with `records(reorder_window_s=window_s)`, in time order across
    kinds as the streaming session reads a live source (SessionConfig.reorder_window_s), instead of `get()` (arrival
    order, the lowest latency)."""
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
    sim.faults.drop_percent = drop_percent
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
        log(f"measuring {seconds:.0f} s of 200 Hz gaze + 30 fps {w}x{h} video, drop {drop_percent} % ...")
        delivered: dict[str, list[tuple[int, float]]] = {"gaze": [], "world": []}
        ordered = None if window_s is None else neon.records(reorder_window_s=window_s)
        while time.time_ns() < t1_ns + 1_000_000_000 + int((window_s or 0) * 1e9):
            r = neon.get(0.05) if ordered is None else next(ordered, None)
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

    streams = {}
    for stream in ("gaze", "world"):
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
        streams[stream] = {
            "sent": len(in_window),
            "delivered": len(got[stream]),
            "missing": len(missing),
            "gap_ms": gap,
        }
    return {"timer": timer, "streams": streams, "stats": stats}


def rows(quick: bool, device: str = "cpu") -> list[dict]:
    """Simulator -> live source latency as benchmarks/suite.py rows: gaze and scene frame p95 from the moment the
    simulator sent them (targets above), with p50 and missing records shown beside; then the same into the streaming
    session, which reads the live source in time order with its reorder window (targets + the window). quick: 10 s
    measured per run (else 60)."""
    from gazeqwen_edge.runtime.session import SessionConfig

    window = SessionConfig().reorder_window_s
    out = []
    for group, win in (("simulator -> live source", None), ("simulator -> session", window)):
        out += _rows(group, measure(10.0 if quick else 60.0, log=lambda _line: None, window_s=win), win)
    return out


def _rows(group: str, m: dict, window_s: float | None) -> list[dict]:
    """Gaze and frame p95 rows of one measure(); read in time order (window_s), the targets grow by the window."""
    s = m["timer"].summary()
    out = []
    extra = 1e3 * (window_s or 0.0)
    for name, stream, target in (("gaze", "gaze", TARGET_GAZE_P95_MS), ("frame", "world", TARGET_FRAME_P95_MS)):
        target = target + extra
        st, d = s.get(f"{name}: sent -> delivered"), m["streams"][stream]
        fig = f"{'gaze sample' if name == 'gaze' else 'frame 640x480'}, sent -> got, p95"
        if window_s is not None:
            fig = f"{'gaze' if name == 'gaze' else 'frame'}, sent -> in order ({window_s:g} s), p95"
        if st is None:  # nothing delivered: not measured
            raise RuntimeError(f"no {name} delivered by the simulator in the measured window")
        out.append(
            {
                "group": group,
                "figure": fig,
                "value": st["p95_ms"],
                "unit": "ms",
                "shown": f"{st['p95_ms']:.1f} ms (p50 {st['p50_ms']:.1f}, {d['missing']} lost)",
                "target": f"<= {target:g} ms",
                "ok": st["p95_ms"] <= target,
            }
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 s instead of 60 s")
    ap.add_argument("--seconds", type=float, default=None, help="measurement length (default 60, --quick 10)")
    ap.add_argument("--size", default="640x480", help="scene size WxH (default 640x480)")
    ap.add_argument("--drop-percent", type=float, default=0.0, help="inject packet loss (default 0)")
    args = ap.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    w, h = (int(v) for v in args.size.split("x"))
    m = measure(seconds, w, h, args.drop_percent)

    from rich.console import Console

    con = Console(width=120)
    for stream, label in (("gaze", "gaze samples"), ("world", "scene frames")):
        d = m["streams"][stream]
        con.print(
            f"{label}: sent {d['sent']}, delivered {d['delivered']} ({d['delivered'] / seconds:.1f}/s), "
            f"missing {d['missing']} ({100 * d['missing'] / max(1, d['sent']):.2f} %), largest gap {d['gap_ms']:.1f} ms",
            soft_wrap=True,
        )
    con.print(m["timer"].table("Neon simulator -> NeonLiveSource latency (loopback, one clock)"))
    stats = m["stats"]
    con.print(f"ring buffer drops (consumer too slow): {stats['dropped_oldest']}; reconnects: {stats['reconnects']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
