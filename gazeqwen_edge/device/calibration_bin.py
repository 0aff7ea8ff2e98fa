"""Neon `calibration.bin`: the one place in the project where its format is read and written.

The Neon Companion app stores the module's factory calibration in every recording as `calibration.bin`, and the
realtime API serves the same bytes (`Device.get_calibration()`). REFERENCE.md section 4: 803 bytes, little-endian,
packed: version u1, serial 6 bytes, then for the scene, right-eye and left-eye cameras a 3x3 float64 camera matrix,
8 float64 distortion coefficients (OpenCV order k1, k2, p1, p2, k3, k4, k5, k6) and a 4x4 float64 extrinsics matrix,
and last a CRC32 (u4) of the first 799 bytes.

The record layout is Pupil Labs' own: `pupil_labs.neon_recording.calib.Calibration.dtype` from the
`pupil-labs-neon-recording` package (the `device` extra), the class that their realtime API returns from
`get_calibration()`. We import it rather than keep a copy, so the layout is written down once, by its makers; only the
CRC check (theirs does not verify it) and packing are ours.

    rec = read_calibration_record(path)         # numpy structured scalar, fields named as in the dtype
    K = rec["scene_camera_matrix"]              # (3, 3) float64, px
    data = pack_calibration_record(K, dist, serial="578846")   # 803 bytes with a valid CRC
"""

from __future__ import annotations

import zlib
from os import PathLike
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import InputError, MissingDependencyError, require

CALIBRATION_BIN_SIZE = 803  # bytes (REFERENCE.md section 4)
CRC_COVERS = CALIBRATION_BIN_SIZE - 4  # the CRC32 is over every byte before it
EYE_CAMERAS = ("right", "left")


def calibration_dtype() -> np.dtype:
    """The packed record layout of calibration.bin, as pupil-labs-neon-recording defines it.

    Raises MissingDependencyError when the `device` extra is not installed, or when the installed version's record is
    not the 803 bytes every Neon writes (an incompatible release)."""
    calib = require("pupil_labs.neon_recording.calib", "device", "reading or writing Neon calibration.bin")
    dt = np.dtype(calib.Calibration.dtype)
    if dt.itemsize != CALIBRATION_BIN_SIZE or dt.names is None or dt.names[-1] != "crc":
        raise MissingDependencyError(
            f"the installed pupil-labs-neon-recording describes calibration.bin as {dt.itemsize} bytes ending in "
            f"{(dt.names or ('?',))[-1]!r}; Neon writes {CALIBRATION_BIN_SIZE} bytes ending in a CRC32",
            hint="pip install 'gazeqwen-edge[device]' (pupil-labs-neon-recording >=2.1,<3)",
        )
    return dt


def crc32(data: bytes) -> int:
    """The CRC32 (zlib polynomial, as the Companion app computes it) of the first 799 bytes of a record."""
    return zlib.crc32(bytes(data[:CRC_COVERS])) & 0xFFFFFFFF


def parse_calibration_record(data: bytes, path: str | PathLike | None = None) -> np.void:
    """Check and unpack the bytes of a calibration.bin.

    Returns one structured numpy scalar with the fields of `calibration_dtype()`: `version` (uint8), `serial`
    (6 bytes, NUL padded), `{scene,right,left}_camera_matrix` (3, 3) float64 px, `{...}_distortion_coefficients` (8,)
    float64, `{...}_extrinsics_affine_matrix` (4, 4) float64, `crc` uint32.
    Raises InputError naming `path` when the size is not 803 bytes, the stored CRC32 does not match the content, or a
    matrix holds NaN / infinite values.
    """
    dt = calibration_dtype()
    data = bytes(data)
    if len(data) != CALIBRATION_BIN_SIZE:
        raise InputError(
            path,
            f"calibration.bin must be {CALIBRATION_BIN_SIZE} bytes, this one has {len(data)} (truncated or not a Neon"
            " calibration file)",
        )
    rec = np.frombuffer(data, dtype=dt, count=1)[0]
    computed, stored = crc32(data), int(rec["crc"])
    if computed != stored:
        raise InputError(
            path,
            f"calibration.bin is corrupted: CRC32 mismatch (the CRC32 of its first {CRC_COVERS} bytes is "
            f"{computed:#010x}, the file says {stored:#010x})",
            hint="copy calibration.bin again from the recording or fetch it from the device",
        )
    for name in dt.names[2:-1]:  # every matrix and coefficient: no camera calibration holds NaN or infinity
        if not np.all(np.isfinite(rec[name])):
            raise InputError(path, f"calibration.bin: {name} holds NaN or infinite values (no device writes these)")
    return rec


def read_calibration_record(path: str | PathLike) -> np.void:
    """`parse_calibration_record` of a file (a calibration.bin, or a recording directory holding one).
    A missing or unreadable file, or a Git LFS pointer in its place, raises InputError."""
    from gazeqwen_edge.device._io import check_not_lfs_pointer

    p = Path(path)
    if p.is_dir():
        p = p / "calibration.bin"
    if not p.is_file():
        raise InputError(p, "calibration file not found", hint="a Neon recording directory has a calibration.bin")
    check_not_lfs_pointer(p)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read calibration file ({e.strerror or e})") from e
    return parse_calibration_record(data, p)


def serial_text(rec: np.void) -> str:
    """The module serial number of a record as text (NUL padding removed)."""
    return bytes(rec["serial"]).split(b"\0")[0].decode("ascii", "replace")


def pack_calibration_record(
    scene_camera_matrix,
    scene_distortion_coefficients,
    *,
    serial: str = "",
    version: int = 1,
    scene_extrinsics=None,
    eye_camera_matrix=None,
    eye_distortion_coefficients=None,
) -> bytes:
    """Write a calibration.bin record (803 bytes, CRC32 set) from a scene camera model.

    `scene_camera_matrix` (3, 3) px; `scene_distortion_coefficients` up to 8 values (OpenCV order; missing ones are
    0); `serial` its first 6 bytes (UTF-8); extrinsics default to the identity; the eye cameras, which nothing in
    this project reads, get `eye_camera_matrix` / `eye_distortion_coefficients` (default zeros) for both eyes.
    """
    a = np.zeros((), calibration_dtype())
    a["version"] = int(version)
    a["serial"] = serial.encode("utf-8")[:6]
    a["scene_camera_matrix"] = np.asarray(scene_camera_matrix, np.float64).reshape(3, 3)
    d = np.zeros(8)
    dc = np.asarray(scene_distortion_coefficients, np.float64).reshape(-1)[:8]
    d[: len(dc)] = dc
    a["scene_distortion_coefficients"] = d
    a["scene_extrinsics_affine_matrix"] = np.eye(4) if scene_extrinsics is None else scene_extrinsics
    for eye in EYE_CAMERAS:
        a[f"{eye}_extrinsics_affine_matrix"] = np.eye(4)
        if eye_camera_matrix is not None:
            a[f"{eye}_camera_matrix"] = np.asarray(eye_camera_matrix, np.float64).reshape(3, 3)
        if eye_distortion_coefficients is not None:
            a[f"{eye}_distortion_coefficients"] = eye_distortion_coefficients
    raw = bytearray(a.tobytes())
    raw[CRC_COVERS:] = crc32(raw).to_bytes(4, "little")
    return bytes(raw)
