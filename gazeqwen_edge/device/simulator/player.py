"""The simulator's player: replays the source in real time into the RTP streams, as the phone would stream it.

A record with source time `t` is sent at wall-clock time `t + pace_offset_ns` (+ `loop_period_ns` per completed pass
with `loop=True`), paced by `pacing.paced()` against `time.time`, and stamped `t + offset_ns` (+ the same loop shift)
on the simulated phone's clock. Gaze goes out as `com.pupillabs.gaze1` payloads (worn = 0 while `faults.not_worn`),
scene frames as H.264 (FU-A fragments), fixations and blinks as eye events, audio as AAC at 8 kHz mono: the
source's own audio, or a synthetic tone that keeps the audio stream alive while the source has none (yet)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gazeqwen_edge.device.pacing import paced
from gazeqwen_edge.device.records import AudioChunk, Blink, Fixation, GazeSample, Record, SceneFrame
from gazeqwen_edge.device.simulator import rtp

if TYPE_CHECKING:
    from gazeqwen_edge.device.simulator.device import NeonSimulator

FALLBACK_FRAME_NS = 33_333_333  # loop period padding when the source has no end time: one 30 fps frame


class Player:
    """Plays `sim.source` once, or forever with `sim.loop` (each pass `loop_period_ns` later), until `sim`'s stop
    event is set. `run()` is the body of the simulator's player thread."""

    def __init__(self, sim: NeonSimulator, first_ts_ns: int, pace_offset_ns: int):
        self.sim = sim
        self.first_ts_ns = first_ts_ns  # the source's first record time (its start_ns when it has one)
        self.pace_offset_ns = pace_offset_ns  # wall time to send = source time + this (+ loop shift)
        self.loop_period_ns = 0  # known after the first pass
        self.loop_shift_ns = 0  # added to every time in the current pass
        self._audio = _AudioTrack(sim.audio_mode, lambda payload, ts: sim.rtp.send("audio", payload, ts))

    def run(self) -> None:
        sim = self.sim
        stop = sim.stop_event
        loop_index = 0
        first_ts = last_ts = None  # of the first pass
        while not stop.is_set():
            n_this_pass = 0
            due_first = (self.first_ts_ns + self.pace_offset_ns + self.loop_shift_ns) / 1e9
            for rec in paced(sim.source.records(), 1.0, time.time, stop.wait, origin=(self.first_ts_ns, due_first)):
                if stop.is_set():
                    return
                if loop_index == 0:
                    first_ts = rec.ts_ns if first_ts is None else first_ts
                    last_ts = rec.ts_ns if last_ts is None else max(last_ts, rec.ts_ns)
                n_this_pass += 1
                self._send(rec, rec.ts_ns + sim.offset_ns + self.loop_shift_ns)
            if not sim.loop or n_this_pass == 0:
                return
            if loop_index == 0:
                start, end = sim.source.start_ns, sim.source.end_ns
                if start is not None and end is not None and end > start:
                    self.loop_period_ns = end - start
                else:
                    self.loop_period_ns = (last_ts - first_ts) + FALLBACK_FRAME_NS
            loop_index += 1
            self.loop_shift_ns += self.loop_period_ns
            self._audio.next_pass()

    def _send(self, rec: Record, dev: int) -> None:
        """Send one record stamped `dev` (device clock, ns)."""
        sim = self.sim
        send = sim.rtp.send
        if isinstance(rec, GazeSample):
            worn = rec.worn and not sim.faults.not_worn
            send("gaze", rtp.gaze_payload(rec.x, rec.y, worn, (), sim.gaze_variant), dev)
        elif isinstance(rec, SceneFrame):
            if sim.video is None:
                return
            pkts = [p for nal in sim.video.encode(rec.rgb) for p in rtp.h264_payloads(nal)]
            for i, p in enumerate(pkts):
                send("world", p, dev, marker=i == len(pkts) - 1)
        elif isinstance(rec, Fixation):
            shift = dev - rec.ts_ns
            send("eye_events", rtp.fixation_payload(rec.start_ns + shift, rec.end_ns + shift, rec.x, rec.y), dev)
        elif isinstance(rec, Blink):
            shift = dev - rec.ts_ns
            send("eye_events", rtp.blink_payload(rec.start_ns + shift, rec.end_ns + shift), dev)
        elif isinstance(rec, AudioChunk):
            self._audio.source_chunk(rec, dev)
        self._audio.keep_alive(dev)


class _AudioTrack:
    """The audio stream's timeline: AAC frames of the source's audio ('auto', 'source'), or of a tone that runs while
    the source has delivered none ('auto', 'tone'). Frame i of an encoder started at device time t0 is stamped
    t0 + i * 1e9 / 8000 ns."""

    def __init__(self, mode: str, send: Callable[[bytes, int], None]):
        self.mode = mode
        self._send = send
        self._enc = None
        self._t0: int | None = None  # device ns of sample index 0 of the current encoder
        self._from_source = mode == "source"
        self._tone_samples = 0

    def _encoder(self, dev: int):
        from gazeqwen_edge.device.simulator.encoders import AacEncoder

        self._enc, self._t0 = AacEncoder(), dev
        return self._enc

    def _push(self, pcm: np.ndarray) -> None:
        from gazeqwen_edge.device.simulator.encoders import AUDIO_RATE

        for idx, frame in self._enc.push(pcm):
            self._send(rtp.aac_payload(frame), self._t0 + idx * 1_000_000_000 // AUDIO_RATE)

    def source_chunk(self, rec: AudioChunk, dev: int) -> None:
        if self.mode not in ("auto", "source"):
            return
        if not self._from_source or self._enc is None:
            self._from_source = True
            self._encoder(dev)
        self._push(to_mono_8k(rec.pcm, rec.sample_rate))

    def keep_alive(self, dev: int) -> None:
        """Tone up to device time `dev` while the source has no audio of its own."""
        if self.mode not in ("auto", "tone") or self._from_source:
            return
        from gazeqwen_edge.device.simulator.encoders import AUDIO_RATE, tone

        if self._enc is None:
            self._encoder(dev)
        target = (dev - self._t0) * AUDIO_RATE // 1_000_000_000
        if target > self._tone_samples:
            pcm = tone(self._tone_samples, target - self._tone_samples)
            self._tone_samples = target
            self._push(pcm)

    def next_pass(self) -> None:
        if self._from_source and self.mode == "auto":
            self._enc = None  # restart the audio timeline with the next pass


def to_mono_8k(pcm: np.ndarray, rate: int) -> np.ndarray:
    """float32 mono at 8 kHz (the Neon's audio stream) from any rate and channel count (linear interpolation)."""
    x = np.asarray(pcm, np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate == 8000 or len(x) == 0:
        return x
    n_out = int(round(len(x) * 8000 / rate))
    return np.interp(np.arange(n_out) * rate / 8000, np.arange(len(x)), x).astype(np.float32)
