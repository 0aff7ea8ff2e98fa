"""Online fixation detector: throughput, latency of fixation ends, and agreement with the Neon's own detector.

- throughput: samples/s of `push` (one sample per call, as from a live stream) and `push_many` (chunks), as a
  multiple of real time at 200 Hz (target >= 100x); also per scene frame with head-motion compensation (optical flow);
- latency: for every fixation, (timestamp of the sample whose arrival emitted it) - (fixation end); the target is the
  smoothing window (11 samples at 200 Hz = 55 ms);
- agreement on the real Neon recording in ../shared/fixtures (onsets within 50 ms: precision, recall, F1; centre
  difference), next to the naive I-VT floor (Savitzky-Golay 11/3, 1500 px/s, >= 70 ms) quoted as F1 0.80.

    .venv/bin/python benchmarks/fixation_detector.py           # 5 minutes of synthetic gaze + the fixture
    .venv/bin/python benchmarks/fixation_detector.py --quick   # 1 minute
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gazeqwen_edge.calibration import CameraModel, OnlineFixationDetector, match_fixations  # noqa: E402
from gazeqwen_edge.device.records import Fixation, GazeSample  # noqa: E402
from gazeqwen_edge.device.synthetic import SyntheticScene  # noqa: E402
from gazeqwen_edge.timing import StageTimer  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "neon_demo_recording"


def naive_ivt(ts, x, y, thr_px_s=1500.0, min_ms=70.0) -> list[Fixation]:
    """The floor REFERENCE.md quotes: SG 11/3 positions, numpy.gradient speed in px/s, runs below the threshold."""
    from scipy.signal import savgol_filter

    p = savgol_filter(np.stack([x, y], 1), 11, 3, axis=0)
    v = np.linalg.norm(np.gradient(p, (ts - ts[0]) / 1e9, axis=0), axis=1)
    out, i = [], 0
    while i < len(v):
        if v[i] < thr_px_s:
            j = i
            while j + 1 < len(v) and v[j + 1] < thr_px_s:
                j += 1
            if ts[j] - ts[i] >= min_ms * 1e6:
                out.append(Fixation(int(ts[i]), int(ts[j]), float(x[i : j + 1].mean()), float(y[i : j + 1].mean())))
            i = j + 1
        else:
            i += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="synthetic gaze to time (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 minute instead of --minutes")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line too")
    args = ap.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    figures: dict = {}
    timer = StageTimer()

    # ---- throughput and latency on synthetic 200 Hz gaze (Neon-sized frames' camera)
    scene = SyntheticScene(seed=0, duration_s=minutes * 60, width=1600, height=1200)
    cam = CameraModel(scene.intrinsics)
    ts, x, y = scene.gaze_arrays()
    dur_s = (ts[-1] - ts[0]) / 1e9
    det = OnlineFixationDetector(cam)
    lat = []
    with timer.stage("push (one sample per call)"):
        for i in range(len(ts)):
            for f in det.push(int(ts[i]), float(x[i]), float(y[i])):
                lat.append((ts[i] - f.end_ns) / 1e6)
        det.flush()
    det2 = OnlineFixationDetector(cam)
    with timer.stage("push_many (chunks of 40)"):
        for a in range(0, len(ts), 40):
            det2.push_many(ts[a : a + 40], x[a : a + 40], y[a : a + 40])
        det2.flush()
    s = timer.summary()
    rt_one = dur_s / (s["push (one sample per call)"]["total_ms"] / 1e3)
    rt_many = dur_s / (s["push_many (chunks of 40)"]["total_ms"] / 1e3)
    us_one = s["push (one sample per call)"]["total_ms"] * 1e3 / len(ts)
    lat = np.array(lat)
    window_ms = det.W / det.params.sampling_hz * 1e3
    print(f"synthetic gaze: {dur_s:.0f} s at 200 Hz ({len(ts)} samples), {len(lat)} fixations")
    print(f"  throughput: push {us_one:.1f} us/sample = {rt_one:.0f}x real time; push_many {rt_many:.0f}x real time")
    print(
        f"  latency of fixation ends: median {np.median(lat):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, "
        f"max {lat.max():.0f} ms; {np.mean(lat <= window_ms) * 100:.0f}% within the smoothing window ({window_ms:.0f} ms)"
    )
    figures.update(
        realtime_factor_push=rt_one,
        realtime_factor_push_many=rt_many,
        us_per_sample=us_one,
        latency_median_ms=float(np.median(lat)),
        latency_p95_ms=float(np.percentile(lat, 95)),
        latency_max_ms=float(lat.max()),
        latency_within_window=float(np.mean(lat <= window_ms)),
    )

    # ---- head-motion compensation cost per frame (optical flow on a downscaled frame)
    small = SyntheticScene(seed=1, duration_s=4.0 if args.quick else 10.0, width=1600, height=1200)
    det3 = OnlineFixationDetector(CameraModel(small.intrinsics))
    frames = [small.frame(i) for i in range(small.n_frames)]
    for fr in frames:
        with timer.stage("push_frame (LK flow)"):
            det3.push_frame(fr)
    ms_frame = timer.summary()["push_frame (LK flow)"]["mean_ms"]
    print(f"  scene flow: {ms_frame:.1f} ms per 1600x1200 frame ({1000 / ms_frame:.0f} frames/s; the Neon sends 30)")
    rt_flow = 1.0 / (1.0 / rt_one + 30 * ms_frame / 1e3)
    print(f"  gaze (push) + head-motion compensation on 30 fps scene video: {rt_flow:.0f}x real time")
    figures["realtime_factor_with_flow"] = rt_flow
    figures["flow_ms_per_frame"] = ms_frame

    # ---- agreement with the device on the real recording
    if (FIXTURE / "info.json").is_file():
        from gazeqwen_edge.device import open_source

        src = open_source(FIXTURE)
        gaze, device = [], []
        for r in src.records({GazeSample, Fixation}):
            (gaze if isinstance(r, GazeSample) else device).append(r)
        fcam = CameraModel(src.intrinsics)
        src.close()
        gts = np.array([g.ts_ns for g in gaze], dtype=np.int64)
        gx, gy = np.array([g.x for g in gaze]), np.array([g.y for g in gaze])
        gw = np.array([g.worn for g in gaze])
        d = OnlineFixationDetector(fcam)
        ours = d.push_many(gts, gx, gy, gw) + d.flush()
        a, _ = match_fixations(ours, device, 50)
        b, _ = match_fixations(naive_ivt(gts, gx, gy), device, 50)
        print(f"real Neon recording ({len(gaze)} samples, {len(device)} device fixations):")
        print(f"  ours:      {a.summary()}")
        print(f"  naive I-VT: {b.summary()}")
        figures.update(fixture_f1=a.f1, fixture_precision=a.precision, fixture_recall=a.recall)
        figures.update(fixture_centre_px=a.mean_centre_diff_px, naive_ivt_f1=b.f1)
    else:
        print(f"(real Neon recording not found at {FIXTURE}: agreement not measured)")
    from rich.console import Console

    Console().print(timer.table("fixation detector timings"))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
