"""Spoken questions from a stream of audio chunks: voice activity detection where the audio arrives, speech
recognition beside it, and a question for every utterance the recogniser is sure of.

    voice = VoiceInput(Transcriber(), on_question=lambda text, t_ns, meta: session.ask(text, None, t_ns, "voice", meta))
    voice.push(audio_chunk)       # from the session's ingest thread (VAD inline: a fraction of a ms per 32 ms frame)
    voice.close()                 # the stream ended: the open utterance is transcribed and asked

A question's time is when its speech started (device clock), so "what was that?" refers to what was looked at while
speaking, not after recognition finished. An utterance the recogniser is not sure of (noise, a cough, mumbling:
`Transcript.usable`) asks nothing and is reported as a notice ("I didn't catch that").
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from textwrap import shorten

from gazeqwen_edge.voice.asr import Transcriber
from gazeqwen_edge.voice.vad import SpeechSegmenter, Utterance

NOT_UNDERSTOOD = "I didn't catch that"
HEARD_CHARS = 60  # of what was heard, quoted in that notice


class VoiceInput:
    """Utterances -> questions. transcriber: a Transcriber; on_question(text, t_ns, meta) asks one (meta: speech
    start / end ns, recognition ms, Whisper's confidences); on_notice(kind, message, t_ns) reports what was not
    understood; on_speech_start(t_ns) is called when speech begins (barge-in: stop speaking); segmenter: the VAD
    (default SpeechSegmenter()); sync: transcribe in the pushing thread (reproducible replays) instead of a worker
    thread (live: the ingest never waits for recognition); timer: a StageTimer that gets "vad" (per audio chunk)
    and "speech_recognition" (per utterance)."""

    def __init__(
        self,
        transcriber: Transcriber,
        on_question: Callable[[str, int, dict], None],
        on_notice: Callable[[str, str, int | None], None] = lambda *a: None,
        on_speech_start: Callable[[int], None] | None = None,
        segmenter: SpeechSegmenter | None = None,
        sync: bool = False,
        timer=None,
    ):
        self.transcriber = transcriber
        self.segmenter = segmenter or SpeechSegmenter()
        self.on_question, self.on_notice, self.on_speech_start = on_question, on_notice, on_speech_start
        self.sync = sync
        self.timer = timer
        self.heard = 0  # utterances transcribed
        self.understood = 0
        self._queue: queue.Queue = queue.Queue()
        self._worker = None
        if not sync:
            self._worker = threading.Thread(target=self._run, name="voice-asr", daemon=True)
            self._worker.start()

    def push(self, chunk) -> None:
        """Feed one AudioChunk (any rate; the Neon's is 8 kHz AAC decoded to float)."""
        was = self.segmenter.in_speech
        t0 = time.perf_counter()
        done = self.segmenter.push(chunk)
        if self.timer is not None:
            self.timer.add("vad", time.perf_counter() - t0)
        if not was and self.segmenter.in_speech and self.on_speech_start is not None:
            self.on_speech_start(int(chunk.ts_ns))
        for u in done:
            self._handle(u)

    def _handle(self, u: Utterance) -> None:
        if self.sync:
            self._transcribe(u)
        else:
            self._queue.put(u)

    def _run(self) -> None:
        while True:
            u = self._queue.get()
            if u is None:
                return
            self._transcribe(u)

    def _transcribe(self, u: Utterance) -> None:
        t0 = time.perf_counter()
        try:
            t = self.transcriber.transcribe(u.pcm)
        except Exception as e:  # noqa: BLE001 - one bad utterance must not end the session
            self.on_notice("speech_failed", f"speech could not be recognised ({type(e).__name__}: {e})", u.start_ns)
            return
        dt = time.perf_counter() - t0
        if self.timer is not None:
            self.timer.add("speech_recognition", dt)
        self.heard += 1
        if not t.usable:  # what was heard and why it was not asked: the wearer (or whoever reads the log) can tell a
            # mumbled question from a noisy microphone
            heard = f'heard "{shorten(t.text, HEARD_CHARS)}", ' if t.text else ""
            message = f"{NOT_UNDERSTOOD} ({u.duration_s:.1f} s of speech; {heard}{t.problem})"
            self.on_notice("not_understood", message, u.start_ns)
            return
        self.understood += 1
        meta = {
            "speech_start_ns": u.start_ns,
            "speech_end_ns": u.end_ns,
            "asr_ms": round(dt * 1e3, 3),
            "no_speech_prob": round(t.no_speech_prob, 4),
            "avg_logprob": round(t.avg_logprob, 4),
            "min_word_prob": round(min(t.word_probs), 4),
            "word_geomean": round(t.word_geomean, 4),
        }
        self.on_question(t.text, u.start_ns, meta)

    def close(self, timeout: float | None = 60.0) -> None:
        """The audio ended: transcribe the open utterance, finish the queued ones (up to `timeout` s), stop."""
        for u in self.segmenter.flush():
            self._handle(u)
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout)


class LazyVoice:
    """A VoiceInput made only when the first audio chunk arrives (a source without audio never loads a recogniser),
    in the background for a live session (the ingest does not wait for the model to load; the audio meanwhile is held,
    up to `hold_s` seconds, and fed in once it is ready) or at once for a replay (`sync`).

    make: () -> VoiceInput; on_failure(message): the recogniser could not be made (spoken questions stay off).
    """

    def __init__(self, make: Callable[[], VoiceInput], sync: bool = False, on_failure=lambda m: None, hold_s=30.0):
        self.make, self.sync, self.on_failure, self.hold_s = make, sync, on_failure, hold_s
        self.voice: VoiceInput | None = None
        self._held: deque = deque()
        self._loader: threading.Thread | None = None
        self._failed = False

    def _load(self) -> None:
        try:
            self.voice = self.make()
        except Exception as e:  # noqa: BLE001 - reported once, and the session goes on without voice
            self._failed = True
            self.on_failure(getattr(e, "message", None) or f"{type(e).__name__}: {e}")

    def push(self, chunk) -> None:
        """Feed one AudioChunk (see VoiceInput.push)."""
        if self._failed:
            return
        if self._loader is None:
            self._loader = threading.Thread(target=self._load, name="voice-load", daemon=True)
            self._loader.start()
            if self.sync:
                self._loader.join()
        if self.voice is None:
            self._held.append(chunk)
            while self._held and (chunk.ts_ns - self._held[0].ts_ns) > self.hold_s * 1e9:
                self._held.popleft()
            return
        held, self._held = self._held, deque()
        for c in held:
            self.voice.push(c)
        self.voice.push(chunk)

    def close(self, timeout: float | None = 60.0) -> None:
        """The audio ended: wait for the recogniser (when it is loading), feed what was held, close it."""
        if self._loader is not None:
            self._loader.join(timeout)
        if self.voice is not None:
            for c in self._held:
                self.voice.push(c)
            self._held.clear()
            self.voice.close(timeout)
