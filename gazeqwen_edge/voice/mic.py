"""A local microphone as the source of spoken questions (`run --mic`): for glasses whose audio stream is off, or a
headset the wearer prefers.

    mic = Microphone(clock_ns=source.now_ns)   # stamps on the records' clock (the Neon's, by time echo)
    mic.start(push)                           # push(AudioChunk) from the microphone's own thread
    mic.stop()                                # stops the stream and joins that thread: no push after it returns

sounddevice (PortAudio) delivers 32 ms blocks of 16 kHz mono float32 in its callback, which only copies the block
with its time stamp into a bounded queue (a PortAudio callback must not block); a thread hands the blocks on, where
the voice activity detection runs. A block's time stamp is when its first sample was captured: the clock's now at
the callback minus the block's age (PortAudio's `currentTime - inputBufferAdcTime`), so a question's time is when
its speech started on the same clock as the gaze and the video. Blocks that found the queue full and PortAudio's
input overflows are counted (`dropped`, `overflows`), never waited for.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from gazeqwen_edge.device.records import AudioChunk
from gazeqwen_edge.errors import DeviceError, MissingDependencyError

MIC_RATE = 16_000  # Hz: what Silero VAD and Whisper take, so nothing is resampled
MIC_BLOCK = 512  # samples: 32 ms, one Silero VAD frame at 16 kHz
QUEUE_BLOCKS = 256  # ~8 s of audio waiting for the VAD before blocks are dropped
INSTALL_HINT = "pip install 'gazeqwen-edge[speech]' (sounddevice) and the PortAudio library (apt install libportaudio2)"


def load_sounddevice():
    """The sounddevice module; MissingDependencyError (exit 4) when it or the PortAudio library is missing."""
    try:
        import sounddevice
    except ImportError as e:
        raise MissingDependencyError(f"--mic needs sounddevice ({e})", hint=INSTALL_HINT) from None
    except OSError as e:  # sounddevice imports, but PortAudio (the C library) is not there
        raise MissingDependencyError(f"--mic needs the PortAudio library ({e})", hint=INSTALL_HINT) from None
    return sounddevice


class Microphone:
    """A local input device as AudioChunks (16 kHz mono float32, MIC_BLOCK samples each) stamped on `clock_ns`
    (unix ns; default this machine's clock). device: a PortAudio device index or a substring of its name (None: the
    system's default input). sd: the sounddevice module (tests pass a stand-in)."""

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.time_ns,
        device: int | str | None = None,
        rate: int = MIC_RATE,
        block: int = MIC_BLOCK,
        sd=None,
    ):
        self.clock_ns, self.device, self.rate, self.block = clock_ns, device, int(rate), int(block)
        self._sd = sd
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._stream = None
        self._thread: threading.Thread | None = None
        self.blocks = 0  # delivered
        self.dropped = 0  # found the queue full
        self.overflows = 0  # PortAudio's input overflow flag
        self.name = ""

    def check(self) -> Microphone:
        """Look the input device up without opening it (sets `name`). DeviceError (exit 3) when there is no such input
        device; MissingDependencyError (exit 4) without sounddevice or PortAudio."""
        sd = self._sd = self._sd or load_sounddevice()
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as e:
            raise self._device_error(e) from None
        self.name = str(info.get("name", "")) if isinstance(info, dict) else str(info)
        return self

    def _device_error(self, e: Exception) -> DeviceError:
        which = "the default input" if self.device is None else f"input device {self.device!r}"
        return DeviceError(
            f"cannot open {which} for --mic ({e})",
            hint="list the inputs with: python -m sounddevice; choose one with --mic-device",
        )

    def start(self, push: Callable[[AudioChunk], None]) -> Microphone:
        """Open and start the input stream (after `check`); blocks go to `push` from a thread of their own.
        DeviceError (exit 3) when the device is not there or cannot be opened; MissingDependencyError (exit 4)
        without sounddevice."""
        sd = self.check()._sd
        try:
            self._stream = sd.InputStream(
                samplerate=self.rate,
                blocksize=self.block,
                channels=1,
                dtype="float32",
                device=self.device,
                callback=self._callback,
            )
            self._stream.start()
        except (ValueError, sd.PortAudioError) as e:
            self._stream = None
            raise self._device_error(e) from None
        self._thread = threading.Thread(target=self._run, args=(push,), name="mic", daemon=True)
        self._thread.start()
        return self

    def _callback(self, indata, frames, time_info, status) -> None:
        """PortAudio's thread: copy the block and its capture time into the queue; never block."""
        now = self.clock_ns()
        age_s = 0.0
        adc, current = getattr(time_info, "inputBufferAdcTime", 0.0), getattr(time_info, "currentTime", 0.0)
        if adc and current and 0.0 <= current - adc < 1.0:  # some hosts report 0 (unknown); a clock jump is not an age
            age_s = current - adc
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        pcm = np.array(indata[:, 0] if np.ndim(indata) == 2 else indata, dtype=np.float32, copy=True)
        try:
            self._queue.put_nowait(AudioChunk(now - int(round(age_s * 1e9)), pcm, self.rate))
        except queue.Full:
            self.dropped += 1

    def _run(self, push) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            self.blocks += 1
            push(chunk)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and close the stream, hand on the blocks already captured, and join the thread (idempotent)."""
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
