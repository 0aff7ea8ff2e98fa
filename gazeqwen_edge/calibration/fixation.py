"""Online fixation detection, sample by sample, after Pupil Labs' published Neon fixation detector.

The method (Drews & Dierkes 2024, "Strategies for enhancing automatic fixation detection in head-mounted eye
tracking", Behav. Res. Methods, doi:10.3758/s13428-024-02360-0; its Neon parameters as published in Pupil Labs'
open-source `pl-rec-export` (`fixation_detector/neon.py`, `Params_I_VAT.standard_params`); REFERENCE.md section 4),
implemented here from that description:

1. gaze is resampled linearly to 200 Hz;
2. Savitzky-Golay smoothing, window 11, order 3 (of the distorted px and of the normalised camera coordinates);
3. gaze speed = |p[i+1] - p[i] - flow[i] / 200 Hz| x 200 Hz in scene px/s: the forward difference of the smoothed
   px, minus the scene's global optic flow (mean of a Lucas-Kanade grid, px/s) when scene video is there
   (head-motion compensation: the eye holding a world point while the head turns is not a saccade);
4. a sample belongs to a fixation when its speed <= thr = 1200 + 0.8 x RMS(flow over 41 samples) px/s (adaptive
   threshold; 1200 px/s alone without video);
5. runs of samples make alternating fixation / gap events (dense: a fixation ends where the next gap starts);
   a gap of amplitude <= 2 deg (angle between the smoothed gaze rays at its first sample and at the first sample
   after it) that lasts <= 20 ms is a micro-saccade: it is removed and the fixations around it are merged;
6. then fixations lasting <= 70 ms are dropped.
Start and end times are mapped back to the nearest original sample timestamp.

Without scene video, the flow is taken from the glasses' IMU (`ImuSample` records; calibration/imu.py): the head's
angular velocity from the gyroscope, turned into the scene camera's frame by the rotation Pupil Labs documents, gives
the rotational optic flow at the gaze point, which is subtracted and whose RMS raises the threshold exactly as the
measured flow does in steps 3-4. Video flow is used wherever it is known (a frame pair spanning the sample, or the
newest one before it): it is what the published parameters and the device's own detector were made with, and it
measures what the gyro cannot (the head's translation, the scene's own motion); the IMU fills in where there is no
video flow (no video, frames missing or too old, a pair with nothing tracked). Without either the flow is 0.

The published thresholds are in px of the Neon's 1600 px wide scene image; for a camera of another width the
speeds are scaled to that width (`REFERENCE_WIDTH_PX`; the same field of view is assumed).

What the description leaves open for an ONLINE detector, and what is chosen here (judged on simulated gaze with
known fixations, `calibration/synthetic_gaze.py`, never on a real recording; `benchmarks/fixation_detector.py`
reports the agreement on both):
- resampling happens as samples arrive; holes longer than `max_sample_gap_ms` and samples with worn=False end the
  segment instead of being interpolated across; the smoothing uses the first / last window's polynomial fit at a
  segment's ends (like `scipy.signal.savgol_filter(mode="interp")`, which the published offline code applies to the
  whole recording);
- the optic-flow RMS is over the 41 samples up to the one classified (the offline method centres the window), and
  each sample uses the flow of the frame pair spanning it when that is known by the time the sample is classified
  (30 ms later), else the newest pair before it (offline: interpolated between frames);
- with the IMU instead, each sample uses the head's rate interpolated between the IMU samples around it (known by
  the time it is classified; else the newest one, held) and the rotational flow at the sample's own smoothed gaze
  point (the flow the VOR moves the gaze at; a gyro gives no frame-wide mean to copy), whose RMS over the same 41
  samples raises the threshold;
- no hysteresis: one threshold, as published (ending a gap only below 0.4-0.8 x thr moved the mean onset F1 over
  the benchmark's 8 simulated wearers from 0.920 to 0.922-0.936 but its worst wearer from 0.901 to 0.81-0.90);
- a fixation is final, and emitted, once the gap after it has lasted more than 20 ms (it can no longer be a
  micro-saccade) or ended with an amplitude above 2 deg: about 50-55 ms after the fixation's end at 200 Hz
  (smoothing half-window 25 ms + the forward difference 5 ms + the 20 ms micro-saccade wait + resampling <= 5 ms).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gazeqwen_edge.calibration.camera import NEON_SCENE_SIZE, CameraModel
from gazeqwen_edge.calibration.flow import FlowField, SceneFlow
from gazeqwen_edge.calibration.imu import ImuHeadMotion
from gazeqwen_edge.device.records import Fixation, GazeSample, ImuSample, SceneFrame
from gazeqwen_edge.errors import ConfigError

DETECTOR_NAME = "gazeqwen-ivat"
REFERENCE_WIDTH_PX = NEON_SCENE_SIZE[0]  # the published px/s thresholds refer to the Neon's 1600 px wide image


@dataclass(frozen=True)
class FixationParams:
    """Detector parameters. The defaults are Pupil Labs' published Neon values (module docstring), not fitted to
    any recording here; `max_sample_gap_ms` is ours (online segmentation)."""

    sampling_hz: float = 200.0  # gaze is resampled to this rate; the windows below count samples at this rate
    sg_window: int = 11  # Savitzky-Golay window, samples
    sg_order: int = 3
    velocity_threshold_px_s: float = 1200.0  # thr0, px/s of a 1600 px wide scene image
    flow_gain: float = 0.8  # thr = thr0 + flow_gain * RMS(global optic flow) (px/s)
    flow_rms_window: int = 41  # samples
    microsaccade_max_deg: float = 2.0  # gaps this small ...
    microsaccade_max_ms: float = 20.0  # ... and this short are micro-saccades: the fixations around them merge
    min_duration_ms: float = 70.0  # fixations this short or shorter are dropped
    max_sample_gap_ms: float = 40.0  # a longer hole in the stream ends the segment (not interpolated across)

    def __post_init__(self):
        if self.sg_window < 3 or self.sg_window % 2 == 0 or not 0 <= self.sg_order < self.sg_window:
            raise ConfigError(f"sg_window must be odd and > sg_order (got {self.sg_window}, {self.sg_order})")
        values = (
            self.sampling_hz,
            self.velocity_threshold_px_s,
            self.flow_gain,
            self.microsaccade_max_deg,
            self.microsaccade_max_ms,
            self.min_duration_ms,
            self.max_sample_gap_ms,
        )
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"fixation detector parameters must be finite numbers: {self}")
        if self.sampling_hz <= 0 or self.velocity_threshold_px_s <= 0 or self.max_sample_gap_ms <= 0:
            raise ConfigError("sampling_hz, velocity_threshold_px_s and max_sample_gap_ms must be > 0")
        if min(self.flow_gain, self.microsaccade_max_deg, self.microsaccade_max_ms, self.min_duration_ms) < 0:
            raise ConfigError("flow_gain, microsaccade_max_* and min_duration_ms must be >= 0")
        if self.flow_rms_window < 1:
            raise ConfigError("flow_rms_window must be >= 1 sample")


@dataclass
class _Event:
    """A fixation or gap being built: grid start time, the original timestamp nearest to it, px sums."""

    start_ns: int  # resampled-grid time of the first sample
    start_raw_ns: int  # the original timestamp nearest to it
    sx: float = 0.0
    sy: float = 0.0
    n: int = 0
    end_ns: int = 0  # grid time of the first sample after it (dense convention); set when it ends
    end_raw_ns: int = 0
    ray: tuple[float, float, float] = (0.0, 0.0, 1.0)  # smoothed gaze ray at the first sample (gaps)

    def add(self, x: float, y: float) -> None:
        self.sx += x
        self.sy += y
        self.n += 1

    def absorb(self, other: _Event) -> None:
        self.sx += other.sx
        self.sy += other.sy
        self.n += other.n

    def fixation(self, end_raw_ns: int) -> Fixation:
        n = max(self.n, 1)
        return Fixation(self.start_raw_ns, end_raw_ns, self.sx / n, self.sy / n, source=DETECTOR_NAME)


def _ray(nx: float, ny: float) -> tuple[float, float, float]:
    inv = 1.0 / math.sqrt(nx * nx + ny * ny + 1.0)
    return nx * inv, ny * inv, inv


def _angle_deg(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    d = math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2)
    return math.degrees(2 * math.asin(min(1.0, d / 2)))


class OnlineFixationDetector:
    """The published Neon fixation detector run online (see the module docstring).

        det = OnlineFixationDetector(CameraModel.from_calibration_bin(rec_dir))
        for rec in source.records({GazeSample, SceneFrame, ImuSample}):
            for fix in det.push_record(rec):   # Fixation(source="gazeqwen-ivat") once each is final
                ...
            now = det.ongoing()                 # the fixation in progress (or None), as known now
        rest = det.flush()                      # at the end of the stream

    Input: gaze in the px of `camera` (distorted scene px, as the device reports them; `offset` is added to every
    sample first), timestamps in ns on any monotonic clock (unix ns for device data); scene frames of any size (their
    flow is scaled to the camera's px); IMU samples of the glasses the camera is on (`ImuSample`, gyro in the Neon
    IMU frame; `imu_to_camera` (3, 3) overrides the Neon's IMU-to-camera rotation), on the gaze's clock.
    Output: `Fixation(start_ns, end_ns, x, y)` on the input clock (start = the fixation's first sample, end = the
    first sample of the saccade after it), x, y = mean gaze px over it.
    Samples that go back in time, are not finite or have worn=False are counted in `n_dropped`. Every buffer is
    bounded; cost is O(1) per sample.
    """

    def __init__(
        self,
        camera: CameraModel | None = None,
        params: FixationParams | None = None,
        offset: tuple[float, float] = (0.0, 0.0),
        trace: bool = False,
        imu_to_camera: np.ndarray | None = None,
    ):
        from scipy.signal import savgol_coeffs

        self.camera = camera if camera is not None else CameraModel.pinhole(*NEON_SCENE_SIZE)
        self.params = p = params or FixationParams()
        self.offset = (float(offset[0]), float(offset[1]))
        self.W = p.sg_window
        self.h = self.W // 2
        # coefficients evaluating the window's polynomial fit at each position (use="dot": oldest sample first)
        self._coef = [tuple(savgol_coeffs(self.W, p.sg_order, pos=i, use="dot")) for i in range(self.W)]
        self.period_ns = int(round(1e9 / p.sampling_hz))
        self._px_scale = REFERENCE_WIDTH_PX / self.camera.width  # camera px -> px of a 1600 px wide image
        self._min_ns = int(round(p.min_duration_ms * 1e6))
        self._micro_ns = int(round(p.microsaccade_max_ms * 1e6))
        self._max_gap_ns = int(round(p.max_sample_gap_ms * 1e6))
        self._flow: SceneFlow | None = None
        # global scene flow of recent frame pairs: (t0_ns, t1_ns, (vx, vy) in camera px/s or None: nothing tracked)
        self._flows: deque[tuple[int, int, tuple[float, float] | None]] = deque(maxlen=16)
        self._imu_to_camera = imu_to_camera
        self._imu: ImuHeadMotion | None = None  # created with the first IMU sample
        self._flow_sq: deque[tuple[float, float]] = deque(maxlen=p.flow_rms_window)
        self._flow_sum = [0.0, 0.0]
        self.n_samples = 0
        self.n_dropped = 0
        self.last_input_ns: int | None = None
        # with trace=True: (grid ts_ns, smoothed x px, smoothed y px, speed px/s at 1600 px width, threshold px/s,
        # flow x, flow y subtracted in camera px/s)
        self.trace: list[tuple[int, float, float, float, float, float, float]] | None = [] if trace else None
        self._run: _Event | None = None  # the fixation in progress
        self._pending: _Event | None = None  # the fixation before the current gap, until it is final
        self._gap: _Event | None = None  # the gap in progress
        self._classified_ns: int | None = None
        self._reset_segment()

    # ---------------------------------------------------------------------------------------------- properties
    @property
    def min_duration_ns(self) -> int:
        return self._min_ns

    @property
    def classification_delay_ns(self) -> int:
        """How far the newest classified sample lags the newest input: the smoothing half-window plus the forward
        difference (6 samples: 30 ms at 200 Hz) for input on the 200 Hz grid; up to one period more otherwise."""
        return (self.h + 1) * self.period_ns

    @property
    def emission_delay_ns(self) -> int:
        """Upper bound on (timestamp of the sample whose arrival makes a fixation final) - (the fixation's end) for a
        stream without holes: the classification delay, one resampling period and the micro-saccade wait
        (55 ms at 200 Hz)."""
        return self.classification_delay_ns + self.period_ns + self._micro_ns

    # ---------------------------------------------------------------------------------------------- segments
    def _reset_segment(self) -> None:
        self._buf: deque[tuple] = deque(maxlen=self.W)  # grid samples: (t, raw_t, x, y, nx, ny)
        self._seg_n = 0
        self._last_raw: tuple[int, float, float, float, float] | None = None  # (t, x, y, nx, ny)
        self._next_grid = 0
        self._sm_prev: tuple | None = None  # smoothed sample waiting for the next one (forward difference)

    # --------------------------------------------------------------------------------------------------- inputs
    def push_record(self, rec) -> list[Fixation]:
        """Feed any record: gaze samples, scene frames and IMU samples are used, others ignored."""
        if isinstance(rec, GazeSample):
            return self.push(rec.ts_ns, rec.x, rec.y, rec.worn)
        if isinstance(rec, SceneFrame):
            self.push_frame(rec)
        elif isinstance(rec, ImuSample):
            self.push_imu(rec)
        return []

    def push_imu(self, sample: ImuSample) -> None:
        """Feed an IMU sample: where no video flow is known, the head rotation it measures gives the flow
        (calibration/imu.py). Push it when it arrives (in time order with the gaze, as sources deliver records)."""
        if self._imu is None:
            self._imu = ImuHeadMotion(self.camera, self._imu_to_camera)
        self._imu.push(sample)

    @property
    def imu(self) -> ImuHeadMotion | None:
        """The IMU head-motion input (None until the first IMU sample)."""
        return self._imu

    def push_frame(self, frame: SceneFrame) -> FlowField | None:
        """Feed a scene frame: its global optic flow compensates head motion and raises the threshold."""
        if self._flow is None:
            self._flow = SceneFlow()
        f = self._flow.push(frame)
        if f is not None:
            s = self.camera.width / frame.width  # frame px -> camera px
            v = f.global_velocity_px_s
            self._flows.append((f.t0_ns, f.t1_ns, (float(v[0]) * s, float(v[1]) * s) if len(f.points_px) else None))
        return f

    def _video_flow_at(self, t: int) -> tuple[float, float] | None:
        """Global scene flow (camera px/s) for a sample at `t`, as known when it is classified: the frame pair
        spanning `t`, else the newest pair before it; None once frames are older than the flow's frame gap limit or
        when that pair had nothing to track."""
        for t0, t1, v in reversed(self._flows):
            if t0 <= t <= t1:
                return v
            if t1 < t:
                return v if t - t1 <= self._flow.max_gap_ns else None
        return None

    def push(self, ts_ns: int, x: float, y: float, worn: bool = True) -> list[Fixation]:
        """Add one gaze sample (px of `camera`); returns the fixations that became final with it (usually none)."""
        return self.push_many([ts_ns], [x], [y], [worn])

    def push_many(self, ts_ns, x, y, worn=None) -> list[Fixation]:
        """Add many samples at once (the same result as pushing them one by one; the camera model runs
        vectorised). `ts_ns` (N,) int ns, `x`, `y` (N,) px, `worn` (N,) bool or None (all worn)."""
        ts = np.asarray(ts_ns, dtype=np.int64).reshape(-1)
        xs = np.asarray(x, dtype=np.float64).reshape(-1) + self.offset[0]
        ys = np.asarray(y, dtype=np.float64).reshape(-1) + self.offset[1]
        wv = np.ones(len(ts), bool) if worn is None else np.asarray(worn, bool).reshape(-1)
        finite = np.isfinite(xs) & np.isfinite(ys)
        nrm = np.full((len(ts), 2), np.nan)
        if finite.any():
            nrm[finite] = self.camera.to_normalized(np.stack([xs[finite], ys[finite]], 1))
        out: list[Fixation] = []
        for i in range(len(ts)):
            t = int(ts[i])
            if self.last_input_ns is not None and t <= self.last_input_ns:
                self.n_dropped += 1  # out of order or duplicate
                continue
            if self._last_raw is not None and (not wv[i] or t - self._last_raw[0] > self._max_gap_ns):
                self._end_segment(out)
            self.last_input_ns = t
            if not wv[i] or not finite[i]:
                self.n_dropped += 1
                continue
            self.n_samples += 1
            self._add_raw(t, float(xs[i]), float(ys[i]), float(nrm[i, 0]), float(nrm[i, 1]), out)
        return out

    def flush(self) -> list[Fixation]:
        """End of stream: classify the buffered samples and emit what is left (if long enough)."""
        out: list[Fixation] = []
        self._end_segment(out)
        return out

    # ---------------------------------------------------------------------------------------------- resampling
    def _add_raw(self, t: int, x: float, y: float, nx: float, ny: float, out: list[Fixation]) -> None:
        prev = self._last_raw
        self._last_raw = (t, x, y, nx, ny)
        if prev is None:  # a segment starts: its grid is anchored at its first sample
            self._next_grid = t
            self._add_grid(t, t, x, y, nx, ny, out)
            self._next_grid = t + self.period_ns
            return
        t0 = prev[0]
        span = t - t0
        while self._next_grid <= t:
            g = self._next_grid
            a = (g - t0) / span
            self._add_grid(
                g,
                t0 if g - t0 <= t - g else t,
                prev[1] + a * (x - prev[1]),
                prev[2] + a * (y - prev[2]),
                prev[3] + a * (nx - prev[3]),
                prev[4] + a * (ny - prev[4]),
                out,
            )
            self._next_grid = g + self.period_ns

    # ---------------------------------------------------------------------------------------------- smoothing
    def _add_grid(self, t: int, raw_t: int, x: float, y: float, nx: float, ny: float, out: list[Fixation]) -> None:
        self._buf.append((t, raw_t, x, y, nx, ny))
        self._seg_n += 1
        if self._seg_n < self.W:
            return
        if self._seg_n == self.W:  # the first full window: its leading samples from the same fit
            for pos in range(self.h):
                self._smoothed(pos, out)
        self._smoothed(self.h, out)

    def _smoothed(self, pos: int, out: list[Fixation]) -> None:
        c = self._coef[pos]
        sx = sy = snx = sny = 0.0
        for ci, b in zip(c, self._buf, strict=True):
            sx += ci * b[2]
            sy += ci * b[3]
            snx += ci * b[4]
            sny += ci * b[5]
        s = self._buf[pos]
        cur = (s[0], s[1], sx, sy, snx, sny, s[2], s[3])
        prev, self._sm_prev = self._sm_prev, cur
        if prev is not None:
            self._classify(prev, cur, out)

    def _end_segment(self, out: list[Fixation]) -> None:
        if self._seg_n >= self.W:
            for pos in range(self.h + 1, self.W):  # trailing samples from the fit of the last window
                self._smoothed(pos, out)
            if self._sm_prev is not None:  # the last sample has no forward difference: a gap (published: NaN)
                self._classify(self._sm_prev, None, out)
        self._close_segment_events(out)
        self._reset_segment()

    # ---------------------------------------------------------------------------------------------- velocity
    def _classify(self, s: tuple, nxt: tuple | None, out: list[Fixation]) -> None:
        t, raw_t, sx, sy, snx, sny, x, y = s
        f = self._video_flow_at(t) if self._flows else None
        if f is None and self._imu is not None:
            f = self._imu.flow_px_s(t, snx, sny)
        fx, fy = f if f is not None else (0.0, 0.0)
        p = self.params
        q = self._flow_sq
        if len(q) == q.maxlen:
            ox, oy = q[0]
            self._flow_sum[0] -= ox
            self._flow_sum[1] -= oy
        q.append((fx * fx, fy * fy))
        self._flow_sum[0] += fx * fx
        self._flow_sum[1] += fy * fy
        k = self._px_scale
        n = len(q)
        rms = k * math.hypot(math.sqrt(max(self._flow_sum[0], 0.0) / n), math.sqrt(max(self._flow_sum[1], 0.0) / n))
        thr = p.velocity_threshold_px_s + p.flow_gain * rms
        if nxt is None:
            speed = math.inf
        else:
            dt = (nxt[0] - t) * 1e-9
            speed = k * math.hypot((nxt[2] - sx) / dt - fx, (nxt[3] - sy) / dt - fy)
        if self.trace is not None:
            self.trace.append((t, sx, sy, speed, thr, fx, fy))
        self._classified_ns = t
        if speed <= thr:
            self._fixation_sample(t, raw_t, x, y, snx, sny, out)
        else:
            self._gap_sample(t, raw_t, x, y, snx, sny, out)

    # ---------------------------------------------------------------------------------------------- events
    def _fixation_sample(self, t: int, raw_t: int, x: float, y: float, snx: float, sny: float, out) -> None:
        gap = self._gap
        if gap is not None:  # a gap ends here: a micro-saccade, or a saccade between two fixations
            self._gap = None
            pend = self._pending
            if (
                pend is not None
                and t - gap.start_ns <= self._micro_ns
                and _angle_deg(gap.ray, _ray(snx, sny)) <= self.params.microsaccade_max_deg
            ):
                pend.absorb(gap)  # the fixation goes on over the micro-saccade
                self._pending, self._run = None, pend
            else:
                self._close_pending(out)
        if self._run is None:
            self._run = _Event(t, raw_t)
        self._run.add(x, y)

    def _gap_sample(self, t: int, raw_t: int, x: float, y: float, snx: float, sny: float, out) -> None:
        if self._gap is None:
            if self._run is not None:  # the fixation ends where the gap starts
                self._run.end_ns, self._run.end_raw_ns = t, raw_t
                self._pending, self._run = self._run, None
            self._gap = _Event(t, raw_t, ray=_ray(snx, sny))
        self._gap.add(x, y)
        if self._pending is not None and t + self.period_ns - self._gap.start_ns > self._micro_ns:
            self._close_pending(out)  # the gap already lasts too long for a micro-saccade

    def _close_pending(self, out: list[Fixation]) -> None:
        pend, self._pending = self._pending, None
        if pend is not None and pend.end_ns - pend.start_ns > self._min_ns:
            out.append(pend.fixation(pend.end_raw_ns))

    def _close_segment_events(self, out: list[Fixation]) -> None:
        """The segment is over. Its last sample was classified as a gap (it has no forward difference), so the last
        fixation ends there unless the trailing gap is longer than a micro-saccade or leads elsewhere (the published
        method treats the final gap like any other)."""
        gap, last = self._gap, self._sm_prev
        if gap is not None and self._pending is not None and last is not None:
            if last[0] - gap.start_ns <= self._micro_ns and (
                _angle_deg(gap.ray, _ray(last[4], last[5])) <= self.params.microsaccade_max_deg
            ):
                self._pending.absorb(gap)
                self._pending.end_ns, self._pending.end_raw_ns = last[0], last[1]
        self._close_pending(out)
        self._run = self._gap = None

    # ---------------------------------------------------------------------------------------------- the present
    def ongoing(self, include_short: bool = False) -> Fixation | None:
        """The fixation in progress as known now (its start .. the newest classified sample), or, during a gap that
        may still turn out to be a micro-saccade, the fixation before it (start .. the gap's start). None during a
        saccade; also None while shorter than `min_duration_ms` unless `include_short`."""
        r = self._run
        if r is not None:
            end, end_raw = self._classified_ns, self._last_classified_raw()
        elif self._pending is not None:
            r, end, end_raw = self._pending, self._pending.end_ns, self._pending.end_raw_ns
        else:
            return None
        if not include_short and end - r.start_ns <= self._min_ns:
            return None
        return r.fixation(end_raw)

    def _last_classified_raw(self) -> int:
        for b in reversed(self._buf):
            if b[0] <= self._classified_ns:
                return b[1]
        return self._classified_ns


def detect_fixations(
    ts_ns,
    x,
    y,
    camera: CameraModel | None = None,
    params: FixationParams | None = None,
    worn=None,
    frames: Iterable[SceneFrame] | None = None,
    imu: Iterable[ImuSample] | None = None,
) -> list[Fixation]:
    """Run the online detector over whole arrays (offline convenience; identical results to streaming).
    With `frames` and / or `imu` (head-motion compensation), they are interleaved with the gaze by time, each before
    the gaze samples at or after its timestamp, as a source delivers them."""
    det = OnlineFixationDetector(camera, params)
    side = sorted([*(frames or ()), *(imu or ())], key=lambda r: r.ts_ns)
    if not side:
        return det.push_many(ts_ns, x, y, worn) + det.flush()
    out: list[Fixation] = []
    ts = np.asarray(ts_ns, dtype=np.int64)
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    wv = np.ones(len(ts), bool) if worn is None else np.asarray(worn, bool)
    cuts = np.searchsorted(ts, [r.ts_ns for r in side], side="left")
    start = 0
    for r, c in zip(side, cuts, strict=True):
        out += det.push_many(ts[start:c], xs[start:c], ys[start:c], wv[start:c])
        det.push_record(r)
        start = c
    out += det.push_many(ts[start:], xs[start:], ys[start:], wv[start:])
    return out + det.flush()
