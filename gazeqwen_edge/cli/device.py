"""`gazeqwen-edge record` and `gazeqwen-edge inspect`: write a source to a session directory, summarise a source."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from gazeqwen_edge.cli.app import app, console
from gazeqwen_edge.cli.options import float_option, frame_size, output_dir
from gazeqwen_edge.errors import InputError, one_line

# a synthetic scene draws its whole scanpath up front: an hour takes ~4 s and ~270 MB here, a day would not fit
MAX_SYNTHETIC_S = 3600.0

SOURCE_HELP = (
    "What to read: 'synthetic' or 'synthetic:SEED'; a directory (Neon native recording, Pupil Cloud export, a session "
    "written by 'record', a StreamGaze item); a StreamGaze video; or a live device ('pupil-neon', 'neon://host:port')."
)
KIND_NAMES = {
    "gaze": "GazeSample",
    "frames": "SceneFrame",
    "audio": "AudioChunk",
    "fixations": "Fixation",
    "blinks": "Blink",
    "events": "Event",
    "notices": "Notice",
    "imu": "ImuSample",
}


def _kinds(text: str | None):
    if not text:
        return None
    from gazeqwen_edge.device import records
    from gazeqwen_edge.errors import ConfigError

    out = set()
    for k in (t.strip() for t in text.split(",") if t.strip()):
        if k not in KIND_NAMES:
            raise ConfigError(f"unknown stream '{k}' in --streams; choose from {', '.join(KIND_NAMES)}")
        out.add(getattr(records, KIND_NAMES[k]))
    if not out:  # "," or " , ": a list that names nothing would record nothing, not everything
        raise ConfigError(
            f"--streams {text!r} names no stream; choose from {', '.join(KIND_NAMES)}, or leave it out for all"
        )
    return out


def is_synthetic(source: str) -> bool:
    """Whether SOURCE names a synthetic scene ('synthetic' or 'synthetic:SEED')."""
    return source == "synthetic" or source.startswith("synthetic:")


def synthetic_options(source: str, duration_s: float | None = None, size: tuple[int, int] | None = None) -> dict:
    """open_source keyword arguments for SOURCE as every command opens it: a synthetic scene's length and frame size,
    and its objects at the synthetic benchmark's size (device.synthetic.BENCHMARK_OBJECT_SCALE, what the demo model
    was trained on: `replay synthetic:3` and `demo` show it the same scene); {} for other sources. ConfigError if a
    length or size is given for another kind of source (where it would be silently ignored)."""
    from gazeqwen_edge.device.synthetic import BENCHMARK_OBJECT_SCALE
    from gazeqwen_edge.errors import ConfigError

    if not is_synthetic(source):
        if duration_s is not None or size is not None:
            raise ConfigError(
                f"the length and frame size options only apply to synthetic scenes, not to '{source}'",
                hint="drop them, or use SOURCE 'synthetic' or 'synthetic:SEED'",
            )
        return {}
    kw: dict = {"object_scale": BENCHMARK_OBJECT_SCALE}
    if duration_s is not None:
        kw["duration_s"] = duration_s
    if size is not None:
        kw["width"], kw["height"] = size
    return kw


@app.command("record", short_help="Write a source (live, recorded or synthetic) to a session directory.")
def record(
    source: str = typer.Argument(..., metavar="SOURCE", help=SOURCE_HELP),
    out_dir: Path = typer.Argument(
        ...,
        metavar="OUT_DIR",
        callback=output_dir,
        help="New directory to write the session to (must not exist or be empty).",
    ),
    duration: float | None = float_option(
        None,
        "--duration",
        "-d",
        above=0.0,
        help="Stop after this many seconds of recording time (default: the whole source).",
    ),
    speed: float = float_option(
        0.0,
        "--speed",
        min=0.0,
        help="Replay pace for recorded sources: 0 = as fast as possible, 1 = real time, N = N x real time.",
    ),
    streams: str | None = typer.Option(
        None, "--streams", help=f"Comma-separated streams to keep ({', '.join(KIND_NAMES)}); default: all."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the session files in a non-empty OUT_DIR."),
    synthetic_duration: float | None = float_option(
        None,
        "--synthetic-duration",
        above=0.0,
        max=MAX_SYNTHETIC_S,
        help="Length in seconds of a synthetic scene (default 10).",
    ),
    size: str | None = typer.Option(
        None, "--size", callback=frame_size, help="Frame size of a synthetic scene, e.g. 320x240 (32 to 4096 a side)."
    ),
) -> None:
    """Write what a source delivers (gaze, scene video, audio, fixations, blinks, events) to a session directory:
    Pupil Cloud export CSV layout + scene.mp4 + session.json, readable by 'inspect', the replay readers and Cloud tools.
    Every file is flushed every 0.5 s: Ctrl-C keeps everything, a killed process loses at most the last half second
    (the scene video up to its last 1 s fragment)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.record import expected_seconds
    from gazeqwen_edge.device.record import record as record_session

    kinds = _kinds(streams)
    try:
        opened = open_source(source, **synthetic_options(source, synthetic_duration, size))
    except InputError as e:
        swapped = _swapped_arguments(source, out_dir)
        if swapped is None:
            raise
        raise InputError(e.path, e.problem, hint=swapped) from None
    with opened as src:
        total = expected_seconds(src, duration)
        columns = TextColumn("{task.completed:.1f}/{task.total:.1f} s" if total else "{task.completed:.1f} s")
        bar = (TextColumn("[bold]recording[/]"), BarColumn(), columns, TimeElapsedColumn())
        with Progress(*bar, console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("record", total=total)
            result = record_session(
                src,
                out_dir,
                spec=source,
                kinds=kinds,
                duration_s=duration,
                speed=speed,
                overwrite=overwrite,
                progress=lambda s: progress.update(task, completed=s),
            )
    c = result.counts
    console.print(
        f"{'stopped' if result.interrupted else 'wrote'} {escape(one_line(str(out_dir)))}: {result.span_s:.1f} s, "
        f"{c['gaze']} gaze samples, {c['frames']} frames, {c['fixations']} fixations, {c['blinks']} blinks, "
        f"{c['events']} events, {c['audio_samples']} audio samples"
    )


def _swapped_arguments(source: str, out_dir: Path) -> str | None:
    """The hint for `record OUT_DIR SOURCE` (the arguments swapped): SOURCE is no existing path while OUT_DIR reads as
    a source (synthetic[:SEED], a live spec with '://', or a recording this tool recognises); else None."""
    import shlex

    from gazeqwen_edge.device.registry import detect_kind

    if Path(source).expanduser().exists():
        return None
    o = str(out_dir)
    looks = o == "synthetic" or o.startswith("synthetic:") or "://" in o
    if not looks and out_dir.expanduser().exists():
        try:
            detect_kind(out_dir.expanduser())
            looks = True
        except InputError:
            pass
    if not looks:
        return None
    return (
        f"the arguments are SOURCE then OUT_DIR: did you mean 'gazeqwen-edge record {shlex.quote(o)} "
        f"{shlex.quote(source)}'?"
    )


@app.command("inspect", short_help="Summarise a source: streams, rates, scene size, intrinsics, gaze offset.")
def inspect(
    source: str = typer.Argument(..., metavar="SOURCE", help=SOURCE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    decode: bool = typer.Option(False, "--decode", help="Decode every scene frame (checks the video fully)."),
    seconds: float = float_option(
        3.0, "--seconds", min=0.1, help="For live sources (which never end): how many seconds of streams to sample."
    ),
) -> None:
    """Summarise a source: kind, duration, streams with counts and rates, scene size, intrinsics, gaze offset; for a
    synthetic scene also its objects and when each is first looked at (what a --watch can name)."""
    from rich.table import Table

    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.inspect import summarize

    with open_source(source, **synthetic_options(source)) as src:
        live = src.end_ns is None and not hasattr(src, "gaze_arrays")
        s = summarize(src, decode_frames=decode, max_seconds=seconds if live else None)
    if as_json:
        console.print_json(json.dumps(s, allow_nan=False))  # strict JSON: NaN / inf are not JSON
        return
    console.print(f"[bold]{escape(one_line(source))}[/]: {s['description']}", highlight=False)
    if s["duration_s"] is not None:
        console.print(f"  duration {s['duration_s']:.3f} s  (start {s['start_ns']} ns, unix)")
    if s["sampled_s"]:
        console.print(f"  live source: streams sampled for {s['sampled_s']:g} s")
    size = s["scene_size"]
    video = "" if s["has_scene_video"] else "  (no scene video: gaze-only)"
    console.print(f"  scene size {size[0]}x{size[1]}{video}" if size else "  no scene camera")
    console.print(f"  gaze offset {s['gaze_offset'][0]:+.2f}, {s['gaze_offset'][1]:+.2f} px (to be added to raw gaze)")
    k = s["intrinsics"]
    if k:
        m = k["camera_matrix"]
        console.print(
            f"  intrinsics fx={m[0][0]:.1f} fy={m[1][1]:.1f} cx={m[0][2]:.1f} cy={m[1][2]:.1f}, "
            f"distortion {', '.join(f'{d:.4g}' for d in k['dist_coeffs'])}",
            highlight=False,
        )
    else:
        console.print("  intrinsics: none")
    t = Table(title=None, show_edge=False)
    for col in ("stream", "count", "rate", "first (s)", "last (s)"):
        t.add_column(col, justify="left" if col == "stream" else "right")
    firsts = [st["first_ns"] for st in s["streams"].values()]
    base = s["start_ns"] or (min(firsts) if firsts else 0)
    for name, st in s["streams"].items():
        rate = f"{st['rate_hz']:.1f} Hz" if st["rate_hz"] else "-"
        if "sample_rate" in st:
            rate += f" ({st['sample_rate']} Hz audio)"
        t.add_row(
            name, str(st["count"]), rate, f"{(st['first_ns'] - base) / 1e9:.3f}", f"{(st['last_ns'] - base) / 1e9:.3f}"
        )
    console.print(t)
    for n in s["notices"]:
        console.print(f"  [yellow]notice[/] {escape(one_line(n))}", highlight=False)
    if s["objects"]:  # a synthetic scene: what a --watch or a question can name
        seen = [
            f"{o['name']} (first looked at {o['first_looked_at_s']:.1f} s)"
            if o["first_looked_at_s"] is not None
            else f"{o['name']} (never looked at)"
            for o in s["objects"]
        ]
        console.print(f"  objects: {', '.join(seen)}", highlight=False)
