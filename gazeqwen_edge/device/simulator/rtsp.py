"""The simulated phone's RTSP server (RFC 2326 over TCP, one port for every stream): OPTIONS, DESCRIBE (SDP),
SETUP (RTP/AVP over UDP, client ports), PLAY, PAUSE, TEARDOWN, GET/SET_PARAMETER.

The stream is chosen by `camera=` in the URL, as on the Neon: `gaze` (`com.pupillabs.gaze1`, PT 99), `world` (H.264
video, PT 96, with AAC audio as track 1, PT 97) and `eye_events` (`com.pupillabs.eye_events1`, PT 101). Malformed
requests get a 4xx reply; a client that sends garbage is dropped without affecting the others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from typing import TYPE_CHECKING

from gazeqwen_edge.device.simulator.status import SENSOR_PARAMS
from gazeqwen_edge.device.simulator.streams import Subscriber

if TYPE_CHECKING:
    from gazeqwen_edge.device.simulator.device import NeonSimulator

log = logging.getLogger(__name__)

RTSP_PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
MAX_BODY = 65536


class RtspServer:
    """Serves RTSP clients of one simulator: the subscriptions go to `sim.rtp`, SDP describes `sim.video` and
    `sim.audio_config`."""

    def __init__(self, sim: NeonSimulator, open_writers: set):
        self.sim = sim
        self.open_writers = open_writers  # closed by the simulator when it leaves the network

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_writers.add(writer)
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sessions: list[str] = []
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    self._reply(writer, 400, "Bad Request", None)
                    break
                except asyncio.IncompleteReadError:
                    break
                req = parse_request(head)
                if req is None:
                    self._reply(writer, 400, "Bad Request", None)
                    await writer.drain()
                    break
                method, url, headers = req
                length = headers.get("content-length", "0")
                if not length.isdigit() or int(length) > MAX_BODY:
                    self._reply(writer, 400, "Bad Request", headers.get("cseq"))
                    break
                if int(length):
                    await reader.readexactly(int(length))
                self._handle(writer, peer, method, url, headers, sessions)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # noqa: BLE001 - one bad client must never take the server down
            log.exception("RTSP client error")
        finally:
            self.sim.rtp.drop_sessions(sessions)
            self.open_writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _reply(self, writer, code: int, reason: str, cseq: str | None, headers=None, body: bytes = b"") -> None:
        lines = [f"RTSP/1.0 {code} {reason}"]
        if cseq is not None:
            lines.append(f"CSeq: {cseq}")
        lines.append("Server: gazeqwen-edge neon-simulator")
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _handle(self, writer, peer, method: str, url: str, headers: dict, sessions: list[str]) -> None:
        sim = self.sim
        cseq = headers.get("cseq")
        if cseq is None:
            self._reply(writer, 400, "Bad Request", None)
            return
        if method in ("OPTIONS", "GET_PARAMETER", "SET_PARAMETER"):
            self._reply(writer, 200, "OK", cseq, {"Public": RTSP_PUBLIC} if method == "OPTIONS" else {})
            return
        camera, track = camera_of(url)
        if method == "TEARDOWN":
            sim.rtp.drop_sessions([headers.get("session", "").split(";")[0].strip()])
            self._reply(writer, 200, "OK", cseq)
            return
        if method not in ("DESCRIBE", "SETUP", "PLAY", "PAUSE"):
            self._reply(writer, 405, "Method Not Allowed", cseq, {"Allow": RTSP_PUBLIC})
            return
        if method == "PLAY" or method == "PAUSE":
            sid = headers.get("session", "").split(";")[0].strip()
            mine = sim.rtp.of_session(sid)
            if not mine:
                self._reply(writer, 454, "Session Not Found", cseq)
                return
            self._reply(writer, 200, "OK", cseq, {"Session": sid, "Range": "npt=now-"})
            for sub in mine:
                if method == "PLAY":
                    sim.rtp.play(sub, sim.now_device_ns())
                    if sub.stream == "world" and sim.video is not None:
                        sim.video.request_keyframe()
                else:
                    sub.playing = False
            return
        if camera not in SENSOR_PARAMS or not sim.sensor_connected.get(camera, False):
            self._reply(writer, 404, "Not Found", cseq)
            return
        if method == "DESCRIBE":
            body = self.sdp(camera).encode()
            base = url.split("?")[0].rstrip("/") + "/?" + SENSOR_PARAMS[camera]
            self._reply(writer, 200, "OK", cseq, {"Content-Type": "application/sdp", "Content-Base": base + "/"}, body)
            return
        # SETUP
        stream = {"gaze": "gaze", "eye_events": "eye_events"}.get(camera) or ("audio" if track == 1 else "world")
        if stream == "audio" and sim.audio_config is None:
            self._reply(writer, 404, "Not Found", cseq)
            return
        m = re.search(r"client_port=(\d+)-(\d+)", headers.get("transport", ""))
        if m is None:
            self._reply(writer, 461, "Unsupported Transport", cseq)
            return
        sid = headers.get("session", "").split(";")[0].strip() or secrets.token_hex(8).upper()
        sessions.append(sid)
        st = sim.rtp.streams[stream]
        sim.rtp.subscribe(Subscriber(session=sid, stream=stream, addr=(peer[0], int(m.group(1)), int(m.group(2)))))
        a, b = st.server_ports
        transport = f"RTP/AVP;unicast;client_port={m.group(1)}-{m.group(2)};server_port={a}-{b};ssrc={st.ssrc:08X}"
        self._reply(writer, 200, "OK", cseq, {"Transport": transport, "Session": f"{sid};timeout=60"})

    def sdp(self, camera: str) -> str:
        """The session description of a sensor's URL (RFC 4566), as the Companion app writes it."""
        sim = self.sim
        lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", f"s={sim.device_name}", "c=IN IP4 0.0.0.0", "t=0 0"]
        if camera == "gaze":
            lines += ["m=application 0 RTP/AVP 99", "a=rtpmap:99 com.pupillabs.gaze1/90000", "a=control:trackID=0"]
        elif camera == "eye_events":
            lines += [
                "m=application 0 RTP/AVP 101",
                "a=rtpmap:101 com.pupillabs.eye_events1/90000",
                "a=control:trackID=0",
            ]
        else:
            v = sim.video
            lines += [
                "m=video 0 RTP/AVP 96",
                "a=rtpmap:96 H264/90000",
                f"a=fmtp:96 packetization-mode=1;profile-level-id={v.profile_level_id};"
                f"sprop-parameter-sets={v.sprop_parameter_sets}",
                "a=control:trackID=0",
            ]
            if sim.audio_config is not None:
                lines += [
                    "m=audio 0 RTP/AVP 97",
                    "a=rtpmap:97 MPEG4-GENERIC/8000",
                    f"a=fmtp:97 streamtype=5;profile-level-id=15;mode=AAC-hbr;config={sim.audio_config};"
                    "sizeLength=13;indexLength=3;indexDeltaLength=3",
                    "a=control:trackID=1",
                ]
        return "\r\n".join(lines) + "\r\n"


def parse_request(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    """(method, url, headers with lower-case names) of an RTSP request head, or None if it is not one."""
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


def camera_of(url: str) -> tuple[str | None, int | None]:
    """The `camera=` parameter and the `trackID=` of an RTSP URL (None where absent)."""
    m = re.search(r"[?&]camera=([A-Za-z_]+)", url)
    t = re.search(r"trackID=(\d+)", url)
    return (m.group(1) if m else None), (int(t.group(1)) if t else None)
