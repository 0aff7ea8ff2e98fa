"""Device layer: time-stamped records on one clock (unix ns) and the sources that produce them."""

from gazeqwen_edge.device.records import (
    AudioChunk,
    Blink,
    CameraIntrinsics,
    Event,
    Fixation,
    GazeSample,
    Notice,
    Record,
    SceneFrame,
)
from gazeqwen_edge.device.source import Source

__all__ = [
    "AudioChunk",
    "Blink",
    "CameraIntrinsics",
    "Event",
    "Fixation",
    "GazeSample",
    "Notice",
    "Record",
    "SceneFrame",
    "Source",
]
