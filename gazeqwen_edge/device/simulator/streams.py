"""The simulator's RTP side: one RTP/RTCP socket pair per stream, the RTSP clients subscribed to each stream, and
sending a packet to every playing subscriber with the injected faults (stalls, random loss) applied.

Timing: RTP timestamps count the stream's clock (90 kHz; audio 8 kHz) from `base_ns` on the device clock, and every
subscriber gets an RTCP sender report before its first packet and at least once a second, which is how the client
maps RTP time to unix ns (RFC 3550 section 6.4.1)."""

from __future__ import annotations

import contextlib
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gazeqwen_edge.device.simulator import rtp
from gazeqwen_edge.device.simulator.faults import STREAMS, Faults

CLOCKS = {"gaze": 90000, "world": 90000, "audio": 8000, "eye_events": 90000}
PTS = {"gaze": rtp.PT_GAZE, "world": rtp.PT_VIDEO, "audio": rtp.PT_AUDIO, "eye_events": rtp.PT_EYE_EVENTS}


@dataclass
class Subscriber:
    """One RTSP client's subscription to one stream (SETUP), sent to once it PLAYs."""

    session: str
    stream: str
    addr: tuple[str, int, int]  # client ip, rtp port, rtcp port
    playing: bool = False
    last_sr: float = 0.0  # time.monotonic() of the last sender report


class RtpStream:
    """The sockets, sequence numbers and counters of one stream."""

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


class RtpOutput:
    """Every stream's RtpStream and subscribers. `send()` is called from the player thread, the subscription methods
    from the RTSP server's event loop: the subscriber lists are guarded by a lock.

    Args:
        host: address the UDP sockets bind to.
        base_ns: device-clock time of RTP timestamp 0.
        faults: the fault switches read for every packet (stalls, random loss).
        rng: draws the random packet loss (seeded: reproducible runs).
    """

    def __init__(self, host: str, base_ns: int, faults: Faults, rng: random.Random):
        self.faults = faults
        self._rng = rng
        self._lock = threading.Lock()
        self._subs: dict[str, list[Subscriber]] = {s: [] for s in STREAMS}
        self.streams: dict[str, RtpStream] = {}
        try:
            for name in STREAMS:
                self.streams[name] = RtpStream(name, host, base_ns)
        except BaseException:
            self.close()
            raise
        self.send_log: Callable[[str, int, float], None] | None = None  # hook(stream, device_ts_ns, wall time)

    # subscriptions (RTSP side)

    def subscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs[sub.stream].append(sub)

    def of_session(self, session: str) -> list[Subscriber]:
        with self._lock:
            return [sub for s in STREAMS for sub in self._subs[s] if sub.session == session]

    def drop_sessions(self, sessions: Iterable[str]) -> None:
        gone = set(sessions)
        with self._lock:
            for s in STREAMS:
                self._subs[s] = [sub for sub in self._subs[s] if sub.session not in gone]

    def drop_streams(self, streams: Iterable[str] = STREAMS) -> None:
        with self._lock:
            for s in streams:
                self._subs[s] = []

    @property
    def session_count(self) -> int:
        with self._lock:
            return len({sub.session for subs in self._subs.values() for sub in subs})

    def play(self, sub: Subscriber, now_device_ns: int) -> None:
        """Start sending to `sub`, with a sender report first: the client drops packets until it has one."""
        st = self.streams[sub.stream]
        self._send_sr(st, sub, st.rtp_ts(now_device_ns))
        sub.playing = True

    # sending (player side)

    def send(self, stream: str, payload: bytes, device_ns: int, marker: bool = False) -> None:
        """Packetise `payload` stamped `device_ns` and send it to every playing subscriber of `stream`, unless the
        stream is stalled; each copy is lost with probability `faults.drop_percent` (never blocks: a full socket
        buffer also loses the packet)."""
        st = self.streams[stream]
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

    def _send_sr(self, st: RtpStream, sub: Subscriber, rtp_ts: int) -> None:
        with contextlib.suppress(OSError):
            st.rtcp_sock.sendto(st.sender_report(rtp_ts), (sub.addr[0], sub.addr[2]))
        sub.last_sr = time.monotonic()

    def stats(self) -> dict[str, dict[str, int]]:
        return {n: {"packets": s.packets, "sent": s.sent, "dropped": s.dropped} for n, s in self.streams.items()}

    def close(self) -> None:
        for s in self.streams.values():
            s.close()
        self.streams = {}
