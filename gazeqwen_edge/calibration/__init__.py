"""Calibration: scene camera model and undistortion, wearer offset, online fixation detection, scanpaths.

Uses only the device layer's records and Sources; nothing here imports model/ or runtime/.

For the streaming runtime:

    cam = CameraModel(source.intrinsics) if source.intrinsics else CameraModel.pinhole(*source.scene_size)
    offset, why = resolve_offset(source, wearer)                 # the wearer's stored one, else the source's own
    mapper = GazeMapper(cam, FrameTransform.identity(W, H), offset=offset)  # Qwen gets the raw frames, resized whole
    sp = OnlineScanpath(mapper, origin_ns=clip_or_session_start_ns)
    for rec in source.records():
        sp.push_record(rec)                  # GazeSample; SceneFrame / ImuSample (head-motion compensation)
        rows = sp.rows_at(t_ns)                                  # (N, 4) float32 [x, y, mid_t, dur]: known at t_ns

Fixations already at hand (a recording's, a synthetic clip's) -> rows: `scanpath_rows(fixations, mapper, origin_ns)`.
"""

from gazeqwen_edge.calibration.camera import (
    CALIBRATION_BIN_SIZE,
    NEON_SCENE_SIZE,
    CameraModel,
    FrameTransform,
    GazeMapper,
    intrinsics_from_device,
    intrinsics_from_realtime,
    parse_calibration_bin,
    pinhole_intrinsics,
    read_calibration_bin,
    read_intrinsics,
    read_scene_camera_json,
)
from gazeqwen_edge.calibration.evaluate import FixationAgreement, match_fixations, naive_ivt
from gazeqwen_edge.calibration.fixation import (
    DETECTOR_NAME,
    REFERENCE_WIDTH_PX,
    FixationParams,
    OnlineFixationDetector,
    detect_fixations,
)
from gazeqwen_edge.calibration.flow import FlowField, SceneFlow
from gazeqwen_edge.calibration.imu import ImuHeadMotion, imu_to_camera_rotation, rotational_flow
from gazeqwen_edge.calibration.offset import (
    ArucoTarget,
    OffsetEstimate,
    OffsetStore,
    WearerOffset,
    apply_offset,
    calibrate_offset,
    camera_for,
    estimate_offset,
    parse_target,
    resolve_offset,
)
from gazeqwen_edge.calibration.scanpath import KnownFixation, OnlineScanpath, ScanpathBuilder, scanpath_rows
from gazeqwen_edge.calibration.synthetic_gaze import SyntheticGaze, synthetic_gaze

__all__ = [
    "CALIBRATION_BIN_SIZE",
    "DETECTOR_NAME",
    "NEON_SCENE_SIZE",
    "REFERENCE_WIDTH_PX",
    "ArucoTarget",
    "CameraModel",
    "FixationAgreement",
    "FixationParams",
    "FlowField",
    "FrameTransform",
    "GazeMapper",
    "ImuHeadMotion",
    "KnownFixation",
    "OffsetEstimate",
    "OffsetStore",
    "OnlineFixationDetector",
    "OnlineScanpath",
    "ScanpathBuilder",
    "SceneFlow",
    "SyntheticGaze",
    "WearerOffset",
    "apply_offset",
    "calibrate_offset",
    "camera_for",
    "detect_fixations",
    "estimate_offset",
    "imu_to_camera_rotation",
    "intrinsics_from_device",
    "intrinsics_from_realtime",
    "match_fixations",
    "naive_ivt",
    "parse_calibration_bin",
    "parse_target",
    "pinhole_intrinsics",
    "read_calibration_bin",
    "read_intrinsics",
    "read_scene_camera_json",
    "resolve_offset",
    "rotational_flow",
    "scanpath_rows",
    "synthetic_gaze",
]
