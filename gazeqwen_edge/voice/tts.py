"""Spoken answers: a sink that speaks each answer sentence by sentence as it streams, with a local TTS (espeak-ng, or
Festival's text2wave), so speech starts before the answer is complete; or writes one WAV per answer (`speak_to`).

    sink = SpeechSink(speak_to="out/speech")   # or SpeechSink(play=True): played with aplay as each sentence ends
    session = Session(..., sinks=[TerminalSink(console), sink])

The WAV's name goes into the answer's `answers.jsonl` record (`speech`). A new spoken question (barge-in) stops what
is being played.
"""

from __future__ import annotations

import io
import queue
import re
import shutil
import subprocess
import threading
import time
import wave
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import MissingDependencyError
from gazeqwen_edge.runtime.sinks import Sink

ENGINES = ("espeak-ng", "festival")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def split_sentences(text: str) -> tuple[list[str], str]:
    """(complete sentences, the rest): a sentence ends at . ! ? ; or : followed by white space."""
    parts = _SENTENCE_END.split(text)
    return [p.strip() for p in parts[:-1] if p.strip()], parts[-1]


def synthesise(text: str, engine: str = "espeak-ng") -> tuple[np.ndarray, int]:
    """Speak `text` to (pcm int16 (n,), sample rate) with the local engine. MissingDependencyError (exit 4) when its
    program is not installed; RuntimeError when it fails."""
    if engine not in ENGINES:
        raise ValueError(f"TTS engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    prog = "espeak-ng" if engine == "espeak-ng" else "text2wave"
    path = shutil.which(prog)
    if path is None:
        pkg = "espeak-ng" if engine == "espeak-ng" else "festival festvox-us-slt-hts"
        raise MissingDependencyError(f"spoken answers with {engine} need '{prog}'", hint=f"apt install {pkg}")
    cmd = [path, "--stdout", text] if engine == "espeak-ng" else [path, "-o", "-"]
    r = subprocess.run(cmd, input=None if engine == "espeak-ng" else text.encode(), capture_output=True, timeout=60)
    if r.returncode != 0 or not r.stdout:
        raise RuntimeError(f"{prog} failed: {r.stderr.decode(errors='replace').strip()[:200]}")
    with wave.open(io.BytesIO(r.stdout)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return pcm, rate


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    """int16 mono PCM at `rate` Hz -> the bytes of a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, "<i2").tobytes())
    return buf.getvalue()


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    """int16 mono PCM -> a WAV file."""
    Path(path).write_bytes(wav_bytes(pcm, rate))


class SpeechSink(Sink):
    """Speaks answers (see the module docstring). speak_to: directory for one `answer-<id>.wav` per spoken answer;
    play: also play each sentence as it is ready (aplay); engine: espeak-ng | festival; timer: a StageTimer that gets
    "tts_first_audio" (from an answer's first piece to its first synthesised sentence) and "tts" (per sentence).
    Raises MissingDependencyError when the engine (or aplay, to play) is missing."""

    def __init__(self, speak_to: str | Path | None = None, play: bool = False, engine: str = "espeak-ng", timer=None):
        synthesise("ok", engine)  # fail now, not at the first answer
        self.engine, self.timer = engine, timer
        self.speak_to = None if speak_to is None else Path(speak_to)
        if self.speak_to is not None:
            self.speak_to.mkdir(parents=True, exist_ok=True)
        self.player = shutil.which("aplay") if play else None
        if play and self.player is None:
            raise MissingDependencyError("playing spoken answers needs 'aplay'", hint="apt install alsa-utils")
        self._text: dict[int, str] = {}
        self._audio: dict[int, list[np.ndarray]] = {}
        self._rate = 22050
        self._first: dict[int, float] = {}
        self._alerts = 0
        self._play_q: queue.Queue = queue.Queue()
        self._proc = None
        self._stopped = threading.Event()
        self._player_thread = None
        if self.player is not None:
            self._player_thread = threading.Thread(target=self._play_loop, name="tts-player", daemon=True)
            self._player_thread.start()

    def question(self, q, t_s: float) -> None:
        self._text[q.id] = ""
        self._audio[q.id] = []
        self._first[q.id] = time.perf_counter()
        self._stopped.clear()

    def piece(self, q, text: str) -> None:
        done, rest = split_sentences(self._text.get(q.id, "") + text)
        self._text[q.id] = rest
        for s in done:
            self._say(q.id, s)

    def _say(self, qid: int, sentence: str) -> None:
        t0 = time.perf_counter()
        pcm, self._rate = synthesise(sentence, self.engine)
        if self.timer is not None:
            self.timer.add("tts", time.perf_counter() - t0)
            if qid in self._first:
                self.timer.add("tts_first_audio", time.perf_counter() - self._first.pop(qid))
        self._audio.setdefault(qid, []).append(pcm)
        if self.player is not None and not self._stopped.is_set():
            self._play_q.put((pcm, self._rate))

    def answered(self, record) -> None:
        rest = self._text.pop(record.id, "").strip()
        if record.error:
            rest = ""
        if rest:
            self._say(record.id, rest)
        audio = self._audio.pop(record.id, [])
        self._first.pop(record.id, None)
        if audio and self.speak_to is not None:
            name = f"answer-{record.id}.wav"
            write_wav(self.speak_to / name, np.concatenate(audio), self._rate)
            record.speech = name

    def alert(self, alert) -> None:
        """Say a watch's alert ("You are looking at the stove."): played, and written as alert-<n>.wav."""
        pcm, rate = synthesise(f"You are looking at {alert.watch}.", self.engine)
        self._alerts += 1
        if self.speak_to is not None:
            name = f"alert-{self._alerts}.wav"
            write_wav(self.speak_to / name, pcm, rate)
            alert.meta["speech"] = name
        if self.player is not None:
            self._play_q.put((pcm, rate))

    def speech_started(self, t_s: float | None) -> None:
        self.barge_in()

    def barge_in(self) -> None:
        """Stop what is being played and drop what waits to be played (a new spoken question)."""
        self._stopped.set()
        while not self._play_q.empty():
            try:
                self._play_q.get_nowait()
            except queue.Empty:
                break
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    def _play_loop(self) -> None:
        while True:
            item = self._play_q.get()
            if item is None:
                return
            pcm, rate = item
            self._proc = subprocess.Popen([self.player, "-q", "-"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                self._proc.communicate(wav_bytes(pcm, rate), timeout=120)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self._proc.kill()

    def close(self) -> None:
        if self._player_thread is not None:
            self._play_q.put(None)
            self._player_thread.join(timeout=5)
