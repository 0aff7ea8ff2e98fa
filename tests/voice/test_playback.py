"""`--speak` through the real player: aplay and ALSA, with the default PCM pointed (by a ~/.asoundrc in a temporary
HOME) at ALSA's file plugin, so what would reach the loudspeaker is written to a file and compared with the synthesised
sentences; and a sound output that cannot be opened, which must be an error at the start, not silence."""

from __future__ import annotations

import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.errors import DeviceError
from tests.cli.helpers import cli

pytestmark = [
    pytest.mark.skipif(shutil.which("aplay") is None, reason="aplay is not installed (apt install alsa-utils)"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt install espeak-ng)"),
]


def alsa_default(home: Path, pcm: str) -> None:
    """Make `pcm` (an ALSA config block) the default PCM of every ALSA program started with HOME=home."""
    (home / ".asoundrc").write_text(f"pcm.!default {{\n{pcm}\n}}\n")


def to_file(played: Path) -> str:
    """ALSA's file plugin over the null device: the samples played are appended to `played`, raw, at once."""
    return f'type file\nslave.pcm "null"\nfile "|cat >> {played}"\nformat "raw"'


NO_CARD = "type hw\ncard 97"  # a card no machine has: opening it fails the way a machine without sound fails


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    return h


def _answer(sink, qid: int, pieces: list[str]):
    from gazeqwen_edge.runtime.questions import AnswerRecord, Question

    q = Question("What is that?", 0, id=qid)
    sink.question(q, 0.0)
    for p in pieces:
        sink.piece(q, p)
    rec = AnswerRecord(qid, q.text, 0.0, 0, "typed", answer="".join(pieces))
    sink.answered(rec)
    return rec


def _drain(sink, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (not sink._play_q.empty() or (sink._proc is not None and sink._proc.poll() is None)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)


def test_each_sentence_is_played_in_order_and_equals_the_written_answer(home, tmp_path):
    from gazeqwen_edge.voice.tts import SpeechSink, synthesise

    played = tmp_path / "played.raw"
    alsa_default(home, to_file(played))
    sink = SpeechSink(speak_to=tmp_path / "wav", play=True)
    check_bytes = played.stat().st_size  # the start's check played silence through the same path
    assert check_bytes > 0 and not played.read_bytes().strip(b"\x00")
    rec = _answer(sink, 3, ["It is a cup. ", "It is", " red."])
    _drain(sink)
    sink.close()

    first, rate = synthesise("It is a cup.")
    second, _ = synthesise("It is red.")
    raw = played.read_bytes()[check_bytes:]
    a, b = first.astype("<i2").tobytes(), second.astype("<i2").tobytes()
    assert raw.find(a) == 0, "the first sentence is not what was played first"
    j = raw.find(b, len(a))
    assert j >= len(a) and not raw[len(a) : j].strip(b"\x00"), "the second sentence does not follow the first"
    assert not raw[j + len(b) :].strip(b"\x00")  # nothing after it but the period's padding of silence
    with wave.open(str(tmp_path / "wav" / rec.speech)) as w:  # what was played is what --speak-to writes
        assert w.getframerate() == rate and w.readframes(w.getnframes()) == a + b
    assert sink.play_failures == 0


def test_no_sound_output_is_a_device_error_at_the_start(home, tmp_path):
    from gazeqwen_edge.voice.tts import SpeechSink

    alsa_default(home, NO_CARD)
    with pytest.raises(DeviceError, match="no sound output for spoken answers") as e:
        SpeechSink(play=True)
    assert "--speak-device" in e.value.hint and "--speak-to" in e.value.hint
    SpeechSink(speak_to=tmp_path / "wav")  # writing WAVs needs no sound card


def test_cli_refuses_a_missing_sound_output_before_the_model_loads(home, tmp_path, capsys, monkeypatch):
    import gazeqwen_edge.cli.runtime as rt

    monkeypatch.setattr(rt, "load", lambda *a, **k: pytest.fail("the model was loaded before the sound check"))
    alsa_default(home, NO_CARD)
    rc, _, err = cli(capsys, "replay", "synthetic:1", "--speak", "--no-voice", "--out", tmp_path / "r")
    assert rc == 3 and [ln[:6] for ln in err.splitlines()] == ["error:", "  hint"] and "no sound output" in err, err
    alsa_default(home, to_file(tmp_path / "played.raw"))  # the default works, a named device that does not exist fails
    rc, _, err = cli(
        capsys, "replay", "synthetic:1", "--speak", "--speak-device", "no_such_pcm", "--out", tmp_path / "r"
    )
    assert rc == 3 and "no sound output" in err and "no_such_pcm" in err, err
    rc, _, err = cli(capsys, "replay", "synthetic:1", "--speak-device", "default", "--out", tmp_path / "r")
    assert rc == 2 and "--speak-device needs --speak" in err, err
    assert not (tmp_path / "r").exists()


def test_a_sentence_that_fails_later_is_reported_once_and_the_next_is_tried(home, tmp_path):
    """A headset unplugged mid-session: each failed sentence is counted, the message is a notice once, and playing
    goes on when the output is back."""
    from gazeqwen_edge.voice.tts import SpeechSink

    played = tmp_path / "played.raw"
    alsa_default(home, to_file(played))
    sink = SpeechSink(play=True)
    notices = []
    sink.notify = lambda kind, message: notices.append((kind, message))
    alsa_default(home, NO_CARD)  # every aplay reads the configuration anew
    _answer(sink, 1, ["One. Two. "])
    _drain(sink)
    assert sink.play_failures == 2 and len(notices) == 1, notices
    assert notices[0][0] == "speech_failed" and "could not be played" in notices[0][1]
    before = played.stat().st_size
    alsa_default(home, to_file(played))
    _answer(sink, 2, ["Three. "])
    _drain(sink)
    sink.close()
    assert sink.play_failures == 2 and played.stat().st_size > before


def test_the_played_samples_are_the_synthesised_ones_not_a_resampled_copy(home, tmp_path):
    """The WAV handed to aplay carries the engine's own rate: the file plugin sees the same int16 samples."""
    from gazeqwen_edge.voice.tts import check_output, player_command, wav_bytes

    played = tmp_path / "played.raw"
    alsa_default(home, to_file(played))
    pcm = (np.sin(np.arange(2205) / 5.0) * 8000).astype(np.int16)
    import subprocess

    subprocess.run(player_command(), input=wav_bytes(pcm, 22050), check=True, timeout=10)
    assert played.read_bytes().startswith(pcm.astype("<i2").tobytes())
    check_output(player_command())  # and the start's check passes on this output
