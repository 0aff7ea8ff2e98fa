"""Option checks shared by every command: each refuses a value no user means (NaN, infinity, a negative seed, a frame
larger than any camera, an output path under a file) as a usage error, before the command does anything.

They are typer callbacks raising `ConfigError` (which the CLI prints as one `error:` line naming the option and a
hint pointing to the command's --help, exit 2), so a command declares an option with them and needs no checks of its
own:

    speed: float = float_option(0.0, "--speed", min=0.0, help="Replay pace ...")
    seed: int = seed_option(0, help="Seed of ...")
    size: tuple[int, int] | None = typer.Option(None, "--size", callback=frame_size, help=...)

Every float option of every command goes through `float_option` (tests/cli checks this on the whole command tree).
"""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import re
from pathlib import Path

import typer

from gazeqwen_edge.device.registry import MAX_SEED, parse_frame_size
from gazeqwen_edge.errors import ConfigError, DeviceError, InputError, check_creatable, disk_hint, read_only_fs
from gazeqwen_edge.runtime.watches import DEFAULT_WATCH_CHECKS
from gazeqwen_edge.runtime.watches import WATCH_CHECKS as WATCH_CHECK_TIMES

MIN_FRAME_SIDE = 32  # the smallest scene a synthetic source draws
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def _name(param) -> str:
    """How the user wrote the parameter: its long option ('--speed') or, for an argument, its metavar ('OUT_DIR')."""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    if getattr(param, "param_type_name", "") == "argument" or not opts:
        return (getattr(param, "metavar", None) or param.name or "value").upper()
    return max(opts, key=len)


def bad(ctx: typer.Context, param, problem: str) -> ConfigError:
    """The error a callback raises for a bad value: one line naming the option, and where to read about it."""
    return ConfigError(f"{_name(param)} {problem}", hint=f"see '{ctx.command_path} --help'")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _describe(min: float | None, max: float | None, above: float | None) -> str:
    if above == 0 and min is None and max is None:
        return "a positive finite number"
    parts = [f"> {_num(above)}"] if above is not None else []
    parts += [f">= {_num(min)}"] if min is not None else []
    parts += [f"<= {_num(max)}"] if max is not None else []
    return "a finite number" + (f" {' and '.join(parts)}" if parts else "")


def int_option_problem(param, given: str | None) -> str | None:
    """What typer's own check of an integer option with a range (`typer.Option(min=, max=)`) found, in our words
    ("--port must be a whole number from 1 to 65535, got 0", as `finite` and `seed_option` say it) instead of its
    validator's ("Input should be greater than or equal to 1"). param: the click parameter of the error; given: the
    text on the command line (None when unknown). None when param is not such an option."""
    lo, hi = getattr(param, "min", None), getattr(param, "max", None)
    descriptor = getattr(param, "type_descriptor", None)
    if (lo is None and hi is None) or getattr(descriptor, "annotation", None) is not int:
        return None
    if lo is not None and hi is not None:
        want = f"a whole number from {lo} to {hi}"
    else:
        want = f"a whole number >= {lo}" if lo is not None else f"a whole number <= {hi}"
    return f"{_name(param)} must be {want}" + (f", got {given}" if given is not None else "")


def finite(min: float | None = None, max: float | None = None, *, above: float | None = None):
    """A typer callback that accepts a float option only when it is finite (not nan, not +-inf) and within
    [min, max] (`above`: strictly greater than); else ConfigError. None (an option left out) passes."""
    want = _describe(min, max, above)

    def check(ctx: typer.Context, param: typer.CallbackParam, value: float | None) -> float | None:
        if value is None:
            return None
        ok = math.isfinite(value)
        ok = ok and (min is None or value >= min) and (max is None or value <= max)
        ok = ok and (above is None or value > above)
        if not ok:
            raise bad(ctx, param, f"must be {want}, got {value:g}")
        return value

    return check


def _with_range(help: str, allowed: str) -> str:
    """An option's help with the values it takes in brackets before the closing full stop: "Frames per second
    (a finite number >= 0.1 and <= 30)." (before: "... <= 30.)", as if 30. were a number)."""
    return f"{help.rstrip().rstrip('.')} ({allowed})."


def float_option(
    default: float | None,
    *param_decls: str,
    help: str,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    **kw,
):
    """`typer.Option` for a float: finite and within the range, which is also stated in the help text."""
    return typer.Option(
        default,
        *param_decls,
        callback=finite(min, max, above=above),
        help=_with_range(help, _describe(min, max, above)),
        **kw,
    )


def _seed(ctx: typer.Context, param: typer.CallbackParam, value: int | None) -> int | None:
    if value is not None and not 0 <= value <= MAX_SEED:
        raise bad(ctx, param, f"must be a whole number from 0 to {MAX_SEED}, got {value}")
    return value


def seed_option(default: int, *param_decls: str, help: str, **kw):
    """`typer.Option` for a random seed: a whole number from 0 to 2**32 - 1."""
    return typer.Option(default, *param_decls, callback=_seed, help=_with_range(help, f"0 to {MAX_SEED}"), **kw)


def frame_size(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> tuple[int, int] | None:
    """Typer callback for a WIDTHxHEIGHT option: the (width, height) tuple, or None when left out."""
    if value is None:
        return None
    try:
        return parse_frame_size(value, MIN_FRAME_SIDE)
    except ValueError as e:
        raise bad(ctx, param, str(e)) from None


def host(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Typer callback for a host option: an IPv4/IPv6 address or a DNS host name (no port, no scheme), so a typo is
    refused before any name lookup or connection is tried."""
    if value is None:
        return None
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if _HOSTNAME.fullmatch(value) is None or value.replace(".", "").isdigit():
        hint = "; give the port with --port" if re.fullmatch(r"[^:]+:\d+", value) else ""
        raise bad(ctx, param, f"'{value}' is not an IP address or a host name{hint}")
    return value


def output_dir(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Typer callback for a directory the command will create or fill: `output_path`, and not an existing file."""
    if value is not None and value.expanduser().is_file():
        raise bad(ctx, param, f"'{value}' is a file; give a directory")
    return output_path(ctx, param, value)


def new_output_dir(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Typer callback for a directory a session will write (run, replay, demo): `output_dir`, and not a directory that
    already holds files (a session never writes into, or over, an earlier one)."""
    value = output_dir(ctx, param, value)
    if value is not None and value.expanduser().is_dir() and any(value.expanduser().iterdir()):
        raise bad(ctx, param, f"'{value}' already exists and is not empty; give a new directory")
    return value


def run_output_dir(*markers: str):
    """A typer callback for a resumable run's output directory (`eval`, `train`): `output_dir`, and new, empty, or
    one that holds one of `markers` (what the command itself writes there, e.g. items.jsonl), so a rerun resumes but
    the run never writes into a directory of something else (a dataset, another command's output)."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
        value = output_dir(ctx, param, value)
        d = None if value is None else value.expanduser()
        if d is not None and d.is_dir() and any(d.iterdir()) and not any((d / m).exists() for m in markers):
            raise bad(
                ctx,
                param,
                f"'{value}' is not empty and holds no earlier run of this command (no {' or '.join(markers)}); "
                "give a new directory, or the one of the run to resume",
            )
        return value

    return check


def output_file(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Typer callback for a file the command will write: `output_path`, and not an existing directory."""
    if value is not None and value.expanduser().is_dir():
        raise bad(ctx, param, f"'{value}' is a directory; give a file name")
    return output_path(ctx, param, value)


def output_path(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Typer callback for a path the command will create (a directory or a file): refused at once when it cannot be,
    instead of failing after the work is done: ConfigError (exit 2) when something on the way is a file or cannot be
    written by this user; DeviceError (exit 3) when the disk refuses (a read-only file system, a full disk)."""
    if value is None:
        return None
    if str(value).strip() == "":
        raise bad(ctx, param, "is empty; give a path")
    target = value.expanduser().absolute()
    parent = target
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent == target and not target.is_dir():  # an existing file is replaced atomically: a new file in its folder
        parent = target.parent
    if parent != target and not parent.is_dir():
        raise bad(ctx, param, f"'{value}' cannot be created: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK):
        if read_only_fs(parent):  # the disk's state, not the user's typo or rights: a device error (exit 3)
            raise DeviceError(
                f"{_name(param)} '{value}' cannot be written: {parent} is on a read-only file system",
                hint=disk_hint(errno.EROFS, "that file system"),
            )
        raise bad(ctx, param, f"'{value}' cannot be written: no permission to write in {parent}")
    if not target.exists():  # what access() cannot tell (root in a read-only place, /proc, a full disk): try it
        try:
            check_creatable(target)
        except InputError as e:
            raise bad(ctx, param, f"'{value}' {e.problem}") from None
        except DeviceError as e:
            raise DeviceError(f"{_name(param)} {e.message}", hint=e.hint) from None
    return value


def check_output_option(ctx: typer.Context, name: str, value: Path | None) -> Path | None:
    """output_path for the command's parameter `name` (its Python name), run when the command knows it will write
    there (e.g. `calibrate offset --store` only when saving), not as a callback on every invocation. `ctx`: the
    command's context (a `ctx: typer.Context` parameter). Raises what output_path raises."""
    param = next(p for p in ctx.command.params if p.name == name)
    return output_path(ctx, param, value)


def choice(*values):
    """A typer callback accepting only one of `values`."""
    allowed = ", ".join(str(v) for v in values)

    def check(ctx: typer.Context, param: typer.CallbackParam, value):
        if value is not None and value not in values:
            text = str(value)
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise bad(ctx, param, f"must be one of {allowed}, not {shown!r}")
        return value

    return check


def label(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Typer callback for a name shown to other programs (a device name, a wearer): 1 to 63 printable characters
    without ':' (which separates the fields of a Neon's zeroconf service name)."""
    if value is None:
        return None
    if not 1 <= len(value) <= 63 or not value.isprintable() or ":" in value or value.strip() != value:
        raise bad(ctx, param, f"must be 1 to 63 printable characters without ':' or outer spaces, got {value!r}")
    return value


def torch_device(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Typer callback for a torch device string ("cpu", "cuda", "cuda:1", "mps"): parsed by torch, refused when it
    names no device type (ConfigError) or a device this machine does not have (DeviceError, exit 3)."""
    if value is None:
        return None
    import torch

    try:
        dev = torch.device(value)
    except (RuntimeError, ValueError):
        raise bad(ctx, param, f"must be a torch device such as cpu, cuda or cuda:1, got {value!r}") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise DeviceError(f"{_name(param)} {value}: no such CUDA device on this machine", hint="use --torch-device cpu")
    if dev.type not in ("cpu", "cuda") and not (dev.type == "mps" and torch.backends.mps.is_available()):
        raise DeviceError(f"{_name(param)} {value}: this machine has no such device", hint="use --torch-device cpu")
    return value


# `run`, `replay` and `eval-alerts`: when the watches are checked (runtime.session.SessionConfig.watch_checks)
WATCH_CHECKS = typer.Option(
    DEFAULT_WATCH_CHECKS,
    "--watch-checks",
    callback=choice(*WATCH_CHECK_TIMES),
    help="When the watches are checked: chunk (after each chunk), fixation (at each new fixation, as soon as the "
    "session knows it: from the fixation detector, or a source's fixation once it ends) or both.",
)
