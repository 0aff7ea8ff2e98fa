"""`gazeqwen-edge calibrate ...`: wearer offset calibration, stored offsets, camera intrinsics, fixation detection."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gazeqwen_edge.cli.app import HelpGroup, app, console
from gazeqwen_edge.cli.options import check_output_option, float_option, host
from gazeqwen_edge.errors import ConfigError, InputError

calibrate_app = typer.Typer(
    cls=HelpGroup, help="Wearer offset calibration, camera intrinsics and fixation detection.", no_args_is_help=True
)
app.add_typer(calibrate_app, name="calibrate")


def _register_sources() -> None:
    """Make 'calibration-target[:...]' a SOURCE for every command (e.g. `simulate` serves it as a live device)."""
    from gazeqwen_edge.calibration.target_scene import register

    register()


_register_sources()


def _open(source: str | None, address: str | None, port: int, aruco: bool):
    if (source is None) == (address is None):
        raise ConfigError("give exactly one of --source SPEC or --address HOST (with --port)")
    if source is not None:
        from gazeqwen_edge.device import open_source

        return open_source(source)
    from gazeqwen_edge.device.neon import NeonLiveSource

    return NeonLiveSource(address, port, streams=("gaze", "world") if aruco else ("gaze",))


@calibrate_app.command("offset")
def offset(
    ctx: typer.Context,
    wearer: str = typer.Option(..., "--wearer", "-w", help="Name the offset is stored under."),
    source: str = typer.Option(
        None,
        "--source",
        "-s",
        help="SOURCE spec: neon://HOST:PORT, a recording, 'calibration-target:offset=12,-8' (synthetic), ...",
    ),
    address: str = typer.Option(
        None, "--address", callback=host, help="Neon Companion (or simulator) host; instead of --source."
    ),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="HTTP port of the device given with --address."),
    target: str = typer.Option(
        "center",
        "--target",
        "-t",
        help="Where the wearer looks: 'center' of the scene, 'X,Y' scene px, or 'aruco[:ID]' (a printed marker).",
    ),
    seconds: float = float_option(5.0, "--seconds", min=0.5, max=600.0, help="How long to collect gaze on the target."),
    store: Path = typer.Option(
        None,
        "--store",
        help="Offset store file (default: $GAZEQWEN_EDGE_HOME or ~/.config); not touched with --no-save.",
    ),
    save: bool = typer.Option(True, "--save/--no-save", help="Store the result for the wearer."),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Do not ask: start collecting at once and replace the wearer's stored offset."
    ),
) -> None:
    """Estimate the wearer's constant gaze offset from a few seconds of looking at a target, show the residual
    error in degrees and store it per wearer (applied later with `--wearer NAME`)."""
    from gazeqwen_edge.calibration.offset import parse_target

    st, earlier = _store_for(ctx, wearer, store, save, yes)
    aruco = target.strip().lower().startswith("aruco")
    src = _open(source, address, port, aruco or target.strip().lower() in ("center", "centre"))
    try:
        camera = _device_camera(src)
        parse_target(target, src.scene_size or (10**6, 10**6))  # bad specs fail before anything is collected
        console.print(f"[bold]Offset calibration[/] for wearer [cyan]{wearer}[/] on {src.name}")
        console.print(f"Ask the wearer to look steadily at {_where(target, aruco)} for {seconds:g} s.")
        if not yes and sys.stdin.isatty():
            typer.prompt("Press Enter when the wearer is ready", default="", show_default=False)
        run = _collect(src, target, seconds, camera)
    finally:
        src.close()
    e = run.estimate
    _report(run, aruco)
    if earlier is not None and not yes:
        question = (
            f"Replace the stored offset of wearer '{wearer}' ({earlier.dx:+.1f}, {earlier.dy:+.1f}) px with "
            f"({e.dx:+.1f}, {e.dy:+.1f}) px?"
        )
        if not typer.confirm(question, default=False):
            console.print(f"kept the stored offset of wearer '{wearer}'")
            return
    if st is not None:
        st.set(wearer, e.offset, e.residual_after_deg, e.n_used, source=source or f"{address}:{port}")
        console.print(f"saved for wearer '{wearer}' in {st.path}")


def _store_for(ctx: typer.Context, wearer: str, store: Path | None, save: bool, yes: bool):
    """(the offset store, the wearer's earlier offset) when saving; checked before anything is collected, so a bad
    name, an unreadable store or a refusal to replace an offset does not cost the wearer a calibration run."""
    from gazeqwen_edge.calibration.offset import OffsetStore, check_wearer_name

    if not save:  # only measuring: the store is neither read nor written (it may be on a read-only disk)
        return None, None
    check_wearer_name(wearer)
    check_output_option(ctx, "store", store)
    st = OffsetStore(store)
    earlier = st.get(wearer)
    if earlier is not None and not yes and not sys.stdin.isatty():
        raise ConfigError(
            f"wearer '{wearer}' already has a stored offset ({earlier.dx:+.1f}, {earlier.dy:+.1f}) px from "
            f"{earlier.updated or 'an earlier run'}; not replacing it without asking",
            hint="pass -y/--yes to replace it, --no-save to only measure, or choose another --wearer name",
        )
    return st, earlier


def _device_camera(src):
    """A live device's scene camera calibration over the realtime API (degrees for the detector and the residual),
    or None (the source's own intrinsics, or a nominal Neon camera, are used then)."""
    if src.intrinsics is not None or not (getattr(src, "address", None) and getattr(src, "port", None)):
        return None
    from gazeqwen_edge.calibration.camera import CameraModel, intrinsics_from_device
    from gazeqwen_edge.errors import DeviceError

    try:
        camera = CameraModel(intrinsics_from_device(src.address, src.port))
        console.print(f"camera calibration from the device: {camera}")
        return camera
    except DeviceError as e:
        console.print(f"[yellow]{e.message}; using a nominal Neon camera model[/]")
        return None


def _where(target: str, aruco: bool) -> str:
    if aruco:
        return "the printed ArUco marker"
    if target.strip().lower() in ("center", "centre"):
        return "the centre of the scene camera's view"
    return f"the target at scene px ({target.strip()})"


def _collect(src, target: str, seconds: float, camera):
    """Run the offset calibration with a progress bar (collected fraction, fixations so far)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gazeqwen_edge.calibration.offset import calibrate_offset

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[fix]} fixations"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as prog:
        task = prog.add_task("collecting gaze", total=1.0, fix=0)
        return calibrate_offset(
            src,
            target,
            seconds=seconds,
            camera=camera,
            progress=lambda frac, n: prog.update(task, completed=frac, fix=n),
        )


def _report(run, aruco: bool) -> None:
    e = run.estimate
    if run.target_px is not None:
        console.print(f"target at scene px ({run.target_px[0]:.1f}, {run.target_px[1]:.1f})")
    console.print(
        f"fixations: {e.n_fixations} detected, {e.n_used} on the target"
        + (f"; marker seen in {run.marker_seen}/{run.n_frames} frames" if aruco else "")
    )
    console.print(f"offset to add to raw gaze: [bold]dx {e.dx:+.1f} px, dy {e.dy:+.1f} px[/]")
    console.print(
        f"error to the target: {e.residual_before_deg:.2f} deg before, [bold]{e.residual_after_deg:.2f} deg[/] after"
        f" (RMS {e.residual_after_rms_deg:.2f} deg, {e.residual_after_px:.1f} px)"
    )
    if e.n_used > 1:
        console.print(f"spread of the {e.n_used} fixations' own offsets around it: {e.spread_px:.1f} px RMS")
    else:
        console.print("one long fixation on the target: no spread between fixations to report")


@calibrate_app.command("show")
def show(
    wearer: str = typer.Option(None, "--wearer", "-w", help="Only this wearer."),
    store: Path = typer.Option(None, "--store", help="Offset store file (default: $GAZEQWEN_EDGE_HOME or ~/.config)."),
) -> None:
    """List the stored wearer offsets."""
    from rich.table import Table

    from gazeqwen_edge.calibration.offset import OffsetStore

    st = OffsetStore(store)
    entries = st.load()
    if wearer is not None:
        entries = {wearer: st.require(wearer)}
    if not entries:
        console.print(f"no wearer offsets stored in {st.path}")
        return
    t = Table(title=f"wearer offsets ({st.path})")
    for c in ("wearer", "dx px", "dy px", "residual deg", "fixations", "updated", "source"):
        t.add_column(c)
    for name, w in entries.items():
        t.add_row(
            name,
            f"{w.dx:+.1f}",
            f"{w.dy:+.1f}",
            "" if w.residual_deg is None else f"{w.residual_deg:.2f}",
            "" if w.n_fixations is None else str(w.n_fixations),
            w.updated,
            w.source,
        )
    console.print(t)


@calibrate_app.command("camera")
def camera(
    path: Path = typer.Argument(
        ..., metavar="PATH", help="calibration.bin, a Cloud export's scene_camera.json, or a directory."
    ),
) -> None:
    """Read and check scene camera intrinsics (calibration.bin's CRC is verified)."""
    import numpy as np

    from gazeqwen_edge.calibration.camera import CameraModel, read_intrinsics

    intr = read_intrinsics(path)
    cam = CameraModel(intr)
    K = cam.K
    origin = str(intr.extra.get("origin", path))
    console.print(f"[bold]{origin}[/]" + (" (CRC ok)" if "crc" in intr.extra else ""))
    if intr.extra.get("serial"):
        console.print(f"module serial {intr.extra['serial']}, version {intr.extra.get('version')}")
    assumed = " (not in the file: assumed from the principal point)" if intr.extra.get("size_assumed") else ""
    console.print(
        f"size {cam.width}x{cam.height}{assumed}  fx {K[0, 0]:.2f}  fy {K[1, 1]:.2f}  cx {K[0, 2]:.2f}  cy {K[1, 2]:.2f}"
    )
    console.print("distortion " + np.array2string(cam.D, precision=5, separator=", "))
    hf, vf = cam.field_of_view_deg()
    console.print(f"field of view {hf:.1f} x {vf:.1f} deg, {cam.px_per_degree():.2f} px/deg at the centre")


@calibrate_app.command("fixations")
def fixations(
    source: str = typer.Argument(
        ..., metavar="SOURCE", help="SOURCE spec: a Neon recording, a Cloud export, synthetic[:SEED], ..."
    ),
    tolerance_ms: float = float_option(
        50.0, "--tolerance-ms", min=0.0, help="Onset tolerance when comparing to the device."
    ),
    wearer: str = typer.Option(None, "--wearer", "-w", help="Apply this wearer's stored offset to the centres."),
    limit: int = typer.Option(20, "--show", min=0, help="How many fixations to list."),
) -> None:
    """Run our online fixation detector over a source and compare it with the source's own fixations."""
    from rich.table import Table

    from gazeqwen_edge.calibration.evaluate import detect_on_source, match_fixations
    from gazeqwen_edge.calibration.fixation import OnlineFixationDetector
    from gazeqwen_edge.calibration.offset import camera_for, resolve_offset
    from gazeqwen_edge.device import open_source

    src = open_source(source)
    try:
        off, origin = resolve_offset(src, wearer)  # an unknown wearer fails before the detector runs
        run = detect_on_source(src, OnlineFixationDetector(camera_for(src)))
    finally:
        src.close()
    if run.n_gaze == 0:  # a StreamGaze video has fixations but no raw gaze: nothing to detect from, nothing to score
        raise InputError(
            source,
            "holds no raw gaze samples: the fixation detector has nothing to run on",
            hint="use a recording with gaze (a Neon recording, a Pupil Cloud export, a session of `record`)",
        )
    ours = run.fixations
    frames = f" and {run.n_frames} scene frames" if run.n_frames else ""
    console.print(f"{run.n_gaze} gaze samples{frames} -> {len(ours)} fixations (ours), centres in raw gaze px")
    console.print(f"wearer offset to add for display/model: ({off[0]:+.1f}, {off[1]:+.1f}) px ({origin})")
    t = Table(title="our fixations")
    for c in ("start s", "dur ms", "x px", "y px"):
        t.add_column(c, justify="right")
    t0 = src.start_ns or (ours[0].start_ns if ours else 0)
    for f in ours[:limit]:
        t.add_row(f"{(f.start_ns - t0) / 1e9:.3f}", f"{f.duration_ns / 1e6:.0f}", f"{f.x:.1f}", f"{f.y:.1f}")
    console.print(t)
    if len(ours) > limit:
        console.print(f"... {len(ours) - limit} more not listed (--show {len(ours)} lists them all)")
    if run.reference:
        a, _ = match_fixations(ours, run.reference, tolerance_ms)
        console.print(f"vs the source's {len(run.reference)} fixations: {a.summary()}")
    if run.n_gaze:
        console.print(f"detector: {run.detector_s / (run.n_gaze + run.n_frames) * 1e6:.1f} us per record")
