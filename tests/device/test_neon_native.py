"""The real Neon demo recording (../shared/fixtures/neon_demo_recording) read through NeonRecordingSource.

Expected values are read independently from the files with numpy/json (the layouts in REFERENCE.md section 4)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.device import AudioChunk, Blink, Event, Fixation, GazeSample, Notice, SceneFrame, open_source
from gazeqwen_edge.device._io import Mp4Writer
from gazeqwen_edge.device.neon_native import NeonRecordingSource
from gazeqwen_edge.errors import InputError

FIX_DTYPE = np.dtype(
    [("event_type", "<i4"), ("start", "<i8"), ("end", "<i8")]
    + [(n, "<f4") for n in ("sx", "sy", "ex", "ey", "mx", "my", "amp_px", "amp_deg", "mean_v", "max_v")]
)
SCENE_TIME = "Neon Scene Camera v1 ps1.time"


def _link_copy(src: Path, dst: Path, skip=()) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        if p.name not in skip:
            os.symlink(p, dst / p.name)
    return dst


def _barcode(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    """A frame whose 10 top blocks encode i in binary (robust to compression)."""
    img = np.full((h, w, 3), 60, np.uint8)
    bw = w // 10
    for b in range(10):
        if (i >> b) & 1:
            img[: h // 3, b * bw : (b + 1) * bw] = 230
    return img


def _read_barcode(rgb: np.ndarray) -> int:
    h, w = rgb.shape[:2]
    bw = w // 10
    return sum(1 << b for b in range(10) if rgb[h // 6, b * bw + bw // 2].mean() > 145)


@pytest.fixture(scope="module")
def rec(neon_recording_dir):
    with NeonRecordingSource(neon_recording_dir) as s:
        yield s


def test_detected_as_neon(neon_recording_dir):
    s = open_source(str(neon_recording_dir))
    assert isinstance(s, NeonRecordingSource)
    s.close()


def test_gaze_counts_times_and_values(rec, neon_recording_dir):
    info = json.loads((neon_recording_dir / "info.json").read_text())
    ts_file = np.fromfile(neon_recording_dir / "gaze_200hz.time", "<i8")
    xy_file = np.fromfile(neon_recording_dir / "gaze_200hz.raw", "<f4").reshape(-1, 2)
    gaze = list(rec.records({GazeSample}))
    assert len(gaze) == 1788 == len(ts_file)
    ts = np.array([g.ts_ns for g in gaze])
    np.testing.assert_array_equal(ts, ts_file)
    assert np.median(np.diff(ts)) == pytest.approx(5e6, abs=0.1e6)  # 200 Hz
    # time ranges: all gaze inside the recording's [start_time, start_time + duration]
    assert rec.start_ns == info["start_time"] and rec.end_ns == info["start_time"] + info["duration"]
    assert rec.start_ns <= ts[0] and ts[-1] <= rec.end_ns
    assert (ts[-1] - ts[0]) / 1e9 == pytest.approx(8.96, abs=0.01)
    # raw gaze = stored gaze minus the info.json offset (package convention, see neon_native docstring)
    dx, dy = info["gaze_offset"]
    np.testing.assert_allclose([g.x for g in gaze], xy_file[:, 0] - dx, rtol=0, atol=1e-3)
    np.testing.assert_allclose([g.y for g in gaze], xy_file[:, 1] - dy, rtol=0, atol=1e-3)
    worn = np.fromfile(neon_recording_dir / "worn_200hz.raw", "u1")
    assert [g.worn for g in gaze] == (worn != 0).tolist()


def test_gaze_offset_from_info_json(rec, neon_recording_dir):
    info = json.loads((neon_recording_dir / "info.json").read_text())
    assert rec.gaze_offset == pytest.approx(tuple(info["gaze_offset"]))
    assert rec.gaze_offset == pytest.approx((27.237305, 6.635742))


def test_device_fixations(rec, neon_recording_dir):
    raw = np.fromfile(neon_recording_dir / "fixations ps1.raw", FIX_DTYPE)
    raw = raw[raw["event_type"] == 1]
    fix = list(rec.records({Fixation}))
    assert len(fix) == 23 == len(raw)
    assert all(f.source == "device" for f in fix)
    np.testing.assert_array_equal([f.start_ns for f in fix], raw["start"])
    np.testing.assert_array_equal([f.end_ns for f in fix], raw["end"])
    # positions: the detector's own means (no offset), i.e. the same space as our raw gaze ...
    np.testing.assert_allclose([f.x for f in fix], raw["mx"], atol=1e-3)
    np.testing.assert_allclose([f.y for f in fix], raw["my"], atol=1e-3)
    # ... which we check against the gaze itself: mean raw gaze over each fixation ~ its centre
    ts, x, y = rec.gaze_arrays()
    d = []
    for f in fix:
        m = (ts >= f.start_ns) & (ts <= f.end_ns)
        d.append(np.hypot(x[m].mean() - f.x, y[m].mean() - f.y))
    assert np.median(d) < 1.5, d


def test_blinks_events_intrinsics_and_order(rec, neon_recording_dir):
    recs = list(rec.records())
    assert [r.ts_ns for r in recs] == sorted(r.ts_ns for r in recs)
    blinks = [r for r in recs if isinstance(r, Blink)]
    assert len(blinks) == 2 and all(b.end_ns > b.start_ns for b in blinks)
    events = [r for r in recs if isinstance(r, Event)]
    assert [e.name for e in events] == ["recording.begin", "recording.end"]
    assert events[0].ts_ns == rec.start_ns
    cal = (neon_recording_dir / "calibration.bin").read_bytes()
    k = np.frombuffer(cal, "<f8", 9, offset=7).reshape(3, 3)
    dist = np.frombuffer(cal, "<f8", 8, offset=7 + 72)
    np.testing.assert_array_equal(rec.intrinsics.camera_matrix, k)
    np.testing.assert_array_equal(rec.intrinsics.dist_coeffs, dist)
    assert rec.intrinsics.extra["serial"] == "578846"


def test_gaze_only_recording_is_explicit(rec):
    assert not rec.has_scene_video
    assert rec.scene_size == (1600, 1200)  # the Neon scene camera, from what the device is
    assert any(isinstance(r, Notice) and r.kind == "sensor_missing" for r in rec.records({Notice}))
    with pytest.raises(InputError, match="gaze-only"):
        list(rec.records({SceneFrame, GazeSample}))


def test_scene_video_path(neon_recording_dir, tmp_path):
    d = _link_copy(neon_recording_dir, tmp_path / "rec")
    ts = np.fromfile(d / SCENE_TIME, "<i8")
    w = Mp4Writer(d / "Neon Scene Camera v1 ps1.mp4", 160, 120, 30)
    for i in range(len(ts)):
        w.write(_barcode(i))
    w.close()
    with open_source(d) as s:
        assert s.has_scene_video and s.scene_size == (160, 120)
        frames = list(s.records({SceneFrame}))
        assert len(frames) == len(ts) == 292
        np.testing.assert_array_equal([f.ts_ns for f in frames], ts)
        assert [_read_barcode(f.rgb) for f in frames] == list(range(len(ts)))
        allrecs = list(s.records())
        assert sum(isinstance(r, SceneFrame) for r in allrecs) == 292
        assert not any(isinstance(r, Notice) for r in allrecs)


def _split(src_raw: Path, src_time: Path | None, dst: Path, base: str, itemsize: int, cut: int) -> None:
    raw = src_raw.read_bytes()
    (dst / f"{base} ps1.raw").write_bytes(raw[: cut * itemsize])
    (dst / f"{base} ps2.raw").write_bytes(raw[cut * itemsize :])
    if src_time is not None:
        t = src_time.read_bytes()
        (dst / f"{base} ps1.time").write_bytes(t[: cut * 8])
        (dst / f"{base} ps2.time").write_bytes(t[cut * 8 :])


def test_multipart_recording(neon_recording_dir, tmp_path):
    """A recording in two parts (ps1, ps2) reads as one continuous stream."""
    d = tmp_path / "multi"
    skip = {"gaze_200hz.raw", "gaze_200hz.time", "worn_200hz.raw", "gaze ps1.raw", "gaze ps1.time", "worn ps1.raw"}
    _link_copy(neon_recording_dir, d, skip=skip)
    _split(neon_recording_dir / "gaze ps1.raw", neon_recording_dir / "gaze ps1.time", d, "gaze", 8, 1000)
    _split(neon_recording_dir / "worn ps1.raw", None, d, "worn", 1, 1000)
    with open_source(d) as s:
        ts, x, _ = s.gaze_arrays()
    ref_ts = np.fromfile(neon_recording_dir / "gaze ps1.time", "<i8")
    ref_xy = np.fromfile(neon_recording_dir / "gaze ps1.raw", "<f4").reshape(-1, 2)
    np.testing.assert_array_equal(ts, ref_ts)
    np.testing.assert_allclose(x, ref_xy[:, 0] - 27.237305, atol=1e-3)


def test_events_posted_out_of_order_are_delivered_in_time_order(neon_recording_dir, tmp_path):
    """The phone appends events in arrival order; an event sent over the realtime API with its own (earlier)
    timestamp lands after later ones in event.time. Records must still come in time order."""
    d = _link_copy(neon_recording_dir, tmp_path / "ev", skip={"event.txt", "event.time"})
    t0, t1 = np.fromfile(neon_recording_dir / "event.time", "<i8").tolist()
    (d / "event.txt").write_text("recording.begin\nquery.late\nquery.early\nrecording.end\n")
    np.array([t0, t0 + 5_000_000_000, t0 + 1_000_000_000, t1], "<i8").tofile(d / "event.time")
    with open_source(d) as s:
        recs = list(s.records())
    assert [r.ts_ns for r in recs] == sorted(r.ts_ns for r in recs)
    events = [(r.name, r.ts_ns - t0) for r in recs if isinstance(r, Event)]
    assert events == [
        ("recording.begin", 0),
        ("query.early", 1_000_000_000),
        ("query.late", 5_000_000_000),
        ("recording.end", t1 - t0),
    ]


# ----------------------------------------------------------------------------------------------------- bad input
def _copy(neon_recording_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "bad"
    shutil.copytree(neon_recording_dir, d)
    for p in d.iterdir():
        p.chmod(0o644)
    d.chmod(0o755)
    return d


def _gaze_only_copy(neon_recording_dir: Path, tmp_path: Path) -> Path:
    """A copy without the post-processed 200 Hz files: gaze comes from the realtime `gaze ps*` parts (as after a
    crash, when the phone never wrote the 200 Hz files)."""
    d = _copy(neon_recording_dir, tmp_path)
    for n in ("gaze_200hz.raw", "gaze_200hz.time", "worn_200hz.raw"):
        (d / n).unlink()
    return d


def _notices(src, kind=None):
    return [r for r in src.records({Notice}) if kind is None or r.kind == kind]


def test_crash_cut_raw_reads_common_length_with_notice(neon_recording_dir, tmp_path):
    """A `.raw` cut mid-sample by a crash (one sample short of its `.time`) is read at the common length, as Pupil
    Labs' loader reads it, with a Notice. Before: InputError 'is truncated' (the recording could not be opened)."""
    d = _gaze_only_copy(neon_recording_dir, tmp_path)
    raw = d / "gaze ps1.raw"
    raw.write_bytes(raw.read_bytes()[:-3])  # 1787 whole samples + 5 bytes; gaze ps1.time still has 1788
    with open_source(d) as s:
        ts, x, _ = s.gaze_arrays()
        notes = _notices(s, "truncated")
    ref_ts = np.fromfile(neon_recording_dir / "gaze ps1.time", "<i8")
    ref_xy = np.fromfile(neon_recording_dir / "gaze ps1.raw", "<f4").reshape(-1, 2)
    np.testing.assert_array_equal(ts, ref_ts[:1787])
    np.testing.assert_allclose(x, ref_xy[:1787, 0] - 27.237305, atol=1e-3)
    assert len(notes) == 1 and "gaze ps1.raw has 1787 samples" in notes[0].message
    assert "partial last sample" in notes[0].message and notes[0].level == "warning"


def test_crash_cut_time_reads_common_length_with_notice(neon_recording_dir, tmp_path):
    """The other file cut: `.time` a few timestamps short of `.raw` (fixations). Before: InputError."""
    d = _copy(neon_recording_dir, tmp_path)
    t = d / "fixations ps1.time"
    t.write_bytes(t.read_bytes()[:-16])  # 43 timestamps for 45 records
    raw = np.fromfile(neon_recording_dir / "fixations ps1.raw", FIX_DTYPE)[:43]
    with open_source(d) as s:
        fix = list(s.records({Fixation}))
        notes = _notices(s, "truncated")
    assert [f.end_ns for f in fix] == raw[raw["event_type"] == 1]["end"].tolist()
    assert len(notes) == 1 and "fixations ps1.raw has 45 samples and fixations ps1.time 43" in notes[0].message


def test_cut_realtime_gaze_ignored_when_200hz_file_is_intact(neon_recording_dir, tmp_path):
    """Pupil Labs' reader takes gaze from the intact 200 Hz file when there is one; a cut realtime part beside it
    does not matter. Before: InputError for `gaze ps1.raw`."""
    d = _copy(neon_recording_dir, tmp_path)
    raw = d / "gaze ps1.raw"
    raw.write_bytes(raw.read_bytes()[:-11])
    with open_source(d) as s:
        ts, _, _ = s.gaze_arrays()
        assert len(ts) == 1788 and not _notices(s, "truncated")


@pytest.mark.parametrize(
    "mutate, match",
    [
        # .time twice as long as .raw: not a crash's cut (more than one write buffer), a mismatch
        (lambda d: (d / "gaze ps1.time").write_bytes((d / "gaze ps1.time").read_bytes() * 2), "has 3576 timestamps"),
        (lambda d: (d / "gaze ps1.raw").write_bytes((d / "gaze ps1.raw").read_bytes()[: 8 * 100]), "but gaze ps1.raw"),
    ],
)
def test_real_raw_time_mismatch_is_an_error(neon_recording_dir, tmp_path, mutate, match):
    d = _gaze_only_copy(neon_recording_dir, tmp_path)
    mutate(d)
    with pytest.raises(InputError, match=match) as e:
        NeonRecordingSource(d)
    assert e.value.path.endswith("gaze ps1.time")


def test_cut_in_a_part_that_is_not_the_last_is_an_error(neon_recording_dir, tmp_path):
    """Only the last part can be cut by a crash; a short earlier part would shift every later sample's time."""
    d = _gaze_only_copy(neon_recording_dir, tmp_path)
    for n in ("gaze ps1.raw", "gaze ps1.time", "worn ps1.raw"):
        (d / n).unlink()
    _split(neon_recording_dir / "gaze ps1.raw", neon_recording_dir / "gaze ps1.time", d, "gaze", 8, 1000)
    _split(neon_recording_dir / "worn ps1.raw", None, d, "worn", 1, 1000)
    (d / "gaze ps1.raw").write_bytes((d / "gaze ps1.raw").read_bytes()[:-8])
    with pytest.raises(InputError, match="part 1 of 2: only the last part") as e:
        NeonRecordingSource(d)
    assert e.value.path.endswith("gaze ps1.time")


def test_corrupted_calibration_is_rejected(neon_recording_dir, tmp_path):
    d = _copy(neon_recording_dir, tmp_path)
    cal = bytearray((d / "calibration.bin").read_bytes())
    cal[7 + 8] ^= 0x01  # one bit of the camera matrix (fx's low byte): the CRC no longer matches
    (d / "calibration.bin").write_bytes(bytes(cal))
    src = NeonRecordingSource(d)
    with pytest.raises(InputError, match="CRC32 mismatch") as e:
        _ = src.intrinsics
    assert e.value.path.endswith("calibration.bin")


def test_missing_and_broken_files(neon_recording_dir, tmp_path):
    d = _copy(neon_recording_dir, tmp_path)
    (d / "blinks ps1.time").unlink()
    with pytest.raises(InputError, match="missing") as e:
        NeonRecordingSource(d)
    assert e.value.path.endswith("blinks ps1.time")
    (d / "info.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        NeonRecordingSource(d)
    (d / "info.json").unlink()
    with pytest.raises(InputError, match="info.json: file is missing"):
        NeonRecordingSource(d)


def test_no_gaze_at_all(neon_recording_dir, tmp_path):
    d = _copy(neon_recording_dir, tmp_path)
    for n in ("gaze_200hz.raw", "gaze_200hz.time", "gaze ps1.raw", "gaze ps1.time"):
        (d / n).unlink()
    with pytest.raises(InputError, match="no gaze data"):
        NeonRecordingSource(d)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty"),
        (
            b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 7933531\n",
            "Git LFS pointer",
        ),
        (b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50, "not a readable video"),
    ],
)
def test_gaze_only_work_survives_an_unreadable_scene_video(neon_recording_dir, tmp_path, content, match):
    """Scene size and intrinsics do not need the video; it is told about once (SourceWarning + Notice); frames asked
    for raise its error. Before: scene_size / intrinsics raised (or the recording did not even open: empty mp4)."""
    from gazeqwen_edge.device.source import SourceWarning

    d = _link_copy(neon_recording_dir, tmp_path / "rec")
    (d / "Neon Scene Camera v1 ps1.mp4").write_bytes(content)
    with pytest.warns(SourceWarning, match=match) as w:
        s = open_source(d)
        assert s.scene_size == (1600, 1200)
        k = s.intrinsics
        assert (k.width, k.height) == (1600, 1200) and k.camera_matrix[0, 0] == pytest.approx(888.4, abs=0.1)
        gaze = list(s.records({GazeSample, Fixation}))
        assert sum(isinstance(r, GazeSample) for r in gaze) == 1788
        assert not s.has_scene_video and len(s.frame_ts_ns) == 0
        notes = _notices(s, "video_unreadable")
    assert len([x for x in w if issubclass(x.category, SourceWarning)]) == 1  # once
    assert len(notes) == 1 and match in notes[0].message
    for kinds in ({SceneFrame}, None):
        with pytest.raises(InputError, match=match) as e:
            list(s.records(kinds))
        assert e.value.path.endswith(".mp4")
    s.close()


def test_unreadable_directory(neon_recording_dir, tmp_path, monkeypatch):
    d = _copy(neon_recording_dir, tmp_path)
    real_iterdir = Path.iterdir

    def denied(self):
        if self == d:
            raise PermissionError(13, "Permission denied")
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(InputError, match="cannot be read") as e:
        open_source(d)
    assert e.value.path == str(d)


def test_scene_video_with_audio(neon_recording_dir, tmp_path):
    """Audio of the scene mp4: times from the library, samples decoded in order (a 440 Hz tone comes back)."""
    import av

    d = _link_copy(neon_recording_dir, tmp_path / "rec")
    n_frames = len(np.fromfile(d / SCENE_TIME, "<i8"))
    c = av.open(str(d / "Neon Scene Camera v1 ps1.mp4"), "w")
    vs = c.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    aus = c.add_stream("aac", rate=8000)
    aus.layout = "mono"
    for i in range(n_frames):
        f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        f.pts = i
        for p in vs.encode(f):
            c.mux(p)
    n = n_frames * 8000 // 30
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000)).astype(np.float32)
    for k in range(0, n, 1024):
        af = av.AudioFrame.from_ndarray(tone[None, k : k + 1024], format="flt", layout="mono")
        af.sample_rate, af.pts = 8000, k
        for p in aus.encode(af):
            c.mux(p)
    for s in (vs, aus):
        for p in s.encode():
            c.mux(p)
    c.close()
    import pupil_labs.neon_recording as nr

    lib_times = np.asarray(nr.open(d).audio.data["time"])
    with open_source(d) as s:
        chunks = list(s.records({AudioChunk}))
    assert len(chunks) >= len(lib_times) - 2 and len(chunks) > 60
    np.testing.assert_array_equal([a.ts_ns for a in chunks], lib_times[: len(chunks)])
    assert all(a.sample_rate == 8000 for a in chunks)
    pcm = np.concatenate([a.pcm for a in chunks[2:-2]])
    spectrum = np.abs(np.fft.rfft(pcm))
    assert np.fft.rfftfreq(len(pcm), 1 / 8000)[np.argmax(spectrum)] == pytest.approx(440, abs=2)


def test_multipart_scene_video(neon_recording_dir, tmp_path):
    """Scene video in two parts (ps1, ps2): frames come out in order, stamped by each part's .time file."""
    skip = {SCENE_TIME, "Neon Scene Camera v1 ps1.time_aux"}
    d = _link_copy(neon_recording_dir, tmp_path / "rec", skip=skip)
    ts = np.fromfile(neon_recording_dir / SCENE_TIME, "<i8")
    cut = 120
    for part, (a, b) in enumerate([(0, cut), (cut, len(ts))], start=1):
        ts[a:b].astype("<i8").tofile(d / f"Neon Scene Camera v1 ps{part}.time")
        w = Mp4Writer(d / f"Neon Scene Camera v1 ps{part}.mp4", 160, 120, 30)
        for i in range(a, b):
            w.write(_barcode(i))
        w.close()
    with open_source(d) as s:
        frames = list(s.records({SceneFrame}))
    np.testing.assert_array_equal([f.ts_ns for f in frames], ts)
    assert [_read_barcode(f.rgb) for f in frames] == list(range(len(ts)))


def test_scene_video_shorter_than_its_timestamps(neon_recording_dir, tmp_path):
    d = _link_copy(neon_recording_dir, tmp_path / "rec")
    w = Mp4Writer(d / "Neon Scene Camera v1 ps1.mp4", 64, 48, 30)
    for i in range(250):
        w.write(_barcode(i, 64, 48))
    w.close()
    ts = np.fromfile(d / SCENE_TIME, "<i8")
    with open_source(d) as s:
        recs = list(s.records())
    frames = [r for r in recs if isinstance(r, SceneFrame)]
    np.testing.assert_array_equal([f.ts_ns for f in frames], ts[:250])
    notes = [r for r in recs if isinstance(r, Notice)]
    assert len(notes) == 1 and notes[0].kind == "truncated" and "250 frames for 292" in notes[0].message


# ----------------------------------------------------------------------------------------------------- pauses
def _paused_recording(neon_recording_dir: Path, tmp_path: Path, pause_s: float = 19.0) -> Path:
    """The demo recording's realtime gaze in three parts (ps1..ps3) with a pause of `pause_s` before parts 2 and 3:
    each later part's timestamps shifted by the pauses before it (the Companion app starts a new part on resume)."""
    d = _gaze_only_copy(neon_recording_dir, tmp_path)
    for n in ("gaze ps1.raw", "gaze ps1.time", "worn ps1.raw"):
        (d / n).unlink()
    raw = (neon_recording_dir / "gaze ps1.raw").read_bytes()
    worn = (neon_recording_dir / "worn ps1.raw").read_bytes()
    ts = np.fromfile(neon_recording_dir / "gaze ps1.time", "<i8")
    for part, (a, b) in enumerate([(0, 600), (600, 1200), (1200, len(ts))]):
        (d / f"gaze ps{part + 1}.raw").write_bytes(raw[a * 8 : b * 8])
        (d / f"worn ps{part + 1}.raw").write_bytes(worn[a:b])
        (ts[a:b] + int(part * pause_s * 1e9)).astype("<i8").tofile(d / f"gaze ps{part + 1}.time")
    return d


def test_pauses_between_parts_are_reported_and_rates_use_recorded_time(neon_recording_dir, tmp_path, capsys):
    """A 200 Hz stream with two 19 s pauses reads as 200 Hz over recorded time, each pause is a gap (Notice on
    replay, listed by inspect). Before: inspect said 38.0 Hz (count / span) and nothing about the pauses."""
    from gazeqwen_edge.cli import main
    from gazeqwen_edge.device.inspect import summarize

    d = _paused_recording(neon_recording_dir, tmp_path)
    ref = np.fromfile(neon_recording_dir / "gaze ps1.time", "<i8")
    true_rate = (len(ref) - 1) / ((ref[-1] - ref[0]) / 1e9)  # 199.6 Hz
    with open_source(d) as s:
        ts, _, _ = s.gaze_arrays()
        assert len(ts) == 1788
        assert [(a, b) for a, b in s.gaps] == [
            (int(ref[599]), int(ref[600]) + 19 * 10**9),
            (int(ref[1199]) + 19 * 10**9, int(ref[1200]) + 38 * 10**9),
        ]
        gaps = [r for r in s.records() if isinstance(r, Notice) and r.kind == "gap"]
        assert [g.ts_ns for g in gaps] == [a for a, _ in s.gaps] and "19.00 s" in gaps[0].message
        summary = summarize(s)
    rate = summary["streams"]["gaze"]["rate_hz"]
    assert rate == pytest.approx(true_rate, rel=2e-3), rate
    assert [round(g["duration_s"], 2) for g in summary["gaps"]] == [19.0, 19.0]
    assert main(["inspect", str(d)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("notice gap: no gaze for 19.00 s") == 2 and f"1788 | {rate:.1f} Hz" in out
