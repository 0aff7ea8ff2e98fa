"""Synthetic head-mounted gaze with known fixations, for choosing and checking fixation-detector settings without
touching real recordings (which are kept as held-out test data).

`synthetic_gaze(seed)` simulates a wearer, in angles, and projects the gaze through a scene camera model into
distorted scene px, the way a Neon reports it:

- sampling: 200 Hz with timing jitter (sd 0.2 ms) and occasional lost samples (p 0.002);
- fixations: lognormal durations (median 250 ms, 80 ms .. 2 s), a random-walk drift (`drift_deg_sqrt_s`), and gaze
  motion in camera coordinates from head movement: the head's angular velocity is an Ornstein-Uhlenbeck process (RMS
  `head_speed_deg_s` about the camera's vertical and horizontal axes (yaw, pitch), `head_roll_deg_s` about its
  optical axis, correlation time 0.3 s) and during fixations the vestibulo-ocular reflex turns the eye against it
  (gain 1, a distant target): the gaze ray is rotated by the inverse of the head's rotation over each sample
  interval, so the gaze moves across the scene camera image exactly as the world point it stays on;
- the IMU: a gyroscope on the same head, sampled at `imu_hz` (~110 Hz like the Neon's, timing jitter sd 0.2 ms),
  reads that angular velocity in the Neon IMU's frame (the documented IMU-to-scene-camera rotation,
  calibration/imu.py) in deg/s, plus a constant bias (uniform +-`gyro_bias_deg_s` per axis) and white noise (sd
  `gyro_noise_deg_s`; the ICM-20948's noise density of 0.015 deg/s/sqrt(Hz) over a ~50 Hz band is ~0.1 deg/s);
  `SyntheticGaze.imu_samples()` gives it as `ImuSample` records. Its random numbers come from a stream of their own,
  as do those of the roll, so the gaze of a given seed is the same whatever the IMU settings;
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
from gazeqwen_edge.calibration.imu import imu_to_camera_rotation
from gazeqwen_edge.device.records import Blink, CameraIntrinsics, Fixation, ImuSample

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
    `blinks`, the `camera` the gaze was projected through, and the simulated gyroscope: `imu_ts_ns` (M,) int64 unix
    ns, `gyro_deg_s` (M, 3) float64 deg/s in the Neon IMU frame (x right, y forward, z up)."""

    ts_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    worn: np.ndarray
    fixations: list[Fixation]
    saccades: list[tuple[int, int, float]]
    blinks: list[Blink]
    camera: CameraModel
    settings: dict = field(default_factory=dict)
    imu_ts_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gyro_deg_s: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def imu_samples(self) -> list[ImuSample]:
        """The simulated gyroscope as `ImuSample` records (no acceleration or orientation), in time order."""
        return [ImuSample(t, tuple(g)) for t, g in zip(self.imu_ts_ns.tolist(), self.gyro_deg_s.tolist(), strict=True)]


def _to_px(camera: CameraModel, az_deg: np.ndarray, el_deg: np.ndarray) -> np.ndarray:
    """(azimuth, elevation) in degrees (x right, y down) -> distorted px through the camera model."""
    az, el = np.radians(az_deg), np.radians(el_deg)
    ray = np.stack([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], 1)
    return camera.from_normalized(ray[:, :2] / ray[:, 2:3])


def _counter_rotate(pos_deg: np.ndarray, w_rad_s: np.ndarray, dt: float) -> np.ndarray:
    """The (azimuth, elevation) deg of a world-fixed direction after the camera turned by `w_rad_s` (camera frame:
    x right, y down, z forward) for `dt` s: the ray rotated by -w dt (Rodrigues' formula)."""
    theta = math.sqrt(float(w_rad_s @ w_rad_s)) * dt
    if theta == 0.0:
        return pos_deg
    k = -w_rad_s / np.linalg.norm(w_rad_s)
    az, el = math.radians(pos_deg[0]), math.radians(pos_deg[1])
    r = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
    c, s = math.cos(theta), math.sin(theta)
    r = r * c + np.cross(k, r) * s + k * float(k @ r) * (1 - c)
    return np.array([math.degrees(math.atan2(r[0], r[2])), math.degrees(math.asin(max(-1.0, min(1.0, r[1]))))])


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
    head_roll_deg_s: float = 0.0,
    imu_hz: float = 110.0,
    gyro_noise_deg_s: float = 0.1,
    gyro_bias_deg_s: float = 1.0,
    drift_deg_sqrt_s: float = 0.5,
) -> SyntheticGaze:
    """Simulate `duration_s` of gaze (see the module docstring); the same arguments give the same arrays."""
    rng = np.random.default_rng(seed)
    rng_head = np.random.default_rng([seed, 1])  # roll and the IMU: streams of their own (module docstring)
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

    # head angular velocity (deg/s): Ornstein-Uhlenbeck, correlation time 0.3 s; RMS head_speed_deg_s for the
    # gaze's azimuth / elevation rates (turning right / down), head_roll_deg_s about the optical axis
    tau = 0.3
    head = np.zeros((n, 2))
    a_ou = math.exp(-dt / tau)
    kick = rng.normal(0, head_speed_deg_s * math.sqrt(1 - a_ou * a_ou), (n, 2))
    for q in range(1, n):
        head[q] = a_ou * head[q - 1] + kick[q]
    roll = np.zeros(n)
    kick_roll = rng_head.normal(0, head_roll_deg_s * math.sqrt(1 - a_ou * a_ou), n)
    for q in range(1, n):
        roll[q] = a_ou * roll[q - 1] + kick_roll[q]
    # the camera's angular velocity in its frame (rad/s): turning right is +y (y down), turning down is -x
    w_cam = np.radians(np.stack([-head[:, 1], head[:, 0], roll], 1))
    pos = np.array([rng.uniform(-10, 10), rng.uniform(-8, 8)])
    drift_sd = drift_deg_sqrt_s * math.sqrt(dt)  # random walk, deg / sqrt(s)
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
            if np.all(np.abs(pos) < 45):  # the eye counter-rotates (until it reaches its range)
                pos = _counter_rotate(pos, w_cam[j], dt)
            pos = pos + rng.normal(0, drift_sd, 2) + ms_steps[j - i]
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
    # the gyroscope: the head's rate at each IMU sample (the rate applied over the gaze interval holding it), in the
    # IMU frame, + bias + noise
    m = int(duration_s * imu_hz)
    t_imu = rng_head.uniform(0, 1 / imu_hz) + np.arange(m) / imu_hz + rng_head.normal(0, 0.0002, m)
    t_imu = np.sort(t_imu[(t_imu >= 0) & (t_imu < n * dt)])
    w_imu = np.degrees(w_cam[np.minimum((t_imu / dt).astype(int), n - 1)]) @ imu_to_camera_rotation()  # R.T @ w
    bias = rng_head.uniform(-gyro_bias_deg_s, gyro_bias_deg_s, 3)
    gyro = w_imu + bias + rng_head.normal(0, gyro_noise_deg_s, (len(t_imu), 3))
    imu_ts = start_ns + np.round(t_imu * 1e9).astype(np.int64)
    keep_imu = np.r_[True, np.diff(imu_ts) > 0]

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
        head_roll_deg_s=head_roll_deg_s,
        imu_hz=imu_hz,
        gyro_noise_deg_s=gyro_noise_deg_s,
        gyro_bias_deg_s=gyro_bias_deg_s,
        drift_deg_sqrt_s=drift_deg_sqrt_s,
    )
    return SyntheticGaze(
        ts[keep],
        px[keep, 0],
        px[keep, 1],
        np.ones(int(keep.sum()), bool),
        fixes,
        saccades,
        blinks,
        cam,
        settings,
        imu_ts[keep_imu],
        gyro[keep_imu],
    )
