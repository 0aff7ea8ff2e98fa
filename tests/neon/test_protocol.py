"""Packet formats checked against the parsers of the real client (pupil-labs-realtime-api) and aiortsp."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from gazeqwen_edge.device.simulator import rtp

streaming = pytest.importorskip("pupil_labs.realtime_api.streaming")


def _data(raw: bytes, t: float = 1.5):
    from pupil_labs.realtime_api.streaming.base import RTSPData

    return RTSPData(raw, t)


@pytest.mark.parametrize("variant", sorted(rtp.GAZE_FORMATS))
def test_gaze_payload_variants_parse_in_client(variant):
    from pupil_labs.realtime_api.streaming import gaze as g

    cls = {
        9: g.GazeData,
        17: g.DualMonocularGazeData,
        25: g.BinoAndDualMonoGazeData,
        65: g.EyestateGazeData,
        89: g.EyestateEyelidGazeData,
        105: g.EyestateEyelidDualMonoGazeData,
    }[variant]
    extra = tuple(float(i) + 0.5 for i in range(30))
    raw = rtp.gaze_payload(123.25, 456.5, False, extra, variant)
    assert len(raw) == variant
    d = cls.from_raw(_data(raw))
    assert d.worn is False
    if variant == 17:
        assert (d.left.x, d.left.y, d.right.x, d.right.y) == (123.25, 456.5, 0.5, 1.5)
    else:
        assert (d.x, d.y) == (123.25, 456.5)
        if variant == 105:
            assert d.mono_right_y == extra[23]


def test_eye_event_payloads_parse_in_client():
    from pupil_labs.realtime_api.streaming.eye_events import BlinkEventData, FixationEventData

    f = FixationEventData.from_raw(_data(rtp.fixation_payload(10, 20, 3.5, 4.5)))
    assert (f.event_type, f.start_time_ns, f.end_time_ns, f.mean_gaze_x, f.mean_gaze_y) == (1, 10, 20, 3.5, 4.5)
    b = BlinkEventData.from_raw(_data(rtp.blink_payload(30, 40)))
    assert (b.event_type, b.start_time_ns, b.end_time_ns) == (4, 30, 40)


def test_fu_a_fragments_reassemble_with_client_parser():
    from pupil_labs.realtime_api.streaming.nal_unit import extract_payload_from_nal_unit

    rng = np.random.default_rng(0)
    nal = bytes([0x65]) + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    pkts = rtp.h264_payloads(nal)
    assert len(pkts) == 4 and all(len(p) <= rtp.MAX_NAL_PAYLOAD for p in pkts)
    stream = b"".join(extract_payload_from_nal_unit(p) for p in pkts)
    assert stream == b"\x00\x00\x00\x01" + nal
    small = bytes([0x41, 1, 2, 3])
    assert rtp.h264_payloads(small) == [small]


def test_split_annexb_roundtrip():
    nals = [b"\x67abc", b"\x68de", b"\x65" + b"\x00\x01" * 10]
    stream = b"\x00\x00\x00\x01" + nals[0] + b"\x00\x00\x01" + nals[1] + b"\x00\x00\x00\x01" + nals[2]
    assert rtp.split_annexb(stream) == nals


def test_aac_payload_parses_with_client():
    from pupil_labs.realtime_api.streaming.au_unit import extract_frames_from_au_packet

    frame = bytes(range(200))
    assert extract_frames_from_au_packet(rtp.aac_payload(frame)) == [frame]


def test_rtp_header_and_sender_report_parse_with_aiortsp_and_dpkt():
    from aiortsp.rtcp.parser import RTCP, SR
    from dpkt.rtp import RTP

    pkt = RTP(rtp.rtp_packet(99, 65535, 2**32 + 5, 0xDEADBEEF, b"xyz", marker=True))
    assert (pkt.pt, pkt.seq, pkt.ts, pkt.ssrc, pkt.m, pkt.data) == (99, 65535, 5, 0xDEADBEEF, 1, b"xyz")
    unix_ns = 1_767_225_600_123_456_789
    sr = RTCP.unpack(rtp.rtcp_sender_report(7, unix_ns, 90000, 3, 300)).packets[0]
    assert isinstance(sr, SR)
    assert sr.ts == 90000 and sr.pkt_count == 3 and sr.byte_count == 300
    assert sr.ntp == pytest.approx(unix_ns / 1e9, abs=1e-6)


def test_h264_encoder_output_decodes_with_sprop_parameter_sets():
    import base64

    import av
    from pupil_labs.realtime_api.streaming.nal_unit import extract_payload_from_nal_unit

    from gazeqwen_edge.device.simulator.encoders import H264Encoder

    enc = H264Encoder(64, 48)
    dec = av.CodecContext.create("h264", "r")
    for p in enc.sprop_parameter_sets.split(","):
        dec.parse(extract_payload_from_nal_unit(base64.b64decode(p)))
    frames = []
    for k in range(5):
        img = np.full((48, 64, 3), 40 * k, np.uint8)
        data = b"".join(b"\x00\x00\x00\x01" + n for n in enc.encode(img))
        for packet in dec.parse(data):
            frames.extend(dec.decode(packet))
    # like the client, the parser hands over an access unit when the next one starts: 4 of 5 frames are out
    assert len(frames) == 4
    got = [int(f.to_ndarray(format="rgb24").mean()) for f in frames]
    assert got == pytest.approx([0, 40, 80, 120], abs=4)
    assert struct.unpack("B", enc.sps[:1])[0] & 0x1F == 7
