"""The records every source delivers: small immutable values, all stamped in unix nanoseconds (`ts_ns`).

Coordinates are scene-camera pixels as the device reports them (distorted, wearer offset NOT applied); the
calibration package turns them into normalised, undistorted, offset-corrected coordinates.
Every record has a `ts_ns` attribute or property: the time at which it is complete (a fixation or blink is known
at its end), which is the order in which sources deliver records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class GazeSample:
    ts_ns: int
    x: float  # scene px
    y: float  # scene px
    worn: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class SceneFrame:
    ts_ns: int
    rgb: np.ndarray  # (H, W, 3) uint8, RGB
    index: int = -1  # frame number in its source, -1 if unknown

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class AudioChunk:
    ts_ns: int  # time of the first sample
    pcm: np.ndarray  # (n,) mono or (n, channels), float32 in [-1, 1]
    sample_rate: int

    @property
    def duration_ns(self) -> int:
        return int(round(len(self.pcm) * 1e9 / self.sample_rate))


@dataclass(frozen=True, slots=True)
class Fixation:
    start_ns: int
    end_ns: int
    x: float  # mean position, scene px
    y: float
    source: str = "device"  # "device" (the glasses' own detector) or the name of our detector

    @property
    def ts_ns(self) -> int:
        return self.end_ns

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True)
class Blink:
    start_ns: int
    end_ns: int

    @property
    def ts_ns(self) -> int:
        return self.end_ns


@dataclass(frozen=True, slots=True)
class ImuSample:
    """One reading of the glasses' inertial measurement unit, in the IMU's own frame.

    Neon (Pupil Labs' data-streams documentation, "Movement (IMU Data)"): a TDK ICM-20948 in the module's top bar,
    sampled at ~110 Hz; its frame has x pointing right, y forward and z up, and the scene camera's frame is rotated
    by 102 deg about that x axis (see calibration/imu.py for the mapping). `gyro` is the angular velocity about x, y,
    z in deg/s (right-handed: positive = counter-clockwise seen from the axis' tip); `accel` the specific force
    along x, y, z in g (at rest: +1 g along "up"); `quaternion` (w, x, y, z) the fused orientation, the rotation
    taking IMU coordinates to world coordinates (world: y magnetic north, z up). `accel` / `quaternion` are None
    where the source does not give them.
    """

    ts_ns: int
    gyro: tuple[float, float, float]  # deg/s about the IMU's x (right), y (forward), z (up)
    accel: tuple[float, float, float] | None = None  # g
    quaternion: tuple[float, float, float, float] | None = None  # (w, x, y, z), IMU -> world


@dataclass(frozen=True, slots=True)
class Event:
    """A named event: recording.begin/end, a user's query, an answer, an annotation."""

    ts_ns: int
    name: str
    data: str = ""  # free text or JSON payload


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the session should be told about its source: a stall, a disconnect, glasses taken off."""

    ts_ns: int
    kind: str  # e.g. "disconnected", "reconnected", "stalled", "not_worn", "sensor_missing"
    message: str
    level: str = "warning"  # "info" | "warning" | "error"


Record = GazeSample | SceneFrame | AudioChunk | ImuSample | Fixation | Blink | Event | Notice


@dataclass(frozen=True, eq=False)
class CameraIntrinsics:
    """Scene camera model (OpenCV convention): 3x3 camera matrix and distortion coefficients (k1,k2,p1,p2,k3,k4,k5,k6)."""

    camera_matrix: np.ndarray
    dist_coeffs: np.ndarray
    width: int
    height: int
    extra: dict = field(default_factory=dict)
