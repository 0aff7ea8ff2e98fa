"""Live Pupil Labs Neon glasses as a `Source`, through the official client (`pupil-labs-realtime-api`, async API).

    with NeonLiveSource("192.168.1.23") as neon:        # or NeonLiveSource() to discover one with zeroconf
        for rec in neon.records():                       # GazeSample, SceneFrame, AudioChunk, Fixation, Blink, Notice
            ...
        neon.send_event("query", ts_ns)                  # lands in the Neon recording, if one is running

How it works: the client's asyncio code runs on a private event loop in a background thread. Gaze, scene video,
audio and eye events stream concurrently (one task each) and are turned into device-layer records on the device's
clock (unix ns, from the RTCP sender reports, as the client computes them). Records go into a bounded ring buffer:
the ingest side never waits for the consumer; when the consumer falls behind, the oldest records are dropped and
counted (`stats()["dropped_oldest"]`). Scene frames and audio arrive later than the gaze of the same moment (decoder
and codec delays), and UDP may reorder packets, so `records()` holds records for a short window (0.75 s) and releases
them in time order across kinds, as the `Source` contract says; `get()` and `records(ordered=False)` give arrival
order at the lowest latency. Notices are stamped on the clock of the data (see below).

Robustness: the device is polled once per second (every 0.25 s while it is away); when it stops answering a
`Notice("disconnected")` is delivered and the streams wait; when it answers again they are restarted at once (a
`Notice("reconnected")` follows). A stream without data for `stall_timeout_s` gives `Notice("stalled")` (and
"resumed" later) and is reconnected if it stays silent; a sensor the phone reports as not connected gives
`Notice("sensor_missing")`; glasses taken off give `Notice("not_worn")` / "worn". Errors never stop the session.

Gaze is as the phone streams it. The realtime API does not report the wearer offset set in the Companion app, so
`gaze_offset` is (0, 0) and live gaze is not offset-corrected by us (unlike the recording readers, which know
info.json's offset); measure a wearer offset with `gazeqwen-edge calibrate offset` and apply it downstream.

The device clock offset (phone clock minus this machine's clock) is estimated with the time-echo protocol at connect
time and after each reconnection (`clock_offset_ns`); with `apply_clock_offset=True` timestamps are converted to this
machine's clock, otherwise they stay on the phone's clock, which is also the clock of the phone's own recording.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from gazeqwen_edge.device.records import AudioChunk, Blink, Fixation, GazeSample, Notice, Record, SceneFrame
from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import ConfigError, DeviceError, require

log = logging.getLogger(__name__)
RTP_TRANSPORT_LOGGER = "rtp.session"  # aiortsp.transport's logger (aiortsp 1.x)

ALL_STREAMS = ("gaze", "world", "audio", "eye_events")
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class NeonStatus:
    """A snapshot of what the phone reports (plus what we know from the streams)."""

    connected: bool
    address: str
    port: int
    device_name: str = ""
    device_id: str = ""
    module_serial: str = ""
    battery_level: int | None = None
    battery_state: str = ""
    memory_bytes: int | None = None
    memory_state: str = ""
    worn: bool | None = None  # from the latest gaze datum; None before any and while gaze does not flow
    recording_id: str | None = None  # the running recording, if any
    recording_action: str | None = None
    sensors: dict[str, bool] = field(default_factory=dict)  # sensor name -> connected
    clock_offset_ns: int | None = None  # phone clock minus this machine's clock
    time_echo_port: int | None = None


class _Ring:
    """Bounded FIFO: push never blocks; when full the oldest record is dropped and counted. Scene frames are also
    bounded on their own (`max_frames`: a 1600x1200 frame is 5.8 MB, so 4096 queued records could hold gigabytes of
    video while the consumer is busy): the oldest queued frame makes room and is counted as dropped."""

    def __init__(self, capacity: int, max_frames: int | None = None):
        self.capacity = capacity
        self.max_frames = max_frames or capacity
        self._q: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._frames = 0
        self.dropped = 0
        self.closed = False

    def push(self, rec: Record) -> None:
        with self._cond:
            if isinstance(rec, SceneFrame):
                if self._frames >= self.max_frames:
                    i = next(i for i, r in enumerate(self._q) if isinstance(r, SceneFrame))
                    del self._q[i]
                    self._frames -= 1
                    self.dropped += 1
                self._frames += 1
            if len(self._q) >= self.capacity:
                self._pop()
                self.dropped += 1
            self._q.append(rec)
            self._cond.notify()

    def _pop(self) -> Record:
        rec = self._q.popleft()
        if isinstance(rec, SceneFrame):
            self._frames -= 1
        return rec

    def get(self, timeout: float | None) -> Record | None:
        with self._cond:
            if not self._q and not self.closed:
                self._cond.wait(timeout)
            return self._pop() if self._q else None

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._q)


def _client():
    return require("pupil_labs.realtime_api", "device", "live Neon glasses")


def check_streams(streams) -> tuple[str, ...]:
    """The Neon streams to receive, checked: at least one, each one of ALL_STREAMS. ConfigError otherwise."""
    chosen = tuple(streams)
    bad = [x for x in chosen if x not in ALL_STREAMS]
    if bad or not chosen:
        what = f"unknown Neon stream(s) {bad}" if bad else "no Neon stream chosen"
        raise ConfigError(f"{what}; choose from {', '.join(ALL_STREAMS)}")
    return chosen


class NeonLiveSource(Source):
    """Live Neon glasses (or the Neon simulator) as a `Source`.

    Args:
        address: IP or host name of the phone running the Neon Companion app; None = discover one (zeroconf).
        port: its HTTP port (8080 on the phone).
        streams: which of "gaze", "world", "audio", "eye_events" to receive.
        queue_size: capacity of the ring buffer between the network and `records()`.
        max_queued_frames: at most this many scene frames in that buffer (the oldest make room; 60 = 2 s of video).
        connect_timeout_s: how long connecting (and each status request) may take before a `DeviceError`.
        discover_timeout_s: how long to look for a device when no address is given.
        stall_timeout_s: silence on a stream after which a "stalled" Notice is delivered (the stream is reconnected
            after twice that).
        max_backoff_s: longest wait between reconnection attempts of a stream.
        time_echo_samples: time-echo round trips per clock-offset estimate (0 = do not estimate).
        apply_clock_offset: convert timestamps to this machine's clock using the estimated offset.
        correct_audio_time: shift audio by one AAC frame: the client stamps each decoded frame with the previous
            packet's time (measured against our simulator; 128 ms at 8 kHz).
    """

    name = "pupil-neon"

    def __init__(
        self,
        address: str | None = None,
        port: int = DEFAULT_PORT,
        *,
        streams: Iterable[str] = ALL_STREAMS,
        queue_size: int = 4096,
        max_queued_frames: int = 60,
        connect_timeout_s: float = 3.0,
        discover_timeout_s: float = 10.0,
        stall_timeout_s: float = 1.5,
        max_backoff_s: float = 1.0,
        time_echo_samples: int = 20,
        apply_clock_offset: bool = False,
        correct_audio_time: bool = True,
    ):
        self.streams = check_streams(streams)
        _client()
        # the client warns once per stream start about the first AAC frame it cannot stamp; that is expected
        logging.getLogger("pupil_labs.realtime_api.streaming.audio").setLevel(logging.ERROR)
        # aiortsp's RTP transport logs "no RTP received for 10 seconds: closing" (and failed RTCP reports) at ERROR
        # to the terminal during a stall; the source says it once, as its "stalled" Notice, and reconnects
        logging.getLogger(RTP_TRANSPORT_LOGGER).setLevel(logging.CRITICAL)
        self.address = address
        self.port = int(port)
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {port} is not between 1 and 65535 (the Neon Companion app uses 8080)")
        self.connect_timeout_s = connect_timeout_s
        self.discover_timeout_s = discover_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.max_backoff_s = max_backoff_s
        self.time_echo_samples = time_echo_samples
        self.apply_clock_offset = apply_clock_offset
        self.correct_audio_time = correct_audio_time

        self._ring = _Ring(queue_size, max_queued_frames)
        self._status_raw = None  # pupil_labs Status
        self._up = False
        self._worn: bool | None = None
        self._scene_size: tuple[int, int] | None = None
        self._clock_offset_ns: int | None = None
        self._counts: dict[str, int] = collections.Counter()
        self._last_data: dict[str, float] = {}
        self._stalled: set[str] = set()
        self._sensor_missing: set[str] = set()
        self._frame_index = 0
        self.reconnects = 0
        self._out_of_order = 0  # records that `records()` had to deliver after a later one (beyond its window)
        self.last_reconnect_s: float | None = None  # seconds from the device answering again to the first gaze
        self._t_back: float | None = None
        self._closing = False
        self._tasks: dict[str, asyncio.Task] = {}
        self._device = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="neon-live", daemon=True)
        self._thread.start()
        try:
            self._run(self._connect(), timeout=discover_timeout_s + 4 * connect_timeout_s + 5)
        except BaseException:
            self.close()
            raise

    # --- public -----------------------------------------------------------------------------------------------------

    @property
    def scene_size(self) -> tuple[int, int] | None:
        return self._scene_size

    @property
    def intrinsics(self):
        """The scene camera's intrinsics (CameraIntrinsics) once its owner has read them from the device
        (`calibration.camera.intrinsics_from_device`, which parses the calibration record: `run` does it before a
        session records, so the session gets its scene_camera.json); None until then."""
        return getattr(self, "_intrinsics", None)

    @intrinsics.setter
    def intrinsics(self, value) -> None:
        self._intrinsics = value

    @property
    def clock_offset_ns(self) -> int | None:
        """Phone clock minus this machine's clock (time echo), or None if not measured."""
        return self._clock_offset_ns

    @property
    def connected(self) -> bool:
        return self._up

    def status(self) -> NeonStatus:
        """What the phone reported last and what the streams tell. While the device is away (`connected` False)
        only what cannot change is kept (name, ids, serial): battery, memory, recording, sensors and worn are
        unknown (None / empty) until it answers again; worn also while the gaze stream is stalled."""
        st = self._status_raw
        base = dict(
            connected=self._up,
            address=self.address or "",
            port=self.port,
            worn=self._worn,
            clock_offset_ns=self._clock_offset_ns,
        )
        if st is None:
            return NeonStatus(**base)
        ph, hw, rec = st.phone, st.hardware, st.recording
        identity = dict(
            device_name=ph.device_name,
            device_id=ph.device_id,
            module_serial=str(hw.module_serial),
            time_echo_port=ph.time_echo_port,
        )
        if not self._up:
            return NeonStatus(**base, **identity)
        active = rec is not None and rec.action == "START"
        return NeonStatus(
            **base,
            **identity,
            battery_level=ph.battery_level,
            battery_state=ph.battery_state,
            memory_bytes=ph.memory,
            memory_state=ph.memory_state,
            recording_id=rec.id if active else None,
            recording_action=rec.action if rec is not None else None,
            sensors={s: self._sensor(s) is not None and bool(self._sensor(s).connected) for s in ALL_STREAMS},
        )

    def stats(self) -> dict:
        now = time.monotonic()
        return {
            "counts": dict(self._counts),
            "dropped_oldest": self._ring.dropped,
            "queued": len(self._ring),
            "reconnects": self.reconnects,
            "out_of_order": self._out_of_order,
            "data_age_s": {k: now - v for k, v in self._last_data.items()},
        }

    def get(self, timeout: float | None = None) -> Record | None:
        """The next record, or None if none arrives within `timeout` seconds (or the source is closed)."""
        return self._ring.get(timeout)

    def records(
        self, kinds: Iterable[type] | None = None, ordered: bool = True, reorder_window_s: float = 0.75
    ) -> Iterator[Record]:
        """Records until `close()`. `kinds` filters (Notices are always delivered).

        By default (`ordered=True`) the `Source` contract holds: records are released in non-decreasing `ts_ns`
        order across kinds, each one held until the newest timestamp received is `reorder_window_s` past it or it
        has waited that long (scene frames and audio arrive after the gaze of the same moment; UDP may reorder).
        The holding buffer is bounded by `queue_size`. A record that arrives later than the window is still
        delivered (counted in `stats()["out_of_order"]`). For the lowest latency use `ordered=False` (arrival
        order: no ordering across kinds, and within a kind only what the network kept) or `get()`."""
        want = tuple(kinds) + (Notice,) if kinds is not None else None
        if not ordered:
            while not self._ring.closed or len(self._ring):
                rec = self._ring.get(0.2)
                if rec is not None and (want is None or isinstance(rec, want)):
                    yield rec
            return
        import heapq

        heap: list = []  # (ts_ns, seq, arrival monotonic s, record)
        seq = 0
        window_ns = int(reorder_window_s * 1e9)
        newest: int | None = None
        last_out: int | None = None
        while not self._ring.closed or len(self._ring) or heap:
            rec = self._ring.get(0.02)
            if rec is not None and (want is None or isinstance(rec, want)):
                heapq.heappush(heap, (rec.ts_ns, seq, time.monotonic(), rec))
                seq += 1
                if not isinstance(rec, Notice):  # data only: a notice's time depends on the clock estimate
                    newest = rec.ts_ns if newest is None else max(newest, rec.ts_ns)
            closing = self._ring.closed and not len(self._ring)
            waited = time.monotonic() - reorder_window_s
            while heap and (
                closing
                or len(heap) > self._ring.capacity
                or (newest is not None and heap[0][0] <= newest - window_ns)
                or heap[0][2] <= waited
            ):
                ts, _, _, out = heapq.heappop(heap)
                if last_out is not None and ts < last_out:
                    self._out_of_order += 1
                else:
                    last_out = ts
                yield out

    def recording_start(self) -> str:
        """Start a recording on the phone; returns its id."""
        return self._remote("start a recording", lambda d: d.recording_start())

    def recording_stop_and_save(self) -> None:
        self._remote("stop the recording", lambda d: d.recording_stop_and_save())

    def recording_cancel(self) -> None:
        self._remote("cancel the recording", lambda d: d.recording_cancel())

    def send_event(self, name: str, ts_ns: int | None = None) -> int:
        """Send a named event to the phone (saved with its recording). `ts_ns` and the returned timestamp are on the
        clock of the records (`now_ns()`, e.g. a query's time), converted to the phone's clock on the way when
        `apply_clock_offset=True`; None lets the phone stamp the event on arrival."""
        off = self._clock_offset_ns if self.apply_clock_offset else None
        phone_ts = None if ts_ns is None else int(ts_ns) + (off or 0)
        ev = self._remote(f"send the event {name!r}", lambda d: d.send_event(name, phone_ts))
        return self._ts(int(ev.timestamp))

    def calibration(self):
        """The glasses' camera calibration as the client reads it (`pupil_labs.neon_recording` Calibration:
        scene_camera_matrix, scene_distortion_coefficients, ...); `intrinsics` is what its owner made of it."""
        return self._remote("read the camera calibration", lambda d: d.get_calibration())

    def estimate_clock_offset(self, samples: int | None = None) -> int | None:
        """Measure the clock offset again (time echo); returns it in ns (phone minus this machine)."""
        return self._run(self._estimate_offset(samples or max(self.time_echo_samples, 5)), timeout=10)

    def close(self) -> None:
        if self._closing and not self._thread.is_alive():
            return
        self._closing = True
        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(6)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()
        self._ring.close()

    # --- plumbing ---------------------------------------------------------------------------------------------------

    def _run(self, coro, timeout: float):
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError as e:
            fut.cancel()
            raise DeviceError(f"the Neon at {self.address}:{self.port} did not answer within {timeout:.0f} s") from e

    def _remote(self, what: str, call):
        api = _client()
        if self._device is None or not self._up:
            raise DeviceError(f"cannot {what}: the Neon at {self.address}:{self.port} is not connected")

        async def go():
            return await asyncio.wait_for(call(self._device), self.connect_timeout_s)

        try:
            return self._run(go(), timeout=self.connect_timeout_s + 2)
        except api.device.DeviceError as e:
            args = e.args
            msg = args[1] if len(args) > 1 else str(e)
            raise DeviceError(f"the Neon refused to {what}: {msg}") from e
        except (asyncio.TimeoutError, OSError) as e:
            raise DeviceError(f"cannot {what}: no answer from the Neon at {self.address}:{self.port}") from e

    def _notice(self, kind: str, message: str, level: str = "warning", ts_ns: int | None = None) -> None:
        """Deliver a Notice stamped `ts_ns` (the moment of the data that shows the change, on the records' clock),
        else now (`now_ns`: a notice of the connection itself)."""
        log.info("neon notice %s: %s", kind, message)
        self._ring.push(Notice(self.now_ns() if ts_ns is None else ts_ns, kind, message, level))

    def now_ns(self) -> int:
        """Now on the clock of the records: the phone's (estimated with time echo; this machine's until measured),
        or this machine's with `apply_clock_offset=True`. Notices are stamped with it."""
        if not self.apply_clock_offset and self._clock_offset_ns is not None:
            return time.time_ns() + self._clock_offset_ns
        return time.time_ns()

    def _ts(self, ns: int) -> int:
        if self.apply_clock_offset and self._clock_offset_ns is not None:
            return ns - self._clock_offset_ns
        return ns

    async def _connect(self) -> None:
        api = _client()
        if self.address is None:
            from pupil_labs.realtime_api.discovery import Network

            async with Network() as net:
                info = await net.wait_for_new_device(self.discover_timeout_s)
            if info is None:
                raise DeviceError(
                    f"no Neon found on the network within {self.discover_timeout_s:.0f} s",
                    hint="open the Neon Companion app on the phone and join the same network, or give its address "
                    "(neon://HOST:PORT, or --address where the command has it)",
                )
            self.address, self.port = info.addresses[0], info.port
        self._device = api.Device(self.address, self.port)
        self._status_raw = await self._fetch_status()
        self._up = True
        if self.time_echo_samples:
            await self._estimate_offset(self.time_echo_samples)
        self._check_sensors(initial=True)
        self._tasks["poll"] = asyncio.ensure_future(self._poll())
        for s in self.streams:
            self._tasks[s] = asyncio.ensure_future(self._stream_loop(s))
        self._tasks["watchdog"] = asyncio.ensure_future(self._watchdog())

    async def _fetch_status(self, timeout_s: float | None = None):
        """GET /api/status, every failure turned into one DeviceError that says what is wrong."""
        import aiohttp

        api = _client()
        where = f"{self.address}:{self.port}"
        timeout_s = self.connect_timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(self._device.get_status(), timeout_s)
        except asyncio.TimeoutError as e:
            raise DeviceError(
                f"no answer from {where} within {timeout_s:.1f} s",
                hint="check the address and that the phone and this machine are on the same network",
            ) from e
        except aiohttp.ClientConnectorError as e:
            reason = getattr(e.os_error, "strerror", None) or str(e)
            raise DeviceError(
                f"cannot connect to a Neon at {where}: {reason}",
                hint="is the Neon Companion app running, and is this its address and port (default 8080)?",
            ) from e
        except (aiohttp.ContentTypeError, ValueError, KeyError, TypeError, api.device.DeviceError) as e:
            raise DeviceError(
                f"{where} answered, but not like a Neon Companion app ({type(e).__name__}: {e})",
                hint="check the address and port: this is some other HTTP server",
            ) from e
        except aiohttp.ClientError as e:
            raise DeviceError(f"cannot talk to a Neon at {where}: {type(e).__name__}: {e}") from e

    async def _estimate_offset(self, samples: int) -> int | None:
        from pupil_labs.realtime_api.time_echo import TimeOffsetEstimator

        st = self._status_raw
        port = st.phone.time_echo_port if st is not None else None
        if not port:
            return None
        try:
            est = await asyncio.wait_for(
                TimeOffsetEstimator(self.address, port).estimate(number_of_measurements=samples), 5
            )
        except (asyncio.TimeoutError, OSError) as e:
            log.info("time echo failed: %s", e)
            return None
        if est is None:
            return None
        # the client's offset is (client - host) in ms; ours is phone minus this machine, in ns
        self._clock_offset_ns = int(round(-est.time_offset_ms.median * 1e6))
        return self._clock_offset_ns

    def _check_sensors(self, initial: bool = False) -> None:
        st = self._status_raw
        if st is None:
            return
        for name in self.streams:
            sensor = self._sensor(name)
            ok = sensor is not None and sensor.connected
            if not ok and name not in self._sensor_missing:
                self._sensor_missing.add(name)
                self._notice("sensor_missing", f"the Neon reports its {name} sensor as not connected")
            elif ok and name in self._sensor_missing:
                self._sensor_missing.discard(name)
                if not initial:
                    self._notice("sensor_back", f"the Neon's {name} sensor is connected again", "info")

    def _sensor(self, name: str):
        st = self._status_raw
        if st is None:
            return None
        getter = {
            "gaze": st.direct_gaze_sensor,
            "world": st.direct_world_sensor,
            "audio": st.direct_audio_sensor,
            "eye_events": st.direct_eye_events_sensor,
        }[name]
        sensor = getter()
        if name == "audio" and not st.direct_world_sensor().connected:
            return None  # audio comes over the scene camera's RTSP URL (the client marks it connected regardless)
        return sensor

    async def _poll(self) -> None:
        down_since: float | None = None
        while not self._closing:
            await asyncio.sleep(1.0 if self._up else 0.25)
            try:
                # while the device is away, short attempts: a phone that left the Wi-Fi does not refuse connections,
                # they hang, and a full connect timeout per attempt would notice its return seconds late
                self._status_raw = await self._fetch_status(None if self._up else min(self.connect_timeout_s, 0.75))
            except DeviceError as e:
                if self._up:
                    self._up = False
                    self._worn = None  # unknown until gaze arrives again
                    down_since = time.monotonic()
                    self._notice("disconnected", f"lost the Neon: {e.message}; retrying", "error")
                    self._restart_streams()
                continue
            if not self._up:
                self._up = True
                self.reconnects += 1
                self._t_back = time.monotonic()
                gone = time.monotonic() - down_since if down_since else 0.0
                self._restart_streams()
                self._notice(
                    "reconnected", f"the Neon at {self.address}:{self.port} is back after {gone:.1f} s", "info"
                )
                if self.time_echo_samples:
                    asyncio.ensure_future(self._estimate_offset(self.time_echo_samples))
            self._check_sensors()

    def _restart_streams(self) -> None:
        for s in self.streams:
            t = self._tasks.get(s)
            if t is not None:
                t.cancel()
            self._tasks[s] = asyncio.ensure_future(self._stream_loop(s))

    async def _watchdog(self) -> None:
        """Stall notices; reconnect a stream that stays silent (its transport may be gone without telling us)."""
        started = {s: time.monotonic() for s in self.streams}
        while not self._closing:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for s in self.streams:
                if not self._up or s in self._sensor_missing:
                    started[s] = now
                    continue
                last = max(self._last_data.get(s, 0.0), started[s])
                silent = now - last
                limit = self.stall_timeout_s * (3 if s == "audio" else 1)
                if silent > limit and s not in self._stalled and s in self._last_data:
                    self._stalled.add(s)
                    if s == "gaze":
                        self._worn = None  # unknown until gaze arrives again
                    self._notice("stalled", f"no {s} data from the Neon for {silent:.1f} s")
                if silent > 2 * limit + 1.0 and s not in self._stalled:  # never delivered since (re)connecting
                    self._stalled.add(s)
                    self._notice("stalled", f"no {s} data from the Neon since it connected ({silent:.1f} s)")
                if silent > 2 * limit + 1.0:
                    started[s] = now
                    t = self._tasks.get(s)
                    if t is not None:
                        t.cancel()
                    self._tasks[s] = asyncio.ensure_future(self._stream_loop(s))

    async def _stream_loop(self, name: str) -> None:
        from pupil_labs.realtime_api import streaming as rs

        cls = {
            "gaze": rs.RTSPGazeStreamer,
            "world": rs.RTSPVideoFrameStreamer,
            "audio": rs.RTSPAudioStreamer,
            "eye_events": rs.RTSPEyeEventStreamer,
        }[name]
        handle = {
            "gaze": self._on_gaze,
            "world": self._on_frame,
            "audio": self._on_audio,
            "eye_events": self._on_eye_event,
        }[name]
        backoff = 0.1
        while not self._closing:
            sensor = self._sensor(name)
            if not self._up or sensor is None or not sensor.connected:
                await asyncio.sleep(0.2)
                continue
            try:
                async with cls(sensor.url, timeout=self.connect_timeout_s, log_level=logging.ERROR) as streamer:
                    async for item in streamer.receive():
                        self._last_data[name] = time.monotonic()
                        backoff = 0.1
                        if name in self._stalled:
                            self._stalled.discard(name)
                            self._notice("resumed", f"{name} data flows again", "info")
                        try:
                            handle(item)
                        except Exception:  # noqa: BLE001 - one bad datum must not end the stream
                            log.exception("could not convert a %s datum", name)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - decoder errors, lost connections: reconnect
                log.info("%s stream ended: %r", name, e)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    # converters (run on the client's loop; cheap, never block)

    def _on_gaze(self, d) -> None:
        ts = self._ts(d.timestamp_unix_ns)
        if hasattr(d, "x"):
            x, y = d.x, d.y
        else:  # DualMonocularGazeData: no binocular point; use the midpoint of the two eyes' points
            x, y = (d.left.x + d.right.x) / 2, (d.left.y + d.right.y) / 2
        worn = bool(d.worn)
        if worn != self._worn:
            if self._worn is not None or not worn:
                self._notice(  # at the first sample that shows it: arrival time lags it by the network and the load
                    "worn" if worn else "not_worn",
                    "glasses are worn" if worn else "glasses are not worn",
                    "info" if worn else "warning",
                    ts_ns=ts,
                )
            self._worn = worn
        self._counts["gaze"] += 1
        if self._t_back is not None:
            self.last_reconnect_s = time.monotonic() - self._t_back
            self._t_back = None
        self._ring.push(GazeSample(ts, float(x), float(y), worn))

    def _on_frame(self, f) -> None:
        rgb = f.av_frame.to_ndarray(format="rgb24")
        self._scene_size = (rgb.shape[1], rgb.shape[0])
        self._counts["world"] += 1
        self._ring.push(SceneFrame(self._ts(f.timestamp_unix_ns), rgb, self._frame_index))
        self._frame_index += 1

    def _on_audio(self, a) -> None:
        frame = a.av_frame
        pcm = frame.to_ndarray()
        pcm = pcm.mean(axis=0) if pcm.ndim == 2 and pcm.shape[0] > 1 else pcm.reshape(-1)
        ts = self._ts(a.timestamp_unix_ns)
        if self.correct_audio_time:
            ts += int(round(frame.samples * 1e9 / frame.sample_rate))
        self._counts["audio"] += 1
        self._ring.push(AudioChunk(ts, np.asarray(pcm, np.float32), int(frame.sample_rate)))

    def _on_eye_event(self, e) -> None:
        etype = e.event_type
        self._counts["eye_events"] += 1
        if etype == 1:  # fixation (0 = saccade, 2/3 = onsets)
            self._ring.push(
                Fixation(
                    self._ts(e.start_time_ns),
                    self._ts(e.end_time_ns),
                    float(e.mean_gaze_x),
                    float(e.mean_gaze_y),
                    "device",
                )
            )
        elif etype == 4:
            self._ring.push(Blink(self._ts(e.start_time_ns), self._ts(e.end_time_ns)))

    async def _shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(t, 2)
        if self._device is not None:
            with contextlib.suppress(Exception):
                await self._device.close()
        # the client's RTSP readers leave their runner tasks behind (tearing their sessions down): let them finish,
        # then cancel what is still pending
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        if rest:
            _, pending = await asyncio.wait(rest, timeout=1.0)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)


class RateMeter:
    """Records per second of a live source's streams over the last `interval_s` (from `stats()["counts"]`), for a
    status display: `poll()` returns {stream: rate} once an interval has passed, else None."""

    def __init__(self, source: NeonLiveSource, interval_s: float = 1.0, streams=("gaze", "world", "audio")):
        self.source = source
        self.interval_s = interval_s
        self.streams = tuple(streams)
        self._prev = dict(source.stats()["counts"])
        self._t_prev = time.monotonic()

    def poll(self) -> dict[str, float] | None:
        now = time.monotonic()
        if now - self._t_prev < self.interval_s:
            return None
        counts = dict(self.source.stats()["counts"])
        dt = now - self._t_prev
        rates = {k: (counts.get(k, 0) - self._prev.get(k, 0)) / dt for k in self.streams}
        self._prev, self._t_prev = counts, now
        return rates


_LIVE_KW = {
    "address",
    "port",
    "streams",
    "queue_size",
    "max_queued_frames",
    "connect_timeout_s",
    "discover_timeout_s",
    "stall_timeout_s",
    "max_backoff_s",
    "time_echo_samples",
    "apply_clock_offset",
    "correct_audio_time",
}


def parse_neon_spec(spec: str) -> tuple[str | None, int]:
    """'pupil-neon' -> (None, 8080) (discover); 'pupil-neon:HOST[:PORT]' or 'neon://HOST[:PORT]' -> (HOST, PORT)."""
    if spec.startswith("neon://"):
        rest = spec[len("neon://") :].rstrip("/")
    elif spec == "pupil-neon":
        return None, DEFAULT_PORT
    elif spec.startswith("pupil-neon:"):
        rest = spec[len("pupil-neon:") :]
    else:
        raise ConfigError(
            f"not a Neon source spec: '{spec}' (use pupil-neon, pupil-neon:HOST[:PORT], neon://HOST:PORT)"
        )
    if rest.startswith("[") or rest.count(":") > 1:  # the realtime client builds http://HOST:PORT URLs: IPv4 or names
        raise ConfigError(
            f"'{spec}' is an IPv6 address, which the Neon realtime client does not take; use the phone's IPv4 "
            "address or host name (e.g. neon://192.168.1.23:8080)"
        )
    host, _, port_s = rest.partition(":")
    if not host:
        raise ConfigError(f"'{spec}' names no host; use neon://HOST:PORT (e.g. neon://192.168.1.23:8080)")
    if re.fullmatch(r"[0-9.]+", host):  # dotted numbers are an IPv4 address or nothing (a host name has a letter)
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ConfigError(
                f"'{host}' in '{spec}' is not an IPv4 address (four numbers from 0 to 255, e.g. 192.168.1.23)"
            ) from None
    try:
        port = int(port_s) if port_s else DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"bad port in '{spec}': '{port_s}' is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"bad port in '{spec}': {port} is not between 1 and 65535")
    return host, port


def open_neon(spec: str = "pupil-neon", **kw) -> NeonLiveSource:
    """The `open_source` factory for 'pupil-neon', 'pupil-neon:HOST[:PORT]' and 'neon://HOST:PORT'. Keyword
    arguments are NeonLiveSource's (`address`/`port` override the spec); `duration_s` is ignored (live is endless)."""
    kw.pop("duration_s", None)
    unknown = sorted(set(kw) - _LIVE_KW)
    if unknown:
        raise ConfigError(f"live Neon source does not take {', '.join(unknown)}")
    host, port = parse_neon_spec(spec)
    kw.setdefault("address", host)
    kw.setdefault("port", port)
    return NeonLiveSource(**kw)


def _register() -> None:
    from gazeqwen_edge.device.registry import register_source

    register_source("pupil-neon", open_neon)
    register_source("neon://", open_neon)


_register()
