"""`NeonSimulator`: serves any `Source` as a Pupil Labs Neon Companion device on this machine.

What a client sees (the unmodified `pupil-labs-realtime-api` works against it):
- HTTP (aiohttp) on `port`: the REST API and the status websocket (http_api.py, status.py);
- RTSP over TCP on `rtsp_port` (one port, streams chosen by `camera=` in the URL) with RTP and RTCP sender reports over
  UDP: gaze (`com.pupillabs.gaze1`), scene video (H.264, FU-A), audio (AAC 8 kHz mono), eye events (PT 101)
  (rtsp.py, streams.py, rtp.py, encoders.py);
- the time-echo service (TCP) on `time_echo_port` (time_echo.py);
- optionally a zeroconf announcement "PI monitor:<name>:<id>" so discovery finds it (announce.py).

The source is played in real time from its start by a player thread (player.py): a record with source time `t` is
sent at wall time `t + (start - first record)` and stamped `t + offset_ns`: with `timestamps="live"` (the default)
the first record is stamped "now", with `timestamps="source"` the source's own times are kept (the simulated phone's
clock then runs at the recording's time); `clock_offset_ms` adds a simulated phone clock error. Time echo reports the
simulated phone's clock (`now_device_ns()`).
Fault injection (faults.py): `faults.drop_percent`, `stall()`, `disconnect()`, `set_worn()`,
`set_sensor_connected()`, and `schedule()` to run any of them at a time after start.

This module holds the device itself: its state, its public controls, and its presence on the network (the event loop
thread that serves the three ports, leaving and coming back).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable

from gazeqwen_edge.device.simulator import rtp, status
from gazeqwen_edge.device.simulator.announce import announce, primary_ip, withdraw
from gazeqwen_edge.device.simulator.faults import STREAMS, Faults
from gazeqwen_edge.device.simulator.http_api import HttpApi
from gazeqwen_edge.device.simulator.player import Player
from gazeqwen_edge.device.simulator.rtsp import RtspServer
from gazeqwen_edge.device.simulator.streams import RtpOutput
from gazeqwen_edge.device.simulator.time_echo import serve_client as time_echo_client
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import DeviceError, require

log = logging.getLogger(__name__)

START_DELAY_S = 0.3  # the first record is due this long after start() (plus start_lead_s): time to get going


class NeonSimulator:
    """Serve `source` as a Neon device. Use as a context manager or `start()` / `stop()`; everything runs in
    background threads, so tests and the CLI use it the same way.

    Args:
        source: any device-layer `Source` (replayed in real time from its first record).
        host: address to listen on (loopback by default).
        port: HTTP REST/websocket port (0 = pick a free one; read it back from `.port`).
        rtsp_port, time_echo_port: likewise (0 = free port).
        loop: start the source again when it ends (timestamps keep increasing).
        timestamps: "live" (shift the source so its first record is now) or "source" (keep the source's times).
        clock_offset_ms: simulated error of the phone's clock: added to every timestamp and to time-echo replies.
        gaze_variant: gaze payload length (9, 17, 25, 65, 89, 105), i.e. which `com.pupillabs.gaze1` datum to send.
        audio: "auto" (the source's audio, a synthetic tone until it has some), "source", "tone" or "off".
        faults: initial fault switches.
        announce: register "PI monitor:<device_name>:<id>" with zeroconf so discovery finds the simulator.
        start_lead_s: how far in the future the first record is scheduled (time for clients to connect).
        seed: seeds the random packet loss.

    Raises ValueError for an argument outside these choices (or a clock offset that is not finite); `start()` raises
    DeviceError when it cannot serve (a port in use, an address not of this machine).
    """

    def __init__(
        self,
        source: Source,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rtsp_port: int = 0,
        time_echo_port: int = 0,
        loop: bool = False,
        timestamps: str = "live",
        clock_offset_ms: float = 0.0,
        gaze_variant: int = 9,
        audio: str = "auto",
        faults: Faults | None = None,
        device_name: str = "Neon Simulator",
        device_id: str | None = None,
        battery_level: int = 87,
        announce: bool = False,
        start_lead_s: float = 0.0,
        seed: int = 0,
    ):
        if timestamps not in ("live", "source"):
            raise ValueError(f"timestamps must be 'live' or 'source', not {timestamps!r}")
        if audio not in ("auto", "source", "tone", "off"):
            raise ValueError(f"audio must be auto, source, tone or off, not {audio!r}")
        if gaze_variant not in rtp.GAZE_FORMATS:
            raise ValueError(f"gaze_variant must be one of {sorted(rtp.GAZE_FORMATS)}")
        if not math.isfinite(clock_offset_ms) or not math.isfinite(start_lead_s):
            raise ValueError(f"clock_offset_ms and start_lead_s must be finite, got {clock_offset_ms}, {start_lead_s}")
        self.source = source
        self.host = host
        self.advertised_ip = primary_ip() if host in ("", "0.0.0.0") else host  # what clients are told to use
        self.port = port
        self.rtsp_port = rtsp_port
        self.time_echo_port = time_echo_port
        self.loop = loop
        self.timestamps = timestamps
        self.clock_offset_ns = int(round(clock_offset_ms * 1e6))
        self.gaze_variant = gaze_variant
        self.audio_mode = audio
        self.faults = faults or Faults()
        self.device_name = device_name
        self.device_id = device_id or secrets.token_hex(8)
        self.module_serial = self.device_id[:6]
        self.battery_level = battery_level
        self.announce = announce
        self.start_lead_s = start_lead_s
        self._rng = random.Random(seed)
        logging.getLogger("libav.aac").setLevel(logging.ERROR)  # "frames left in the queue" at shutdown: expected

        size = source.scene_size
        if not getattr(source, "has_scene_video", True):  # e.g. a Neon recording without its scene video
            size = None
        self.scene_size: tuple[int, int] | None = (
            None if size is None else (int(size[0]) // 2 * 2, int(size[1]) // 2 * 2)
        )
        self.sensor_connected = {"gaze": True, "world": self.scene_size is not None, "eye_events": True}
        self.recording: dict | None = None
        self.events: collections.deque[dict] = collections.deque(maxlen=10_000)  # posted by clients (newest kept):
        # {"name", "timestamp", "recording_id"}
        self.offset_ns: int | None = None  # device ts = source ts + offset_ns (+ loop shift); set by start()
        self._stamp_minus_wall = self.clock_offset_ns  # device clock - wall clock
        self.connected = False  # False while `disconnect()` keeps the device away
        self.rtp: RtpOutput | None = None  # the RTP/RTCP streams, from start() on
        self.video = None  # H264Encoder of the scene camera (None: no scene video)
        self.audio_config: str | None = None  # AAC AudioSpecificConfig (hex) of the audio stream (None: no audio)
        self._send_log: Callable[[str, int, float], None] | None = None
        self.player: Player | None = None
        self.player_error: BaseException | None = None

        self.stop_event = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._player_thread: threading.Thread | None = None
        self._t_start = 0.0
        self._open_writers: set = set()  # RTSP and time-echo connections
        self._http = HttpApi(self)
        self._rtsp = RtspServer(self, self._open_writers)
        self._servers: list = []
        self._black_holes: list[socket.socket] = []
        self._held_conns: list[socket.socket] = []
        self._runner = None
        self._zeroconf = None

    # --- public control -------------------------------------------------------------------------------------------

    @property
    def send_log(self) -> Callable[[str, int, float], None] | None:
        """A hook called for every packet sent: (stream, device timestamp ns, wall time s)."""
        return self._send_log

    @send_log.setter
    def send_log(self, hook: Callable[[str, int, float], None] | None) -> None:
        self._send_log = hook
        if self.rtp is not None:
            self.rtp.send_log = hook

    def now_device_ns(self) -> int:
        """The simulated phone's clock: the clock its data are stamped with (and time echo reports)."""
        return time.time_ns() + self._stamp_minus_wall

    def start(self, timeout: float = 15.0) -> NeonSimulator:
        """Serve and start playing; DeviceError if the ports cannot be served."""
        if self._thread is not None:
            return self
        try:
            self._prepare()
        except OSError as e:
            self.stop()
            raise DeviceError(
                f"the Neon simulator could not serve on {self.host}: {e.strerror or e}",
                hint="serve on an address of this machine (127.0.0.1, or 0.0.0.0 for every network)",
            ) from e
        self._thread = threading.Thread(target=self._run_loop, name="neon-sim-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise DeviceError("the Neon simulator did not start in time")
        if self._start_error is not None:
            self.stop()  # its UDP sockets and threads
            if isinstance(self._start_error, DeviceError):
                raise self._start_error
            raise DeviceError(
                f"the Neon simulator could not serve on {self.host} (ports {self.port}, {self.rtsp_port}, "
                f"{self.time_echo_port}): {self._start_error}",
                hint="another program uses one of these ports: pick others (--port, --rtsp-port, --time-echo-port; "
                "0 = any free port)",
            ) from self._start_error
        self._t_start = time.monotonic()
        self._player_thread = threading.Thread(target=self._play_guarded, name="neon-sim-player", daemon=True)
        self._player_thread.start()
        return self

    def stop(self) -> None:
        """Stop playing, leave the network for good, close every socket and join the threads (idempotent)."""
        self.stop_event.set()
        if self._aloop is not None and self._thread is not None and self._thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(final=True), self._aloop)
            with contextlib.suppress(Exception):
                fut.result(10)
            self._aloop.call_soon_threadsafe(self._aloop.stop)
            self._thread.join(10)
        if self._player_thread is not None:
            self._player_thread.join(10)
        if self.rtp is not None:
            self.rtp.close()
        for s in self._black_holes + self._held_conns:
            s.close()
        self._black_holes, self._held_conns = [], []

    def __enter__(self) -> NeonSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source has been played out (never with `loop=True`), `stop()`, or `timeout` seconds;
        True if it is still playing."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.playing and (end is None or time.monotonic() < end):
            self._player_thread.join(0.5 if end is None else max(0.0, min(0.5, end - time.monotonic())))
        return self.playing

    @property
    def playing(self) -> bool:
        """True until the source has been played out (never false with `loop=True`) or `stop()`."""
        return self._player_thread is not None and self._player_thread.is_alive()

    @property
    def rtsp_sessions(self) -> int:
        """RTSP sessions set up by clients right now."""
        return 0 if self.rtp is None else self.rtp.session_count

    def stats(self) -> dict[str, dict[str, int]]:
        """Per stream: RTP packets made, copies sent to clients, copies dropped (faults or full sockets)."""
        return {} if self.rtp is None else self.rtp.stats()

    def stall(self, stream: str, for_s: float) -> None:
        """Send nothing on `stream` ("gaze", "world", "audio", "eye_events" or "all") for `for_s` seconds."""
        names = STREAMS if stream == "all" else (stream,)
        for n in names:
            if n not in STREAMS:
                raise ValueError(f"unknown stream {n!r}; one of {', '.join(STREAMS)} or all")
            self.faults.stalled_until[n] = time.monotonic() + for_s

    def set_worn(self, worn: bool) -> None:
        """Report the glasses as worn or not in every gaze datum from now on."""
        self.faults.not_worn = not worn

    def set_sensor_connected(self, sensor: str, connected: bool) -> None:
        """Report a sensor (gaze, world, eye_events) as (dis)connected: the status changes, its stream stops."""
        self.sensor_connected[sensor] = connected
        if not connected and self.rtp is not None:
            self.rtp.drop_streams([sensor, "audio"] if sensor == "world" else [sensor])
        self._call(self._http.broadcast(status.sensor(self, sensor)))

    def disconnect(self, for_s: float | None = None, silent: bool = False) -> None:
        """Drop off the network: close every connection and stop listening; come back after `for_s` seconds
        (or at `reconnect()`). The player keeps running, so data of the gap is lost, as with a real phone.
        `silent=True`: new connections are accepted by the kernel but never answered, like a phone that left the
        Wi-Fi (requests time out instead of being refused)."""
        self._call(self._go_away(for_s, silent))

    def reconnect(self) -> None:
        """Come back onto the network now (after `disconnect()`)."""
        self._call(self._come_back())

    def schedule(self, at_s: float, fn: Callable[[], object]) -> None:
        """Run `fn` (e.g. `lambda: sim.disconnect(3)`) `at_s` seconds after the simulator started."""
        delay = max(0.0, at_s - (time.monotonic() - self._t_start))
        assert self._aloop is not None, "start() the simulator first"
        self._aloop.call_soon_threadsafe(self._aloop.call_later, delay, fn)

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Map the source's time to the wall clock and the device clock; make the RTP streams and the encoders."""
        first_ts = self.source.start_ns
        if first_ts is None:
            first = next(iter(self.source.records()), None)
            first_ts = first.ts_ns if first is not None else time.time_ns()
        pace_offset_ns = time.time_ns() + int((self.start_lead_s + START_DELAY_S) * 1e9) - first_ts
        if self.timestamps == "live":
            self.offset_ns = pace_offset_ns + self.clock_offset_ns
        else:
            self.offset_ns = self.clock_offset_ns
        self._stamp_minus_wall = self.offset_ns - pace_offset_ns
        base_ns = first_ts + self.offset_ns - 1_000_000_000
        self.rtp = RtpOutput(self.host, base_ns, self.faults, self._rng)
        self.rtp.send_log = self._send_log
        if self.scene_size is not None:
            from gazeqwen_edge.device.simulator.encoders import H264Encoder

            self.video = H264Encoder(*self.scene_size)
        if self.audio_mode != "off":
            from gazeqwen_edge.device.simulator.encoders import AacEncoder

            self.audio_config = AacEncoder().config_hex
        self.player = Player(self, first_ts, pace_offset_ns)

    def _play_guarded(self) -> None:
        try:
            self.player.run()
        except BaseException as e:  # noqa: BLE001 - kept for the owner to inspect; the servers keep running
            self.player_error = e
            log.exception("simulator player stopped")

    def _call(self, coro) -> None:
        if self._aloop is None:
            coro.close()
            return
        fut = asyncio.run_coroutine_threadsafe(coro, self._aloop)
        if threading.current_thread() is not self._thread:
            fut.result(10)

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._aloop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._come_back(initial=True))
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._start_error = e
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._shutdown(final=True))
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # what is still pending (e.g. zeroconf's goodbye broadcast) is cancelled, not destroyed mid-way
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # --- presence on the network (runs on the event loop) -----------------------------------------------------------

    async def _come_back(self, initial: bool = False) -> None:
        if self.connected:
            return
        self._release_black_holes()
        web = require("aiohttp.web", "device", "the Neon simulator")
        app = self._http.application()
        socks: list[socket.socket] = []
        try:  # all three ports or none: a port in use must not leave the others bound
            for port in (self.port, self.rtsp_port, self.time_echo_port):
                socks.append(_bind_tcp(self.host, port))
        except OSError:
            for sock in socks:
                sock.close()
            raise
        http_sock, rtsp_sock, echo_sock = socks
        self.port, self.rtsp_port, self.time_echo_port = (sock.getsockname()[1] for sock in socks)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.SockSite(runner, http_sock)
        await site.start()
        self._runner = runner
        self._servers = [
            await asyncio.start_server(self._rtsp.serve_client, sock=rtsp_sock),
            await asyncio.start_server(
                lambda r, w: time_echo_client(r, w, self.now_device_ns, self._open_writers), sock=echo_sock
            ),
        ]
        self.connected = True
        if initial and self.announce:
            try:
                self._zeroconf = await announce(self.device_name, self.device_id, self.advertised_ip, self.port)
            except Exception as e:  # noqa: BLE001 - zeroconf raises many kinds; all mean the same to the user
                raise DeviceError(
                    f"cannot announce the simulator with zeroconf on {self.advertised_ip}: {type(e).__name__}: {e}",
                    hint="serve without --announce and connect with --address",
                ) from e
        if not initial:
            log.info("simulator back on the network")

    def _release_black_holes(self) -> None:
        """Back on the network: requests sent while away stay unanswered (like packets lost in the air), they do not
        fail fast; they are closed 10 s later."""
        held = []
        for s in self._black_holes:
            with contextlib.suppress(OSError):
                while True:
                    held.append(s.accept()[0])
            s.close()
        self._black_holes = []
        if held and self._aloop is not None:
            self._aloop.call_later(10.0, lambda: [c.close() for c in held])
        self._held_conns.extend(held)

    async def _go_away(self, for_s: float | None, silent: bool = False) -> None:
        if not self.connected:
            return
        log.info("simulator leaves the network%s", "" if for_s is None else f" for {for_s} s")
        await self._shutdown(final=False)
        if silent:  # listening sockets nobody accepts on: connections hang until the client gives up
            self._black_holes = [_bind_tcp(self.host, p) for p in (self.port, self.rtsp_port, self.time_echo_port)]
        if for_s is not None:
            asyncio.get_running_loop().call_later(for_s, lambda: asyncio.ensure_future(self._come_back()))

    async def _shutdown(self, final: bool) -> None:
        self.connected = False
        if self.rtp is not None:
            self.rtp.drop_streams()
        for srv in self._servers:
            srv.close()
        for w in list(self._open_writers):
            with contextlib.suppress(Exception):
                w.close()
        self._open_writers.clear()
        await self._http.close_websockets()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        self._servers = []
        if final and self._zeroconf is not None:
            await withdraw(self._zeroconf)
            self._zeroconf = None


def _bind_tcp(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(64)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s
