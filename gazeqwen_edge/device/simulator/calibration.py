"""`calibration_bytes`: the scene camera calibration the simulated phone serves as `GET /calibration.bin` (the
Neon's 803-byte binary layout with its CRC32, REFERENCE.md section 4)."""

from __future__ import annotations

import struct

import numpy as np

from gazeqwen_edge.device.source import Source


def calibration_bytes(source: Source, serial: str = "sim000") -> bytes | None:
    """The source's own `calibration.bin` (a Neon recording), else an 803-byte one built from its scene intrinsics
    (eye cameras: placeholders), else None."""
    path = getattr(source, "path", None)
    if path is not None:
        from pathlib import Path

        real = Path(path) / "calibration.bin"
        if real.is_file():  # a Neon recording: serve its own calibration
            return real.read_bytes()
    intr = source.intrinsics
    if intr is None:
        return None
    import zlib

    dt = np.dtype(
        [
            ("version", "u1"),
            ("serial", "6S"),
            ("scene_camera_matrix", "(3,3)d"),
            ("scene_distortion_coefficients", "8d"),
            ("scene_extrinsics_affine_matrix", "(4,4)d"),
            ("right_camera_matrix", "(3,3)d"),
            ("right_distortion_coefficients", "8d"),
            ("right_extrinsics_affine_matrix", "(4,4)d"),
            ("left_camera_matrix", "(3,3)d"),
            ("left_distortion_coefficients", "8d"),
            ("left_extrinsics_affine_matrix", "(4,4)d"),
            ("crc", "u4"),
        ]
    )
    a = np.zeros((), dt)
    a["version"] = 1
    a["serial"] = serial.encode()[:6]
    a["scene_camera_matrix"] = np.asarray(intr.camera_matrix, np.float64).reshape(3, 3)
    d = np.zeros(8)
    dc = np.asarray(intr.dist_coeffs, np.float64).reshape(-1)[:8]
    d[: len(dc)] = dc
    a["scene_distortion_coefficients"] = d
    for k in ("scene", "right", "left"):
        a[f"{k}_extrinsics_affine_matrix"] = np.eye(4)
    for k in ("right", "left"):
        a[f"{k}_camera_matrix"] = np.array([[140.0, 0, 96], [0, 140.0, 96], [0, 0, 1]])
    raw = bytearray(a.tobytes())
    crc = zlib.crc32(bytes(raw[:-4])) & 0xFFFFFFFF
    raw[-4:] = struct.pack("<I", crc)
    return bytes(raw)
