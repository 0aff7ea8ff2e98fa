"""calibration.bin has one owner (device/calibration_bin.py): Pupil Labs' record layout, our CRC check and packer."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.device import SyntheticScene
from gazeqwen_edge.device.calibration_bin import (
    CALIBRATION_BIN_SIZE,
    calibration_dtype,
    pack_calibration_record,
    parse_calibration_record,
    read_calibration_record,
    serial_text,
)
from gazeqwen_edge.errors import InputError

PACKAGE = Path(__file__).resolve().parents[2] / "gazeqwen_edge"


def test_layout_is_pupil_labs_own():
    from pupil_labs.neon_recording.calib import Calibration

    assert calibration_dtype() == Calibration.dtype and calibration_dtype().itemsize == CALIBRATION_BIN_SIZE == 803


def test_read_matches_pupil_labs_reader_and_checks_crc(neon_recording_dir, tmp_path):
    import pupil_labs.neon_recording as nr

    ref = nr.open(neon_recording_dir).calibration
    rec = read_calibration_record(neon_recording_dir)  # the directory works too
    np.testing.assert_array_equal(rec["scene_camera_matrix"], ref.scene_camera_matrix)
    np.testing.assert_array_equal(rec["right_distortion_coefficients"], ref.right_distortion_coefficients)
    assert serial_text(rec) == ref.serial == "578846"
    data = bytearray((neon_recording_dir / "calibration.bin").read_bytes())
    data[300] ^= 0x40
    with pytest.raises(InputError, match="CRC32 mismatch"):
        parse_calibration_record(bytes(data), "x.bin")
    with pytest.raises(InputError, match="must be 803 bytes, this one has 802"):
        parse_calibration_record(bytes(data[:-1]), "x.bin")
    lfs = tmp_path / "calibration.bin"
    lfs.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 803\n")
    with pytest.raises(InputError, match="Git LFS pointer") as e:
        read_calibration_record(lfs)
    assert "git lfs pull" in e.value.hint


def test_pack_round_trips_through_pupil_labs_reader():
    from pupil_labs.neon_recording.calib import Calibration

    k = np.array([[888.4, 0, 805.1], [0, 888.0, 618.6], [0, 0, 1]])
    d = np.array([-0.13, 0.11, 0.0002, -0.0004, 0.0, 0.17, 0.05, 0.02])
    data = pack_calibration_record(k, d[:5], serial="abc123", version=2)
    assert len(data) == 803 and zlib.crc32(data[:799]) == int.from_bytes(data[799:], "little")
    theirs = Calibration.from_buffer(data)
    np.testing.assert_array_equal(theirs.scene_camera_matrix, k)
    np.testing.assert_array_equal(theirs.scene_distortion_coefficients, np.r_[d[:5], 0, 0, 0])
    assert theirs.serial == "abc123" and int(theirs.version) == 2
    np.testing.assert_array_equal(parse_calibration_record(data)["scene_extrinsics_affine_matrix"], np.eye(4))


def test_simulator_serves_what_the_readers_read():
    from gazeqwen_edge.calibration.camera import parse_calibration_bin
    from gazeqwen_edge.device.simulator import calibration_bytes

    scene = SyntheticScene(seed=1, duration_s=0.5, width=160, height=120)
    intr = parse_calibration_bin(calibration_bytes(scene, "sim042"), "sim")
    np.testing.assert_array_equal(intr.camera_matrix, scene.intrinsics.camera_matrix)
    assert intr.extra["serial"] == "sim042"


def test_calibration_bin_format_has_one_owner():
    """The layout, size and CRC of calibration.bin are written out once: no other module of the package computes a
    CRC32 or spells out the record's fields as a dtype (before: camera.py, neon_native.py and the simulator each did)."""
    offenders = []
    for p in PACKAGE.rglob("*.py"):
        if p.name == "calibration_bin.py":
            continue
        text = p.read_text()
        if "crc32(" in text or re.search(r"\(\s*\"scene_camera_matrix\"\s*,", text):
            offenders.append(str(p.relative_to(PACKAGE)))
    assert offenders == []
