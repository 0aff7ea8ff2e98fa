"""A summary of any Source: kind, time span, streams with counts and rates, scene size, intrinsics, gaze offset,
gaps (pauses), and the notices reading it gave. The summary holds only JSON values (no NaN / inf)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from gazeqwen_edge.device.records import AudioChunk, Blink, Event, Fixation, GazeSample, ImuSample, Notice, SceneFrame
from gazeqwen_edge.device.source import Source, find_gaps

STREAM_NAMES = {
    GazeSample: "gaze",
    SceneFrame: "scene frames",
    Fixation: "fixations",
    Blink: "blinks",
    Event: "events",
    Notice: "notices",
    AudioChunk: "audio chunks",
    ImuSample: "imu",
}


def recorded_rate(ts_ns: list[int] | np.ndarray, gaps: list[tuple[int, int]]) -> float | None:
    """Samples per second of recorded time: (n - 1 - k) intervals over the stream's span minus the k intervals
    that hold a gap (pause) of the recording, in Hz; None for fewer than two samples or no recorded time.
    A 200 Hz stream paused twice for 19 s is 200 Hz, not the ~70 Hz of count / span."""
    t = np.sort(np.asarray(ts_ns, dtype=np.int64))
    if len(t) < 2:
        return None
    n_int, span = len(t) - 1, int(t[-1] - t[0])
    for g0, g1 in gaps:
        i = int(np.searchsorted(t, g1, side="left"))  # first sample at or after the gap's end
        if 0 < i < len(t) and t[i - 1] <= g0:
            n_int -= 1
            span -= int(t[i] - t[i - 1])
    return n_int / (span / 1e9) if n_int > 0 and span > 0 else None


# What each source class is, in a user's words (`kind` keeps the class name: the JSON's stable identifier).
KIND_DESCRIPTIONS = {
    "SessionSource": "session recorded by gazeqwen-edge",
    "NeonRecordingSource": "Neon native recording",
    "CloudExportSource": "Pupil Cloud export",
    "StreamGazeSource": "StreamGaze item (video + fixation CSV)",
    "SyntheticScene": "synthetic scene",
    "TargetScene": "synthetic calibration target",
    "NeonLiveSource": "live Neon",
}


def summarize(source: Source, decode_frames: bool = False, max_seconds: float | None = None) -> dict:
    """Counts and rates per stream. Frames are counted from the source's frame timestamps when it has them
    (`frame_ts_ns`), so nothing is decoded unless `decode_frames` or the source offers no timestamps.
    `max_seconds`: stop after this much recording time (for live sources, which never end).
    Rates are over recorded time (`recorded_rate`): the gaps are the source's (`gaps`), else found in the gaze.
    `kind` is the source's class name, `description` what it is in a user's words (KIND_DESCRIPTIONS)."""
    times: dict[str, list[int]] = defaultdict(list)
    notices: list[str] = []
    audio_rate = None
    frame_ts = getattr(source, "frame_ts_ns", None)
    has_video = getattr(source, "has_scene_video", None)
    kinds = set(STREAM_NAMES)
    if (frame_ts is not None or has_video is False) and not decode_frames:
        kinds.discard(SceneFrame)
        if frame_ts is not None and len(frame_ts):
            times["scene frames"] = list(np.asarray(frame_ts).tolist())
    gaze_arrays = getattr(source, "gaze_arrays", None)
    if gaze_arrays is not None:
        kinds.discard(GazeSample)
        times["gaze"] = gaze_arrays()[0].tolist()
    first = None
    limit = None if max_seconds is None else int(max_seconds * 1e9)
    for r in source.records(kinds):
        if first is None:
            first = r.ts_ns
        if limit is not None and r.ts_ns - first > limit:
            break
        name = STREAM_NAMES[type(r)]
        times[name].append(r.ts_ns)
        if isinstance(r, AudioChunk):
            audio_rate = r.sample_rate
        if isinstance(r, Notice):
            notices.append(f"{r.kind}: {r.message}")
    gaps = getattr(source, "gaps", None)
    if gaps is None or max_seconds is not None:
        gaps = find_gaps(np.sort(np.asarray(times.get("gaze", []), dtype=np.int64)))
    streams = {}
    for name in STREAM_NAMES.values():
        t = times.get(name)
        if not t:
            continue
        streams[name] = {"count": len(t), "first_ns": min(t), "last_ns": max(t), "rate_hz": recorded_rate(t, gaps)}
    if audio_rate:
        streams["audio chunks"]["sample_rate"] = audio_rate
    k = source.intrinsics
    start, end = source.start_ns, source.end_ns
    return {
        "kind": type(source).__name__,
        "description": KIND_DESCRIPTIONS.get(type(source).__name__, type(source).__name__),
        "name": getattr(source, "name", ""),
        "path": str(getattr(source, "path", "")) or None,
        "start_ns": start,
        "end_ns": end,
        "duration_s": (end - start) / 1e9 if start is not None and end is not None else None,
        "scene_size": list(source.scene_size) if source.scene_size else None,
        "has_scene_video": bool(times.get("scene frames")) if has_video is None else bool(has_video),
        "gaze_offset": list(source.gaze_offset),
        "intrinsics": None
        if k is None
        else {
            "camera_matrix": np.asarray(k.camera_matrix).tolist(),
            "dist_coeffs": np.asarray(k.dist_coeffs).reshape(-1).tolist(),
            "width": k.width,
            "height": k.height,
        },
        "sampled_s": max_seconds,
        "streams": streams,
        "gaps": [{"start_ns": a, "end_ns": b, "duration_s": (b - a) / 1e9} for a, b in gaps],
        "notices": notices,
        "objects": _scene_objects(source),
    }


def _scene_objects(source: Source) -> list[dict] | None:
    """A synthetic scene's objects (SyntheticScene.objects, first_looked_at): [{"name", "first_looked_at_s"}] in the
    scene's order, the time in s from the source's start of the first fixation on the object (None: never looked at).
    None for a source that knows no objects (every recording)."""
    objects, first = getattr(source, "objects", None), getattr(source, "first_looked_at", None)
    if objects is None or first is None:
        return None
    return [
        {
            "name": o.name,
            "first_looked_at_s": None if o.name not in first else round((first[o.name] - source.start_ns) / 1e9, 3),
        }
        for o in objects
    ]
