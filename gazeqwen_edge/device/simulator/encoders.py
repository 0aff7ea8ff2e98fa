"""Scene video (H.264) and audio (AAC) encoders for the Neon simulator, on PyAV (libx264, FFmpeg aac)."""

from __future__ import annotations

import base64
from fractions import Fraction

import numpy as np

from gazeqwen_edge.device.simulator.rtp import split_annexb
from gazeqwen_edge.errors import require

AUDIO_RATE = 8000  # Neon streams AAC mono at 8 kHz
AAC_FRAME = 1024  # samples per AAC-LC frame


class H264Encoder:
    """libx264 baseline, zerolatency, no B-frames, fixed GOP; SPS/PPS available before the first frame (for the SDP).

    `encode(rgb)` returns the NAL units (without start codes) of one access unit."""

    def __init__(self, width: int, height: int, fps: float = 30.0, gop: int = 30, bit_rate: int | None = None):
        av = require("av", "device", "the Neon simulator's video encoder")
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs an even scene size, got {width}x{height}")
        self.width, self.height = width, height
        c = av.CodecContext.create("libx264", "w")
        c.width, c.height, c.pix_fmt = width, height, "yuv420p"
        c.time_base = Fraction(1, 90000)
        c.framerate = Fraction(fps).limit_denominator(1001)
        c.gop_size = gop
        c.max_b_frames = 0
        c.bit_rate = bit_rate or int(width * height * fps * 0.1)
        c.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
        c.flags |= av.codec.context.Flags.global_header
        c.open()
        self._av = av
        self._ctx = c
        params = [n for n in split_annexb(bytes(c.extradata or b"")) if n[0] & 0x1F in (7, 8)]
        self.sps = next((n for n in params if n[0] & 0x1F == 7), None)
        self.pps = next((n for n in params if n[0] & 0x1F == 8), None)
        if self.sps is None or self.pps is None:
            raise RuntimeError("libx264 did not provide SPS/PPS in its global header")
        self._pts = 0
        self._force_key = False

    @property
    def profile_level_id(self) -> str:
        return self.sps[1:4].hex().upper()

    @property
    def sprop_parameter_sets(self) -> str:
        return base64.b64encode(self.sps).decode() + "," + base64.b64encode(self.pps).decode()

    def request_keyframe(self) -> None:
        """Make the next frame an IDR (a new viewer then decodes at once instead of waiting for the GOP)."""
        self._force_key = True

    def encode(self, rgb: np.ndarray) -> list[bytes]:
        av = self._av
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[..., :3]), format="rgb24")
        frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        frame.pts = self._pts
        self._pts += 3000
        if self._force_key:
            frame.pict_type = av.video.frame.PictureType.I
            self._force_key = False
        nals: list[bytes] = []
        for pkt in self._ctx.encode(frame):
            nals.extend(split_annexb(bytes(pkt)))
        # Parameter sets travel in the SDP; sending them again in-band is harmless, SEI is not needed.
        return [n for n in nals if n[0] & 0x1F != 6]


class AacEncoder:
    """AAC-LC mono 8 kHz. Feed float32 PCM at 8 kHz with `push`; get back (first_sample_index, frame_bytes) pairs.

    The FFmpeg encoder primes with one frame of silence; packets are re-indexed so that the sample index of each
    returned frame is the index (in the pushed PCM) of the first sample it encodes."""

    def __init__(self, bit_rate: int = 24000):
        av = require("av", "device", "the Neon simulator's audio encoder")
        c = av.CodecContext.create("aac", "w")
        c.sample_rate = AUDIO_RATE
        c.layout = "mono"
        c.format = "fltp"
        c.bit_rate = bit_rate
        c.open()
        self._av = av
        self._ctx = c
        self.config_hex = bytes(c.extradata).hex()
        self._buf = np.zeros(0, np.float32)
        self._next_index = 0  # sample index of the next frame we hand to the encoder

    def push(self, pcm: np.ndarray) -> list[tuple[int, bytes]]:
        av = self._av
        self._buf = np.concatenate([self._buf, np.asarray(pcm, np.float32).reshape(-1)])
        out: list[tuple[int, bytes]] = []
        while len(self._buf) >= AAC_FRAME:
            block, self._buf = self._buf[:AAC_FRAME], self._buf[AAC_FRAME:]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = self._next_index
            self._next_index += AAC_FRAME
            for pkt in self._ctx.encode(frame):
                if pkt.pts is None or pkt.pts < 0:
                    continue  # the priming frame (encoder delay): not part of the signal
                out.append((int(pkt.pts), bytes(pkt)))
        return out


def tone(start_sample: int, n: int, freq: float = 440.0, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """A quiet sine tone with a little noise, at 8 kHz, continuous across calls (indexed by absolute sample)."""
    t = (start_sample + np.arange(n)) / AUDIO_RATE
    rng = np.random.default_rng(seed + start_sample)
    return (amplitude * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(n)).astype(np.float32)
