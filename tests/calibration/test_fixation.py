"""Online fixation detector: the published Neon method (checked against an independent offline implementation of its
description), streaming = batch, latency of fixation ends, known synthetic fixations, micro-saccade merging, the
minimum duration, head-motion compensation, and agreement with the Neon's own detector on the real recording (held
out: nothing was fitted to it)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("scipy")

from gazeqwen_edge.calibration.camera import CameraModel  # noqa: E402
from gazeqwen_edge.calibration.evaluate import match_fixations, naive_ivt  # noqa: E402
from gazeqwen_edge.calibration.fixation import (  # noqa: E402
    FixationParams,
    OnlineFixationDetector,
    detect_fixations,
)
from gazeqwen_edge.calibration.synthetic_gaze import neon_like_camera, synthetic_gaze  # noqa: E402
from gazeqwen_edge.device.records import Fixation, GazeSample, ImuSample, SceneFrame  # noqa: E402
from gazeqwen_edge.errors import ConfigError  # noqa: E402

HZ = 200.0
T0 = 1_700_000_000_000_000_000

# What the held-out real recording gave when the published method was implemented (onset F1 within 50 ms against
# the device's own fixations; the naive I-VT gives 0.818 there). A floor, not a target: nothing was tuned on it.
HELD_OUT_F1_FLOOR = 0.70
# With the recording's IMU as the head-motion input (calibration/imu.py; its scene video is not there) the same
# held-out comparison gave F1 0.818 (P 0.857, R 0.783), measured once with the final method, nothing tuned on it;
# the naive I-VT gives 0.818 there too (the IMU closes the gap to it, it does not pass it). A floor, not a target.
HELD_OUT_IMU_F1_FLOOR = 0.80


@pytest.fixture(scope="module")
def neon(neon_recording_dir):
    """(gaze ts, x, y, worn, device fixations, camera) through the device layer's reader (raw gaze, no offset)."""
    from gazeqwen_edge.device import open_source

    src = open_source(neon_recording_dir)
    gaze, fix = [], []
    for r in src.records({GazeSample, Fixation}):
        (gaze if isinstance(r, GazeSample) else fix).append(r)
    cam = CameraModel(src.intrinsics)
    src.close()
    ts = np.array([g.ts_ns for g in gaze], dtype=np.int64)
    return ts, np.array([g.x for g in gaze]), np.array([g.y for g in gaze]), np.array([g.worn for g in gaze]), fix, cam


@pytest.fixture(scope="module")
def neon_imu(neon_recording_dir) -> list[ImuSample]:
    from gazeqwen_edge.device import open_source

    with open_source(neon_recording_dir) as src:
        return list(src.records({ImuSample}))


# ------------------------------------------------------------------------------------- the published method, offline
def offline_reference(ts, x, y, cam: CameraModel, thr=1200.0, amp_deg=2.0, micro_s=0.02, min_s=0.07):
    """The published Neon method written the plain offline way, straight from its description (whole arrays, no
    state machine): resample to 200 Hz, Savitzky-Golay 11/3, forward-difference speed in px/s of a 1600 px wide
    image, threshold, dense events, remove gaps <= 2 deg and <= 20 ms, then drop fixations <= 70 ms; times mapped to
    the nearest original sample. No scene video (flow = 0)."""
    from scipy.signal import savgol_filter

    t = (ts - ts[0]).astype(np.float64)
    g = np.arange(0, t[-1] + 1, 5e6)
    gx, gy = np.interp(g, t, x), np.interp(g, t, y)
    nrm = cam.to_normalized(np.stack([x, y], 1))
    gn = np.stack([np.interp(g, t, nrm[:, 0]), np.interp(g, t, nrm[:, 1])], 1)
    sx, sy = savgol_filter(gx, 11, 3), savgol_filter(gy, 11, 3)
    sn = savgol_filter(gn, 11, 3, axis=0)
    v = np.full(len(g), np.inf)
    v[:-1] = np.hypot(np.diff(sx), np.diff(sy)) / 5e-3 * (1600 / cam.width)
    fix = v <= thr
    # events [start, end): end = the first sample of the next event; the last one ends after the last sample, whose
    # time (and smoothed gaze, for a trailing gap's amplitude) stands in for "the first sample after it"
    b = np.r_[0, np.flatnonzero(np.diff(fix.astype(int))) + 1, len(g)]
    ev = [[b[k], b[k + 1], bool(fix[b[k]])] for k in range(len(b) - 1)]
    last = len(g) - 1

    def angle(i, j):
        i, j = min(i, last), min(j, last)
        a, c = np.r_[sn[i], 1.0], np.r_[sn[j], 1.0]
        return np.degrees(np.arccos(min(1.0, a @ c / np.linalg.norm(a) / np.linalg.norm(c))))

    merged: list[list] = []
    for e in ev:  # micro-saccades: the gap goes, the fixation before it absorbs it and what follows
        if merged and not e[2] and (g[min(e[1], last)] - g[e[0]]) <= micro_s * 1e9 and angle(e[0], e[1]) <= amp_deg:
            merged[-1][1] = e[1]
        elif merged and merged[-1][2] == e[2]:
            merged[-1][1] = e[1]
        else:
            merged.append(list(e))
    out = []
    for a, c, is_fix in merged:
        if is_fix and g[min(c, last)] - g[a] > min_s * 1e9:
            near = lambda q: int(ts[np.argmin(np.abs(t - g[min(q, last)]))])  # noqa: E731
            out.append((near(a), near(c), float(gx[a:c].mean()), float(gy[a:c].mean())))
    return out


def _check_equal_to_reference(ours: list[Fixation], ref: list[tuple]) -> None:
    assert [(f.start_ns, f.end_ns) for f in ours] == [(r[0], r[1]) for r in ref]
    np.testing.assert_allclose([(f.x, f.y) for f in ours], [(r[2], r[3]) for r in ref], atol=1e-6)


def test_online_detector_equals_the_published_method_offline(neon):
    """Sample by sample, with bounded memory, the detector gives exactly what the published offline method gives:
    on the real recording and on simulated gaze at another camera size and irregular timing."""
    ts, x, y, worn, _, cam = neon
    ours = detect_fixations(ts, x, y, cam, worn=worn)
    ref = offline_reference(ts, x, y, cam)
    assert len(ref) > 15
    _check_equal_to_reference(ours, ref)
    g = synthetic_gaze(seed=3, duration_s=20, camera=CameraModel.pinhole(640, 480), noise_deg=0.2)
    _check_equal_to_reference(
        detect_fixations(g.ts_ns, g.x, g.y, g.camera), offline_reference(g.ts_ns, g.x, g.y, g.camera)
    )


def test_held_out_real_recording_agreement_and_naive_baseline(neon):
    """The device's own fixations as reference, onsets within 50 ms (calibration/evaluate.py). Nothing in the
    detector was chosen on this recording; the figure and the naive I-VT's are printed side by side."""
    ts, x, y, worn, device, cam = neon
    ours = detect_fixations(ts, x, y, cam, worn=worn)
    a, _ = match_fixations(ours, device, tolerance_ms=50)
    b, _ = match_fixations(naive_ivt(ts, x, y), device, tolerance_ms=50)
    msg = f"held-out real Neon recording: ours {a.summary()}\n  naive I-VT {b.summary()}"
    print("\n" + msg)
    assert len(device) == 23
    assert a.f1 >= HELD_OUT_F1_FLOOR, msg
    assert a.mean_centre_diff_px < 10, msg


def test_held_out_real_recording_agreement_with_the_imu(neon, neon_imu):
    """The same held-out comparison with the recording's gyro compensating head rotation (no scene video): the
    split fixations the device's video-compensated detector did not split are joined (before: 0.727 without IMU)."""
    ts, x, y, worn, device, cam = neon
    ours = detect_fixations(ts, x, y, cam, worn=worn, imu=neon_imu)
    a, _ = match_fixations(ours, device, tolerance_ms=50)
    b, _ = match_fixations(naive_ivt(ts, x, y), device, tolerance_ms=50)
    msg = f"held-out real Neon recording with IMU: ours {a.summary()}\n  naive I-VT {b.summary()}"
    print("\n" + msg)
    assert len(neon_imu) == 969
    assert a.f1 >= HELD_OUT_IMU_F1_FLOOR, msg
    assert a.mean_centre_diff_px < 10, msg


def test_neon_offset_sign_convention(neon_recording_dir):
    """The recording's stored gaze = raw + info.json gaze_offset (x and y both ADDED, y down): the device's fixation
    means (app 2.9.19, computed before the offset) sit at stored gaze - offset."""
    nr = pytest.importorskip("pupil_labs.neon_recording")
    rec = nr.open(neon_recording_dir)
    dx, dy = rec.info["gaze_offset"]
    t, p = rec.gaze.time, rec.gaze.point
    raw = np.fromfile(
        neon_recording_dir / "fixations ps1.raw",
        dtype=np.dtype(eval((neon_recording_dir / "fixations.dtype").read_text())),  # the recording's own dtype list
    )
    raw = raw[raw["event_type"] == 1]
    d = []
    for r in raw:
        m = (t >= r["start_timestamp_ns"]) & (t <= r["end_timestamp_ns"])
        d.append(p[m].mean(0) - [r["mean_gaze_x"], r["mean_gaze_y"]])
    med = np.median(np.array(d), axis=0)
    assert abs(med[0] - dx) < 2 and abs(med[1] - dy) < 2, (med, (dx, dy))


def test_smoothing_and_speed_are_savgol_and_the_forward_difference(neon):
    from scipy.signal import savgol_filter

    ts, x, y, _, _, cam = neon
    n = 600
    det = OnlineFixationDetector(cam, trace=True)
    det.push_many(ts[:n], x[:n], y[:n])
    det.flush()
    tr = np.array([row[1:] for row in det.trace])
    tg = np.array([row[0] for row in det.trace], dtype=np.int64)
    grid = np.arange(ts[0], ts[n - 1] + 1, 5_000_000)
    assert np.array_equal(tg, grid)  # resampled to exactly 200 Hz
    gx = np.interp(grid - ts[0], ts[:n] - ts[0], x[:n])
    gy = np.interp(grid - ts[0], ts[:n] - ts[0], y[:n])
    sx, sy = savgol_filter(gx, 11, 3, mode="interp"), savgol_filter(gy, 11, 3, mode="interp")
    np.testing.assert_allclose(tr[:, 0], sx, atol=1e-9)
    np.testing.assert_allclose(tr[:, 1], sy, atol=1e-9)
    speed = np.hypot(np.diff(sx), np.diff(sy)) / 5e-3  # px/s; the camera is 1600 px wide: no scaling
    np.testing.assert_allclose(tr[:-1, 2], speed, rtol=1e-9)
    assert np.isinf(tr[-1, 2])  # the last sample has no forward difference
    assert np.all(tr[:, 3] == 1200.0)  # no scene video: the base threshold


def test_streaming_equals_batch_whatever_the_chunking(neon):
    ts, x, y, worn, _, cam = neon
    batch = detect_fixations(ts, x, y, cam, worn=worn)
    det = OnlineFixationDetector(cam)
    one = [f for i in range(len(ts)) for f in det.push(int(ts[i]), float(x[i]), float(y[i]), bool(worn[i]))]
    one += det.flush()
    det = OnlineFixationDetector(cam)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(np.arange(1, len(ts)), 40, replace=False))
    chunked = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(ts)], strict=True):
        chunked += det.push_many(ts[a:b], x[a:b], y[a:b], worn[a:b])
    chunked += det.flush()
    assert batch == one == chunked and len(batch) > 10


def _latencies(ts, x, y, cam, worn=None):
    det = OnlineFixationDetector(cam)
    lat = []
    for i in range(len(ts)):
        for f in det.push(int(ts[i]), float(x[i]), float(y[i]), True if worn is None else bool(worn[i])):
            lat.append((ts[i] - f.end_ns) / 1e6)
    return det, np.array(lat)


def test_fixations_are_reported_within_60_ms_of_their_end(neon):
    """Online: a fixation is final and emitted 50-55 ms after its end (the first saccade sample) at 200 Hz: smoothing
    half-window + forward difference (30 ms), the micro-saccade wait (20 ms), resampling (<= 5 ms). On the real
    recording and on 30 s of simulated gaze with timing jitter; a sample lost just then can add its interval."""
    ts, x, y, worn, _, cam = neon
    det, lat = _latencies(ts, x, y, cam, worn)
    g = synthetic_gaze(seed=1, duration_s=30)
    _, lat2 = _latencies(g.ts_ns, g.x, g.y, g.camera)
    lat = np.r_[lat, lat2]
    msg = (
        f"latency of fixation ends: median {np.median(lat):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, "
        f"max {lat.max():.1f} ms over {len(lat)} fixations"
    )
    print("\n" + msg)
    assert det.emission_delay_ns == 55_000_000
    assert len(lat) > 100 and lat.min() >= 0, msg
    assert np.percentile(lat, 95) <= 56 and np.mean(lat <= 60) >= 0.98, msg
    assert lat.max() <= 55 + 10 + 1, msg  # the largest hole in these streams is 10 ms


# ---------------------------------------------------------------------------------------------- synthetic gaze
def make_gaze(fixes, cam: CameraModel, sacc_s=0.03, noise_deg=0.05, seed=0):
    """fixes: [(duration_s, x_px, y_px)] joined by linear saccades. Returns ts, x, y, truth [Fixation]."""
    rng = np.random.default_rng(seed)
    ppd = cam.px_per_degree()
    xs, ys, truth = [], [], []
    t = 0
    prev = None
    for dur, fx, fy in fixes:
        if prev is not None:
            k = int(round(sacc_s * HZ))
            for i in range(1, k + 1):
                a = i / (k + 1)
                xs.append(prev[0] + a * (fx - prev[0]))
                ys.append(prev[1] + a * (fy - prev[1]))
            t += k
        n = int(round(dur * HZ))
        truth.append(Fixation(T0 + int(t * 1e9 / HZ), T0 + int((t + n - 1) * 1e9 / HZ), fx, fy, "truth"))
        xs += list(fx + rng.normal(0, noise_deg * ppd, n))
        ys += list(fy + rng.normal(0, noise_deg * ppd, n))
        t += n
        prev = (fx, fy)
    ts = T0 + np.round(np.arange(len(xs)) * 1e9 / HZ).astype(np.int64)
    return ts, np.array(xs), np.array(ys), truth


@pytest.fixture(scope="module")
def pin():
    return CameraModel.pinhole(1600, 1200)


def test_known_fixations_recovered(pin):
    ppd = pin.px_per_degree()
    plan = [(0.3, 800, 600), (0.25, 800 + 10 * ppd, 600), (0.4, 800 + 10 * ppd, 600 + 8 * ppd), (0.2, 500, 400)]
    ts, x, y, truth = make_gaze(plan, pin)
    ours = detect_fixations(ts, x, y, pin)
    a, pairs = match_fixations(ours, truth, tolerance_ms=20)
    assert a.f1 == 1.0, a.summary()
    assert a.mean_centre_diff_px < 0.3 * ppd, a.summary()
    for i, j in pairs:  # durations within 3 smoothing half-windows of the truth
        assert abs(ours[i].duration_ns - truth[j].duration_ns) < 45e6
    assert all(f.source == "gazeqwen-ivat" for f in ours)


def test_simulated_wearers_across_seeds():
    """Realistic simulated gaze (main-sequence saccades, micro-saccades, drift, head motion, blinks, noise), four
    wearers: onsets within 50 ms of the truth at F1 >= 0.9 each (measured: 0.91-0.95)."""
    f1 = []
    for seed, noise, head in ((0, 0.05, 0.0), (1, 0.1, 5.0), (2, 0.2, 10.0), (3, 0.3, 20.0)):
        g = synthetic_gaze(seed, 20, noise_deg=noise, head_speed_deg_s=head)
        a, _ = match_fixations(detect_fixations(g.ts_ns, g.x, g.y, g.camera), g.fixations, 50)
        f1.append(a.f1)
    assert min(f1) >= 0.9, f1


def test_minimum_duration_and_microsaccade_merge(pin):
    ppd = pin.px_per_degree()
    # a 50 ms fixation between two long ones is dropped (<= 70 ms); one of 100 ms is kept
    for dur, expected in ((0.05, 2), (0.1, 3)):
        ts, x, y, _ = make_gaze([(0.3, 800, 600), (dur, 800 + 8 * ppd, 600), (0.3, 800 + 16 * ppd, 600)], pin)
        assert len(detect_fixations(ts, x, y, pin)) == expected
    # a fast 2.5-degree jump (10 ms) is above the threshold for 15 ms and spans < 2 deg between the smoothed gaze at
    # the gap's ends: a micro-saccade by the published rule, merged; a 4-degree one (25 ms above) is not
    neon = neon_like_camera()
    ppd = neon.px_per_degree()
    for amp, expected in ((2.5, 1), (4.0, 2)):
        ts, x, y, _ = make_gaze([(0.3, 800, 600), (0.3, 800 + amp * ppd, 600)], neon, sacc_s=0.01, noise_deg=0.01)
        got = detect_fixations(ts, x, y, neon)
        assert len(got) == expected, (amp, got)
        no_merge = detect_fixations(ts, x, y, neon, FixationParams(microsaccade_max_deg=0.0))
        assert len(no_merge) == 2  # the micro-saccade was seen: merging is what joined it


def test_speed_thresholds_scale_with_the_camera_width():
    """The published px/s thresholds refer to a 1600 px wide image: the same eye movements seen by a 640 px wide
    camera of the same field of view give the same fixations (px scaled by 0.4)."""
    big = CameraModel.pinhole(1600, 1200)
    g = synthetic_gaze(seed=5, duration_s=15, camera=big)
    small = big.scaled_to(640, 480)
    a = detect_fixations(g.ts_ns, g.x, g.y, big)
    b = detect_fixations(g.ts_ns, g.x * 0.4, g.y * 0.4, small)
    assert [(f.start_ns, f.end_ns) for f in a] == [(f.start_ns, f.end_ns) for f in b] and len(a) > 20


def test_gaps_and_not_worn_end_fixations(pin):
    ts, x, y, _ = make_gaze([(0.6, 800, 600)], pin)
    worn = np.ones(len(ts), bool)
    worn[50:60] = False  # glasses off for 50 ms in the middle
    got = detect_fixations(ts, x, y, pin, worn=worn)
    assert len(got) == 2 and got[0].end_ns < ts[50] and got[1].start_ns > ts[59]
    keep = np.r_[0:50, 70 : len(ts)]  # a 100 ms hole in the stream
    got = detect_fixations(ts[keep], x[keep], y[keep], pin)
    assert len(got) == 2


def test_ongoing_view_is_what_is_known_now(pin):
    ts, x, y, truth = make_gaze([(0.5, 800, 600), (0.5, 1100, 600)], pin)
    det = OnlineFixationDetector(pin)
    seen_during, seen_second = None, None
    for i in range(len(ts)):
        det.push(int(ts[i]), float(x[i]), float(y[i]))
        if ts[i] == truth[0].start_ns + 300_000_000:
            seen_during = det.ongoing()
        if ts[i] == truth[1].start_ns + 200_000_000:
            seen_second = det.ongoing()
    assert seen_during is not None and abs(seen_during.start_ns - truth[0].start_ns) <= 10_000_000
    # known up to the newest classified sample: the classification delay behind the present
    assert truth[0].start_ns + 300_000_000 - seen_during.end_ns == det.classification_delay_ns == 30_000_000
    assert abs(seen_second.x - 1100) < 3 and seen_second.start_ns >= truth[1].start_ns


def test_head_motion_compensation_with_scene_flow():
    """The head turns (the scene pans at ~120 deg/s) while the eye holds a world point: in camera coordinates the
    gaze moves with the scene. Without frames that looks like a saccade; with frames it is one fixation."""
    import cv2

    w, h = 320, 240
    cam = CameraModel.pinhole(w, h)
    ppd = cam.px_per_degree()
    rng = np.random.default_rng(1)
    world = cv2.GaussianBlur(rng.uniform(0, 255, (h, 3 * w)).astype(np.uint8), (0, 0), 2)
    world = np.repeat(world[:, :, None], 3, axis=2)
    fps, dur = 30.0, 1.2
    speed_px_s = 120 * ppd  # pan speed in the image (px/s)

    def shift(t):  # scene moves left: world x = image x + shift; pans only in the middle 0.6 s
        a = np.clip(t - 0.3, 0, 0.6)
        return a * speed_px_s

    frames = []
    for k in range(int(dur * fps)):
        t = k / fps
        s = shift(t)
        m = np.float32([[1, 0, -s], [0, 1, 0]])
        frames.append(SceneFrame(T0 + int(t * 1e9), cv2.warpAffine(world, m, (3 * w, h))[:, :w].copy(), k))
    n = int(dur * HZ)
    t = np.arange(n) / HZ
    gx = w * 0.75 - shift(t) + rng.normal(0, 0.05 * ppd, n)  # the world point the eye holds
    gy = h / 2 + rng.normal(0, 0.05 * ppd, n)
    ts = T0 + np.round(t * 1e9).astype(np.int64)
    without = detect_fixations(ts, gx, gy, cam)
    with_flow = detect_fixations(ts, gx, gy, cam, frames=frames)
    total = (ts[-1] - ts[0]) / 1e9
    cover = sum(f.duration_ns for f in with_flow) / 1e9
    assert len(with_flow) == 1 and cover > 0.9 * total, with_flow
    assert sum(f.duration_ns for f in without) / 1e9 < 0.7 * total, without


def test_adaptive_threshold_rises_with_scene_motion():
    """thr = 1200 + 0.8 x RMS(global flow) px/s (at 1600 px width): a scene panning at 500 px/s raises it to 1600."""
    import cv2

    w, h = 1600, 1200
    rng = np.random.default_rng(2)
    world = cv2.GaussianBlur(rng.uniform(0, 255, (h // 4, w // 2)).astype(np.uint8), (0, 0), 2)
    world = cv2.resize(np.repeat(world[:, :, None], 3, axis=2), (2 * w, h))
    det = OnlineFixationDetector(CameraModel.pinhole(w, h), trace=True)
    for k in range(12):
        t = k / 30
        det.push_frame(
            SceneFrame(T0 + int(t * 1e9), np.ascontiguousarray(world[:, int(500 * t) : int(500 * t) + w]), k)
        )
        for i in range(7):
            ts = T0 + int((t + i / HZ) * 1e9)
            det.push(ts, 800.0, 600.0)
    thr = np.array([r[4] for r in det.trace])
    assert thr[-1] == pytest.approx(1200 + 0.8 * 500, rel=0.05), thr[-5:]


def test_parameters_no_device_can_use_are_refused():
    for bad in (
        dict(sg_window=10),
        dict(velocity_threshold_px_s=float("nan")),
        dict(velocity_threshold_px_s=0.0),
        dict(min_duration_ms=-1.0),
        dict(sampling_hz=float("inf")),
        dict(flow_rms_window=0),
    ):
        with pytest.raises(ConfigError):
            FixationParams(**bad)


def test_detect_on_source_equals_the_arrays_and_uses_frames_and_imu_when_there_are_any(neon_recording_dir, neon):
    from gazeqwen_edge.calibration.evaluate import detect_on_source
    from gazeqwen_edge.calibration.target_scene import TargetScene
    from gazeqwen_edge.device import open_source

    ts, x, y, worn, device, cam = neon
    src = open_source(neon_recording_dir)  # gaze-only: asking it for frames raises, so gaze and IMU are read
    imu = list(src.records({ImuSample}))
    run = detect_on_source(src, OnlineFixationDetector(cam))
    src.close()
    assert run.fixations == detect_fixations(ts, x, y, cam, worn=worn, imu=imu)
    assert run.reference == device and (run.n_gaze, run.n_frames, run.n_imu) == (len(ts), 0, 969)

    scene = TargetScene(duration_s=1.0)
    run = detect_on_source(scene, OnlineFixationDetector(CameraModel(scene.intrinsics)))
    assert run.n_frames >= 29 and run.n_gaze >= 199 and run.reference == []


def test_synthetic_gaze_is_deterministic_and_its_truth_consistent():
    a, b = synthetic_gaze(seed=9, duration_s=10), synthetic_gaze(seed=9, duration_s=10)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.ts_ns, b.ts_ns) and a.fixations == b.fixations
    assert np.all(np.diff(a.ts_ns) > 0) and 1900 <= len(a.ts_ns) <= 2000
    f = a.fixations
    assert all(x.end_ns > x.start_ns + 70_000_000 for x in f)
    assert all(p.end_ns <= q.start_ns for p, q in zip(f, f[1:], strict=False))
    assert all(1.0 <= amp for *_, amp in a.saccades)
