"""`gazeqwen-edge calibrate ...` never uses wrong values silently: the image size beside a camera matrix, an unknown
wearer, an offset from too few fixations, replacing a stored offset, non-finite values."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2")

from gazeqwen_edge.calibration.camera import pinhole_intrinsics  # noqa: E402
from gazeqwen_edge.cli import main  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GAZEQWEN_EDGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _store(home, **wearers) -> None:
    home.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "wearers": {k: {"dx": v[0], "dy": v[1], "updated": "2026-01-01"} for k, v in wearers.items()}}
    (home / "wearer_offsets.json").write_text(json.dumps(doc))


def _scene_camera_json(path, width, height, with_size=True):
    K = pinhole_intrinsics(width, height).camera_matrix.copy()
    K[0, 2], K[1, 2] = 0.53 * width, 0.48 * height  # a real lens's axis is a little off the sensor's centre
    doc = {"camera_matrix": K.tolist(), "distortion_coefficients": [[0.0] * 8]}
    if with_size:  # as our session recorder writes it (device/session.py)
        doc.update(width=width, height=height)
    path.write_text(json.dumps(doc))
    return path


def test_calibrate_camera_reads_the_image_size_from_scene_camera_json(tmp_path, capsys):
    """A 320x240 session's scene_camera.json was read as 1600x1200 with a 136.4 deg field of view."""
    p = _scene_camera_json(tmp_path / "scene_camera.json", 320, 240)
    assert main(["calibrate", "camera", str(p)]) == 0
    out = capsys.readouterr().out
    assert "size 320x240 " in out and "field of view 102.9 x 86.6 deg" in out, out


def test_calibrate_camera_flags_an_assumed_size_and_refuses_an_impossible_one(tmp_path, capsys):
    # Pupil Cloud's scene_camera.json has no size: the Neon's, since the principal point fits it, and said so
    p = _scene_camera_json(tmp_path / "cloud.json", 1600, 1200, with_size=False)
    assert main(["calibrate", "camera", str(p)]) == 0
    assert "size 1600x1200 (not in the file: assumed from the principal point)" in capsys.readouterr().out
    # a matrix for 320x240 stated as 1600x1200: its principal point sits in a corner of that image
    doc = json.loads(_scene_camera_json(tmp_path / "bad.json", 320, 240).read_text())
    doc.update(width=1600, height=1200)
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    assert main(["calibrate", "camera", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "principal point" in err and "another image size" in err and "Traceback" not in err
    doc.update(width=-5)
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    assert main(["calibrate", "camera", str(tmp_path / "bad.json")]) == 2
    assert "no scene camera has that" in capsys.readouterr().err


def test_unknown_wearer_is_an_error_naming_the_known_wearers(home, neon_recording_dir, capsys):
    """`calibrate fixations --wearer nobody` used the recording's own offset instead (exit 0)."""
    _store(home, dom=(12.0, -8.0), ann=(1.0, 2.0))
    assert main(["calibrate", "fixations", str(neon_recording_dir), "--wearer", "nobody"]) == 2
    out, err = capsys.readouterr()
    assert "no offset stored for wearer 'nobody' (known wearers: 'ann', 'dom')" in err, err
    assert "fixations (ours)" not in out  # refused before the detector ran
    assert main(["calibrate", "show", "--wearer", "nobody"]) == 2
    assert "known wearers: 'ann', 'dom'" in capsys.readouterr().err
    assert main(["calibrate", "fixations", str(neon_recording_dir), "--wearer", "dom", "--show", "0"]) == 0
    assert "(+12.0, -8.0) px (stored for wearer 'dom')" in " ".join(capsys.readouterr().out.split())


def test_offset_from_too_few_usable_fixations_is_refused(home, capsys):
    """The wearer glanced away 90 % of the time: 1 of 11 fixations was on the target, and that offset, (+14.9,
    +30.5) px for a true (-12, +8), was stored."""
    rc = main(["calibrate", "offset", "-s", "calibration-target:offset=12,-8;glance=0.9", "-w", "dom", "-y"])
    err = capsys.readouterr().err
    assert rc == 2 and "only 1 of the 11 fixations detected (0.64 s of 4.51 s in fixations) agree" in err, err
    assert "at least half of the fixation time" in err
    assert not (home / "wearer_offsets.json").exists()


def test_offset_reports_its_spread(home, capsys):
    spec = "calibration-target:offset=12,-8;glance=0.5;seed=2"  # 3 of 8 fixations on the target, 0.1 px apart
    assert main(["calibrate", "offset", "-s", spec, "-w", "dom", "-y"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "spread of the 3 fixations' own offsets around it:" in out and "px RMS" in out, out


def test_replacing_a_stored_offset_needs_a_yes(home, capsys, monkeypatch):
    """A second run for the same wearer replaced the stored offset without asking."""
    import typer

    _store(home, dom=(1.0, 2.0))
    cmd = ["calibrate", "offset", "-s", "calibration-target:offset=12,-8", "-w", "dom"]
    stored = lambda: json.loads((home / "wearer_offsets.json").read_text())["wearers"]["dom"]  # noqa: E731
    # not interactive, no -y: refused before any gaze is collected
    assert main(cmd) == 2
    out, err = capsys.readouterr()
    err = " ".join(err.split())  # (the console may wrap long lines)
    assert "already has a stored offset (+1.0, +2.0) px" in err and "-y/--yes" in err and "collecting" not in out
    assert (stored()["dx"], stored()["dy"]) == (1.0, 2.0)
    # interactive: asked after the measurement; "no" keeps it, "yes" replaces it
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(typer, "prompt", lambda *a, **k: "")
    answers = []
    monkeypatch.setattr(typer, "confirm", lambda q, default=False: answers.append(q) or False)
    assert main(cmd) == 0
    assert "kept the stored offset of wearer 'dom'" in " ".join(capsys.readouterr().out.split())
    assert "Replace the stored offset of wearer 'dom' (+1.0, +2.0) px with" in answers[0]
    assert (stored()["dx"], stored()["dy"]) == (1.0, 2.0)
    monkeypatch.setattr(typer, "confirm", lambda q, default=False: True)
    assert main(cmd) == 0
    assert abs(stored()["dx"] + 12) < 2 and abs(stored()["dy"] - 8) < 2
    # -y replaces without asking
    _store(home, dom=(1.0, 2.0))
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: pytest.fail("asked despite -y"))
    assert main([*cmd, "-y"]) == 0 and abs(stored()["dx"] + 12) < 2


def test_non_finite_values_are_refused(home, capsys):
    home.mkdir(parents=True)
    # NaN, 1e308 (which overflowed to inf on the way to the model: every chunk failed and answers.jsonl stayed
    # empty) and 5000 px (every gaze sample moved out of the image, applied without a word): refused where the store
    # is read, by `calibrate show` and by a replay with --wearer
    for dx in ("NaN", "1e308", "5000", "-1601"):
        (home / "wearer_offsets.json").write_text(f'{{"version": 1, "wearers": {{"dom": {{"dx": {dx}, "dy": 0}}}}}}')
        assert main(["calibrate", "show"]) == 2
        assert "has an offset no calibration can produce" in capsys.readouterr().err
    assert main(["replay", "synthetic:1", "--wearer", "dom", "--out", str(home / "s")]) == 2
    assert "has an offset no calibration can produce" in capsys.readouterr().err
    assert not (home / "s").exists()
    (home / "wearer_offsets.json").write_text('{"version": 1, "wearers": {"dom": {"dx": -1600, "dy": 12.5}}}')
    assert main(["calibrate", "show"]) == 0  # the largest an offset may be
    (home / "wearer_offsets.json").unlink()
    for spec, words in (
        ("calibration-target:offset=nan,1", "finite"),
        ("calibration-target:seconds=inf", "finite"),
        ("calibration-target:glance=2", "0..1"),
        ("calibration-target:offset=1e308,0", "within the frame"),  # before: numpy warnings, then a wrong error
    ):
        assert main(["calibrate", "offset", "-s", spec, "-w", "x", "-y"]) == 2, spec
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (spec, err)
    assert main(["calibrate", "offset", "-s", "calibration-target", "-w", "x", "-t", "nan,5", "-y"]) == 2
    assert "must be finite" in capsys.readouterr().err
    assert not (home / "wearer_offsets.json").exists()


def test_resolve_offset_never_falls_back_for_a_named_wearer(tmp_path):
    from gazeqwen_edge.calibration.offset import OffsetStore, resolve_offset
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.errors import InputError

    src = SyntheticScene(duration_s=1, gaze_offset=(5.0, 5.0))
    store = OffsetStore(tmp_path / "w.json")
    assert resolve_offset(src, None, store) == ((5.0, 5.0), "recorded with the source")
    with pytest.raises(InputError, match="known wearers: none yet"):
        resolve_offset(src, "nobody", store)
    store.set("dom", (1.0, -1.0))
    assert resolve_offset(src, "dom", store) == ((1.0, -1.0), "stored for wearer 'dom'")
    assert np.isfinite(store.require("dom").dx)
