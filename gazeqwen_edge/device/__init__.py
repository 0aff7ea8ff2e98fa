"""Device layer: time-stamped records on one clock (unix ns) and the sources that produce them.

from gazeqwen_edge.device import open_source, paced
with open_source("synthetic:3", duration_s=5) as src:
    for rec in paced(src.records(), speed=2.0):
        ...
"""

from gazeqwen_edge.device.cloud_export import CloudExportSource
from gazeqwen_edge.device.inspect import summarize
from gazeqwen_edge.device.neon_native import NeonRecordingSource
from gazeqwen_edge.device.pacing import ReplayClock, merge_by_time, paced
from gazeqwen_edge.device.record import record
from gazeqwen_edge.device.records import (
    AudioChunk,
    Blink,
    CameraIntrinsics,
    Event,
    Fixation,
    GazeSample,
    ImuSample,
    Notice,
    Record,
    SceneFrame,
)
from gazeqwen_edge.device.registry import accepted_specs, detect_kind, open_source, register_source
from gazeqwen_edge.device.session import Recorder, SessionSource
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.device.streamgaze import StreamGazeSource
from gazeqwen_edge.device.synthetic import SceneObject, SyntheticScene

__all__ = [
    "AudioChunk",
    "Blink",
    "CameraIntrinsics",
    "CloudExportSource",
    "NeonRecordingSource",
    "Recorder",
    "SessionSource",
    "StreamGazeSource",
    "record",
    "summarize",
    "Event",
    "Fixation",
    "GazeSample",
    "ImuSample",
    "Notice",
    "Record",
    "ReplayClock",
    "SceneFrame",
    "SceneObject",
    "Source",
    "SyntheticScene",
    "accepted_specs",
    "detect_kind",
    "merge_by_time",
    "open_source",
    "paced",
    "register_source",
]
