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


@app.command("info")
def info() -> None:
    """Show the version, the installed optional stacks (extras) and the compute devices found."""
    import importlib.util

    from gazeqwen_edge import __version__

    console.print(f"gazeqwen-edge {__version__}")
    extras = {
        "device": ["pupil_labs.realtime_api", "pupil_labs.neon_recording", "av", "cv2", "scipy"],
        "onnx": ["onnx", "onnxruntime"],
        "gpu": ["bitsandbytes", "tensorrt"],
        "speech": ["faster_whisper"],
        "train": ["peft", "accelerate"],
    }
    for extra, mods in extras.items():
        missing = []
        for m in mods:
            try:
                found = importlib.util.find_spec(m) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                missing.append(m)
        state = "[green]installed[/]" if not missing else f"[yellow]missing {', '.join(missing)}[/]"
        console.print(f"  extra {extra:7s} {state}")
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    console.print(f"  torch {torch.__version__}, CUDA device: {cuda}")


@app.callback()
def _root() -> None:
    """Gaze-aware Qwen2.5-VL (GazeQwen) on the edge."""
