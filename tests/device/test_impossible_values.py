"""Values no device produces are refused (InputError) or flagged (Notice), never passed on silently; what a killed
writer left is told about, not guessed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.cli import main
from gazeqwen_edge.device import Fixation, GazeSample, Notice, SceneFrame, open_source
from gazeqwen_edge.device.cloud_export import CloudExportSource
from gazeqwen_edge.device.session import Recorder, SessionSource
from gazeqwen_edge.errors import InputError
from tests.device.test_session import _write_cloud_export

T0 = 1_700_000_000_000_000_000


def _neon_copy(neon_recording_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "neon"
    shutil.copytree(neon_recording_dir, d)
    for p in d.iterdir():
        p.chmod(0o644)
    return d


def _notices(src, kind):
    return [n for n in src.records({Notice}) if n.kind == kind]


@pytest.mark.parametrize("offset", ["NaN", "Infinity", "1e308", "[1, 2, 3]", '"27.2"'])
def test_impossible_gaze_offset_in_info_json_is_refused(neon_recording_dir, tmp_path, capsys, offset):
    """NaN or 1e308 px is no wearer offset (before: accepted; `inspect --json` then printed NaN, which is not JSON)."""
    d = _neon_copy(neon_recording_dir, tmp_path)
    info = (d / "info.json").read_text().replace("[27.237305,6.635742]", offset if "[" in offset else f"[{offset},1]")
    (d / "info.json").write_text(info)
    with pytest.raises(InputError, match="gaze_offset") as e:
        open_source(d)
    assert e.value.path.endswith("info.json")
    assert main(["inspect", str(d), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error:" in err and "gaze_offset" in err
    # the same in a Cloud export's info.json and in our session.json
    _write_cloud_export(tmp_path / "export")
    (tmp_path / "export" / "info.json").write_text('{"start_time": 1, "duration": 2, "gaze_offset": [NaN, 0]}')
    with pytest.raises(InputError, match="gaze_offset"):
        CloudExportSource(tmp_path / "export")
    with Recorder(tmp_path / "s") as r:
        r.write(GazeSample(T0, 1.0, 2.0))
    m = json.loads((tmp_path / "s" / "session.json").read_text())
    m["gaze_offset"] = [1e308, 0]
    (tmp_path / "s" / "session.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match="gaze_offset"):
        SessionSource(tmp_path / "s")


def test_inspect_json_is_strict_json(neon_recording_dir, capsys):
    assert main(["inspect", str(neon_recording_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    assert summary["streams"]["gaze"]["count"] == 1788


def test_nan_gaze_is_dropped_with_a_notice_in_every_reader(neon_recording_dir, tmp_path):
    """NaN / inf gaze coordinates cannot come from a device: dropped, and a Notice says how many (before: delivered
    as GazeSample(x=nan), which every consumer downstream would average into nonsense)."""
    d = _neon_copy(neon_recording_dir, tmp_path)
    xy = np.fromfile(d / "gaze_200hz.raw", "<f4").reshape(-1, 2)
    xy[10, 0], xy[20, 1] = np.nan, np.inf
    xy[30, 0], xy[40, 1] = 3.3e38, -1e8  # far outside any image (a float32 file holds no 1e308)
    xy[50, 0], xy[60, 1] = -1500.0, 3100.0  # off the image, but a device may report these: kept
    xy.tofile(d / "gaze_200hz.raw")
    with open_source(d) as s:
        ts, x, y = s.gaze_arrays()
        notes = _notices(s, "invalid")
    assert len(ts) == 1784 and np.all(np.abs(x) <= 3200) and np.all(np.abs(y) <= 3200)
    assert (x < -1000).sum() == 1 and (y > 3000).sum() == 1  # the two off the image (plus the recording's offset)
    assert len(notes) == 1 and "4 of 1788 gaze samples have NaN or infinite coordinates" in notes[0].message
    # the session / Cloud CSV reader, where a text file can hold 1e308 (it was copied into a replay's gaze.csv)
    ref = _write_cloud_export(tmp_path / "export")
    g = tmp_path / "export" / "gaze.csv"
    lines = g.read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace(str(ref["gx"][4]), "nan")
    lines[7] = lines[7].replace(str(ref["gx"][6]), "1e308")
    lines[9] = lines[9].replace(str(ref["gy"][8]), "-99999999")
    g.write_text("".join(lines))
    s = CloudExportSource(tmp_path / "export")
    assert len(s.gaze_arrays()[0]) == 97 and len(notes := _notices(s, "invalid")) == 1
    assert "3 of 100 gaze samples" in notes[0].message and "no device reports" in notes[0].message


def test_a_time_no_device_clock_gave_is_dropped_not_sorted_to_the_front(tmp_path, capsys):
    """A gaze sample stamped 0 ns (or a fixation years away) in a 2026 recording was kept: re-sorted to the front
    ("reordered ... 1767225600090.000 ms back", a gap of 56 years, `first (s)` -1767225600) and copied into a
    replay's gaze.csv. Now dropped with the invalid notice, stamped at the recording's time."""
    ref = _write_cloud_export(tmp_path / "export")
    g = tmp_path / "export" / "gaze.csv"
    lines = g.read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace(str(ref["gts"][4]), "0")
    g.write_text("".join(lines))
    f = tmp_path / "export" / "fixations.csv"
    rows = f.read_text().splitlines()
    body = rows[1].split(",")
    years_later = body.copy()
    years_later[3], years_later[4] = str(int(body[3]) + 10**17), str(int(body[4]) + 10**17)  # ~3 years on
    f.write_text("\n".join([rows[0], rows[1], ",".join(years_later)]) + "\n")
    s = CloudExportSource(tmp_path / "export")
    ts = s.gaze_arrays()[0]
    assert len(ts) == 99 and ts.min() == ref["gts"][0] and not _notices(s, "reordered") and not s.gaps
    assert len(list(s.records({Fixation}))) == 1
    notes = _notices(s, "invalid")
    assert len(notes) == 2 and all(n.ts_ns > 10**18 for n in notes)
    assert "1 of 100 gaze samples have a timestamp more than 24 h from the rest" in notes[0].message
    assert "1 of 2 fixations are impossible" in notes[1].message


def test_impossible_fixations_are_dropped_with_a_notice(tmp_path):
    _write_cloud_export(tmp_path / "export")
    f = tmp_path / "export" / "fixations.csv"
    rows = f.read_text().splitlines()
    body = rows[1].split(",")
    nan_row = body.copy()
    nan_row[6] = "nan"
    backwards = body.copy()
    backwards[3], backwards[4] = body[4], body[3]  # ends before it starts
    far = body.copy()
    far[7] = "1e308"  # fixation y [px]
    f.write_text("\n".join([rows[0], rows[1], ",".join(nan_row), ",".join(backwards), ",".join(far)]) + "\n")
    s = CloudExportSource(tmp_path / "export")
    assert len(list(s.records({Fixation}))) == 1
    notes = _notices(s, "invalid")
    assert len(notes) == 1 and "3 of 4 fixations are impossible" in notes[0].message


def test_header_only_gaze_csv_is_told(tmp_path, capsys):
    """A gaze.csv with only its header gave exit 0, no gaze and no word; now a Notice (shown by inspect)."""
    _write_cloud_export(tmp_path / "export")
    g = tmp_path / "export" / "gaze.csv"
    g.write_text(g.read_text().splitlines()[0] + "\n")
    s = CloudExportSource(tmp_path / "export")
    assert len(s.gaze_arrays()[0]) == 0
    assert [n.message for n in _notices(s, "no_gaze")] == ["gaze.csv: no gaze samples"]
    assert main(["inspect", str(tmp_path / "export")]) == 0
    assert "notice no_gaze: gaze.csv: no gaze samples" in capsys.readouterr().out


def _killed_session(d: Path, cut_last_line: bool = False) -> Recorder:
    """A session whose writer stopped without closing (as after SIGKILL): its first gaze sample, then the first scene
    frame (its manifest and info.json were last written then: a 0 s span), then 5.8 s of gaze, flushed."""
    rec = Recorder(d, scene_size=(32, 24))
    for k in range(1161):  # 5.8 s at 200 Hz
        rec.write(GazeSample(T0 + k * 5_000_000, 10.0 + k, 20.0))
        if k == 0:
            rec.write(SceneFrame(T0, np.zeros((24, 32, 3), np.uint8), 0))
    rec.flush()
    rec._stop.set()  # the flush thread ends as the process would have; the session stays "recording"
    rec._flusher.join()
    if cut_last_line:
        g = d / "gaze.csv"
        g.write_bytes(g.read_bytes()[:-7])
    return rec


def test_killed_session_duration_comes_from_its_data(tmp_path, capsys):
    """Before: duration 0.000 s (info.json and session.json were last written at the first frame)."""
    _killed_session(tmp_path / "s")
    s = SessionSource(tmp_path / "s")
    assert not s.closed and (s.end_ns - s.start_ns) / 1e9 == pytest.approx(5.8)
    assert main(["inspect", str(tmp_path / "s"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duration_s"] == pytest.approx(5.8)


def test_cut_last_gaze_line_is_told(tmp_path):
    """A killed writer's half-written last line is dropped with a Notice (before: silently one sample fewer); a
    closed session whose files hold fewer rows than session.json counted is told too."""
    _killed_session(tmp_path / "s", cut_last_line=True)
    s = SessionSource(tmp_path / "s")
    assert len(s.gaze_arrays()[0]) == 1160
    notes = _notices(s, "truncated")
    assert len(notes) == 1 and "gaze.csv: the last line (1162) was cut" in notes[0].message
    with Recorder(tmp_path / "c") as r:
        for k in range(10):
            r.write(GazeSample(T0 + k, 1.0, 2.0))
    g = tmp_path / "c" / "gaze.csv"
    g.write_text("".join(g.read_text().splitlines(keepends=True)[:-1]))  # a whole line lost after closing
    notes = _notices(SessionSource(tmp_path / "c"), "truncated")
    assert len(notes) == 1 and "gaze.csv holds 9 rows but session.json counted 10" in notes[0].message


def test_backwards_frame_times_refuse_frames_but_not_gaze_only_work(neon_recording_dir, tmp_path):
    """Frame times cannot be re-sorted (frames are decoded in file order): asking for frames is an InputError,
    gaze-only work goes on with a warning (source.py policy). Before: Neon frames were delivered with times out of
    order; a Cloud export could not be opened for gaze at all."""
    import os

    from gazeqwen_edge.device._io import Mp4Writer
    from gazeqwen_edge.device.source import SourceWarning

    d = tmp_path / "rec"
    d.mkdir()
    for p in neon_recording_dir.iterdir():
        if p.name != "Neon Scene Camera v1 ps1.time":
            os.symlink(p, d / p.name)
    ts = np.fromfile(neon_recording_dir / "Neon Scene Camera v1 ps1.time", "<i8")
    ts[[50, 51]] = ts[[51, 50]]
    ts.tofile(d / "Neon Scene Camera v1 ps1.time")
    w = Mp4Writer(d / "Neon Scene Camera v1 ps1.mp4", 32, 24, 30)
    for _ in range(len(ts)):
        w.write(np.zeros((24, 32, 3), np.uint8))
    w.close()
    _write_cloud_export(tmp_path / "export")
    wt = tmp_path / "export" / "world_timestamps.csv"
    rows = wt.read_text().splitlines(keepends=True)
    rows[3], rows[4] = rows[4], rows[3]
    wt.write_text("".join(rows))
    for path, name in ((d, "Neon Scene Camera v1 ps1.time"), (tmp_path / "export", "world_timestamps.csv")):
        with open_source(path) as s:
            with pytest.raises(InputError, match="go backwards") as e:
                list(s.records({SceneFrame}))
            assert e.value.path.endswith(name)
            with pytest.warns(SourceWarning, match="go backwards"):
                assert s.scene_size is not None
            assert len(list(s.records({GazeSample}))) > 0 and not s.has_scene_video


def test_audio_chunks_missing_from_the_wav_are_told(tmp_path):
    """Chunks listed in audio_timestamps.csv whose samples audio.wav does not hold were dropped without a word."""
    from gazeqwen_edge.device import AudioChunk

    with Recorder(tmp_path / "s") as r:
        for k in range(10):
            r.write(AudioChunk(T0 + k * 100_000_000, np.zeros(800, np.float32), 8000))
    wav = tmp_path / "s" / "audio.wav"
    wav.write_bytes(wav.read_bytes()[: 44 + 2 * 800 * 7 + 10])  # 7 whole chunks and a bit
    s = SessionSource(tmp_path / "s")
    assert len(list(s.records({AudioChunk}))) == 7
    notes = [n for n in s.records({Notice, AudioChunk}) if isinstance(n, Notice) and n.kind == "truncated"]
    assert len(notes) == 1 and "the last 3 of 10 audio chunks" in notes[0].message


def test_neon_recording_without_gaze_samples_is_told(neon_recording_dir, tmp_path):
    d = _neon_copy(neon_recording_dir, tmp_path)
    for n in ("gaze_200hz.raw", "gaze_200hz.time", "worn_200hz.raw"):
        (d / n).write_bytes(b"")
    with open_source(d) as s:
        assert len(s.gaze_arrays()[0]) == 0
        assert [n.message for n in _notices(s, "no_gaze")] == ["gaze_200hz.raw: no gaze samples"]
