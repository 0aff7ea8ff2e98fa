"""IMU samples (`ImuSample`): read from the real Neon recording, from a Cloud export's imu.csv and from our sessions,
with the source.py policies (absent IMU: none delivered; unreadable: told, gaze-only work goes on; impossible
values: dropped with a Notice). Expected values are read independently from the files (numpy, csv)."""

from __future__ import annotations

import ast
import csv
import os
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.device import Fixation, GazeSample, ImuSample, Notice, open_source
from gazeqwen_edge.device.cloud_export import CloudExportSource
from gazeqwen_edge.device.record import record as record_source
from gazeqwen_edge.device.session import Recorder, SessionSource
from gazeqwen_edge.errors import InputError
from tests.device.test_session import _write_cloud_export

# imu.csv as Pupil Labs' "Recording Format" documentation lists its columns
CLOUD_IMU_HEADER = (
    "section id,recording id,timestamp [ns],gyro x [deg/s],gyro y [deg/s],gyro z [deg/s],acceleration x [g],"
    "acceleration y [g],acceleration z [g],roll [deg],pitch [deg],yaw [deg],quaternion w,quaternion x,quaternion y,"
    "quaternion z"
)


def _link_copy(src: Path, dst: Path, skip=lambda name: False) -> Path:
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if not skip(p.name):
            os.symlink(p, dst / p.name)
    return dst


def test_neon_recording_imu_samples_are_the_files_own(neon_recording_dir):
    """969 samples at ~104 Hz, the first one's values as `imu ps1.raw` holds them (its dtype from imu.dtype),
    delivered only when asked for (kinds) and in time order among the other records."""
    dtype = np.dtype([tuple(f) for f in ast.literal_eval((neon_recording_dir / "imu.dtype").read_text())])
    raw = np.fromfile(neon_recording_dir / "imu ps1.raw", dtype)
    with open_source(neon_recording_dir) as s:
        imu = list(s.records({ImuSample}))
        assert {type(r) for r in s.records({GazeSample, Fixation})} == {GazeSample, Fixation}
        every = list(s.records())
    assert len(imu) == 969 == len(raw)
    ts = np.array([r.ts_ns for r in imu])
    np.testing.assert_array_equal(ts, raw["timestamp_ns"])
    assert (len(ts) - 1) / ((ts[-1] - ts[0]) / 1e9) == pytest.approx(103.6, abs=0.1)
    first = imu[0]
    assert first.ts_ns == 1760676790103992534
    assert first.gyro == pytest.approx((-7.4443817, -4.3964386, 5.3691864), abs=1e-6)
    assert first.accel == pytest.approx((-0.04443359, 0.14453125, 0.83789057), abs=1e-7)
    assert first.quaternion == pytest.approx((0.43254358, 0.02348496, 0.06529699, 0.8989386), abs=1e-7)
    for k, name in enumerate(("gyro_x", "gyro_y", "gyro_z")):
        np.testing.assert_array_equal([r.gyro[k] for r in imu], raw[name].astype(np.float64))
    assert [r for r in every if isinstance(r, ImuSample)] == imu
    assert all(a.ts_ns <= b.ts_ns for a, b in zip(every, every[1:], strict=False))


def test_neon_recording_without_imu_delivers_none(neon_recording_dir, tmp_path):
    d = _link_copy(neon_recording_dir, tmp_path / "rec", skip=lambda n: n.startswith(("imu", "extimu")))
    with open_source(d) as s:
        assert not s.has_imu
        assert list(s.records({ImuSample})) == []
        every = list(s.records())
    assert not any(isinstance(r, ImuSample) for r in every)
    assert not any(isinstance(r, Notice) and r.kind == "imu_unreadable" for r in every)


def test_unreadable_imu_does_not_stop_gaze_only_work(neon_recording_dir, tmp_path):
    """An IMU file that is a Git LFS pointer: records() goes on without it and says so once; asking for ImuSample
    by name raises the InputError that names the file."""
    d = _link_copy(neon_recording_dir, tmp_path / "rec", skip=lambda n: n == "imu ps1.raw")
    (d / "imu ps1.raw").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 46512\n")
    with open_source(d) as s:
        every = list(s.records())
        with pytest.raises(InputError, match="Git LFS pointer") as e:
            list(s.records({ImuSample}))
    assert e.value.path.endswith("imu ps1.raw")
    told = [r for r in every if isinstance(r, Notice) and r.kind == "imu_unreadable"]
    assert len(told) == 1 and "imu ps1.raw" in told[0].message
    assert sum(isinstance(r, GazeSample) for r in every) == 1788 and not any(isinstance(r, ImuSample) for r in every)


def _write_imu_csv(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        f.write(CLOUD_IMU_HEADER + "\n")
        w = csv.writer(f)
        for r in rows:
            w.writerow(["s", "rec-1", *r])


def test_cloud_export_imu_csv_read_with_the_policies(tmp_path):
    """imu.csv (Cloud layout) -> ImuSample; a row out of order is re-sorted (Notice), rows no IMU can give (NaN
    gyro, 1e4 deg/s, a quaternion that is not a unit one) are dropped (Notice); empty optional columns -> None."""
    _write_cloud_export(tmp_path / "export")
    t0 = 1_760_000_000_000_000_000
    q = [0.5, 0.5, 0.5, 0.5]
    rows = [[t0 + k * 9_000_000, 1.5 * k, -2.0, 0.25, 0.0, 0.1, 1.0, 1, 2, 3, *q] for k in range(6)]
    rows[2], rows[3] = rows[3], rows[2]  # one sample out of order
    bad = [
        [t0 + 100_000_000, "nan", 0, 0, 0, 0, 1, "", "", "", *q],
        [t0 + 101_000_000, 1e4, 0, 0, 0, 0, 1, "", "", "", *q],
        [t0 + 102_000_000, 1, 0, 0, 0, 0, 1, "", "", "", 0.9, 0, 0, 0],
    ]
    sparse = [t0 + 103_000_000, 4.0, 5.0, 6.0, "", "", "", "", "", "", "", "", "", ""]
    _write_imu_csv(tmp_path / "export" / "imu.csv", rows + bad + [sparse])
    with CloudExportSource(tmp_path / "export") as s:
        imu = list(s.records({ImuSample}))
        notes = {n.kind: n.message for n in s.records({Notice})}
    assert [r.ts_ns for r in imu] == [t0 + k * 9_000_000 for k in range(6)] + [t0 + 103_000_000]
    assert imu[3] == ImuSample(t0 + 27_000_000, (4.5, -2.0, 0.25), (0.0, 0.1, 1.0), (0.5, 0.5, 0.5, 0.5))
    assert imu[-1] == ImuSample(t0 + 103_000_000, (4.0, 5.0, 6.0), None, None)
    assert "imu.csv: 1 timestamp(s) go backwards" in notes["reordered"]
    assert "imu.csv: 3 of 10 IMU samples" in notes["invalid"]


def test_cloud_export_imu_csv_with_only_the_gyro_columns(tmp_path):
    _write_cloud_export(tmp_path / "export")
    t0 = 1_760_000_000_000_000_000
    with open(tmp_path / "export" / "imu.csv", "w") as f:
        f.write("timestamp [ns],gyro x [deg/s],gyro y [deg/s],gyro z [deg/s]\n")
        f.write(f"{t0},1,2,3\n{t0 + 9_000_000},4,5,6\n")
    with CloudExportSource(tmp_path / "export") as s:
        assert list(s.records({ImuSample})) == [
            ImuSample(t0, (1.0, 2.0, 3.0)),
            ImuSample(t0 + 9_000_000, (4.0, 5.0, 6.0)),
        ]


def test_recorder_writes_imu_csv_in_the_cloud_layout_and_reads_it_back(neon_recording_dir, tmp_path):
    with open_source(neon_recording_dir) as src:
        imu = list(src.records({ImuSample}))
        rec = record_source(src, tmp_path / "s")
    assert rec.counts["imu"] == 969
    lines = (tmp_path / "s" / "imu.csv").read_text().splitlines()
    assert lines[0] == CLOUD_IMU_HEADER and len(lines) == 970
    with SessionSource(tmp_path / "s") as back:
        assert list(back.records({ImuSample})) == imu  # exact: floats written with repr
    # a sample without acceleration / quaternion, and a session without any IMU: no imu.csv
    with Recorder(tmp_path / "t") as r:
        r.write(GazeSample(1_760_000_000_000_000_000, 1.0, 2.0))
        r.write(ImuSample(1_760_000_000_001_000_000, (0.5, -0.5, 1.0)))
    with SessionSource(tmp_path / "t") as back:
        assert list(back.records({ImuSample})) == [ImuSample(1_760_000_000_001_000_000, (0.5, -0.5, 1.0))]
    with Recorder(tmp_path / "u") as r:
        r.write(GazeSample(1_760_000_000_000_000_000, 1.0, 2.0))
    assert not (tmp_path / "u" / "imu.csv").exists()
