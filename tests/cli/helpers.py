"""Running the CLI in-process and in a subprocess, and walking its command tree (shared by the CLI tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from gazeqwen_edge.cli import app, main

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """main(argv) in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def cli_subprocess(*argv: str, cwd: Path | None = None, timeout: float = 60.0, env: dict | None = None):
    """The CLI as a user runs it, output to pipes: CompletedProcess (text). Imports this checkout's package."""
    code = f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); from gazeqwen_edge.cli import run; run()"
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    full_env.pop("COLUMNS", None)
    full_env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)],
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def commands() -> Iterator[tuple[list[str], object]]:
    """(['calibrate', 'offset'], click command) for every command of the app, from typer's click tree; a group that
    runs by itself (invoke_without_command, e.g. `profile`) is a command too, with its own options."""
    from typer.main import get_command

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs is None:
            yield path, cmd
            return
        if path and getattr(cmd, "invoke_without_command", False):
            yield path, cmd
        for name, sub in subs.items():
            yield from walk(sub, [*path, name])

    yield from walk(get_command(app), [])


def annotation(param) -> object:
    """The Python type a parameter was declared with (typer >= 0.2x keeps it on the parameter; older typer maps it
    to a click type)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        return desc.annotation
    name = getattr(getattr(param, "type", None), "name", "")
    return {"float": float, "float range": float, "integer": int, "integer range": int, "boolean": bool}.get(name, str)


def is_float(param) -> bool:
    ann = annotation(param)
    return ann is float or "float" in str(ann)


def long_name(param) -> str:
    opts = [o for o in param.opts if o.startswith("--")]
    return max(opts, key=len) if opts else param.opts[0]
