"""`NeonSimulator`: serves any `Source` as a Pupil Labs Neon Companion device on this machine.

What a client sees (the unmodified `pupil-labs-realtime-api` works against it):
- HTTP (aiohttp) on `port`: `GET /api/status`, the status websocket on the same path, `POST /api/recording:start`,
  `/api/recording:stop_and_save`, `/api/recording:cancel`, `POST /api/event`, `GET /calibration.bin`;
- RTSP over TCP on `rtsp_port` (one port, streams chosen by `camera=` in the URL) with RTP and RTCP sender reports over
  UDP: gaze (`com.pupillabs.gaze1`), scene video (H.264, FU-A), audio (AAC 8 kHz mono), eye events (PT 101);
- the time-echo service (TCP) on `time_echo_port`;
- optionally a zeroconf announcement "PI monitor:<name>:<id>" so discovery finds it.

The source is played in real time from its start (a "player" thread paces the records against the wall clock); a
record with source time `t` is sent at wall time `t + (start - first record)` and stamped `t + offset_ns`: with
`timestamps="live"` (the default) the first record is stamped "now", with `timestamps="source"` the source's own times
are kept (the simulated phone's clock then runs at the recording's time); `clock_offset_ms` adds a simulated phone
clock error. Time echo reports the simulated phone's clock (`now_device_ns()`).
Fault injection: `faults.drop_percent`, `stall()`, `disconnect()`, `set_worn()`, `set_sensor_connected()`, and
`schedule()` to run any of them at a time after start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gazeqwen_edge.device.records import AudioChunk, Blink, Fixation, GazeSample, SceneFrame
from gazeqwen_edge.device.simulator import rtp
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import DeviceError, require

log = logging.getLogger(__name__)

STREAMS = ("gaze", "world", "audio", "eye_events")
SENSOR_PARAMS = {
    "gaze": "camera=gaze&audioenable=on",
    "world": "camera=world&audioenable=on",
    "eye_events": "camera=eye_events",
}
CLOCKS = {"gaze": 90000, "world": 90000, "audio": 8000, "eye_events": 90000}
PTS = {"gaze": rtp.PT_GAZE, "world": rtp.PT_VIDEO, "audio": rtp.PT_AUDIO, "eye_events": rtp.PT_EYE_EVENTS}
RTSP_PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
MAX_RTSP_HEADER = 16384


@dataclass
class Faults:
    """Fault switches, read by the player for every packet (change them at any time, from any thread)."""

    drop_percent: float = 0.0  # random loss of RTP packets, per packet and client
    drop_streams: tuple[str, ...] = STREAMS  # streams the loss applies to
    not_worn: bool = False  # gaze reports worn = 0
    stalled_until: dict[str, float] = field(default_factory=dict)  # stream -> time.monotonic() deadline


@dataclass
class _Sub:
    session: str
    stream: str
    addr: tuple[str, int, int]  # client ip, rtp port, rtcp port
    playing: bool = False
    last_sr: float = 0.0


class _Stream:
    def __init__(self, name: str, host: str, base_ns: int):
        self.name = name
        self.clock = CLOCKS[name]
        self.pt = PTS[name]
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self.base_ns = base_ns
        self.rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp_sock.bind((host, 0))
        self.rtp_sock.setblocking(False)
        self.rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtcp_sock.bind((host, 0))
        self.rtcp_sock.setblocking(False)
        self.packets = 0
        self.octets = 0
        self.sent = 0  # packets actually put on the wire (all clients)
        self.dropped = 0  # packets dropped by fault injection or a full socket

    @property
    def server_ports(self) -> tuple[int, int]:
        return self.rtp_sock.getsockname()[1], self.rtcp_sock.getsockname()[1]

    def rtp_ts(self, device_ns: int) -> int:
        return ((device_ns - self.base_ns) * self.clock + 500_000_000) // 1_000_000_000

    def sender_report(self, rtp_ts: int) -> bytes:
        # the wall-clock time of exactly this RTP tick, so every client maps RTP time to the intended unix time
        unix_ns = self.base_ns + (rtp_ts * 1_000_000_000 + self.clock // 2) // self.clock
        return rtp.rtcp_sender_report(self.ssrc, unix_ns, rtp_ts, self.packets, self.octets)

    def close(self) -> None:
        self.rtp_sock.close()
        self.rtcp_sock.close()


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
        self.source = source
        self.host = host
        self.advertised_ip = _primary_ip() if host in ("", "0.0.0.0") else host  # what clients are told to use
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
        self._pace_offset_ns = 0  # wall time to send = source ts + this (+ loop shift)
        self.loop_shift_ns = 0
        self.connected = False  # False while `disconnect()` keeps the device away
        self.send_log: Callable[[str, int, float], None] | None = None  # hook(stream, device_ts_ns, wall time)

        self._lock = threading.Lock()
        self._subs: dict[str, list[_Sub]] = {s: [] for s in STREAMS}
        self._streams: dict[str, _Stream] = {}
        self._video = None
        self._audio_cfg: str | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._player: threading.Thread | None = None
        self._t_start = 0.0
        self._ws: set = set()
        self._rtsp_writers: set = set()
        self._servers: list = []
        self._black_holes: list[socket.socket] = []
        self._held_conns: list[socket.socket] = []
        self._runner = None
        self._zeroconf = None
        self.player_error: BaseException | None = None

    # --- public control -------------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self.host

    def now_device_ns(self) -> int:
        """The simulated phone's clock: the clock its data are stamped with (and time echo reports)."""
        return time.time_ns() + self._stamp_minus_wall

    def device_ns(self, source_ts_ns: int, loop_index: int = 0) -> int:
        """The device timestamp a source record gets (for the first pass unless `loop_index` is given)."""
        if self.offset_ns is None:
            raise RuntimeError("the simulator has not started playing yet")
        period = 0 if loop_index == 0 else self._loop_period_ns * loop_index
        return source_ts_ns + self.offset_ns + period

    def start(self, timeout: float = 15.0) -> NeonSimulator:
        if self._thread is not None:
            return self
        self._build_streams()
        self._thread = threading.Thread(target=self._run_loop, name="neon-sim-loop", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise DeviceError("the Neon simulator did not start in time")
        if self._start_error is not None:
            self.stop()  # its UDP sockets and threads
            raise DeviceError(
                f"the Neon simulator could not serve on {self.host} (ports {self.port}, {self.rtsp_port}, "
                f"{self.time_echo_port}): {self._start_error}",
                hint="another program uses one of these ports: pick others (--port, --rtsp-port, --time-echo-port; "
                "0 = any free port)",
            ) from self._start_error
        self._t_start = time.monotonic()
        self._player = threading.Thread(target=self._play_guarded, name="neon-sim-player", daemon=True)
        self._player.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._aloop is not None and self._thread is not None and self._thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(final=True), self._aloop)
            with contextlib.suppress(Exception):
                fut.result(10)
            self._aloop.call_soon_threadsafe(self._aloop.stop)
            self._thread.join(10)
        if self._player is not None:
            self._player.join(10)
        for s in self._streams.values():
            s.close()
        self._streams = {}
        for s in self._black_holes + self._held_conns:
            s.close()
        self._black_holes, self._held_conns = [], []

    def __enter__(self) -> NeonSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until the source has been played out (never returns with `loop=True`) or `stop()`."""
        while self._player is not None and self._player.is_alive():
            self._player.join(0.5)

    @property
    def playing(self) -> bool:
        """True until the source has been played out (never false with `loop=True`) or `stop()`."""
        return self._player is not None and self._player.is_alive()

    @property
    def rtsp_sessions(self) -> int:
        """RTSP sessions set up by clients right now."""
        with self._lock:
            return len({sub.session for subs in self._subs.values() for sub in subs})

    def stats(self) -> dict[str, dict[str, int]]:
        return {n: {"packets": s.packets, "sent": s.sent, "dropped": s.dropped} for n, s in self._streams.items()}

    def stall(self, stream: str, for_s: float) -> None:
        """Send nothing on `stream` ("gaze", "world", "audio", "eye_events" or "all") for `for_s` seconds."""
        names = STREAMS if stream == "all" else (stream,)
        for n in names:
            if n not in STREAMS:
                raise ValueError(f"unknown stream {n!r}; one of {', '.join(STREAMS)} or all")
            self.faults.stalled_until[n] = time.monotonic() + for_s

    def set_worn(self, worn: bool) -> None:
        self.faults.not_worn = not worn

    def set_sensor_connected(self, sensor: str, connected: bool) -> None:
        """Report a sensor (gaze, world, eye_events) as (dis)connected: the status changes, its stream stops."""
        self.sensor_connected[sensor] = connected
        if not connected:
            with self._lock:
                self._subs[sensor] = []
                if sensor == "world":
                    self._subs["audio"] = []
        self._call(self._broadcast(self._sensor_component(sensor)))

    def disconnect(self, for_s: float | None = None, silent: bool = False) -> None:
        """Drop off the network: close every connection and stop listening; come back after `for_s` seconds
        (or at `reconnect()`). The player keeps running, so data of the gap is lost, as with a real phone.
        `silent=True`: new connections are accepted by the kernel but never answered, like a phone that left the
        Wi-Fi (requests time out instead of being refused)."""
        self._call(self._go_away(for_s, silent))

    def reconnect(self) -> None:
        self._call(self._come_back())

    def schedule(self, at_s: float, fn: Callable[[], object]) -> None:
        """Run `fn` (e.g. `lambda: sim.disconnect(3)`) `at_s` seconds after the simulator started."""
        delay = max(0.0, at_s - (time.monotonic() - self._t_start))
        assert self._aloop is not None, "start() the simulator first"
        self._aloop.call_soon_threadsafe(self._aloop.call_later, delay, fn)

    def _call(self, coro) -> None:
        if self._aloop is None:
            coro.close()
            return
        fut = asyncio.run_coroutine_threadsafe(coro, self._aloop)
        if threading.current_thread() is not self._thread:
            fut.result(10)

    # --- status model ---------------------------------------------------------------------------------------------

    def _phone(self) -> dict:
        return {
            "model": "Phone",
            "data": {
                "battery_level": self.battery_level,
                "battery_state": "OK" if self.battery_level > 15 else ("LOW" if self.battery_level > 5 else "CRITICAL"),
                "device_id": self.device_id,
                "device_name": self.device_name,
                "ip": self.advertised_ip,
                "memory": 48_000_000_000,
                "memory_state": "OK",
                "time_echo_port": self.time_echo_port,
            },
        }

    def _hardware(self) -> dict:
        return {
            "model": "Hardware",
            "data": {
                "version": "2.0",
                "glasses_serial": "-1",
                "world_camera_serial": "-1",
                "module_serial": self.module_serial,
            },
        }

    def _sensor_component(self, sensor: str) -> dict:
        return {
            "model": "Sensor",
            "data": {
                "sensor": sensor,
                "conn_type": "DIRECT",
                "connected": bool(self.sensor_connected.get(sensor, False)),
                "ip": self.advertised_ip,
                "port": self.rtsp_port,
                "protocol": "rtsp",
                "params": SENSOR_PARAMS[sensor],
                "stream_error": False,
            },
        }

    def _recording_component(self) -> dict | None:
        if self.recording is None:
            return None
        return {"model": "Recording", "data": dict(self.recording)}

    def status_components(self) -> list[dict]:
        comps = [self._phone(), self._hardware()] + [self._sensor_component(s) for s in SENSOR_PARAMS]
        rec = self._recording_component()
        if rec is not None:
            comps.append(rec)
        return comps

    # --- asyncio side: servers ------------------------------------------------------------------------------------

    def _build_streams(self) -> None:
        first_ts = self.source.start_ns
        if first_ts is None:
            first = next(iter(self.source.records()), None)
            first_ts = first.ts_ns if first is not None else time.time_ns()
        self._pace_offset_ns = time.time_ns() + int(self.start_lead_s * 1e9) + 300_000_000 - first_ts
        if self.timestamps == "live":
            self.offset_ns = self._pace_offset_ns + self.clock_offset_ns
        else:
            self.offset_ns = self.clock_offset_ns
        self._stamp_minus_wall = self.offset_ns - self._pace_offset_ns
        base_ns = first_ts + self.offset_ns - 1_000_000_000
        self._streams = {name: _Stream(name, self.host, base_ns) for name in STREAMS}
        if self.scene_size is not None:
            from gazeqwen_edge.device.simulator.encoders import H264Encoder

            self._video = H264Encoder(*self.scene_size)
        if self.audio_mode != "off":
            from gazeqwen_edge.device.simulator.encoders import AacEncoder

            self._audio_cfg = AacEncoder().config_hex

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
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _come_back(self, initial: bool = False) -> None:
        if self.connected:
            return
        self._release_black_holes()
        web = require("aiohttp.web", "device", "the Neon simulator")
        app = web.Application()
        app.router.add_get("/api/status", self._http_status)
        app.router.add_post("/api/recording:start", self._http_rec_start)
        app.router.add_post("/api/recording:stop_and_save", self._http_rec_stop)
        app.router.add_post("/api/recording:cancel", self._http_rec_cancel)
        app.router.add_post("/api/event", self._http_event)
        app.router.add_get("/calibration.bin", self._http_calibration)
        app.router.add_get("/api/../calibration.bin", self._http_calibration)
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
            await asyncio.start_server(self._rtsp_client, sock=rtsp_sock),
            await asyncio.start_server(self._time_echo_client, sock=echo_sock),
        ]
        self.connected = True
        if initial and self.announce:
            await self._announce()
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
        with self._lock:
            for s in STREAMS:
                self._subs[s] = []
        for srv in self._servers:
            srv.close()
        for w in list(self._rtsp_writers):
            with contextlib.suppress(Exception):
                w.close()
        self._rtsp_writers.clear()
        for ws in list(self._ws):
            with contextlib.suppress(Exception):
                await ws.close()
        self._ws.clear()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        self._servers = []
        if final and self._zeroconf is not None:
            with contextlib.suppress(Exception):
                await self._zeroconf.async_unregister_all_services()
                await self._zeroconf.async_close()
            self._zeroconf = None

    async def _announce(self) -> None:
        zc = require("zeroconf.asyncio", "device", "announcing the simulator")
        from zeroconf import ServiceInfo

        name = f"PI monitor:{self.device_name}:{self.device_id}._http._tcp.local."
        info = ServiceInfo(
            "_http._tcp.local.",
            name,
            addresses=[socket.inet_aton(self.advertised_ip)],
            port=self.port,
            server="neon-simulator.local.",
        )
        self._zeroconf = zc.AsyncZeroconf(interfaces=[self.advertised_ip])
        await self._zeroconf.async_register_service(info)

    # HTTP handlers

    def _json(self, result, message: str = "Success", status: int = 200):
        from aiohttp import web

        return web.json_response({"message": message, "result": result}, status=status)

    async def _http_status(self, request):
        from aiohttp import WSMsgType, web

        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self._json(self.status_components())
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._ws.add(ws)
        try:
            for comp in self.status_components():
                await ws.send_str(json.dumps(comp))
            async for msg in ws:
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self._ws.discard(ws)
        return ws

    async def _broadcast(self, component: dict | None) -> None:
        if component is None:
            return
        text = json.dumps(component)
        for ws in list(self._ws):
            with contextlib.suppress(Exception):
                await ws.send_str(text)

    async def _http_rec_start(self, request):
        if self.recording is not None and self.recording["action"] == "START":
            return self._json(None, "Recording already running", 400)
        rec_id = str(uuid.uuid4())
        self.recording = {"action": "START", "id": rec_id, "message": "", "rec_duration_ns": 0}
        self._rec_t0 = time.time_ns()
        await self._broadcast(self._recording_component())
        return self._json({"id": rec_id})

    async def _http_rec_stop(self, request):
        return await self._rec_end("STOP")

    async def _http_rec_cancel(self, request):
        return await self._rec_end("CANCEL")

    async def _rec_end(self, action: str):
        if self.recording is None or self.recording["action"] != "START":
            return self._json(None, "Recording not running", 400)
        self.recording = dict(self.recording, action=action, rec_duration_ns=time.time_ns() - self._rec_t0)
        await self._broadcast(self._recording_component())
        return self._json({})

    async def _http_event(self, request):
        try:
            body = await request.json()
            name = str(body["name"])
            ts = int(body.get("timestamp") or self.now_device_ns())
        except Exception:  # noqa: BLE001 - any malformed body is the client's error
            return self._json(None, "Event needs a JSON body with 'name' (and optional 'timestamp' in ns)", 400)
        rec_id = self.recording["id"] if self.recording and self.recording["action"] == "START" else None
        ev = {"name": name, "recording_id": rec_id, "timestamp": ts}
        self.events.append(ev)
        return self._json(ev)

    async def _http_calibration(self, request):
        from aiohttp import web

        data = calibration_bytes(self.source, self.module_serial)
        if data is None:
            return self._json(None, "No calibration for this source", 404)
        return web.Response(body=data, content_type="application/octet-stream")

    # time echo

    async def _time_echo_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._rtsp_writers.add(writer)
        try:
            while True:
                data = await reader.readexactly(8)
                (t1,) = struct.unpack("!Q", data)
                writer.write(struct.pack("!QQ", t1, self.now_device_ns() // 1_000_000))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._rtsp_writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    # RTSP

    async def _rtsp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._rtsp_writers.add(writer)
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sessions: list[str] = []
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    self._rtsp_reply(writer, 400, "Bad Request", None)
                    break
                except asyncio.IncompleteReadError:
                    break
                req = _parse_rtsp(head)
                if req is None:
                    self._rtsp_reply(writer, 400, "Bad Request", None)
                    await writer.drain()
                    break
                method, url, headers = req
                length = headers.get("content-length", "0")
                if not length.isdigit() or int(length) > 65536:
                    self._rtsp_reply(writer, 400, "Bad Request", headers.get("cseq"))
                    break
                if int(length):
                    await reader.readexactly(int(length))
                self._rtsp_handle(writer, peer, method, url, headers, sessions)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # noqa: BLE001 - one bad client must never take the server down
            log.exception("RTSP client error")
        finally:
            with self._lock:
                for s in STREAMS:
                    self._subs[s] = [sub for sub in self._subs[s] if sub.session not in sessions]
            self._rtsp_writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _rtsp_reply(self, writer, code: int, reason: str, cseq: str | None, headers=None, body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {code} {reason}"]
        if cseq is not None:
            lines.append(f"CSeq: {cseq}")
        lines.append("Server: gazeqwen-edge neon-simulator")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _rtsp_handle(self, writer, peer, method: str, url: str, headers: dict, sessions: list[str]) -> None:
        cseq = headers.get("cseq")
        if cseq is None:
            self._rtsp_reply(writer, 400, "Bad Request", None)
            return
        if method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER"):
            self._rtsp_reply(writer, 200, "OK", cseq, {"Public": RTSP_PUBLIC} if method == "OPTIONS" else {})
            return
        camera, track = _camera_of(url)
        if method == "TEARDOWN":
            sid = headers.get("session", "").split(";")[0].strip()
            with self._lock:
                for s in STREAMS:
                    self._subs[s] = [sub for sub in self._subs[s] if sub.session != sid]
            self._rtsp_reply(writer, 200, "OK", cseq)
            return
        if method not in ("DESCRIBE", "SETUP", "PLAY", "PAUSE"):
            self._rtsp_reply(writer, 405, "Method Not Allowed", cseq, {"Allow": RTSP_PUBLIC})
            return
        if method == "PLAY" or method == "PAUSE":
            sid = headers.get("session", "").split(";")[0].strip()
            with self._lock:
                mine = [sub for s in STREAMS for sub in self._subs[s] if sub.session == sid]
            if not mine:
                self._rtsp_reply(writer, 454, "Session Not Found", cseq)
                return
            self._rtsp_reply(writer, 200, "OK", cseq, {"Session": sid, "Range": "npt=now-"})
            for sub in mine:
                if method == "PLAY":
                    self._start_sub(sub)
                else:
                    sub.playing = False
            return
        if camera not in SENSOR_PARAMS or not self.sensor_connected.get(camera, False):
            self._rtsp_reply(writer, 404, "Not Found", cseq)
            return
        if method == "DESCRIBE":
            body = self._sdp(camera).encode()
            base = url.split("?")[0].rstrip("/") + "/?" + SENSOR_PARAMS[camera]
            self._rtsp_reply(
                writer, 200, "OK", cseq, {"Content-Type": "application/sdp", "Content-Base": base + "/"}, body
            )
            return
        # SETUP
        stream = {"gaze": "gaze", "eye_events": "eye_events"}.get(camera) or ("audio" if track == 1 else "world")
        if stream == "audio" and self._audio_cfg is None:
            self._rtsp_reply(writer, 404, "Not Found", cseq)
            return
        m = re.search(r"client_port=(\d+)-(\d+)", headers.get("transport", ""))
        if m is None:
            self._rtsp_reply(writer, 461, "Unsupported Transport", cseq)
            return
        sid = headers.get("session", "").split(";")[0].strip() or secrets.token_hex(8).upper()
        sessions.append(sid)
        st = self._streams[stream]
        sub = _Sub(session=sid, stream=stream, addr=(peer[0], int(m.group(1)), int(m.group(2))))
        with self._lock:
            self._subs[stream].append(sub)
        a, b = st.server_ports
        transport = f"RTP/AVP;unicast;client_port={m.group(1)}-{m.group(2)};server_port={a}-{b};ssrc={st.ssrc:08X}"
        self._rtsp_reply(writer, 200, "OK", cseq, {"Transport": transport, "Session": f"{sid};timeout=60"})

    def _sdp(self, camera: str) -> str:
        lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", f"s={self.device_name}", "c=IN IP4 0.0.0.0", "t=0 0"]
        if camera == "gaze":
            lines += ["m=application 0 RTP/AVP 99", "a=rtpmap:99 com.pupillabs.gaze1/90000", "a=control:trackID=0"]
        elif camera == "eye_events":
            lines += [
                "m=application 0 RTP/AVP 101",
                "a=rtpmap:101 com.pupillabs.eye_events1/90000",
                "a=control:trackID=0",
            ]
        else:
            v = self._video
            lines += [
                "m=video 0 RTP/AVP 96",
                "a=rtpmap:96 H264/90000",
                f"a=fmtp:96 packetization-mode=1;profile-level-id={v.profile_level_id};"
                f"sprop-parameter-sets={v.sprop_parameter_sets}",
                "a=control:trackID=0",
            ]
            if self._audio_cfg is not None:
                lines += [
                    "m=audio 0 RTP/AVP 97",
                    "a=rtpmap:97 MPEG4-GENERIC/8000",
                    f"a=fmtp:97 streamtype=5;profile-level-id=15;mode=AAC-hbr;config={self._audio_cfg};"
                    "sizeLength=13;indexLength=3;indexDeltaLength=3",
                    "a=control:trackID=1",
                ]
        return "\r\n".join(lines) + "\r\n"

    def _start_sub(self, sub: _Sub) -> None:
        st = self._streams[sub.stream]
        # A sender report before the first RTP packet: the client drops packets until it has one.
        self._send_sr(st, sub, st.rtp_ts(self.now_device_ns()))
        sub.playing = True
        if sub.stream == "world" and self._video is not None:
            self._video.request_keyframe()

    def _send_sr(self, st: _Stream, sub: _Sub, rtp_ts: int) -> None:
        with contextlib.suppress(OSError):
            st.rtcp_sock.sendto(st.sender_report(rtp_ts), (sub.addr[0], sub.addr[2]))
        sub.last_sr = time.monotonic()

    # --- player side ----------------------------------------------------------------------------------------------

    def _send(self, stream: str, payload: bytes, device_ns: int, marker: bool = False) -> None:
        st = self._streams[stream]
        f = self.faults
        stalled = f.stalled_until.get(stream)
        if stalled is not None and time.monotonic() < stalled:
            st.dropped += 1
            return
        rtp_ts = st.rtp_ts(device_ns)
        pkt = rtp.rtp_packet(st.pt, st.seq, rtp_ts, st.ssrc, payload, marker)
        st.seq = (st.seq + 1) & 0xFFFF
        st.packets += 1
        st.octets += len(payload)
        with self._lock:
            subs = [s for s in self._subs[stream] if s.playing]
        now = time.monotonic()
        for sub in subs:
            if now - sub.last_sr >= 1.0:
                self._send_sr(st, sub, rtp_ts)
            if f.drop_percent > 0 and stream in f.drop_streams and self._rng.random() * 100 < f.drop_percent:
                st.dropped += 1
                continue
            try:
                st.rtp_sock.sendto(pkt, (sub.addr[0], sub.addr[1]))
                st.sent += 1
            except OSError:  # full socket buffer or vanished client: a lost packet, never a blocked player
                st.dropped += 1
        if self.send_log is not None:
            self.send_log(stream, device_ns, time.time())

    def _play_guarded(self) -> None:
        try:
            self._play()
        except BaseException as e:  # noqa: BLE001 - kept for the owner to inspect; the servers keep running
            self.player_error = e
            log.exception("simulator player stopped")

    def _play(self) -> None:
        from gazeqwen_edge.device.simulator.encoders import AUDIO_RATE, AacEncoder, tone

        loop_index = 0
        first_ts = last_ts = None
        audio_enc = None
        audio_t0 = None  # device ns of audio sample index 0
        audio_from_source = self.audio_mode == "source"
        tone_samples = 0
        self._loop_period_ns = 0
        while not self._stop.is_set():
            n_this_pass = 0
            for rec in self.source.records():
                if self._stop.is_set():
                    return
                ts = rec.ts_ns
                if first_ts is None:
                    first_ts = ts
                if loop_index == 0:
                    last_ts = ts if last_ts is None else max(last_ts, ts)
                n_this_pass += 1
                dev = ts + self.offset_ns + self.loop_shift_ns
                due = ts + self._pace_offset_ns + self.loop_shift_ns
                while True:  # pace against the wall clock
                    lag = (due - time.time_ns()) / 1e9
                    if lag <= 0 or self._stop.is_set():
                        break
                    time.sleep(min(lag, 0.05))
                if isinstance(rec, GazeSample):
                    worn = rec.worn and not self.faults.not_worn
                    self._send("gaze", rtp.gaze_payload(rec.x, rec.y, worn, (), self.gaze_variant), dev)
                elif isinstance(rec, SceneFrame):
                    if self._video is None:
                        continue
                    nals = self._video.encode(rec.rgb)
                    pkts = [p for nal in nals for p in rtp.h264_payloads(nal)]
                    for i, p in enumerate(pkts):
                        self._send("world", p, dev, marker=i == len(pkts) - 1)
                elif isinstance(rec, Fixation):
                    shift = dev - ts
                    self._send(
                        "eye_events", rtp.fixation_payload(rec.start_ns + shift, rec.end_ns + shift, rec.x, rec.y), dev
                    )
                elif isinstance(rec, Blink):
                    shift = dev - ts
                    self._send("eye_events", rtp.blink_payload(rec.start_ns + shift, rec.end_ns + shift), dev)
                elif isinstance(rec, AudioChunk) and self.audio_mode in ("auto", "source"):
                    if not audio_from_source or audio_enc is None:
                        audio_from_source = True
                        audio_enc, audio_t0 = AacEncoder(), dev
                    pcm = _to_mono_8k(rec.pcm, rec.sample_rate)
                    for idx, frame in audio_enc.push(pcm):
                        self._send("audio", rtp.aac_payload(frame), audio_t0 + idx * 1_000_000_000 // AUDIO_RATE)
                # a synthetic tone keeps the audio stream alive when the source has none (yet)
                if self.audio_mode in ("auto", "tone") and not audio_from_source:
                    if audio_enc is None:
                        audio_enc, audio_t0 = AacEncoder(), dev
                    target = (dev - audio_t0) * AUDIO_RATE // 1_000_000_000
                    if target > tone_samples:
                        pcm = tone(tone_samples, target - tone_samples)
                        tone_samples = target
                        for idx, frame in audio_enc.push(pcm):
                            self._send("audio", rtp.aac_payload(frame), audio_t0 + idx * 1_000_000_000 // AUDIO_RATE)
            if not self.loop or n_this_pass == 0:
                return
            if loop_index == 0:
                start, end = self.source.start_ns, self.source.end_ns
                if start is not None and end is not None and end > start:
                    self._loop_period_ns = end - start
                else:
                    self._loop_period_ns = (last_ts - first_ts) + 33_333_333
            loop_index += 1
            self.loop_shift_ns += self._loop_period_ns
            if audio_from_source and self.audio_mode == "auto":
                audio_enc = None  # restart the audio timeline with the next pass


def _primary_ip() -> str:
    """The address other machines reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


def _to_mono_8k(pcm: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(pcm, np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate == 8000 or len(x) == 0:
        return x
    n_out = int(round(len(x) * 8000 / rate))
    return np.interp(np.arange(n_out) * rate / 8000, np.arange(len(x)), x).astype(np.float32)


def _parse_rtsp(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("RTSP/") or not re.fullmatch(r"[A-Z_]+", parts[0]):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            return None
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    return parts[0], parts[1], headers


def _camera_of(url: str) -> tuple[str | None, int | None]:
    m = re.search(r"[?&]camera=([A-Za-z_]+)", url)
    t = re.search(r"trackID=(\d+)", url)
    return (m.group(1) if m else None), (int(t.group(1)) if t else None)


def calibration_bytes(source: Source, serial: str = "sim000") -> bytes | None:
    """The source's own `calibration.bin` (a Neon recording), else an 803-byte one built from its scene intrinsics
    (eye cameras: placeholders), else None."""
    path = getattr(source, "path", None)
    if path is not None:
        from pathlib import Path

        real = Path(path) / "calibration.bin"
        if real.is_file():  # a Neon recording: serve its own calibration
            return real.read_bytes()
    intr = source.intrinsics
    if intr is None:
        return None
    from gazeqwen_edge.device.calibration_bin import pack_calibration_record

    eye = np.array([[140.0, 0, 96], [0, 140.0, 96], [0, 0, 1]])  # placeholder eye cameras
    return pack_calibration_record(intr.camera_matrix, intr.dist_coeffs, serial=serial, eye_camera_matrix=eye)
