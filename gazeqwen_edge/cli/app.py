"""The typer application the command modules register on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="gazeqwen-edge",
    help="Gaze-aware Qwen2.5-VL (GazeQwen) on the edge: Pupil Labs Neon live and replay, export, training, evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
console_err = Console(stderr=True)
