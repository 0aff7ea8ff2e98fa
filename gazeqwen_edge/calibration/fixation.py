"""Online velocity-based fixation detection, sample by sample with bounded latency.

Pipeline per gaze sample (Pupil Labs' published recipe for Neon, REFERENCE.md section 4, with thresholds in degrees):
1. distorted scene px -> normalised camera coordinates through the camera model (so speeds are angles);
2. Savitzky-Golay smoothing (window 11, order 3 at 200 Hz; centred, so a sample is smoothed once the 5 samples after
   it have arrived; the first/last 5 samples of a segment use the fit of the first/last window, like
   `scipy.signal.savgol_filter(mode="interp")`);
3. angular gaze speed from the smoothed positions (the same finite differences as `numpy.gradient` on the real
   timestamps), minus the scene's own motion at the gaze point when scene frames give optical flow (head-motion
   compensation: the eye tracking a world point while the head turns is not a saccade);
4. a saccade is a run of samples above `saccade_offset_deg_s` that peaks above `saccade_onset_deg_s` (hysteresis);
   both thresholds rise by `flow_gain` x RMS(scene flow) (the adaptive threshold thr = base + 0.8 RMS(flow));
5. fixations = the runs between saccades; neighbours separated by a micro-saccade (centres < `merge_max_angle_deg`
   apart, gap <= `merge_max_gap_ms`) are merged; fixations shorter than `min_duration_ms` are dropped.

A fixation is emitted (returned by `push`) once it has ended: its end is known ~(window/2 + 1) samples after it
happens plus, at most, the micro-saccade merge wait. `ongoing()` gives what is known about the fixation in progress.
Gaps in the stream longer than `max_sample_gap_ms` and samples with worn=False end the current segment.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gazeqwen_edge.calibration.camera import CameraModel
from gazeqwen_edge.calibration.flow import FlowField, SceneFlow
from gazeqwen_edge.device.records import Fixation, GazeSample, SceneFrame
from gazeqwen_edge.errors import ConfigError

DETECTOR_NAME = "gazeqwen-ivt"


@dataclass(frozen=True)
class FixationParams:
    """Detector parameters (angles in degrees, speeds in deg/s).

    The saccade thresholds were chosen on the real Neon demo recording (the only real data here, 23 device
    fixations) from a small grid (onset 77-110, offset 30-77 deg/s): onset 95-110 with offset 60 gave F1 0.86-0.88;
    Pupil Labs' published base of 1200 px/s (~77 deg/s on the Neon) gave 0.65-0.72 with this pipeline (their speed
    measure and flow term differ). Treat them as fitted to one recording.
    """

    sampling_hz: float = 200.0  # nominal gaze rate; the smoothing window is scaled to keep its duration
    sg_window: int = 11  # Savitzky-Golay window in samples at 200 Hz
    sg_order: int = 3
    saccade_onset_deg_s: float = 100.0  # a saccade must peak above this (base, before the flow term)
    saccade_offset_deg_s: float = 60.0  # ... and extends over the neighbouring samples above this
    flow_gain: float = 0.8  # thresholds += flow_gain * RMS(scene flow) (deg/s)
    flow_window_s: float = 1.0  # RMS of the scene flow over this recent window
    flow_compensation: bool = True  # subtract the scene's motion at the gaze point from the gaze velocity
    flow_radius_frac: float = 0.15  # neighbourhood (fraction of frame width) for the local scene flow
    min_duration_ms: float = 70.0
    merge_max_angle_deg: float = 2.0
    merge_max_gap_ms: float = 60.0  # smoothing stretches a 10 ms micro-saccade to ~35 ms
    max_tail_ms: float = 50.0  # samples above the offset threshold count as fixation once they last this long
    max_sample_gap_ms: float = 40.0

    def __post_init__(self):
        if self.sg_window < 3 or self.sg_window % 2 == 0 or self.sg_order >= self.sg_window:
            raise ConfigError(f"sg_window must be odd and > sg_order (got {self.sg_window}, {self.sg_order})")
        if not 0 < self.saccade_offset_deg_s <= self.saccade_onset_deg_s:
            raise ConfigError("need 0 < saccade_offset_deg_s <= saccade_onset_deg_s")
        if self.sampling_hz <= 0 or self.min_duration_ms < 0:
            raise ConfigError("sampling_hz must be > 0 and min_duration_ms >= 0")

    @property
    def window(self) -> int:
        """Smoothing window in samples at `sampling_hz` (odd; 11 at 200 Hz)."""
        n = round(self.sg_window * self.sampling_hz / 200.0)
        n = n if n % 2 == 1 else n + 1
        return max(n, self.sg_order + 2 if (self.sg_order + 2) % 2 == 1 else self.sg_order + 3)


@dataclass
class _Run:
    start_ns: int
    last_ns: int
    sx: float  # sums of raw px (for the mean position)
    sy: float
    rx: float  # sums of unit rays (for angles)
    ry: float
    rz: float
    n: int

    @property
    def duration_ns(self) -> int:
        return self.last_ns - self.start_ns

    def add(self, s: tuple) -> None:
        self.last_ns = s[0]
        self.sx += s[1]
        self.sy += s[2]
        self.rx += s[3]
        self.ry += s[4]
        self.rz += s[5]
        self.n += 1

    def absorb(self, other: _Run) -> None:
        self.last_ns = other.last_ns
        self.sx += other.sx
        self.sy += other.sy
        self.rx += other.rx
        self.ry += other.ry
        self.rz += other.rz
        self.n += other.n

    def ray(self) -> tuple[float, float, float]:
        n = math.sqrt(self.rx * self.rx + self.ry * self.ry + self.rz * self.rz)
        return self.rx / n, self.ry / n, self.rz / n

    def fixation(self) -> Fixation:
        return Fixation(self.start_ns, self.last_ns, self.sx / self.n, self.sy / self.n, source=DETECTOR_NAME)


def _angle_deg(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    c = a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
    d = math.sqrt(max(0.0, (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2))
    return math.degrees(2 * math.asin(min(1.0, d / 2))) if c > 0 else math.degrees(math.acos(max(-1.0, c)))


class OnlineFixationDetector:
    """Velocity-based online fixation detector (see the module docstring).

        det = OnlineFixationDetector(CameraModel.from_calibration_bin(rec_dir))
        for rec in source.records({GazeSample, SceneFrame}):
            for fix in det.push_record(rec):   # Fixation(source="gazeqwen-ivt") once each has ended
                ...
            now = det.ongoing()                 # the fixation in progress (or None), as known now
        rest = det.flush()                      # at the end of the stream

    Positions are in the px the samples come in (offset-corrected distorted scene px, normally); `offset` is added
    to every sample first when given. Every buffer is bounded.
    """

    def __init__(
        self,
        camera: CameraModel | None = None,
        params: FixationParams | None = None,
        offset: tuple[float, float] = (0.0, 0.0),
        trace: bool = False,
    ):
        from scipy.signal import savgol_coeffs

        self.camera = camera if camera is not None else CameraModel.pinhole(1600, 1200)
        self.params = params or FixationParams()
        self.offset = (float(offset[0]), float(offset[1]))
        p = self.params
        self.W = p.window
        self.h = self.W // 2
        # coefficients evaluating the window's polynomial fit at each position (use="dot": oldest sample first)
        self._coef = [tuple(savgol_coeffs(self.W, p.sg_order, pos=i, use="dot")) for i in range(self.W)]
        self._min_ns = int(p.min_duration_ms * 1e6)
        self._merge_gap_ns = int(p.merge_max_gap_ms * 1e6)
        self._max_tail_ns = int(p.max_tail_ms * 1e6)
        self._max_gap_ns = int(p.max_sample_gap_ms * 1e6)
        self._flow: SceneFlow | None = None
        self._flow_hist: deque[tuple[int, float]] = deque(maxlen=256)
        self._flow_field: FlowField | None = None
        self.n_samples = 0
        self.n_dropped = 0
        self.last_input_ns: int | None = None
        # with trace=True: (ts_ns, smoothed nx, smoothed ny, speed deg/s, threshold increase) per classified sample
        self.trace: list[tuple[int, float, float, float, float]] | None = [] if trace else None
        self._reset_segment()
        self._run: _Run | None = None
        self._pending: _Run | None = None
        self._tail: list[tuple] = []
        self._in_saccade = False

    # ---------------------------------------------------------------------------------------------- segment state
    def _reset_segment(self) -> None:
        W = self.W
        self._buf_t: deque[int] = deque(maxlen=W)
        self._buf_x: deque[float] = deque(maxlen=W)  # normalised camera coordinates
        self._buf_y: deque[float] = deque(maxlen=W)
        self._buf_raw: deque[tuple[float, float]] = deque(maxlen=W)
        self._seg_n = 0
        # smoothed samples waiting for their velocity: (ts, nx, ny, rawx, rawy)
        self._sm: deque[tuple] = deque(maxlen=3)
        self._sm_first = True

    @property
    def latency_samples(self) -> int:
        """Samples between a sample's arrival and its classification (window/2 + 1 for the central difference)."""
        return self.h + 1

    # --------------------------------------------------------------------------------------------------- inputs
    def push_record(self, rec) -> list[Fixation]:
        if isinstance(rec, GazeSample):
            return self.push(rec.ts_ns, rec.x, rec.y, rec.worn)
        if isinstance(rec, SceneFrame):
            self.push_frame(rec)
        return []

    def push_frame(self, frame: SceneFrame) -> FlowField | None:
        """Feed a scene frame (enables head-motion compensation and the adaptive threshold)."""
        if self._flow is None:
            self._flow = SceneFlow(self.camera)
        f = self._flow.push(frame)
        if f is not None:
            self._flow_field = f
            self._flow_hist.append((f.t1_ns, f.rms_deg_s**2))
        return f

    def push(self, ts_ns: int, x: float, y: float, worn: bool = True) -> list[Fixation]:
        """Add one gaze sample (scene px); returns the fixations that became final with it (usually none)."""
        ts_ns = int(ts_ns)
        out: list[Fixation] = []
        if self.last_input_ns is not None and ts_ns <= self.last_input_ns:
            self.n_dropped += 1  # out of order or duplicate
            return out
        if self._seg_n and (not worn or ts_ns - self.last_input_ns > self._max_gap_ns):
            self._end_segment(out)
        self.last_input_ns = ts_ns
        if not worn or not (math.isfinite(x) and math.isfinite(y)):
            self.n_dropped += 1
            return out
        x += self.offset[0]
        y += self.offset[1]
        n = self.camera.to_normalized((x, y))[0]
        self._add_normalised(ts_ns, float(n[0]), float(n[1]), x, y, out)
        return out

    def push_many(self, ts_ns, x, y, worn=None) -> list[Fixation]:
        """Add many samples at once (same result as pushing them one by one; the camera model runs vectorised)."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        xs = np.asarray(x, dtype=np.float64) + self.offset[0]
        ys = np.asarray(y, dtype=np.float64) + self.offset[1]
        wv = np.ones(len(ts), bool) if worn is None else np.asarray(worn, bool)
        finite = np.isfinite(xs) & np.isfinite(ys)
        nrm = np.full((len(ts), 2), np.nan)
        if finite.any():
            nrm[finite] = self.camera.to_normalized(np.stack([xs[finite], ys[finite]], 1))
        out: list[Fixation] = []
        for i in range(len(ts)):
            t = int(ts[i])
            if self.last_input_ns is not None and t <= self.last_input_ns:
                self.n_dropped += 1
                continue
            if self._seg_n and (not wv[i] or t - self.last_input_ns > self._max_gap_ns):
                self._end_segment(out)
            self.last_input_ns = t
            if not wv[i] or not finite[i]:
                self.n_dropped += 1
                continue
            self._add_normalised(t, float(nrm[i, 0]), float(nrm[i, 1]), float(xs[i]), float(ys[i]), out)
        return out

    def flush(self) -> list[Fixation]:
        """End of stream: classify the buffered samples and emit the last fixation (if long enough)."""
        out: list[Fixation] = []
        self._end_segment(out)
        return out

    # ---------------------------------------------------------------------------------------------- smoothing
    def _smooth_at(self, pos: int) -> tuple[float, float]:
        c = self._coef[pos]
        sx = sy = 0.0
        for ci, xi, yi in zip(c, self._buf_x, self._buf_y, strict=True):
            sx += ci * xi
            sy += ci * yi
        return sx, sy

    def _add_normalised(self, ts: int, nx: float, ny: float, rx: float, ry: float, out: list[Fixation]) -> None:
        self.n_samples += 1
        self._buf_t.append(ts)
        self._buf_x.append(nx)
        self._buf_y.append(ny)
        self._buf_raw.append((rx, ry))
        self._seg_n += 1
        if self._seg_n < self.W:
            return
        if self._seg_n == self.W:  # first full window: the leading samples from the fit of the first window
            for pos in range(self.h):
                self._smoothed(pos, out)
        self._smoothed(self.h, out)

    def _smoothed(self, pos: int, out: list[Fixation]) -> None:
        sx, sy = self._smooth_at(pos)
        raw = self._buf_raw[pos]
        self._push_smoothed((self._buf_t[pos], sx, sy, raw[0], raw[1]), out)

    def _push_smoothed(self, s: tuple, out: list[Fixation]) -> None:
        self._sm.append(s)
        if len(self._sm) == 2 and self._sm_first:  # first sample of the segment: forward difference
            a, b = self._sm[0], self._sm[1]
            dt = (b[0] - a[0]) * 1e-9
            self._sm_first = False
            self._classify(a, (b[1] - a[1]) / dt, (b[2] - a[2]) / dt, out)
        elif len(self._sm) == 3:  # interior: numpy.gradient's second-order formula on uneven spacing
            a, b, c = self._sm
            hs, hd = (b[0] - a[0]) * 1e-9, (c[0] - b[0]) * 1e-9
            wa, wb, wc = -hd / (hs * (hd + hs)), (hd - hs) / (hs * hd), hs / (hd * (hd + hs))
            self._classify(b, wa * a[1] + wb * b[1] + wc * c[1], wa * a[2] + wb * b[2] + wc * c[2], out)

    def _end_segment(self, out: list[Fixation]) -> None:
        if self._seg_n >= self.W:  # trailing samples from the fit of the last window, then a backward difference
            for pos in range(self.h + 1, self.W):
                self._smoothed(pos, out)
            if len(self._sm) >= 2:
                b, c = self._sm[-2], self._sm[-1]
                dt = (c[0] - b[0]) * 1e-9
                self._classify(c, (c[1] - b[1]) / dt, (c[2] - b[2]) / dt, out)
        self._reset_segment()
        self._close_all(out)

    # ---------------------------------------------------------------------------------------------- velocity
    def _flow_terms(self, ts: int, raw: tuple[float, float]) -> tuple[float, float, float]:
        """(scene velocity at the gaze point in normalised coords/s (x, y), threshold increase in deg/s)."""
        f = self._flow_field
        if f is None or ts - f.t1_ns > 2 * self._flow.max_gap_ns:
            return 0.0, 0.0, 0.0
        p = self.params
        while self._flow_hist and ts - self._flow_hist[0][0] > p.flow_window_s * 1e9:
            self._flow_hist.popleft()
        rms = math.sqrt(sum(v for _, v in self._flow_hist) / len(self._flow_hist)) if self._flow_hist else 0.0
        vx = vy = 0.0
        if p.flow_compensation:
            w = self._flow._cam_scaled.width if self._flow._cam_scaled is not None else self.camera.width
            # flow points are in the frame's px; gaze px are in the camera model's px
            sx = w / self.camera.width
            v = f.velocity_near((raw[0] * sx, raw[1] * sx), p.flow_radius_frac * w)
            vx, vy = float(v[0]), float(v[1])
        return vx, vy, p.flow_gain * rms

    def _classify(self, s: tuple, dx: float, dy: float, out: list[Fixation]) -> None:
        ts, nx, ny, rawx, rawy = s
        fvx, fvy, extra = self._flow_terms(ts, (rawx, rawy)) if self._flow_field is not None else (0.0, 0.0, 0.0)
        dx -= fvx
        dy -= fvy
        # angular speed of the unit ray u = P/|P|, P = (nx, ny, 1): |dP - u (u.dP)| / |P|
        inv = 1.0 / math.sqrt(nx * nx + ny * ny + 1.0)
        ux, uy, uz = nx * inv, ny * inv, inv
        proj = ux * dx + uy * dy
        gx, gy, gz = dx - ux * proj, dy - uy * proj, -uz * proj
        speed = math.degrees(math.sqrt(gx * gx + gy * gy + gz * gz) * inv)
        if self.trace is not None:
            self.trace.append((ts, nx, ny, speed, extra))
        hi = self.params.saccade_onset_deg_s + extra
        lo = self.params.saccade_offset_deg_s + extra
        sample = (ts, rawx, rawy, ux, uy, uz)
        if self._in_saccade:
            if speed < lo:
                self._in_saccade = False
                self._start_run(sample, out)
            elif self._pending is not None:
                self._maybe_close_pending(sample, out)
            return
        if speed < lo:
            if self._tail:
                for t in self._tail:
                    self._extend_run(t)
                self._tail.clear()
            self._extend_run(sample)
        elif speed < hi:
            self._tail.append(sample)
            if sample[0] - self._tail[0][0] >= self._max_tail_ns:  # slow movement, not a saccade onset: keep it
                for t in self._tail:
                    self._extend_run(t)
                self._tail.clear()
        else:  # saccade: it began where the speed first rose above the offset threshold
            self._tail.clear()
            self._in_saccade = True
            if self._run is not None:
                self._close_pending(out)
                self._pending, self._run = self._run, None
                self._maybe_close_pending(sample, out)

    # ---------------------------------------------------------------------------------------------- events
    def _extend_run(self, sample: tuple) -> None:
        if self._run is None:
            self._run = _Run(sample[0], sample[0], 0.0, 0.0, 0.0, 0.0, 0.0, 0)
        self._run.add(sample)

    def _start_run(self, sample: tuple, out: list[Fixation]) -> None:
        pend = self._pending
        if pend is not None:
            gap = sample[0] - pend.last_ns
            if gap <= self._merge_gap_ns and _angle_deg(pend.ray(), sample[3:6]) < self.params.merge_max_angle_deg:
                self._pending = None
                self._run = pend  # micro-saccade: the fixation goes on (the saccade's samples are left out)
                self._run.add(sample)
                return
            self._close_pending(out)
        self._run = None
        self._extend_run(sample)

    def _maybe_close_pending(self, sample: tuple, out: list[Fixation]) -> None:
        """Close the ended fixation once no micro-saccade merge is possible: the gap is too long, or the gaze has
        moved too far - judged on the classified sample and on the newest (not yet smoothed) one, which is
        window/2 samples further on and so decides most saccades without waiting."""
        pend = self._pending
        merge = self.params.merge_max_angle_deg
        if sample[0] - pend.last_ns > self._merge_gap_ns or _angle_deg(pend.ray(), sample[3:6]) >= merge:
            self._close_pending(out)
            return
        if self._buf_x:
            nx, ny = self._buf_x[-1], self._buf_y[-1]
            inv = 1.0 / math.sqrt(nx * nx + ny * ny + 1.0)
            if _angle_deg(pend.ray(), (nx * inv, ny * inv, inv)) >= merge:
                self._close_pending(out)

    def _close_pending(self, out: list[Fixation]) -> None:
        if self._pending is not None:
            if self._pending.duration_ns >= self._min_ns:
                out.append(self._pending.fixation())
            self._pending = None

    def _close_all(self, out: list[Fixation]) -> None:
        self._tail.clear()
        self._close_pending(out)
        if self._run is not None:
            self._pending, self._run = self._run, None
            self._close_pending(out)
        self._in_saccade = False

    # ---------------------------------------------------------------------------------------------- the present
    def ongoing(self, include_short: bool = False) -> Fixation | None:
        """The fixation in progress as known now (start .. last classified sample), or None during a saccade.
        A fixation that has ended but awaits the micro-saccade decision is returned too (it is still the last
        fixation). Shorter than `min_duration_ms` -> None unless `include_short`."""
        r = self._run if self._run is not None else self._pending
        if r is None or (not include_short and r.duration_ns < self._min_ns):
            return None
        return r.fixation()

    @property
    def classified_until_ns(self) -> int | None:
        """Timestamp of the newest classified sample (what the detector knows is final up to)."""
        return self._sm[-2][0] if len(self._sm) >= 2 else None


def detect_fixations(
    ts_ns,
    x,
    y,
    camera: CameraModel | None = None,
    params: FixationParams | None = None,
    worn=None,
    frames: Iterable[SceneFrame] | None = None,
) -> list[Fixation]:
    """Run the online detector over whole arrays (offline convenience; identical results to streaming).
    With `frames`, they are interleaved with the gaze by time for head-motion compensation."""
    det = OnlineFixationDetector(camera, params)
    if frames is None:
        return det.push_many(ts_ns, x, y, worn) + det.flush()
    out: list[Fixation] = []
    ts = np.asarray(ts_ns, dtype=np.int64)
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    wv = np.ones(len(ts), bool) if worn is None else np.asarray(worn, bool)
    fr = iter(sorted(frames, key=lambda f: f.ts_ns))
    nxt = next(fr, None)
    i = 0
    while i < len(ts):
        while nxt is not None and nxt.ts_ns <= ts[i]:
            det.push_frame(nxt)
            nxt = next(fr, None)
        j = i
        lim = nxt.ts_ns if nxt is not None else None
        while j < len(ts) and (lim is None or ts[j] < lim):
            j += 1
        j = max(j, i + 1)
        out += det.push_many(ts[i:j], xs[i:j], ys[i:j], wv[i:j])
        i = j
    return out + det.flush()
