"""`gazeqwen-edge calibrate ...`: bad input gives a clear one-line error and a non-zero exit; the offset routine works
against a synthetic source and against the Neon simulator through the real realtime client."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("cv2")

from gazeqwen_edge.cli import main  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GAZEQWEN_EDGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_camera_command_good_and_bad(neon_recording_dir, tmp_path, capsys):
    assert main(["calibrate", "camera", str(neon_recording_dir)]) == 0
    out = capsys.readouterr().out
    assert "CRC ok" in out and "fx 888.41" in out and "field of view" in out

    assert main(["calibrate", "camera", str(tmp_path / "missing.bin")]) == 2
    err = capsys.readouterr().err
    assert "missing.bin" in err and "not found" in err and "Traceback" not in err

    data = bytearray((neon_recording_dir / "calibration.bin").read_bytes())
    data[50] ^= 0xFF
    bad = tmp_path / "calibration.bin"
    bad.write_bytes(bytes(data))
    assert main(["calibrate", "camera", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "corrupted" in err and "CRC32" in err and "Traceback" not in err


def test_offset_command_on_synthetic_target(home, capsys):
    rc = main(["calibrate", "offset", "-s", "calibration-target:offset=12,-8", "-w", "dom", "--seconds", "5", "-y"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "offset to add to raw gaze" in out and "deg after" in out
    doc = json.loads((home / "wearer_offsets.json").read_text())
    dx, dy = doc["wearers"]["dom"]["dx"], doc["wearers"]["dom"]["dy"]
    assert abs(dx + 12) < 2 and abs(dy - 8) < 2
    assert main(["calibrate", "show", "-w", "dom"]) == 0
    assert "dom" in capsys.readouterr().out
    assert main(["calibrate", "show", "-w", "nobody"]) == 2
    assert "no offset stored for wearer 'nobody'" in capsys.readouterr().err


def test_offset_command_bad_input(home, capsys):
    assert main(["calibrate", "offset", "-w", "x", "-y"]) == 2  # neither --source nor --address
    assert "exactly one of --source" in capsys.readouterr().err
    assert main(["calibrate", "offset", "-s", "calibration-target", "-w", "x", "-t", "nowhere", "-y"]) == 2
    assert "bad target 'nowhere'" in capsys.readouterr().err
    assert main(["calibrate", "offset", "-s", "/no/such/recording", "-w", "x", "-y"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (home / "wearer_offsets.json").exists()
    # a blank name or an unreadable store fails before the wearer spends time looking at the target
    assert main(["calibrate", "offset", "-s", "calibration-target", "-w", " ", "-y"]) == 2
    out, err = capsys.readouterr()
    assert "--wearer is empty" in err and "collecting gaze" not in out
    home.mkdir(parents=True)
    (home / "wearer_offsets.json").write_text("{broken")
    assert main(["calibrate", "offset", "-s", "calibration-target", "-w", "x", "-y"]) == 2
    out, err = capsys.readouterr()
    assert "not readable JSON" in err and "collecting gaze" not in out
    assert (home / "wearer_offsets.json").read_text() == "{broken"  # left for the user to fix


def test_offset_store_is_checked_only_when_saving(home, tmp_path, capsys):
    """--store that cannot be written fails before any gaze is collected when the offset is to be saved; with
    --no-save nothing is written there, so it measures (the store may sit on a read-only disk)."""
    (tmp_path / "afile").write_text("")
    store = str(tmp_path / "afile" / "offsets.json")
    cmd = ["calibrate", "offset", "-s", "calibration-target:offset=12,-8", "-w", "x", "-y", "--store", store]
    assert main(cmd) == 2
    out, err = capsys.readouterr()
    assert "--store" in err and "is a file, not a directory" in err and "collecting gaze" not in out
    assert main([*cmd, "--no-save", "--seconds", "1"]) == 0
    out = capsys.readouterr().out
    assert "offset to add to raw gaze" in out and "saved for wearer" not in out


def test_fixations_command_compares_with_the_device(neon_recording_dir, capsys):
    assert main(["calibrate", "fixations", str(neon_recording_dir), "--show", "2"]) == 0
    out = capsys.readouterr().out
    assert "vs the source's 23 fixations" in out and "F1" in out
    n = int(out.split(" fixations (ours)")[0].split()[-1])  # the fixations detected, of which 2 are listed
    assert f"... {n - 2} more not listed (--show {n} lists them all)" in out


@pytest.mark.slow
def test_offset_command_against_the_neon_simulator(home, capsys):
    """The live path: NeonLiveSource (the official realtime client) talking to our simulator serving a target scene."""
    pytest.importorskip("pupil_labs.realtime_api")
    from gazeqwen_edge.calibration.target_scene import TargetScene
    from gazeqwen_edge.device.simulator import NeonSimulator

    with NeonSimulator(TargetScene(offset_px=(12, -8), duration_s=30)) as sim:
        rc = main(
            [
                "calibrate",
                "offset",
                "--address",
                "127.0.0.1",
                "--port",
                str(sim.port),
                "-w",
                "live",
                "--seconds",
                "3",
                "-y",
            ]
        )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "camera calibration from the device" in out  # fetched over the realtime API, not a nominal model
    w = json.loads((home / "wearer_offsets.json").read_text())["wearers"]["live"]
    assert abs(w["dx"] + 12) < 2 and abs(w["dy"] - 8) < 2, w


def test_a_store_file_in_a_folder_that_cannot_be_written_is_refused_before_collecting(
    home, tmp_path, capsys, monkeypatch
):
    """The store is replaced atomically (a new file in its folder, renamed over it): a writable store file in a folder
    this user cannot write was accepted, and the wearer's calibration was lost after collecting. Permission bits are
    read as a user who is not root reads them (the tests may run as root, who writes anywhere)."""
    import os
    import stat

    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "offsets.json"
    cmd = ["calibrate", "offset", "-s", "calibration-target:offset=12,-8", "-w", "x", "-y", "--seconds", "1"]
    assert main([*cmd, "--store", str(store)]) == 0  # the store exists now
    capsys.readouterr()
    folder.chmod(0o555)

    def access_as_a_user(path, mode, **kw):
        if mode & os.W_OK and not stat.S_IMODE(os.stat(path).st_mode) & stat.S_IWUSR:
            return False
        return True

    monkeypatch.setattr(os, "access", access_as_a_user)
    try:
        assert main([*cmd[:5], "y", "-y", "--seconds", "1", "--store", str(store)]) == 2
    finally:
        folder.chmod(0o755)
    out, err = capsys.readouterr()
    assert f"no permission to write in {folder}" in err and "collecting gaze" not in out


def test_fixations_on_a_source_without_raw_gaze_is_refused(tmp_path, capsys):
    """A StreamGaze video (fixations, no raw gaze) gave exit 0 with '0 gaze samples', F1 0.000 and NaN errors."""
    import numpy as np

    from gazeqwen_edge.device._io import Mp4Writer

    w = Mp4Writer(tmp_path / "clip.mp4", 32, 24, 10)
    for _ in range(20):
        w.write(np.zeros((24, 32, 3), np.uint8))
    w.close()
    (tmp_path / "clip_fixation_filtered.csv").write_text(
        "start_time,end_time,center_x,center_y,duration,start_time_seconds,end_time_seconds,fixation_id,"
        "duration_seconds\n00:00,00:01,0.5,0.5,0.5,0.2,0.7,0,0.5\n"
    )
    assert main(["calibrate", "fixations", str(tmp_path / "clip.mp4")]) == 2
    out, err = capsys.readouterr()
    assert "holds no raw gaze samples" in err and "nan" not in out
