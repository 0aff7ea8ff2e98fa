"""Head rotation measured by the glasses' IMU, as the scene motion it causes in the scene camera image: the
head-motion input of the fixation detector when there is no scene video to measure optic flow on.

Geometry (all right-handed):
- the IMU frame (Neon; Pupil Labs' data-streams documentation, "Movement (IMU Data)"): x right, y forward, z up;
- the scene camera frame (OpenCV; the gaze's azimuth / elevation in Pupil Labs' "IMU Transformations" guide,
  docs.pupil-labs.com/alpha-lab/imu-transformations): x right, y down, z forward (the optical axis);
- "The IMU's coordinate system is rotated by 102 deg around the x-axis in relation to the scene camera's coordinate
  system" (data-streams page); the guide's `transform_scene_to_imu` rotates scene-camera coordinates into IMU
  coordinates by -(90 + 12) deg about x (90 deg between the two axis conventions, 12 deg of camera tilt), and
  Pupil Labs' `plimu` visualiser uses the same rotation (Rodrigues vector (-102 deg, 0, 0)) as the scene camera's
  pose in the IMU frame. So v_imu = Rx(-102 deg) v_cam and v_cam = Rx(+102 deg) v_imu (`imu_to_camera_rotation`):
  the camera's optical axis is the IMU's forward axis tilted 12 deg down, the IMU's "up" is the camera's -y.
  Angular velocities are vectors and map the same way.
- gyro sign: right-handed about each IMU axis (the ICM-20948's convention). Checked on the demo recording's IMU
  alone (no gaze, no fixations): the body-frame rate implied by the fused orientation quaternion (IMU -> world,
  R(q_k)^T R(q_k+1) over the sample interval) agrees with the gyro on all three axes with positive correlation
  (0.90 - 0.95) and slope 1.02 - 1.14; the opposite sign would give slope -1.

Rotational optic flow (Longuet-Higgins & Prazdny 1980, "The interpretation of a moving retinal image", Proc. R. Soc.
Lond. B 208): a camera turning with angular velocity w = (wx, wy, wz) rad/s (camera frame) sees a static point at
normalised image coordinates (x, y) = (X/Z, Y/Z) move at
    dx/dt = x*y*wx - (1 + x^2)*wy + y*wz,      dy/dt = (1 + y^2)*wx - x*y*wy - x*wz        (`rotational_flow`)
whatever its distance (rotation carries no parallax; the head's translation, which does, is not measured here).
In px of a camera with distortion the flow is the projection's Jacobian times that (`ImuHeadMotion.flow_px_s`).
With the vestibulo-ocular reflex the eye holds a world point while the head turns, so during a fixation the gaze
point moves across the scene image at the flow at the gaze point: the flow the detector subtracts.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from gazeqwen_edge.calibration.camera import CameraModel
from gazeqwen_edge.device.records import ImuSample

# Pupil Labs: the IMU frame is rotated by 102 deg (90 + 12 deg camera tilt) about x relative to the scene camera's
IMU_TO_SCENE_CAMERA_DEG = 102.0
MAX_IMU_GAP_MS = 50.0  # IMU samples come every ~9 ms (110 Hz): a longer hole means the rate is unknown there


def imu_to_camera_rotation(angle_deg: float = IMU_TO_SCENE_CAMERA_DEG) -> np.ndarray:
    """(3, 3) float64 rotation R with v_camera = R @ v_imu (module docstring: Rx(+102 deg)); R.T maps back."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _flow(x, y, wx, wy, wz):
    """The rotational flow formula (module docstring) on floats or arrays alike: (dx/dt, dy/dt)."""
    return x * y * wx - (1 + x * x) * wy + y * wz, (1 + y * y) * wx - x * y * wy - x * wz


def rotational_flow(xy_norm, omega_rad_s) -> np.ndarray:
    """Image motion of static points seen by a rotating pinhole camera (module docstring, Longuet-Higgins & Prazdny).

    `xy_norm` (N, 2) normalised camera coordinates (X/Z, Y/Z; x right, y down), `omega_rad_s` (3,) or (N, 3) the
    camera's angular velocity in its own frame, rad/s. Returns (N, 2) float64 d(x, y)/dt in normalised units per
    second (multiply by fx, fy for px/s of an undistorted camera)."""
    p = np.asarray(xy_norm, dtype=np.float64).reshape(-1, 2)
    w = np.broadcast_to(np.asarray(omega_rad_s, dtype=np.float64), (len(p), 3))
    return np.stack(_flow(p[:, 0], p[:, 1], w[:, 0], w[:, 1], w[:, 2]), 1)


class ImuHeadMotion:
    """The head's rotation from `ImuSample` records, as the scene flow at a point of the scene image, online.

        head = ImuHeadMotion(camera)
        head.push(imu_sample)                                  # in time order, as the source delivers them
        fx, fy = head.flow_px_s(t_ns, nx, ny) or (0.0, 0.0)   # px/s of `camera` at normalised point (nx, ny)

    `camera`: the scene camera the gaze is in (its px, distortion). `imu_to_camera`: (3, 3) rotation taking IMU
    vectors into the camera frame (default: the Neon's, `imu_to_camera_rotation()`). Causal: a query at `t_ns`
    uses only the samples pushed so far: interpolated linearly between the two around `t_ns` (when they are at most
    `max_gap_ms` apart), else the newest one before it (held for `max_gap_ms`), else, before the first sample or
    after a hole, the first one after it within `max_gap_ms`; None when nothing is that close (rotation unknown).
    Samples not newer than the previous one are counted in `n_dropped`. Memory is bounded (`history` samples).
    """

    def __init__(
        self,
        camera: CameraModel,
        imu_to_camera: np.ndarray | None = None,
        max_gap_ms: float = MAX_IMU_GAP_MS,
        history: int = 64,
    ):
        self.camera = camera
        self.R = imu_to_camera_rotation() if imu_to_camera is None else np.asarray(imu_to_camera, np.float64)
        self.max_gap_ns = int(round(max_gap_ms * 1e6))
        self._s: deque[tuple[int, float, float, float]] = deque(maxlen=history)  # (ts, w camera frame rad/s)
        self.n_samples = 0
        self.n_dropped = 0
        self._rows = [tuple(float(v) for v in row) for row in self.R]  # (plain floats: one sample costs ~1 us)
        # (nx, ny, Jacobian d(px)/d(normalised) as (j00, j01, j10, j11))
        self._jac: tuple[float, float, tuple[float, float, float, float]] | None = None

    def push(self, sample: ImuSample) -> None:
        """Add one IMU sample (gyro deg/s in the IMU frame)."""
        if self._s and sample.ts_ns <= self._s[-1][0]:
            self.n_dropped += 1
            return
        g = [math.radians(v) for v in sample.gyro]
        w = [r[0] * g[0] + r[1] * g[1] + r[2] * g[2] for r in self._rows]
        self._s.append((int(sample.ts_ns), w[0], w[1], w[2]))
        self.n_samples += 1

    def angular_velocity(self, t_ns: int) -> tuple[float, float, float] | None:
        """The head's angular velocity at `t_ns` in the camera frame, rad/s, as known now (class docstring)."""
        s = self._s
        after = None
        for k in range(len(s) - 1, -1, -1):  # the query is near the newest samples: a short scan from the end
            b = s[k]
            if b[0] <= t_ns:
                if after is not None and after[0] - b[0] <= self.max_gap_ns:
                    a = (t_ns - b[0]) / (after[0] - b[0])
                    return tuple(b[i] + a * (after[i] - b[i]) for i in (1, 2, 3))
                if t_ns - b[0] <= self.max_gap_ns:
                    return b[1:]
                break
            after = b
        if after is not None and after[0] - t_ns <= self.max_gap_ns:
            return after[1:]
        return None

    def _jacobian(self, nx: float, ny: float) -> tuple[float, float, float, float]:
        """d(px)/d(normalised) of the camera at (nx, ny), row-major (2 x 2); reused while the point moves < 0.01
        (~0.6 deg)."""
        j = self._jac
        if j is not None and abs(j[0] - nx) < 0.01 and abs(j[1] - ny) < 0.01:
            return j[2]
        e = 1e-6
        p = self.camera.from_normalized([[nx, ny], [nx + e, ny], [nx, ny + e]])
        dx, dy = (p[1] - p[0]) / e, (p[2] - p[0]) / e
        jac = (float(dx[0]), float(dy[0]), float(dx[1]), float(dy[1]))
        self._jac = (nx, ny, jac)
        return jac

    def flow_px_s(self, t_ns: int, nx: float, ny: float) -> tuple[float, float] | None:
        """Scene motion at `t_ns` at the image point with normalised camera coordinates (nx, ny): (vx, vy) in px/s
        of `camera` (distorted px, as the gaze); None when the rotation is unknown then (see `angular_velocity`)."""
        w = self.angular_velocity(t_ns)
        if w is None:
            return None
        u, v = _flow(nx, ny, *w)
        j = self._jacobian(nx, ny)
        return j[0] * u + j[1] * v, j[2] * u + j[3] * v
