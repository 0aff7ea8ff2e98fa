"""Calibration: scene camera model and undistortion, wearer offset, online fixation detection, scanpaths.

Uses only the device layer's records; nothing here imports model/ or runtime/.
"""

from gazeqwen_edge.calibration.camera import (
    CALIBRATION_BIN_SIZE,
    CameraModel,
    FrameTransform,
    GazeMapper,
    intrinsics_from_realtime,
    parse_calibration_bin,
    pinhole_intrinsics,
    read_calibration_bin,
    read_scene_camera_json,
)
from gazeqwen_edge.calibration.evaluate import FixationAgreement, match_fixations
from gazeqwen_edge.calibration.fixation import (
    DETECTOR_NAME,
    FixationParams,
    OnlineFixationDetector,
    detect_fixations,
)

__all__ = [
    "CALIBRATION_BIN_SIZE",
    "DETECTOR_NAME",
    "CameraModel",
    "FixationAgreement",
    "FixationParams",
    "FrameTransform",
    "GazeMapper",
    "OnlineFixationDetector",
    "detect_fixations",
    "intrinsics_from_realtime",
    "match_fixations",
    "parse_calibration_bin",
    "pinhole_intrinsics",
    "read_calibration_bin",
    "read_scene_camera_json",
]
