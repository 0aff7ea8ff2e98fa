"""`gazeqwen-edge dataset ...`: build datasets in StreamGaze's format (the synthetic gaze benchmark)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from gazeqwen_edge.cli.app import HelpGroup, app, console, console_err
from gazeqwen_edge.cli.options import float_option, frame_size, run_output_dir, seed_option
from gazeqwen_edge.errors import one_line

dataset_app = typer.Typer(
    cls=HelpGroup, help="Build datasets in StreamGaze's format: the synthetic gaze benchmark.", no_args_is_help=True
)
app.add_typer(dataset_app, name="dataset")

# The defaults and limits of training/synthetic_benchmark.py, repeated here so --help does not import torch (the
# training package does); tests/training/test_synthetic_benchmark.py checks they agree.
DEFAULT_VIDEOS, MAX_VIDEOS = 30, 10_000
DEFAULT_DURATION_S, MIN_DURATION_S, MAX_DURATION_S = 20.0, 8.0, 600.0
DEFAULT_SIZE = "320x240"
DEFAULT_FPS, MAX_FPS = 10, 60
DEFAULT_PER_TASK = 3
DEFAULT_OBJECT_SCALE = (
    2.5  # = training.synthetic_benchmark.DEFAULT_OBJECT_SCALE (kept literal: --help imports no torch)
)


@dataset_app.command(
    "synthetic", short_help="Write the synthetic gaze benchmark: videos, fixation CSVs, train/val/test QA files."
)
def synthetic(
    out: Path = typer.Argument(
        ...,
        metavar="OUT",
        callback=run_output_dir("manifest.json", "building.json"),
        help="New (or empty) directory to write the benchmark into; rerun with the same options to finish a build "
        "that stopped (a full disk, Ctrl-C).",
    ),
    videos: int = typer.Option(
        DEFAULT_VIDEOS,
        "--videos",
        min=3,
        max=MAX_VIDEOS,
        help="Scenes in all, split train/val/test 4:1:1 by scene (at least one each).",
    ),
    seed: int = seed_option(0, "--seed", help="Seed the scene seeds are drawn from (same seed, same files)"),
    duration: float = float_option(
        DEFAULT_DURATION_S,
        "--duration",
        min=MIN_DURATION_S,
        max=MAX_DURATION_S,
        help="Length of each video in seconds.",
    ),
    size: str = typer.Option(
        DEFAULT_SIZE, "--size", callback=frame_size, help="Frame size WIDTHxHEIGHT of the videos (32 to 4096 a side)."
    ),
    fps: int = typer.Option(
        DEFAULT_FPS, "--fps", min=1, max=MAX_FPS, help="Frame rate of the videos (whole frames/s)."
    ),
    per_task: int = typer.Option(
        DEFAULT_PER_TASK, "--per-task", min=1, max=50, help="Questions per video and task (fewer where fewer fit)."
    ),
    object_scale: float = float_option(
        DEFAULT_OBJECT_SCALE, "--object-scale", min=0.25, max=4.0, help="Object size factor (1 = the device layer's)."
    ),
    objects: str = typer.Option(
        "4-6", "--objects", help="Objects per scene: N, or LO-HI drawn per scene (4 to 8: OI needs 4 options)."
    ),
) -> None:
    """Render synthetic egocentric scenes (a table with coloured shapes, a panning head camera, a hand, a wearer's
    scanpath) and write them as a StreamGaze-format benchmark: OUT/videos/synth_<seed>.mp4,
    OUT/fixations/synth_<seed>_fixation_filtered.csv, OUT/{train,val,test}.json (the ten StreamGaze tasks plus three
    controls: two answerable from the video alone, one asking what is looked at while the wearer looks at no object;
    ground truth from the scene generator) and OUT/manifest.json
    (parameters, scenes per split, question counts, tasks a scene could not support and why). The default set
    (30 scenes of 20 s, 320x240 at 10 fps) builds in about a minute and trains on a small CPU. Question times are
    whole seconds ("MM:SS"), as in StreamGaze."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gazeqwen_edge.training.synthetic_benchmark import SPLITS, build_synthetic_benchmark
    from gazeqwen_edge.training.tasks import ALL_TASKS, task_short

    width, height = size
    n_objects = _objects_range(objects)
    bar = (
        TextColumn("[bold]rendering[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("videos"),
        TimeElapsedColumn(),
    )
    with Progress(*bar, console=console_err, transient=True, disable=not console_err.is_terminal) as progress:
        task = progress.add_task("videos", total=videos)
        manifest = build_synthetic_benchmark(
            out,
            n_videos=videos,
            seed=seed,
            duration_s=duration,
            width=width,
            height=height,
            fps=fps,
            per_task=per_task,
            object_scale=object_scale,
            n_objects=n_objects,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    counts = manifest["questions"]
    t = Table(title=f"questions per split and task ({escape(str(out))})")
    t.add_column("task")
    t.add_column("task_type")
    for split in SPLITS:
        t.add_column(split, justify="right")
    for task_type in ALL_TASKS:
        t.add_row(task_short(task_type), task_type, *(str(counts[s][task_type]) for s in SPLITS))
    t.add_row("all", "", *(str(sum(counts[s].values())) for s in SPLITS), end_section=True)
    t.add_row("scenes", "", *(str(len(manifest["splits"][s]["scene_seeds"])) for s in SPLITS))
    t.add_row("scored items", "(proactive: test points)", *(str(manifest["items"][s]) for s in SPLITS))
    console.print(t)
    for skip in manifest["skipped"]:
        console.print(
            f"skipped {task_short(skip['task'])} in {skip['scenes']} scene(s): {escape(skip['reason'])}", markup=True
        )
    console.print(f"wrote {escape(one_line(str(out)))}: {videos} videos, manifest.json")


def _objects_range(text: str) -> tuple[int, int]:
    """--objects "5" -> (5, 5), "4-6" -> (4, 6); ConfigError (exit 2) for anything else (the range itself is checked
    by the builder)."""
    from gazeqwen_edge.errors import ConfigError

    parts = text.strip().split("-")
    if len(parts) in (1, 2) and all(p.strip().isdigit() for p in parts):
        lo, hi = int(parts[0]), int(parts[-1])
        return lo, hi
    raise ConfigError(f"--objects takes N or LO-HI (e.g. 4-6), got {text!r}")
