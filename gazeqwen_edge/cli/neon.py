"""`gazeqwen-edge simulate` (a Neon device on this machine) and `gazeqwen-edge run --device pupil-neon` (live glasses)."""

from __future__ import annotations

import time

import typer

from gazeqwen_edge.cli.app import app, console, console_err
from gazeqwen_edge.cli.device import synthetic_options

SIM_SOURCE_HELP = (
    "What to serve: 'synthetic' or 'synthetic:SEED', a Neon native recording directory or a Pupil Cloud export "
    "directory (recognised by their files)."
)


def _parse_times(items: list[str], what: str, n: int) -> list[list[str]]:
    from gazeqwen_edge.errors import ConfigError

    out = []
    for it in items or []:
        parts = it.split(":")
        if len(parts) != n:
            raise ConfigError(f"--{what} takes {'STREAM:AT:FOR' if n == 3 else 'AT:FOR'} (seconds), got '{it}'")
        try:
            [float(p) for p in parts[-2:]]
        except ValueError:
            raise ConfigError(f"--{what} '{it}': AT and FOR must be numbers of seconds") from None
        out.append(parts)
    return out


@app.command("simulate")
def simulate(
    source: str = typer.Argument(..., help=SIM_SOURCE_HELP),
    host: str = typer.Option("127.0.0.1", help="Address to serve on (0.0.0.0 to let other machines connect)."),
    port: int = typer.Option(
        8080, min=0, max=65535, help="HTTP port of the REST API and status websocket (0 = any free port)."
    ),
    rtsp_port: int = typer.Option(8086, min=0, max=65535, help="RTSP port for all streams (0 = any free port)."),
    time_echo_port: int = typer.Option(12321, min=0, max=65535, help="Time-echo TCP port (0 = any free port)."),
    loop: bool = typer.Option(False, "--loop", help="Start the source again when it ends (timestamps keep rising)."),
    scene_seconds: float = typer.Option(None, help="Length of a synthetic scene in seconds (default: its own)."),
    size: str = typer.Option(None, help="Scene size of a synthetic scene, e.g. 640x480."),
    drop_percent: float = typer.Option(0.0, min=0, max=100, help="Drop this percentage of RTP packets at random."),
    stall: list[str] = typer.Option(
        None,
        help="STREAM:AT:FOR: send nothing on gaze|world|audio|eye_events|all "
        "from AT for FOR seconds after start (repeatable).",
    ),
    disconnect_at: float = typer.Option(None, min=0.0, help="Leave the network this many seconds after start."),
    disconnect_for: float = typer.Option(3.0, min=0.0, help="... and come back after this many seconds."),
    not_worn: list[str] = typer.Option(None, help="AT:FOR: report the glasses as not worn (repeatable)."),
    clock_offset_ms: float = typer.Option(0.0, help="Simulated error of the phone's clock (time echo shows it)."),
    gaze_variant: int = typer.Option(
        9,
        help="Gaze payload: 9 (gaze), 17 (dual monocular), 25, 65 (eye state), 89 (+ eyelid), 105 (+ dual monocular).",
    ),
    audio: str = typer.Option("auto", help="auto (source audio, a tone if it has none) | source | tone | off."),
    timestamps: str = typer.Option("live", help="live (the first record is 'now') | source (keep recorded times)."),
    announce: bool = typer.Option(False, "--announce", help="Announce with zeroconf so discovery finds it."),
    name: str = typer.Option("Neon Simulator", help="Phone name the simulator reports."),
) -> None:
    """Serve a recording or a synthetic scene as a Pupil Labs Neon device (real-time API: HTTP, websocket, RTSP,
    time echo), in real time, with optional fault injection. Stop with Ctrl-C."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.simulator import Faults, NeonSimulator
    from gazeqwen_edge.errors import ConfigError

    if audio not in ("auto", "source", "tone", "off"):
        raise ConfigError(f"--audio must be auto, source, tone or off, not '{audio}'")
    if timestamps not in ("live", "source"):
        raise ConfigError(f"--timestamps must be live or source, not '{timestamps}'")
    if gaze_variant not in (9, 17, 25, 65, 89, 105):
        raise ConfigError(f"--gaze-variant must be one of 9, 17, 25, 65, 89, 105, not {gaze_variant}")
    stalls = _parse_times(stall, "stall", 3)
    worn_off = _parse_times(not_worn, "not-worn", 2)
    kw: dict = {}
    if source == "synthetic" or source.startswith("synthetic:"):
        kw = synthetic_options(scene_seconds, size)
    elif scene_seconds is not None or size:
        raise ConfigError("--scene-seconds and --size only apply to synthetic scenes")
    src = open_source(source, **kw)
    sim = NeonSimulator(
        src,
        host=host,
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
    except OSError as e:
        from gazeqwen_edge.errors import DeviceError

        raise DeviceError(f"cannot serve on {host}: {e}", hint="pick other ports (--port/--rtsp-port, 0 = any)") from e
    try:
        for stream, at, dur in stalls:
            sim.schedule(float(at), lambda s=stream, d=float(dur): sim.stall(s, d))
        for at, dur in worn_off:
            sim.schedule(float(at), lambda: sim.set_worn(False))
            sim.schedule(float(at) + float(dur), lambda: sim.set_worn(True))
        if disconnect_at is not None:
            sim.schedule(disconnect_at, lambda: sim.disconnect(disconnect_for))
        console.print(
            f"Neon simulator '{name}' serving [bold]{source}[/] on http://{host}:{sim.port} "
            f"(RTSP {sim.rtsp_port}, time echo {sim.time_echo_port}); connect with "
            f"[bold]gazeqwen-edge run --device pupil-neon --address {host} --port {sim.port}[/]",
            highlight=False,
            soft_wrap=True,
        )
        last = time.monotonic()
        while sim.playing:
            time.sleep(0.5)
            if time.monotonic() - last >= 5.0:
                last = time.monotonic()
                st = sim.stats()
                n_clients = sim.rtsp_sessions
                console.print(
                    "packets: "
                    + ", ".join(f"{k} {v['packets']}" for k, v in st.items())
                    + f" | sent to clients {sum(v['sent'] for v in st.values())}"
                    + f" | dropped {sum(v['dropped'] for v in st.values())} | RTSP sessions {n_clients}"
                    + ("" if sim.connected else " | [yellow]off the network[/]"),
                    highlight=False,
                    soft_wrap=True,
                )
        if sim.player_error is not None:
            raise sim.player_error
        console.print("source played out; stopping (use --loop to repeat it)")
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        sim.stop()
        src.close()


@app.command("run")
def run(
    device: str = typer.Option("pupil-neon", help="Device to read: pupil-neon (or neon://HOST:PORT)."),
    address: str = typer.Option(None, help="Address of the phone running the Neon Companion app (default: discover)."),
    port: int = typer.Option(8080, min=1, max=65535, help="Its HTTP port."),
    duration: float = typer.Option(0.0, min=0.0, help="Stop after this many seconds (0 = until Ctrl-C)."),
    streams: str = typer.Option("gaze,world,audio,eye_events", help="Streams to receive, comma separated."),
    connect_timeout: float = typer.Option(3.0, min=0.1, help="Seconds to wait for the device before giving up."),
) -> None:
    """Connect to live Neon glasses and show a live status line (gaze rate, frame rate, audio, worn, battery,
    notices). For now this is all it does: the GazeQwen model loop (questions and answers) comes in a later version."""
    from gazeqwen_edge.device.neon import open_neon
    from gazeqwen_edge.device.records import Notice
    from gazeqwen_edge.errors import ConfigError

    if not (device == "pupil-neon" or device.startswith("pupil-neon:") or device.startswith("neon://")):
        raise ConfigError(f"unknown --device '{device}'; supported: pupil-neon, neon://HOST:PORT")
    kw: dict = {"streams": [s.strip() for s in streams.split(",") if s.strip()], "connect_timeout_s": connect_timeout}
    if address is not None:
        kw["address"], kw["port"] = address, port
    elif device == "pupil-neon" and port != 8080:
        kw["port"] = port
    where = address or ("(discovering)" if device == "pupil-neon" else device)
    console_err.print(f"connecting to {where} ...", highlight=False)
    neon = open_neon(device, **kw)
    st = neon.status()
    console.print(
        f"connected to [bold]{st.device_name}[/] at {neon.address}:{neon.port}, module {st.module_serial}, "
        f"clock offset {_ms(neon.clock_offset_ns)}",
        highlight=False,
        soft_wrap=True,
    )
    t_end = time.monotonic() + duration if duration > 0 else float("inf")
    prev = dict(neon.stats()["counts"])
    t_prev = time.monotonic()
    try:
        while time.monotonic() < t_end:
            rec = neon.get(0.05)
            if isinstance(rec, Notice):
                colour = {"error": "red", "warning": "yellow"}.get(rec.level, "cyan")
                console.print(f"[{colour}]{rec.kind}[/]: {rec.message}", highlight=False, soft_wrap=True)
            now = time.monotonic()
            if now - t_prev >= 1.0:
                counts = dict(neon.stats()["counts"])
                rate = {k: (counts.get(k, 0) - prev.get(k, 0)) / (now - t_prev) for k in ("gaze", "world", "audio")}
                prev, t_prev = counts, now
                s = neon.status()
                worn = "?" if s.worn is None else ("yes" if s.worn else "[yellow]NO[/]")
                rec_s = "-" if s.recording_id is None else "REC"
                batt = "?" if s.battery_level is None else f"{s.battery_level}%"
                link = "" if s.connected else " | [red]device away[/]"
                console.print(
                    f"gaze {rate['gaze']:6.1f} Hz | scene {rate['world']:5.1f} fps | audio {rate['audio']:4.1f} fr/s "
                    f"| worn {worn} | battery {batt} | recording {rec_s} | dropped {neon.stats()['dropped_oldest']}"
                    + link,
                    highlight=False,
                    soft_wrap=True,
                )
    except KeyboardInterrupt:
        pass
    finally:
        neon.close()


def _ms(ns: int | None) -> str:
    return "unknown" if ns is None else f"{ns / 1e6:+.1f} ms"
