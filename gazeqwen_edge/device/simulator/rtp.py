"""RTP/RTCP packet building for the Neon simulator: pure functions, no sockets.

Payload formats are the ones the Pupil Labs real-time client (pupil-labs-realtime-api) parses:
gaze `com.pupillabs.gaze1` (one datum per packet, big-endian, length selects the variant), eye events (PT 101),
H.264 (RFC 6184: single NAL unit packets and FU-A, no STAP-A) and AAC (RFC 3640 AAC-hbr, one AU per packet).
"""

from __future__ import annotations

import struct

NTP_EPOCH_OFFSET_S = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (unix)

PT_VIDEO = 96
PT_AUDIO = 97
PT_GAZE = 99
PT_EYE_EVENTS = 101

MAX_NAL_PAYLOAD = 1400  # bytes: NAL units up to this size go as single-NAL packets, larger ones as FU-A

# Eye event types on the wire (pupil_labs.realtime_api.streaming.eye_events)
EVENT_SACCADE = 0
EVENT_FIXATION = 1
EVENT_SACCADE_ONSET = 2
EVENT_FIXATION_ONSET = 3
EVENT_BLINK = 4


def rtp_packet(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    """A 12-byte RTP header (version 2, no padding/extension/CSRC) followed by the payload."""
    b0 = 0x80
    b1 = (0x80 if marker else 0) | (payload_type & 0x7F)
    return struct.pack("!BBHII", b0, b1, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF) + payload


def rtcp_sender_report(ssrc: int, unix_ns: int, rtp_timestamp: int, packet_count: int, octet_count: int) -> bytes:
    """RTCP SR without report blocks (28 bytes): maps `rtp_timestamp` to the wall-clock time `unix_ns`."""
    secs, rem_ns = divmod(unix_ns, 1_000_000_000)
    frac = (rem_ns << 32) // 1_000_000_000
    return struct.pack(
        "!BBHIIIIII",
        0x80,
        200,
        6,
        ssrc & 0xFFFFFFFF,
        (secs + NTP_EPOCH_OFFSET_S) & 0xFFFFFFFF,
        frac & 0xFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )


# --- gaze -----------------------------------------------------------------------------------------------------------

GAZE_FORMATS = {  # payload length -> struct format; lengths are what the client dispatches on
    9: "!ffB",  # x, y, worn
    17: "!ffBff",  # left x, y, worn, right x, y (dual monocular)
    25: "!ffBffff",  # binocular + dual monocular
    65: "!ffB" + "f" * 14,  # + eye state (pupil diameter, eyeball centre, optical axis per eye)
    89: "!ffB" + "f" * 20,  # + eyelid angles and aperture
    105: "!ffB" + "f" * 24,  # + dual monocular
}


def gaze_payload(x: float, y: float, worn: bool, extra: tuple[float, ...] = (), variant: int = 9) -> bytes:
    """Pack one gaze datum. `variant` is the payload length (9, 17, 25, 65, 89 or 105); `extra` holds the floats that
    follow the worn byte in that variant (zeros if missing)."""
    fmt = GAZE_FORMATS[variant]
    n_extra = len(fmt) - 4  # "!ffB" + n floats
    vals = list(extra[:n_extra]) + [0.0] * max(0, n_extra - len(extra))
    return struct.pack(fmt, x, y, 255 if worn else 0, *vals)


def fixation_payload(
    start_ns: int,
    end_ns: int,
    x: float,
    y: float,
    *,
    event_type: int = EVENT_FIXATION,
    start_xy: tuple[float, float] | None = None,
    end_xy: tuple[float, float] | None = None,
    amplitude_px: float = 0.0,
    amplitude_deg: float = 0.0,
    mean_velocity: float = 0.0,
    max_velocity: float = 0.0,
) -> bytes:
    sx, sy = start_xy if start_xy is not None else (x, y)
    ex, ey = end_xy if end_xy is not None else (x, y)
    return struct.pack(
        "!iqqffffffffff",
        event_type,
        start_ns,
        end_ns,
        sx,
        sy,
        ex,
        ey,
        x,
        y,
        amplitude_px,
        amplitude_deg,
        mean_velocity,
        max_velocity,
    )


def blink_payload(start_ns: int, end_ns: int) -> bytes:
    return struct.pack("!iqq", EVENT_BLINK, start_ns, end_ns)


def onset_payload(event_type: int, start_ns: int) -> bytes:
    return struct.pack("!iq", event_type, start_ns)


# --- H.264 ----------------------------------------------------------------------------------------------------------


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream (00 00 01 / 00 00 00 01 start codes) into NAL units without start codes."""
    nals: list[bytes] = []
    i, n = 0, len(data)
    start = -1
    while i + 2 < n:
        if data[i] == 0 and data[i + 1] == 0 and data[i + 2] == 1:
            if start >= 0:
                end = i
                while end > start and data[end - 1] == 0:  # trailing zero of a 4-byte start code
                    end -= 1
                nals.append(data[start:end])
            i += 3
            start = i
        else:
            i += 1
    if start >= 0 and start < n:
        nals.append(data[start:])
    return [nal for nal in nals if nal]


def h264_payloads(nal: bytes, max_payload: int = MAX_NAL_PAYLOAD) -> list[bytes]:
    """RTP payloads for one NAL unit: the unit itself if small enough, else FU-A fragments (RFC 6184 5.8)."""
    if len(nal) <= max_payload:
        return [nal]
    header = nal[0]
    fu_indicator = (header & 0xE0) | 28
    nal_type = header & 0x1F
    body = nal[1:]
    chunk = max_payload - 2
    out = []
    for off in range(0, len(body), chunk):
        first = off == 0
        last = off + chunk >= len(body)
        fu_header = (0x80 if first else 0) | (0x40 if last else 0) | nal_type
        out.append(bytes((fu_indicator, fu_header)) + body[off : off + chunk])
    return out


# --- AAC ------------------------------------------------------------------------------------------------------------


def aac_payload(frame: bytes) -> bytes:
    """RFC 3640 AAC-hbr payload with one access unit: AU-headers-length (16 bits) + AU header (size << 3) + frame."""
    if len(frame) >= 1 << 13:
        raise ValueError(f"AAC frame too large for a 13-bit AU size: {len(frame)} bytes")
    return struct.pack("!HH", 16, len(frame) << 3) + frame
