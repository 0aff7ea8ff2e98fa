"""`calibration_bytes`: the scene camera calibration the simulated phone serves as `GET /calibration.bin` (the
Neon's 803-byte binary layout with its CRC32, REFERENCE.md section 4)."""

from __future__ import annotations

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
    from gazeqwen_edge.device.calibration_bin import pack_calibration_record

    eye = np.array([[140.0, 0, 96], [0, 140.0, 96], [0, 0, 1]])  # placeholder eye cameras
    return pack_calibration_record(intr.camera_matrix, intr.dist_coeffs, serial=serial, eye_camera_matrix=eye)
