"""Synthetic head-mounted gaze with known fixations, for choosing and checking fixation-detector settings without
touching real recordings (which are kept as held-out test data).

`synthetic_gaze(seed)` simulates a wearer, in angles, and projects the gaze through a scene camera model into
distorted scene px, the way a Neon reports it:

- sampling: 200 Hz with timing jitter (sd 0.2 ms) and occasional lost samples (p 0.002);
- fixations: lognormal durations (median 250 ms, 80 ms .. 2 s), a slow random-walk drift, and gaze motion in camera
  coordinates from head movement: the head's angular velocity is an Ornstein-Uhlenbeck process (RMS
  `head_speed_deg_s` per axis, correlation time 0.3 s) and during fixations the vestibulo-ocular reflex moves the eye
  against it (gain 1), so the gaze moves across the scene camera image while staying on its world point;
- micro-saccades inside fixations (rate `microsaccade_hz`, 0.1-1 deg): part of the fixation in the ground truth;
- saccades between fixations: amplitude 1 + Gamma(1.5, 5) deg (mean 8.5 deg), kept within +-35 x +-25 deg of the
  camera axis; duration from the main sequence D = 21 + 2.2 A ms (Carpenter 1988) with a minimum-jerk profile
  (peak velocity 1.875 A / D: 80 deg/s at 1 deg, 440 deg/s at 10 deg); optional post-saccadic oscillation (a damped
  0.1-0.5 deg wobble, part of the landing fixation);
- measurement noise: white, sd `noise_deg`, plus a slowly varying component of half that size;
- blinks (rate `blink_hz`, 80-400 ms): the gaze estimate dips 3-15 deg downwards and back with extra noise, as a
  video-based estimate does when the lid closes; a blink ends the fixation in progress and the next one begins after
  it (the ground truth has no fixation during a blink).

Ground truth fixations follow the dense convention of Pupil Labs' detector: a fixation starts at its first sample
and ends at the first sample of the saccade or blink that follows (the last sample for the final one); x, y is the
mean of its samples in px. Fixations cut by the end of the recording, and those a blink cut to 70 ms or less, are
left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gazeqwen_edge.calibration.camera import CameraModel
from gazeqwen_edge.device.records import Blink, CameraIntrinsics, Fixation

START_NS = 1_767_225_600_000_000_000
# A Neon-like scene camera without distortion: 1600x1200 px, focal length of the real unit in shared/fixtures
# (fx 888.4, REFERENCE.md section 4), so px speeds match a Neon's near the centre (15.5 px/deg).
NEON_LIKE_FOCAL_PX = 888.0
MIN_FIXATION_NS = 70_000_000  # ground truth keeps fixations longer than this (the definition the detector uses)


def neon_like_camera() -> CameraModel:
    """A distortion-free 1600x1200 camera with the Neon scene camera's focal length (see `NEON_LIKE_FOCAL_PX`)."""
    f = NEON_LIKE_FOCAL_PX
    K = np.array([[f, 0, 800.0], [0, f, 600.0], [0, 0, 1]])
    return CameraModel(CameraIntrinsics(K, np.zeros(8), 1600, 1200, {"origin": "synthetic Neon-like pinhole"}))


@dataclass(frozen=True, eq=False)
class SyntheticGaze:
    """A simulated recording: `ts_ns` (N,) int64 unix ns, `x`, `y` (N,) float64 distorted scene px, `worn` (N,)
    bool, the ground truth `fixations` (Fixation, source "truth"), `saccades` as (start_ns, end_ns, amplitude deg),
    `blinks`, and the `camera` the gaze was projected through."""

    ts_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    worn: np.ndarray
    fixations: list[Fixation]
    saccades: list[tuple[int, int, float]]
    blinks: list[Blink]
    camera: CameraModel
    settings: dict = field(default_factory=dict)


def _to_px(camera: CameraModel, az_deg: np.ndarray, el_deg: np.ndarray) -> np.ndarray:
    """(azimuth, elevation) in degrees (x right, y down) -> distorted px through the camera model."""
    az, el = np.radians(az_deg), np.radians(el_deg)
    ray = np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], 1)
    return camera.from_normalized(ray[:, :2] / ray[:, 2:3])


def synthetic_gaze(
    seed: int = 0,
    duration_s: float = 60.0,
    camera: CameraModel | None = None,
    rate_hz: float = 200.0,
    noise_deg: float = 0.1,
    head_speed_deg_s: float = 5.0,
    microsaccade_hz: float = 1.0,
    blink_hz: float = 0.25,
    pso: bool = True,
    start_ns: int = START_NS,
) -> SyntheticGaze:
    """Simulate `duration_s` of gaze (see the module docstring); the same arguments give the same arrays."""
    rng = np.random.default_rng(seed)
    cam = camera or neon_like_camera()
    n = int(duration_s * rate_hz)
    dt = 1.0 / rate_hz
    ang = np.zeros((n, 2))  # (azimuth, elevation) deg, x right, y down
    extra = np.zeros((n, 2))  # post-saccadic wobble (does not move the fixation)
    fix_id = np.full(n, -1)
    sacc_idx: list[tuple[int, int, float]] = []
    blink_idx: list[tuple[int, int]] = []

    blink_at: list[tuple[int, int]] = []  # blink schedule (sample indices), independent of the scanpath
    tb = rng.exponential(1 / blink_hz) if blink_hz > 0 else math.inf
    while tb < duration_s:
        d = float(np.clip(rng.lognormal(math.log(0.15), 0.4), 0.08, 0.4))
        blink_at.append((int(tb * rate_hz), int((tb + d) * rate_hz)))
        tb += d + rng.exponential(1 / blink_hz)

    # head angular velocity (deg/s): Ornstein-Uhlenbeck, RMS head_speed_deg_s per axis, correlation time 0.3 s
    tau = 0.3
    head = np.zeros((n, 2))
    a_ou = math.exp(-dt / tau)
    kick = rng.normal(0, head_speed_deg_s * math.sqrt(1 - a_ou * a_ou), (n, 2))
    for q in range(1, n):
        head[q] = a_ou * head[q - 1] + kick[q]
    pos = np.array([rng.uniform(-10, 10), rng.uniform(-8, 8)])
    drift_sd = 0.5 * math.sqrt(dt)  # random walk, 0.5 deg / sqrt(s)
    i = k = bi = 0
    while i < n:
        # ---- a fixation, with micro-saccades (minimum-jerk steps) inside
        m = int(round(float(np.clip(rng.lognormal(math.log(0.25), 0.5), 0.08, 2.0)) * rate_hz))
        ms_steps = np.zeros((m, 2))
        for _ in range(rng.poisson(microsaccade_hz * m * dt)):
            a = rng.uniform(0.1, 1.0)
            ms_n = max(2, int(round((0.021 + 0.0022 * a) * rate_hz)))
            if m - ms_n <= 1:
                continue
            s0 = int(rng.integers(0, m - ms_n))
            th = rng.uniform(0, 2 * math.pi)
            u = np.arange(ms_n + 1) / ms_n
            prof = u**3 * (10 - 15 * u + 6 * u**2)
            ms_steps[s0 : s0 + ms_n] += a * np.outer(np.diff(prof), [math.cos(th), math.sin(th)])
        j = i
        while j < min(n, i + m):
            if bi < len(blink_at) and j >= blink_at[bi][0]:
                break
            ang[j] = pos
            fix_id[j] = k
            vor = -head[j] * (np.abs(pos) < 45)  # the eye counter-rotates (until it reaches its range)
            pos = pos + vor * dt + rng.normal(0, drift_sd, 2) + ms_steps[j - i]
            j += 1
        k += 1
        i = j
        if i >= n:
            break
        if bi < len(blink_at) and i >= blink_at[bi][0]:  # ---- a blink ends the fixation
            b1 = min(n, max(i + 1, blink_at[bi][1]))
            u = np.linspace(0, math.pi, b1 - i)
            ang[i:b1, 0] = pos[0] + rng.normal(0, 1.0, b1 - i)
            ang[i:b1, 1] = pos[1] + rng.uniform(3, 15) * np.sin(u) + rng.normal(0, 1.0, b1 - i)
            blink_idx.append((i, b1))
            bi += 1
            i = b1
            if i >= n:
                break
            if rng.random() < 0.5:
                continue  # the eye reopens on the same point: a new fixation there
        # ---- a saccade to a new point (main-sequence duration, minimum-jerk profile)
        for _ in range(50):
            amp = 1.0 + rng.gamma(1.5, 5.0)
            th = rng.uniform(0, 2 * math.pi)
            new = pos + amp * np.array([math.cos(th), math.sin(th)])
            if abs(new[0]) <= 35 and abs(new[1]) <= 25:
                break
        else:
            new = pos * 0.5
        amp = float(np.hypot(*(new - pos)))
        s_n = max(2, int(round((0.021 + 0.0022 * amp) * rate_hz)))
        s1 = min(n, i + s_n)
        u = np.arange(1, s1 - i + 1) / s_n
        ang[i:s1] = pos + np.outer(u**3 * (10 - 15 * u + 6 * u**2), new - pos)
        sacc_idx.append((i, s1, amp))
        if pso and rng.random() < 0.5:  # a damped wobble along the saccade on landing
            w_n = min(n - s1, int(0.04 * rate_hz))
            tt = np.arange(w_n) * dt
            wob = rng.uniform(0.1, 0.5) * np.exp(-tt / 0.012) * np.cos(2 * math.pi * 25 * tt)
            extra[s1 : s1 + w_n] += np.outer(wob, (new - pos) / max(amp, 1e-9))
        pos = new
        i = s1

    # measurement noise: white + a part correlated over ~100 ms (unit sd)
    slow = np.stack([np.convolve(rng.normal(0, 1, n), np.ones(20) / math.sqrt(20), "same") for _ in range(2)], 1)
    obs = ang + extra + rng.normal(0, noise_deg, (n, 2)) + 0.5 * noise_deg * slow
    px = _to_px(cam, obs[:, 0], obs[:, 1])

    # timestamps: 200 Hz with jitter; a few samples lost
    ts = start_ns + np.round((np.arange(n) * dt + rng.normal(0, 0.0002, n)) * 1e9).astype(np.int64)
    ts = np.maximum.accumulate(ts)
    keep = rng.random(n) >= 0.002
    keep &= np.r_[True, np.diff(ts) > 0]

    fixes: list[Fixation] = []
    for f in range(k):
        idx = np.flatnonzero(fix_id == f)
        if len(idx) == 0 or idx[-1] >= n - 1:
            continue  # cut by the end of the recording
        end = idx[-1] + 1  # the first sample of what follows (dense convention)
        if ts[end] - ts[idx[0]] <= MIN_FIXATION_NS:
            continue  # cut short by a blink: not a fixation by the definition used (> 70 ms)
        kept = idx[keep[idx]]
        if len(kept) == 0:
            continue
        fixes.append(
            Fixation(int(ts[idx[0]]), int(ts[end]), float(px[kept, 0].mean()), float(px[kept, 1].mean()), "truth")
        )
    saccades = [(int(ts[a]), int(ts[min(b, n - 1)]), amp) for a, b, amp in sacc_idx]
    blinks = [Blink(int(ts[a]), int(ts[min(b, n - 1)])) for a, b in blink_idx]
    settings = dict(
        seed=seed,
        duration_s=duration_s,
        rate_hz=rate_hz,
        noise_deg=noise_deg,
        head_speed_deg_s=head_speed_deg_s,
        microsaccade_hz=microsaccade_hz,
        blink_hz=blink_hz,
        pso=pso,
    )
    return SyntheticGaze(
        ts[keep], px[keep, 0], px[keep, 1], np.ones(int(keep.sum()), bool), fixes, saccades, blinks, cam, settings
    )
