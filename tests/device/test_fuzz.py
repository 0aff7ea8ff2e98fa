"""Fuzzed CSV and raw inputs: the readers either read them or raise InputError, never anything else."""

from __future__ import annotations

import gc
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gazeqwen_edge.device import open_source
from gazeqwen_edge.device.cloud_export import CloudExportSource
from gazeqwen_edge.device.neon_native import NeonRecordingSource
from gazeqwen_edge.device.session import Recorder, SessionSource
from gazeqwen_edge.device.streamgaze import StreamGazeSource
from gazeqwen_edge.errors import InputError

# GQ_FUZZ_EXAMPLES=2000 for a deeper run; the default keeps the suite fast
N_EXAMPLES = int(os.environ.get("GQ_FUZZ_EXAMPLES", "100"))
SETTINGS = settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)

GAZE = (
    "section id,recording id,timestamp [ns],gaze x [px],gaze y [px],worn,fixation id,blink id,azimuth [deg],"
    "elevation [deg]\n"
    "s,r,1000,1.5,2.5,1,,,0,0\ns,r,2000,3.0,4.0,0,1,,0,0\ns,r,3000,5.0,6.0,True,1,,0,0\n"
)
FIX = (
    "section id,recording id,fixation id,start timestamp [ns],end timestamp [ns],duration [ms],fixation x [px],"
    "fixation y [px],azimuth [deg],elevation [deg]\ns,r,1,1000,3000,0.002,3.0,4.0,0,0\n"
)
EVENTS = 'recording id,timestamp [ns],name,type\nr,1000,recording.begin,recording\nr,3000,"a, b",cloud\n'
WORLD = "section id,recording id,timestamp [ns]\n"


def _mutate(data: st.DataObject, text: str) -> str:
    """Random edits of a valid file: delete/insert/replace spans, drop or duplicate lines, truncate."""
    ops = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))
    alphabet = st.sampled_from(list(',\n"0123456789.-e xNaninf\r\x00é'))
    for op in ops:
        n = len(text)
        i = data.draw(st.integers(0, n))
        j = data.draw(st.integers(i, min(n, i + 20)))
        if op == 0:
            text = text[:i] + text[j:]
        elif op == 1:
            text = text[:i] + data.draw(st.text(alphabet, max_size=10)) + text[i:]
        elif op == 2:
            text = text[:i] + data.draw(st.text(alphabet, min_size=1, max_size=5)) + text[j:]
        elif op == 3:
            lines = text.splitlines(keepends=True)
            if lines:
                k = data.draw(st.integers(0, len(lines) - 1))
                lines.insert(k, lines[k]) if data.draw(st.booleans()) else lines.pop(k)
            text = "".join(lines)
        elif op == 4:
            text = text[:i]
        else:
            text = data.draw(st.text(alphabet, max_size=60))
    return text


def _consume(src) -> None:
    with src:
        list(src.records())
        src.scene_size, src.start_ns, src.end_ns, src.gaze_offset, src.intrinsics  # noqa: B018


@SETTINGS
@given(st.data(), st.sampled_from(["gaze.csv", "fixations.csv", "events.csv", "world_timestamps.csv", "info.json"]))
def test_fuzz_cloud_export_csv(data, which):
    files = {"gaze.csv": GAZE, "fixations.csv": FIX, "events.csv": EVENTS, "world_timestamps.csv": WORLD}
    files["info.json"] = json.dumps({"start_time": 1000, "duration": 2000, "gaze_offset": [1.0, 2.0]})
    files[which] = _mutate(data, files[which])
    with tempfile.TemporaryDirectory() as d:
        for name, text in files.items():
            (Path(d) / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            _consume(CloudExportSource(d))
        except InputError:
            pass


def _session_template() -> Path:
    from gazeqwen_edge.device import Event, GazeSample

    d = Path(tempfile.mkdtemp(prefix="gq_fuzz_session_")) / "s"
    with Recorder(d, recording_id="r") as r:
        for k in range(5):
            r.write(GazeSample(1000 + k, k * 1.5, 2.0))
        r.write(Event(1003, "query", "what, is this?"))
    return d


_SESSION = _session_template()


@SETTINGS
@given(st.data())
def test_fuzz_session_tolerant_reader(data):
    import shutil

    with tempfile.TemporaryDirectory() as d:
        s = Path(d) / "s"
        shutil.copytree(_SESSION, s)
        p = s / data.draw(st.sampled_from(["gaze.csv", "events.csv", "session.json", "fixations.csv"]))
        p.write_text(_mutate(data, p.read_text()))
        try:
            _consume(SessionSource(s))
        except InputError:
            pass


def _neon_dir(d: Path, data: st.DataObject) -> None:
    """A minimal Neon native recording whose raw/time files have fuzzed lengths and bytes."""
    info = {"start_time": 10**18, "duration": 10**9, "gaze_offset": [1.0, 2.0], "app_version": "2.9.19"}
    if data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(info)))
        info[key] = data.draw(
            st.one_of(st.none(), st.text(max_size=3), st.integers(), st.lists(st.floats(), max_size=3))
        )
    (d / "info.json").write_text(json.dumps(info))
    n = data.draw(st.integers(0, 20))
    ts = (10**18 + np.arange(n) * 5_000_000).astype("<i8").tobytes()
    xy = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).normal(500, 100, (n, 2)).astype("<f4").tobytes()
    files = {
        "gaze ps1.time": ts,
        "gaze ps1.raw": xy,
        "worn ps1.raw": b"\xff" * n,
        "fixations ps1.raw": b"",
        "fixations ps1.time": b"",
        "blinks ps1.raw": b"",
        "blinks ps1.time": b"",
        "event.txt": b"recording.begin\n",
        "event.time": np.array([10**18], "<i8").tobytes(),
    }
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(files)))
        b = files[name]
        op = data.draw(st.integers(0, 3))
        if op == 0:
            files[name] = b[: data.draw(st.integers(0, len(b)))]
        elif op == 1:
            files[name] = b + data.draw(st.binary(max_size=70))
        elif op == 2:
            files[name] = data.draw(st.binary(max_size=200))
        else:
            files.pop(name)
    for name, b in files.items():
        (d / name).write_bytes(b)


@pytest.fixture
def frozen_heap():
    """pupil-labs-neon-recording's close() runs gc.collect(), whose cost grows with the whole process's heap: 0.07 s
    per example alone, 0.5 s late in the full suite (torch models loaded), which made this the slowest test. The heap
    from before the test is frozen (gc.freeze: left out of collections), so each close scans only what it made."""
    gc.freeze()
    yield
    gc.unfreeze()


@SETTINGS
@given(data=st.data())
def test_fuzz_neon_raw(frozen_heap, data):
    with tempfile.TemporaryDirectory() as d:
        _neon_dir(Path(d), data)
        try:
            _consume(NeonRecordingSource(d))
        except InputError:
            pass


@settings(
    max_examples=max(10, N_EXAMPLES * 3 // 5), deadline=None, suppress_health_check=list(HealthCheck), database=None
)
@given(st.data())
def test_fuzz_streamgaze_csv(data):
    base = (
        "start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,"
        "duration_seconds\n00:00,00:01,0.5,0.5,0.3,0.1,0.4,0,0.3\n00:01,00:02,0.2,0.7,0.3,0.6,0.9,1,0.3\n"
    )
    with tempfile.TemporaryDirectory() as d:
        csv_path = Path(d) / "f.csv"
        csv_path.write_text(_mutate(data, base))
        try:
            s = StreamGazeSource(_VIDEO, fixations=csv_path)
            s.fixations, s.end_ns  # noqa: B018
        except InputError:
            pass


def _make_video() -> Path:
    from gazeqwen_edge.device._io import Mp4Writer

    d = Path(tempfile.mkdtemp(prefix="gq_fuzz_"))
    w = Mp4Writer(d / "v.mp4", 32, 32, 10)
    for _ in range(3):
        w.write(np.zeros((32, 32, 3), np.uint8))
    w.close()
    return d / "v.mp4"


_VIDEO = _make_video()


def test_open_source_on_fuzzed_directories_names_the_problem(tmp_path):
    # a directory with only junk: one InputError naming the directory
    (tmp_path / "junk.bin").write_bytes(b"\x00" * 10)
    try:
        open_source(tmp_path)
    except InputError as e:
        assert e.path == str(tmp_path)
    else:
        raise AssertionError("junk directory accepted")
