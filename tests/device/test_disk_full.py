"""A disk that stops taking the session's writes (full, over quota, failing) ends the recording with one
DeviceError in the thread that records, never a traceback in the background flush thread, never silently; what
reached the disk before stays readable, and the manifest says "failed" where it still can be written."""

from __future__ import annotations

import errno
import io
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gazeqwen_edge.device import Event, GazeSample
from gazeqwen_edge.device.session import WRITE_BUFFER_BYTES, Recorder, SessionSource
from gazeqwen_edge.errors import DeviceError

T0 = 1_700_000_000_000_000_000
needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")


class FillingFile(io.RawIOBase):
    """A file on a disk that takes `capacity` bytes (or, with a callable, until `capacity()` says it is full), then
    refuses every write with ENOSPC, as a full disk or an exhausted quota does (what came before reaches the real
    file)."""

    def __init__(self, path: Path, capacity: int | Callable[[], bool]):
        self._f = open(path, "wb", buffering=0)  # noqa: SIM115
        self.capacity = capacity

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if callable(self.capacity):
            room = 0 if self.capacity() else len(b)
        else:
            room = self.capacity - self._f.tell()
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._f.write(bytes(b)[:room])

    def close(self) -> None:
        self._f.close()
        super().close()


def filling_open(capacity: dict[str, int | Callable[[], bool]]):
    """A replacement for Recorder._open: the files named in `capacity` live on a disk that fills after that many
    bytes (or once the callable returns True), the others are opened as the recorder opens them."""
    original = Recorder._open

    def _open(self, name):
        if name not in capacity:
            return original(self, name)
        raw = FillingFile(self.dir / name, capacity[name])
        return io.TextIOWrapper(io.BufferedWriter(raw, WRITE_BUFFER_BYTES), encoding="utf-8", newline="")

    return _open


def _gaze(i: int) -> GazeSample:
    return GazeSample(T0 + i * 5_000_000, 100.0 + i, 200.0, True)


def test_a_disk_that_fills_mid_recording_stops_it_with_one_device_error(tmp_path, monkeypatch):
    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    monkeypatch.setattr(Recorder, "_open", filling_open({"gaze.csv": 4000}))
    d = tmp_path / "s"
    rec = Recorder(d, source="test", flush_interval_s=0.02)
    rec.write(Event(T0, "recording.begin"))
    for i in range(20):  # about 1,400 bytes: on the disk at the next flush
        rec.write(_gaze(i))
    rec.flush()
    for i in range(20, 200):  # far past the 4,000 bytes the disk takes: the background flush meets the full disk
        rec.write(_gaze(i))
    deadline = time.monotonic() + 10
    while rec.write_failure is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rec.write_failure is not None and rec.write_failure.errno == errno.ENOSPC
    assert thread_errors == []  # kept for the recording thread, not a traceback in the flush thread
    with pytest.raises(DeviceError, match=r"cannot write the session in .*: No space left on device") as e:
        rec.write(_gaze(200))
    assert "free space" in e.value.hint and "gaze.csv" in e.value.message  # the file the flush thread failed on
    with pytest.raises(DeviceError, match="No space left on device"):
        rec.close()
    m = json.loads((d / "session.json").read_text())
    assert m["state"] == "failed" and "No space left on device" in m["error"]
    back = list(SessionSource(d).records())  # what reached the disk before it filled reads back
    gaze = [r for r in back if isinstance(r, GazeSample)]
    assert len(gaze) >= 20 and [g.ts_ns for g in gaze] == [_gaze(i).ts_ns for i in range(len(gaze))]
    assert Event(T0, "recording.begin") in back


@needs_dev_full
@pytest.mark.parametrize("existing", [False, True])
def test_a_disk_full_from_the_start_fails_at_the_first_write_and_leaves_nothing(tmp_path, monkeypatch, existing):
    """Nothing was recorded, so nothing is left: no empty session (the manifest, info.json and the CSV headers
    written before the disk refused are removed) and no directory this recorder made; one it was given stays."""
    original = Recorder._open
    monkeypatch.setattr(
        Recorder, "_open", lambda self, name: open("/dev/full", "w") if name == "events.csv" else original(self, name)
    )
    d = tmp_path / "s"
    if existing:
        d.mkdir()
    rec = Recorder(d, source="test")
    with pytest.raises(DeviceError, match="No space left on device") as e:
        rec.write(_gaze(0))  # the header of every file is flushed at the start: the full disk shows at once
    assert "nothing was recorded" in e.value.hint and "events.csv" in e.value.message
    with pytest.raises(DeviceError):
        rec.write(_gaze(1))  # and stays refused, never half-recorded
    with pytest.raises(DeviceError):
        rec.write_timing("prefill", 0.1)
    with pytest.raises(DeviceError):
        rec.close()
    rec.close()  # closed: once is enough
    assert (d.is_dir() and not any(d.iterdir())) if existing else not d.exists()


def test_a_manifest_the_disk_refuses_as_a_new_file_is_rewritten_in_place_as_failed(tmp_path, monkeypatch):
    import builtins

    import gazeqwen_edge.errors as errors_module

    d = tmp_path / "s"
    rec = Recorder(d, source="test")
    rec.write(_gaze(0))
    before = (d / "session.json").read_text()

    def full_for_manifests(file, mode="r", *a, **kw):  # the disk takes a manifest's first 16 bytes, then is full
        if str(file).endswith("session.json.tmp"):
            return io.BufferedWriter(FillingFile(Path(file), 16))
        return builtins.open(file, mode, *a, **kw)

    monkeypatch.setattr(errors_module, "open", full_for_manifests, raising=False)
    with pytest.raises(DeviceError, match="No space left on device"):
        rec.close()
    # before: the manifest stayed "recording" (a full disk takes no new file); now the room the "recording" one
    # kept takes the "failed" one, in place, same size: no new block needed
    assert len((d / "session.json").read_bytes()) == len(before.encode())
    m = json.loads((d / "session.json").read_text())
    assert m["state"] == "failed" and "No space left on device" in m["error"], m
    assert not list(d.glob("*.tmp"))
    src = SessionSource(d)
    assert not src.closed and [r.ts_ns for r in src.records() if isinstance(r, GazeSample)] == [_gaze(0).ts_ns]


@needs_dev_full
def test_write_bytes_atomic_on_a_full_disk_raises_its_oserror_and_keeps_the_old_file(tmp_path):
    from gazeqwen_edge.errors import write_bytes_atomic

    target = tmp_path / "w.bin"
    target.write_bytes(b"old")
    (tmp_path / "w.bin.tmp").symlink_to("/dev/full")  # the temporary file lands on a full disk
    with pytest.raises(OSError) as e:
        write_bytes_atomic(target, b"new" * 100_000)
    assert e.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old" and not (tmp_path / "w.bin.tmp").exists()


@needs_dev_full
def test_a_gaze_checkpoint_on_a_full_disk_raises_the_disks_error_not_a_serialiser_message(tmp_path):
    """safetensors' save_file into a file on a full disk raised its own SafetensorError (no errno: the CLI could
    not tell a full disk from a bug) and torch.save a RuntimeError ("unexpected pos"); both now serialise into
    bytes that write_bytes_atomic writes, so the disk's OSError reaches the CLI (exit 3)."""
    from gazeqwen_edge.model.checkpoint import WEIGHTS_FILE, save_checkpoint
    from gazeqwen_edge.model.config import ResamplerConfig
    from gazeqwen_edge.model.resampler import GazeResampler

    d = tmp_path / "ck"
    d.mkdir()
    (d / (WEIGHTS_FILE + ".tmp")).symlink_to("/dev/full")
    res = GazeResampler(
        ResamplerConfig(d_vjepa=16, d_llm=32, n_latents=4, d_latent=16, injected_layers=(0,), n_llm_layers=2)
    )
    with pytest.raises(OSError) as e:
        save_checkpoint(d, res)
    assert e.value.errno == errno.ENOSPC and not (d / WEIGHTS_FILE).exists()


@needs_dev_full
def test_train_whose_disk_fills_ends_with_one_error_line_and_a_resume_hint(tmp_path, monkeypatch, capsys):
    """The encoder cache's disk fills during `train`: one error line, exit 3 and the hint to resume, where it was a
    RuntimeError traceback from torch.save."""
    import builtins

    import gazeqwen_edge.errors as errors_module
    from tests.cli.helpers import cli
    from tests.training.conftest import write_toy_set

    cache = tmp_path / "cache"

    def full_under_cache(file, *a, **kw):  # every write under the cache lands on a full disk
        return builtins.open("/dev/full" if str(file).startswith(str(cache)) else file, *a, **kw)

    monkeypatch.setattr(errors_module, "open", full_under_cache, raising=False)
    qa = write_toy_set(tmp_path / "toy", n_videos=2)
    out = tmp_path / "run"
    argv = ["--qa", qa, "--out", out, "--max-steps", "1", "--epochs", "1", "--max-pixels", "3136"]
    rc, _, err = cli(capsys, "train", *argv, "--cache-dir", cache)
    assert rc == 3, err
    lines = err.splitlines()
    assert "Traceback" not in err and sum(line.startswith("error:") for line in lines) == 1, err
    error = next(line for line in lines if line.startswith("error:"))
    assert error.startswith(f"error: cannot write {cache}/") and error.endswith("No space left on device"), err
    assert "rerun the same command to resume" in err


@needs_dev_full
def test_eval_results_on_a_full_disk_are_a_device_error_and_leave_no_temporary_file(tmp_path):
    """An evaluation's results.json on a full disk: DeviceError (exit 3) with the errno's words and a resume hint,
    where it was an InputError (exit 2) reading like bad input, and the half-written .tmp stayed."""
    from gazeqwen_edge.training.results import write_results

    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.json.tmp").symlink_to("/dev/full")
    with pytest.raises(DeviceError, match=r"cannot write the results \(.*\): No space left on device") as e:
        write_results(out, {"variant": "no_gaze", "model": "demo"}, [])
    assert e.value.exit_code == 3 and "resume" in e.value.hint
    assert not (out / "results.json.tmp").exists() and not (out / "results.json").exists()


def test_os_errno_reads_the_errno_a_rust_library_wrote_into_its_message():
    from safetensors import SafetensorError

    from gazeqwen_edge.errors import disk_errors, os_errno

    # the message safetensors' save_file gave on a real full 64 kB tmpfs (this machine, safetensors 0.6)
    full = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert os_errno(full) == errno.ENOSPC and os_errno(OSError(errno.EROFS, "ro")) == errno.EROFS
    assert os_errno(ValueError("shape mismatch (error 28)")) is None
    with pytest.raises(OSError) as e, disk_errors("/x/model"):
        raise full
    assert e.value.errno == errno.ENOSPC and e.value.filename == "/x/model" and e.value.__cause__ is full
    with pytest.raises(SafetensorError), disk_errors("/x/model"):  # not the disk's fault: unchanged
        raise SafetensorError("Error while serializing: I/O error: Permission denied (os error 13)")


@pytest.mark.parametrize("stage", ["save", "onnx"])
def test_an_export_the_disk_refuses_is_one_error_line_and_leaves_no_half_bundle(tmp_path, monkeypatch, capsys, stage):
    """`export` on a full disk: safetensors' SafetensorError from save_pretrained was a traceback (exit 1) that left
    model/ behind, and a rerun was refused ("already exists and is not empty"); now exit 3 naming the bundle, and
    nothing left, so the same command runs again."""
    from safetensors import SafetensorError

    import gazeqwen_edge.export.bundle as bundle
    from tests.cli.helpers import cli

    def full(*a, **kw):
        if stage == "save":  # what safetensors raises on a real full disk (the test above)
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a buffered ONNX write: no file named

    if stage == "save":
        monkeypatch.setattr("transformers.modeling_utils.safe_save_file", full)
    else:
        monkeypatch.setattr(bundle, "export_gaze_graphs", full)
    out = tmp_path / "b"
    rc, _, err = cli(capsys, "export", out, "--quant", "none", "--no-verify")
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 3 and "Traceback" not in err and len(lines) == 2, err
    assert lines[0] == f"error: cannot write the bundle {out}: No space left on device", err
    assert "free space" in lines[1] and "the unfinished bundle was removed" in lines[1]
    assert not out.exists()
