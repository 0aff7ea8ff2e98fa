"""A summary of any Source: kind, time span, streams with counts and rates, scene size, intrinsics, gaze offset."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from gazeqwen_edge.device.records import AudioChunk, Blink, Event, Fixation, GazeSample, Notice, SceneFrame
from gazeqwen_edge.device.source import Source

STREAM_NAMES = {
    GazeSample: "gaze",
    SceneFrame: "scene frames",
    Fixation: "fixations",
    Blink: "blinks",
    Event: "events",
    Notice: "notices",
    AudioChunk: "audio chunks",
}


def summarize(source: Source, decode_frames: bool = False, max_seconds: float | None = None) -> dict:
    """Counts and rates per stream. Frames are counted from the source's frame timestamps when it has them
    (`frame_ts_ns`), so nothing is decoded unless `decode_frames` or the source offers no timestamps.
    `max_seconds`: stop after this much recording time (for live sources, which never end)."""
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
    streams = {}
    for name in STREAM_NAMES.values():
        t = times.get(name)
        if not t:
            continue
        t0, t1 = min(t), max(t)
        span = (t1 - t0) / 1e9
        streams[name] = {
            "count": len(t),
            "first_ns": t0,
            "last_ns": t1,
            "rate_hz": (len(t) - 1) / span if span > 0 and len(t) > 1 else None,
        }
    if audio_rate:
        streams["audio chunks"]["sample_rate"] = audio_rate
    k = source.intrinsics
    start, end = source.start_ns, source.end_ns
    return {
        "kind": type(source).__name__,
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
        "notices": notices,
    }
