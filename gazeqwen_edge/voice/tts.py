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

from gazeqwen_edge.errors import DeviceError, MissingDependencyError
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


def player_command(device: str | None = None) -> list[str]:
    """The command that plays a WAV read from stdin: aplay (ALSA), quiet, on the PCM `device` (an `aplay -L` name
    such as 'plughw:1,0'; None: ALSA's default). MissingDependencyError (exit 4) when aplay is not installed."""
    aplay = shutil.which("aplay")
    if aplay is None:
        raise MissingDependencyError("playing spoken answers needs 'aplay'", hint="apt install alsa-utils")
    return [aplay, "-q", *(["-D", device] if device else []), "-"]


_PLAYER_PREFIX = re.compile(r"^(aplay: \w+:\d+: |ALSA lib [\w.]+:\d+:\(\w+\) )")


def _player_message(stderr: bytes) -> str:
    """aplay's reason in a few words: its last line without the source-location prefixes ('aplay: main:831: audio
    open error: ...'), or ALSA's "cannot find card" when that is the cause (a machine without sound)."""
    lines = [_PLAYER_PREFIX.sub("", ln.strip()) for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return "the player failed without a message"
    card = next((ln for ln in lines if ln.startswith("cannot find card")), None)
    message = lines[-1].replace("audio open error: ", "cannot open the device: ")
    return (f"no sound card ({card})" if card else message)[:300]


def check_output(command: list[str], timeout: float = 10.0) -> None:
    """Open the sound output the way answers will be played (`command` from player_command) with 50 ms of silence.
    DeviceError (exit 3) naming the device and the player's reason when it cannot be opened (no sound card, a wrong
    --speak-device, a device held by another program), so `--speak` fails at the start instead of staying silent."""
    where = f"'{command[command.index('-D') + 1]}'" if "-D" in command else "ALSA's default output"
    try:
        r = subprocess.run(
            command, input=wav_bytes(np.zeros(800, np.int16), 16000), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise DeviceError(
            f"the sound output ({where}) did not play 50 ms of silence within {timeout:g} s",
            hint="is another program holding it? pick an output with --speak-device NAME ('aplay -L' lists them)",
        ) from None
    if r.returncode != 0:
        raise DeviceError(
            f"no sound output for spoken answers on {where}: {_player_message(r.stderr)}",
            hint="pick an output with --speak-device NAME ('aplay -L' lists them), or write WAVs with --speak-to DIR",
        )


class SpeechSink(Sink):
    """Speaks answers (see the module docstring). speak_to: directory for one `answer-<id>.wav` per spoken answer;
    play: also play each sentence as it is ready (aplay, on `output_device`: an ALSA PCM name, None for the default);
    engine: espeak-ng | festival; timer: a StageTimer that gets "tts_first_audio" (from an answer's first piece to its
    first synthesised sentence) and "tts" (per sentence).

    Raises MissingDependencyError when the engine (or aplay, to play) is missing, DeviceError when the sound output
    cannot be opened (checked here with 50 ms of silence). A sentence that fails to play later (a headset unplugged)
    is reported once per message through `notify(kind, message)` when it is set (the CLI sets the session's notice:
    the terminal and the session log), counted in `play_failures`, and the next sentence is tried again."""

    def __init__(
        self,
        speak_to: str | Path | None = None,
        play: bool = False,
        engine: str = "espeak-ng",
        timer=None,
        output_device: str | None = None,
    ):
        synthesise("ok", engine)  # fail now, not at the first answer
        self.engine, self.timer = engine, timer
        self.speak_to = None if speak_to is None else Path(speak_to)
        self.player_cmd = player_command(output_device) if play else None
        if self.player_cmd is not None:
            check_output(self.player_cmd)
        if self.speak_to is not None:
            self.speak_to.mkdir(parents=True, exist_ok=True)
        self.notify = None
        self.play_failures = 0
        self._reported: set[str] = set()
        self._text: dict[int, str] = {}
        self._audio: dict[int, list[np.ndarray]] = {}
        self._rate = 22050
        self._first: dict[int, float] = {}
        self._alerts = 0
        self._play_q: queue.Queue = queue.Queue()
        self._proc = None
        self._stopped = threading.Event()
        self._player_thread = None
        if self.player_cmd is not None:
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
        if self.player_cmd is not None and not self._stopped.is_set():
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
        if self.player_cmd is not None:
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
            self._proc = proc = subprocess.Popen(
                self.player_cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                _, err = proc.communicate(wav_bytes(pcm, rate), timeout=120)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                proc.kill()
                _, err = proc.communicate()
            if proc.returncode != 0 and proc.returncode != -9:  # -9: killed by a barge-in
                self._play_failed(_player_message(err or b""))

    def _play_failed(self, message: str) -> None:
        self.play_failures += 1
        if message in self._reported:
            return
        self._reported.add(message)
        if self.notify is not None:
            try:
                self.notify("speech_failed", f"a spoken answer could not be played: {message}")
            except Exception:  # noqa: BLE001 - the player thread must go on with the next sentence
                pass

    def close(self) -> None:
        if self._player_thread is not None:
            self._play_q.put(None)
            self._player_thread.join(timeout=5)
