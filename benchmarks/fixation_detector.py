"""Online fixation detector (Pupil Labs' published Neon method, calibration/fixation.py): agreement, latency, speed.

- agreement on simulated wearers (calibration/synthetic_gaze.py: main-sequence saccades, micro-saccades, drift,
  head motion, blinks, noise; 8 wearers x 60 s, known fixations): onset precision / recall / F1 within 50 ms,
  ours next to the naive I-VT (Savitzky-Golay 11/3, 1500 px/s, >= 70 ms);
- agreement on the real Neon recording in ../shared/fixtures (HELD OUT: nothing in the detector was chosen on it),
  the device's own fixations as reference, ours next to the naive I-VT on the same data;
- latency: for every fixation, (timestamp of the sample whose arrival made it final) - (its end), distribution and
  the share within 60 ms;
- throughput: samples/s of `push` (one sample per call, as from a live stream) and `push_many` (chunks), as a
  multiple of real time at 200 Hz; the cost of head-motion compensation per scene frame (optical flow).

    .venv/bin/python benchmarks/fixation_detector.py           # 5 minutes of gaze timed
    .venv/bin/python benchmarks/fixation_detector.py --quick   # 1 minute
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gazeqwen_edge.calibration import (  # noqa: E402
    CameraModel,
    OnlineFixationDetector,
    match_fixations,
    naive_ivt,
    synthetic_gaze,
)
from gazeqwen_edge.device.records import Fixation, GazeSample  # noqa: E402
from gazeqwen_edge.device.synthetic import SyntheticScene  # noqa: E402
from gazeqwen_edge.timing import StageTimer  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "neon_demo_recording"
# simulated wearers: (seed, measurement noise deg, head motion RMS deg/s)
WEARERS = [(s, (0.05, 0.1, 0.2, 0.3)[s % 4], (0.0, 5.0, 10.0, 20.0)[s // 2]) for s in range(8)]


def run_online(ts, x, y, camera, worn=None) -> tuple[list[Fixation], np.ndarray]:
    """Our detector fed one sample at a time: the fixations and each one's latency in ms."""
    det = OnlineFixationDetector(camera)
    out, lat = [], []
    w = np.ones(len(ts), bool) if worn is None else worn
    for i in range(len(ts)):
        for f in det.push(int(ts[i]), float(x[i]), float(y[i]), bool(w[i])):
            out.append(f)
            lat.append((ts[i] - f.end_ns) / 1e6)
    return out + det.flush(), np.array(lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5.0, help="gaze to time (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 minute instead of --minutes")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line too")
    args = ap.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    figures: dict = {}
    timer = StageTimer()
    lat_all = []

    # ---- simulated wearers with known fixations
    f_ours, f_naive = [], []
    print(f"simulated wearers ({len(WEARERS)} x 60 s at 200 Hz, onsets within 50 ms of the truth):")
    for seed, noise, head in WEARERS:
        g = synthetic_gaze(seed, 60.0, noise_deg=noise, head_speed_deg_s=head)
        ours, lat = run_online(g.ts_ns, g.x, g.y, g.camera)
        lat_all.append(lat)
        a, _ = match_fixations(ours, g.fixations, 50)
        b, _ = match_fixations(naive_ivt(g.ts_ns, g.x, g.y), g.fixations, 50)
        f_ours.append(a.f1)
        f_naive.append(b.f1)
        print(
            f"  seed {seed} noise {noise:.2f} deg head {head:4.1f} deg/s: ours F1 {a.f1:.3f} "
            f"(P {a.precision:.3f} R {a.recall:.3f}), naive I-VT F1 {b.f1:.3f}"
        )
    print(f"  mean F1: ours {np.mean(f_ours):.3f}, naive I-VT {np.mean(f_naive):.3f}")
    figures.update(synthetic_f1=float(np.mean(f_ours)), synthetic_naive_f1=float(np.mean(f_naive)))

    # ---- the held-out real recording
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
        ours, lat = run_online(gts, gx, gy, fcam, gw)
        lat_all.append(lat)
        a, _ = match_fixations(ours, device, 50)
        b, _ = match_fixations(naive_ivt(gts, gx, gy), device, 50)
        print(f"real Neon recording, held out ({len(gaze)} samples, {len(device)} device fixations as reference):")
        print(f"  ours:       {a.summary()}")
        print(f"  naive I-VT: {b.summary()}")
        figures.update(fixture_f1=a.f1, fixture_precision=a.precision, fixture_recall=a.recall)
        figures.update(fixture_centre_px=a.mean_centre_diff_px, fixture_naive_f1=b.f1)
    else:
        print(f"(real Neon recording not found at {FIXTURE}: held-out agreement not measured)")

    lat = np.concatenate(lat_all)
    print(
        f"latency of fixation ends ({len(lat)} fixations): median {np.median(lat):.1f} ms, "
        f"p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms; {np.mean(lat <= 60) * 100:.1f}% within 60 ms"
    )
    figures.update(
        latency_median_ms=float(np.median(lat)),
        latency_p95_ms=float(np.percentile(lat, 95)),
        latency_max_ms=float(lat.max()),
        latency_within_60ms=float(np.mean(lat <= 60)),
    )

    # ---- throughput
    g = synthetic_gaze(0, minutes * 60)
    ts, x, y = g.ts_ns, g.x, g.y
    dur_s = (ts[-1] - ts[0]) / 1e9
    det = OnlineFixationDetector(g.camera)
    with timer.stage("push (one sample per call)"):
        for i in range(len(ts)):
            det.push(int(ts[i]), float(x[i]), float(y[i]))
        det.flush()
    det2 = OnlineFixationDetector(g.camera)
    with timer.stage("push_many (chunks of 40)"):
        for a0 in range(0, len(ts), 40):
            det2.push_many(ts[a0 : a0 + 40], x[a0 : a0 + 40], y[a0 : a0 + 40])
        det2.flush()
    s = timer.summary()
    rt_one = dur_s / (s["push (one sample per call)"]["total_ms"] / 1e3)
    rt_many = dur_s / (s["push_many (chunks of 40)"]["total_ms"] / 1e3)
    us_one = s["push (one sample per call)"]["total_ms"] * 1e3 / len(ts)
    print(f"throughput: push {us_one:.1f} us/sample = {rt_one:.0f}x real time; push_many {rt_many:.0f}x real time")

    # ---- head-motion compensation cost per frame (optical flow on a downscaled frame)
    small = SyntheticScene(seed=1, duration_s=4.0 if args.quick else 10.0, width=1600, height=1200)
    det3 = OnlineFixationDetector(CameraModel(small.intrinsics))
    for i in range(small.n_frames):
        fr = small.frame(i)
        with timer.stage("push_frame (LK flow)"):
            det3.push_frame(fr)
    ms_frame = timer.summary()["push_frame (LK flow)"]["mean_ms"]
    rt_flow = 1.0 / (1.0 / rt_one + 30 * ms_frame / 1e3)
    print(f"scene flow: {ms_frame:.1f} ms per 1600x1200 frame; gaze + flow on 30 fps video: {rt_flow:.0f}x real time")
    figures.update(
        realtime_factor_push=rt_one,
        realtime_factor_push_many=rt_many,
        us_per_sample=us_one,
        flow_ms_per_frame=ms_frame,
        realtime_factor_with_flow=rt_flow,
    )
    from rich.console import Console

    Console().print(timer.table("fixation detector timings"))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
