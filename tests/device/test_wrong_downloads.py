"""The usual wrong downloads get one clear `error:` line with the fix: a Git LFS pointer in place of a video or data
file, a Pupil Cloud enrichment download in place of a recording."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gazeqwen_edge.cli import main
from gazeqwen_edge.device import open_source
from gazeqwen_edge.errors import InputError

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 7933531\n"
)
SG_HEADER = (
    "start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,duration_seconds"
)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process (what a user sees on the terminal: libav writes to fd 2 directly)."""
    return subprocess.run(
        [sys.executable, "-c", "from gazeqwen_edge.cli import run; run()", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _neon_with_lfs_video(neon_recording_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "rec"
    d.mkdir()
    for p in neon_recording_dir.iterdir():
        os.symlink(p, d / p.name)
    (d / "Neon Scene Camera v1 ps1.mp4").write_text(LFS_POINTER)
    return d


def test_lfs_pointer_video_is_named_with_the_fix_and_no_libav_line(neon_recording_dir, tmp_path):
    """Frames asked of a recording whose mp4 is a Git LFS pointer: one error line naming it, a hint with
    `git lfs pull`, and nothing from libav. Before: "moov atom not found" on stderr (pupil-labs-video switches libav
    logging on) and an error about invalid data."""
    d = _neon_with_lfs_video(neon_recording_dir, tmp_path)
    r = _cli("inspect", str(d), "--decode")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert [ln for ln in lines if ln.startswith("error:")] == [
        f"error: {d / 'Neon Scene Camera v1 ps1.mp4'}: is a Git LFS pointer, not the video itself"
    ]
    assert "git lfs pull" in r.stderr and "moov atom" not in r.stderr and "Traceback" not in r.stderr
    # any other unreadable mp4: libav's own complaint stays off the terminal too (pupil-labs-video switches it on)
    (d / "Neon Scene Camera v1 ps1.mp4").unlink()
    (d / "Neon Scene Camera v1 ps1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    r = _cli("inspect", str(d), "--decode")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 2 and lines[1].startswith("  hint:"), r.stderr  # error + hint only
    assert (
        r.stderr.startswith("error: ")
        and "is not a readable video" in r.stderr
        and "moov atom not found\n" not in r.stderr
    )
    # a StreamGaze item's video (the video is what the item is)
    sg = tmp_path / "sg"
    sg.mkdir()
    (sg / "clip.mp4").write_text(LFS_POINTER)
    (sg / "clip_fixation_filtered.csv").write_text(SG_HEADER + "\n0,1,0.5,0.5,1,0,1,0,1\n")
    r = _cli("inspect", str(sg / "clip.mp4"))
    assert r.returncode == 2 and "clip.mp4: is a Git LFS pointer" in r.stderr and "git lfs pull" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 2  # error + hint


def test_gaze_only_cli_path_survives_a_broken_scene_video(neon_recording_dir, tmp_path, capsys):
    """`calibrate fixations` (gaze only) on a recording whose scene mp4 is unreadable: a warning about the video,
    then the work. Before: exit 2 (the scene size was taken by opening the video)."""
    d = _neon_with_lfs_video(neon_recording_dir, tmp_path)
    with pytest.warns(UserWarning, match="Git LFS pointer"):
        assert main(["calibrate", "fixations", str(d)]) == 0
    out = capsys.readouterr().out
    assert "1788 gaze samples -> " in out and "vs the source's 23 fixations" in out


def test_lfs_pointer_data_files_are_named(neon_recording_dir, tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    for p in neon_recording_dir.iterdir():
        if p.name != "gaze_200hz.raw":
            os.symlink(p, d / p.name)
    (d / "gaze_200hz.raw").write_text(LFS_POINTER)
    with pytest.raises(InputError, match="is a Git LFS pointer") as e:
        open_source(d)
    assert e.value.path.endswith("gaze_200hz.raw") and "git lfs pull" in e.value.hint
    c = tmp_path / "cloud"
    c.mkdir()
    (c / "gaze.csv").write_text(LFS_POINTER)
    (c / "world_timestamps.csv").write_text(LFS_POINTER)
    with pytest.raises(InputError, match="gaze.csv: is a Git LFS pointer"):
        open_source(c)


MARKER_MAPPER_GAZE = (
    "section id,recording id,timestamp [ns],gaze detected on surface,gaze position on surface x [normalized],"
    "gaze position on surface y [normalized],fixation id,blink id\ns,r,1,True,0.5,0.5,,\n"
)


@pytest.mark.parametrize(
    "files, kind",
    [
        (
            {
                "gaze.csv": MARKER_MAPPER_GAZE,
                "sections.csv": "section id\ns\n",
                "surface_positions.csv": "x\n",
                "enrichment_info.txt": "Marker Mapper\nhttps://docs.pupil-labs.com/\nv1\n",
            },
            "'Marker Mapper' enrichment",
        ),
        ({"gaze.csv": MARKER_MAPPER_GAZE}, "'Marker Mapper' enrichment"),  # the csv alone, copied out
        (
            {
                "gaze.csv": "section id,recording id,timestamp [ns],gaze detected in reference image,"
                "gaze position in reference image x [px],gaze position in reference image y [px]\n",
                "reference_image.jpeg": "",
                "fixations.csv": "x\n",
            },
            "'Reference Image Mapper' enrichment",
        ),
        ({"aoi_fixations.csv": "x\n", "sections.csv": "x\n", "fixations.csv": "x\n"}, "enrichment download"),
    ],
)
def test_enrichment_download_is_named_as_such(tmp_path, capsys, files, kind):
    """Before: 'world_timestamps.csv: file is missing: not a complete Pupil Cloud export' (or 'not a recording this
    tool recognises'), which sends the user looking for a lost file instead of the right download."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=kind) as e:
        open_source(tmp_path)
    assert "Timeseries Data + Scene Video" in e.value.hint
    assert main(["inspect", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "is a Pupil Cloud" in err and "Timeseries Data + Scene Video" in err


def test_a_recording_read_gaze_only_warns_in_one_line(neon_recording_dir, tmp_path):
    """Gaze goes on without the unreadable scene video; the user is told in one `warning:` line. Before: Python's
    `<path>:0: SourceWarning: ...` form on stderr."""
    d = _neon_with_lfs_video(neon_recording_dir, tmp_path)
    r = _cli("inspect", str(d))
    assert r.returncode == 0, r.stderr
    warned = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warned) == 1 and warned[0].startswith(f"warning: {d / 'Neon Scene Camera v1 ps1.mp4'}: "), r.stderr
    assert "SourceWarning" not in r.stderr and "git lfs pull" in warned[0]
