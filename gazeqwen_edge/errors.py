"""Errors a user can act on.

Every failure caused by the user's input, files, devices or environment is raised as a `GazeQwenError` subclass with a
message that names what is wrong (the file, the field, the address) and, where useful, a hint on what to do. The CLI
prints these without a traceback and exits non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from types import ModuleType


class GazeQwenError(Exception):
    """Base class of all user-facing errors."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(GazeQwenError):
    """A file, directory or value given to us is missing, malformed or inconsistent."""

    exit_code = 2

    def __init__(self, path: str | PathLike | None, problem: str, hint: str | None = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}", hint)


class ConfigError(GazeQwenError):
    """A configuration (model config, checkpoint config, CLI option combination) is invalid."""

    exit_code = 2


class DeviceError(GazeQwenError):
    """A device (Neon glasses, simulator, camera) cannot be reached or behaves unexpectedly."""

    exit_code = 3


class MissingDependencyError(GazeQwenError):
    """An optional stack (an extra) is needed for this feature but not installed."""

    exit_code = 4


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import an optional dependency or raise a MissingDependencyError naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        what = feature or module
        raise MissingDependencyError(
            f"{what} needs the Python module '{module}', which is not installed ({e})",
            hint=f"pip install 'gazeqwen-edge[{extra}]'",
        ) from e


def check_creatable(path: Path) -> None:
    """Raise now, not after the work, when the directory `path` could not be created: InputError for the path's fault
    (a path under a file, /proc, no permission), DeviceError for the disk's (OUTPUT_ERRNOS: read-only, full). What
    permission bits cannot tell, as root, is tried. Creates nothing: directories made for the test are removed. Used
    for session directories and every CLI output path."""
    if path.exists():
        if not path.is_dir():
            raise InputError(path, "exists and is not a directory")
        return
    made = []
    p = path
    while not p.exists():
        made.append(p)
        p = p.parent
    try:
        path.mkdir(parents=True)
    except FileExistsError:  # another process made it meanwhile (every rank of `accelerate launch` checks its --out)
        if not path.is_dir() and path.exists():
            raise InputError(path, "exists and is not a directory") from None
    except OSError as e:
        if e.errno in OUTPUT_ERRNOS:  # the disk's fault (full, read-only), not the path's: exit 3
            raise DeviceError(
                f"{path}: cannot be created ({e.strerror or e})", hint=disk_hint(e.errno, "that disk")
            ) from e
        raise InputError(path, f"cannot be created ({e.strerror or e})", hint="choose another output directory") from e
    finally:
        for d in made:
            try:
                d.rmdir()
            except OSError:
                pass


# C0 controls but newline and tab, DEL, and the C1 controls (U+0080..U+009F: U+009B is a one-character CSI, which
# xterm-compatible terminals in 8-bit mode act on as ESC [ does; ECMA-48 section 5.3); the bidirectional controls,
# which reorder what a terminal shows (U+202E turns 'gpj.exe' into 'exe.jpg': Unicode TR9, CVE-2021-42574), and the
# line and paragraph separators U+2028 / U+2029, which some terminals break lines at
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_CONTROL = {c: "\ufffd" for c in (*range(32), *range(127, 160), *_BIDI, 0x2028, 0x2029) if chr(c) not in "\n\t"}
_ONE_LINE = {**_CONTROL, ord("\n"): "\ufffd"}


def printable(text: str) -> str:
    """Text safe for a terminal: control characters (a NUL, an escape sequence from a model's byte tokens, a C1
    control such as U+009B, a bidirectional override) shown as U+FFFD instead of being sent to the terminal; line
    breaks and tabs kept."""
    return text.translate(_CONTROL)


def one_line(text: str) -> str:
    """`printable`, and a line break shown as U+FFFD too: for a name or path printed inside a line of ours (a
    directory called 'a<newline>b' must not start a line of its own)."""
    return text.translate(_ONE_LINE)


def check_text(text: str, what: str) -> str:
    """`text` unchanged when it can be written as UTF-8, as the session logs and the tokenizer need; else ValueError
    naming `what` and the first character that cannot be: a lone surrogate, which is what undecodable bytes become on
    stdin and in arguments (Python's surrogateescape) and what a JSON escape such as \\ud800 decodes to."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(
            f"{what} is not valid text: character {e.start + 1} is {ascii(text[e.start])} (bytes that are not UTF-8, "
            "or a lone surrogate escape)"
        ) from None
    return text


def control_character(text: str, line_breaks: bool = True) -> str | None:
    """The first character of `text` that `printable` would hide (C0 but, with `line_breaks`, line breaks and tabs;
    DEL, C1, bidirectional overrides, U+2028/9), or None."""
    table = _CONTROL if line_breaks else _ONE_LINE
    return next((c for c in text if ord(c) in table or (not line_breaks and c == "\t")), None)


def check_no_control(text: str, what: str) -> str:
    """`text` unchanged when it holds no control character that `printable` would hide (C0 but line breaks and tabs,
    DEL, C1, bidirectional overrides, U+2028/9); else ValueError naming `what` and the character. For what reaches
    the model's prompt and the logs (a question, an option): a NUL from a JSON escape ("\\u0000") was shown as
    U+FFFD and sent to the tokenizer as it was."""
    bad = control_character(text)
    if bad is not None:
        raise ValueError(f"{what} holds a control character ({ascii(bad)})")
    return text


def json_safe(obj):
    """`obj` (dicts, lists, tuples, numbers, text) with every float that is not finite replaced by None (tuples become
    lists): what strict JSON (no NaN or Infinity, which a strict reader refuses) can hold, the value that could not be
    computed flagged as null."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def json_line(obj) -> str:
    """`obj` as one strict JSON line (`json_safe`: a float that is not finite is written as null), non-ASCII kept, so
    that one such value never costs the record, or a whole log (a sink that raised here stopped, and every later
    answer was lost)."""
    import json

    return json.dumps(json_safe(obj), allow_nan=False, ensure_ascii=False)


def write_bytes_atomic(path: str | PathLike, data: bytes, tmp_suffix: str = ".tmp", fsync: bool = False) -> None:
    """Write `data` to `path` through `path + tmp_suffix` and an atomic rename, so a reader sees the old file or the
    whole new one. A disk that refuses the bytes (full, over quota) raises the OSError with its errno, which the CLI
    reports as one error line (exit 3); the partial temporary file is removed. Serialisers that hide the errno
    (torch.save raises "unexpected pos", safetensors its own error) write into bytes first and then through here.
    fsync: also push the bytes to the disk before the rename (a file system that cannot sync is let be)."""
    path = Path(path)
    tmp = path.with_name(path.name + tmp_suffix)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                sync(f)
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.filename is None:  # (a failed write names no file; the error line should)
            e.filename = str(path)
        raise


# What a disk or stream that stops taking writes raises (full, over quota, file too large, read-only, failing): a
# device error (exit 3), where other failures to write (no such directory, a file in the way) are the input's (2).
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def os_errno(e: BaseException) -> int | None:
    """The errno behind `e`: an OSError's own, else one a Rust library wrote into its message (safetensors raises
    SafetensorError "I/O error: No space left on device (os error 28)"), else its cause's; None when there is none."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno is not None:
            return e.errno
        m = _OS_ERROR.search(str(e))
        if m:
            return int(m.group(1))
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


@contextmanager
def disk_errors(path: str | PathLike):
    """Re-raise a write failure that hides the disk's refusal (safetensors' SafetensorError from save_pretrained or
    save_file) as OSError(errno, strerror, path) when its errno is one of OUTPUT_ERRNOS, so the CLI reports it as
    the disk's fault (exit 3) with a hint for that errno, not as a traceback. Other errors pass unchanged."""
    try:
        yield
    except OSError:
        raise
    except Exception as e:
        err = os_errno(e)
        if err not in OUTPUT_ERRNOS:
            raise
        raise OSError(err, os.strerror(err), str(path)) from e


def disk_hint(err: int | None, disk: str, resumable: bool = False) -> str:
    """The hint for a disk that refused a write with errno `err` (one of OUTPUT_ERRNOS; `disk` names it in the
    hint, e.g. "that disk"): what to do about that errno (read-only: remount; file size limit; I/O error; else free
    space); resumable: and that rerunning the same command resumes."""
    if err == errno.EROFS:
        hint = f"{disk} is mounted read-only: remount it read-write or write elsewhere"
    elif err == errno.EFBIG:
        hint = "the file reached the largest size allowed here (ulimit -f, or the file system's limit): write elsewhere"
    elif err == errno.EIO:
        hint = f"{disk} reported an I/O error: check it (dmesg) or write elsewhere"
    else:
        hint = f"free space on {disk} (or quota) or write elsewhere"
    return hint + (", then rerun the same command to resume" if resumable else "")


def read_only_fs(path: str | PathLike) -> bool:
    """True when the file system holding the existing path `path` is mounted read-only (statvfs ST_RDONLY); False
    when that cannot be told."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # (no statvfs on Windows)
        return False


def write_error(path: str | PathLike, what: str, e: OSError, resumable: bool = False) -> GazeQwenError:
    """The error to raise when writing `what` at `path` failed with `e`: DeviceError (exit 3) for a disk that refuses
    writes (OUTPUT_ERRNOS), with a hint for that errno; InputError (exit 2) otherwise. resumable: the hint adds that
    rerunning the same command resumes."""
    if e.errno in OUTPUT_ERRNOS:
        return DeviceError(
            f"cannot write {what} ({path}): {e.strerror or e}", hint=disk_hint(e.errno, "that disk", resumable)
        )
    return InputError(path, f"cannot write {what} ({e.strerror or e})")


def sync(f) -> None:
    """Flush the open binary or text file `f` and fsync it. A file system that cannot sync (EINVAL, ENOTSUP) is let
    be, the data being with the OS all the same; a disk that refuses the data (OUTPUT_ERRNOS, which some network
    file systems report only here) raises its OSError."""
    f.flush()
    try:
        os.fsync(f.fileno())
    except OSError as e:
        if e.errno in OUTPUT_ERRNOS:
            raise
