"""`gazeqwen-edge simulate` (a Neon device on this machine) and `gazeqwen-edge run --device pupil-neon` (live glasses)."""

from __future__ import annotations

import time

import typer
from rich.markup import escape

from gazeqwen_edge.cli.app import app, console, console_err
from gazeqwen_edge.cli.device import MAX_SYNTHETIC_S, synthetic_options
from gazeqwen_edge.cli.options import choice, float_option, frame_size, host, label

SIM_SOURCE_HELP = (
    "What to serve: 'synthetic' or 'synthetic:SEED', a Neon native recording directory, a Pupil Cloud export "
    "directory or a session directory (recognised by their files), or any other SOURCE spec."
)
MAX_CLOCK_OFFSET_MS = 86_400_000.0  # a phone clock more than a day off is a typo
STATS_EVERY_S = 5.0


@app.command("simulate")
def simulate(
    source: str = typer.Argument(..., metavar="SOURCE", help=SIM_SOURCE_HELP),
    host_: str = typer.Option(
        "127.0.0.1", "--host", callback=host, help="Address to serve on (0.0.0.0 to let other machines connect)."
    ),
    port: int = typer.Option(
        8080, min=0, max=65535, help="HTTP port of the REST API and status websocket (0 = any free port)."
    ),
    rtsp_port: int = typer.Option(8086, min=0, max=65535, help="RTSP port for all streams (0 = any free port)."),
    time_echo_port: int = typer.Option(12321, min=0, max=65535, help="Time-echo TCP port (0 = any free port)."),
    loop: bool = typer.Option(False, "--loop", help="Start the source again when it ends (timestamps keep rising)."),
    scene_seconds: float = float_option(
        None, "--scene-seconds", above=0.0, max=MAX_SYNTHETIC_S, help="Length of a synthetic scene in seconds."
    ),
    size: str = typer.Option(
        None, callback=frame_size, help="Scene size of a synthetic scene, e.g. 640x480 (32 to 4096 a side)."
    ),
    drop_percent: float = float_option(
        0.0, "--drop-percent", min=0.0, max=100.0, help="Drop this percentage of RTP packets at random."
    ),
    stall: list[str] = typer.Option(
        None,
        help="STREAM:AT:FOR: send nothing on gaze|world|audio|eye_events|all "
        "from AT for FOR seconds after start (repeatable).",
    ),
    disconnect_at: float = float_option(
        None, "--disconnect-at", min=0.0, help="Leave the network this many seconds after start."
    ),
    disconnect_for: float = float_option(3.0, "--disconnect-for", min=0.0, help="... and come back after this long."),
    not_worn: list[str] = typer.Option(None, help="AT:FOR: report the glasses as not worn (repeatable)."),
    clock_offset_ms: float = float_option(
        0.0,
        "--clock-offset-ms",
        min=-MAX_CLOCK_OFFSET_MS,
        max=MAX_CLOCK_OFFSET_MS,
        help="Simulated error of the phone's clock (time echo shows it).",
    ),
    gaze_variant: int = typer.Option(
        9,
        callback=choice(9, 17, 25, 65, 89, 105),
        help="Gaze payload: 9 (gaze), 17 (dual monocular), 25, 65 (eye state), 89 (+ eyelid), 105 (+ dual monocular).",
    ),
    audio: str = typer.Option(
        "auto",
        callback=choice("auto", "source", "tone", "off"),
        help="auto (source audio, a tone if it has none) | source | tone | off.",
    ),
    timestamps: str = typer.Option(
        "live", callback=choice("live", "source"), help="live (the first record is 'now') | source (recorded times)."
    ),
    announce: bool = typer.Option(False, "--announce", help="Announce with zeroconf so discovery finds it."),
    name: str = typer.Option("Neon Simulator", callback=label, help="Phone name the simulator reports."),
) -> None:
    """Serve a recording or a synthetic scene as a Pupil Labs Neon device (real-time API: HTTP, websocket, RTSP,
    time echo), in real time, with optional fault injection. Stop with Ctrl-C."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.simulator import FaultPlan, Faults, NeonSimulator

    plan = FaultPlan.parse(stall, not_worn, disconnect_at, disconnect_for)  # every spec checked before serving
    with open_source(source, **synthetic_options(source, scene_seconds, size)) as src:
        if not loop and src.start_ns is not None and src.end_ns is not None:
            for warning in plan.unseen((src.end_ns - src.start_ns) / 1e9):
                console_err.print(f"[yellow]warning:[/] {escape(warning)}")
        sim = NeonSimulator(
            src,
            host=host_,
            port=port,
            rtsp_port=rtsp_port,
            time_echo_port=time_echo_port,
            loop=loop,
            timestamps=timestamps,
            clock_offset_ms=clock_offset_ms,
            gaze_variant=gaze_variant,
            audio=audio,
            faults=Faults(drop_percent=drop_percent),
            device_name=name,
            announce=announce,
        )
        try:
            sim.start()
            plan.schedule(sim)
            console.print(
                f"Neon simulator '{escape(name)}' serving [bold]{escape(source)}[/] on http://{host_}:{sim.port} "
                f"(RTSP {sim.rtsp_port}, time echo {sim.time_echo_port}); connect with "
                f"[bold]gazeqwen-edge run --device pupil-neon --address {host_} --port {sim.port}[/]"
            )
            while sim.wait(STATS_EVERY_S):
                console.print(_packets_line(sim))
            if sim.player_error is not None:
                raise sim.player_error
            console.print("source played out; stopping (use --loop to repeat it)")
        except KeyboardInterrupt:
            console.print("stopping")
        finally:
            sim.stop()


def _packets_line(sim) -> str:
    st = sim.stats()
    return (
        "packets: "
        + ", ".join(f"{k} {v['packets']}" for k, v in st.items())
        + f" | sent to clients {sum(v['sent'] for v in st.values())}"
        + f" | dropped {sum(v['dropped'] for v in st.values())} | RTSP sessions {sim.rtsp_sessions}"
        + ("" if sim.connected else " | [yellow]off the network[/]")
    )


def show_status(neon, duration: float) -> None:
    """`run --status-only`: print a live status line every second (gaze rate, frame rate, audio, worn, battery) and
    every notice, until `duration` seconds (0: Ctrl-C)."""
    from gazeqwen_edge.device.neon import RateMeter
    from gazeqwen_edge.device.records import Notice

    meter = RateMeter(neon)
    t_end = time.monotonic() + duration if duration > 0 else float("inf")
    try:
        while time.monotonic() < t_end:
            rec = neon.get(0.05)
            if isinstance(rec, Notice):
                colour = {"error": "red", "warning": "yellow"}.get(rec.level, "cyan")
                console.print(f"[{colour}]{rec.kind}[/]: {escape(rec.message)}")
            rates = meter.poll()
            if rates is not None:
                console.print(_status_line(neon.status(), rates, neon.stats()["dropped_oldest"]))
    except KeyboardInterrupt:
        pass


def connect_banner(neon) -> None:
    """One line naming the connected device."""
    st = neon.status()
    console.print(
        f"connected to [bold]{escape(st.device_name)}[/] at {neon.address}:{neon.port}, module "
        f"{escape(st.module_serial)}, clock offset {_ms(neon.clock_offset_ns)}"
    )


def _status_line(s, rates: dict[str, float], dropped: int) -> str:
    """One status line; worn and battery read '?' while unknown (before the first data, and while the device is
    away: the last values are not current then)."""
    worn = "?" if s.worn is None else ("yes" if s.worn else "[yellow]NO[/]")
    batt = "?" if s.battery_level is None else f"{s.battery_level}%"
    rec_s = "?" if not s.connected else ("-" if s.recording_id is None else "REC")
    link = "" if s.connected else " | [red]device away[/]"
    return (
        f"gaze {rates['gaze']:6.1f} Hz | scene {rates['world']:5.1f} fps | audio {rates['audio']:4.1f} fr/s "
        f"| worn {worn} | battery {batt} | recording {rec_s} | dropped {dropped}{link}"
    )


def _ms(ns: int | None) -> str:
    return "unknown" if ns is None else f"{ns / 1e6:+.1f} ms"
