"""Spoken question to first spoken word, split into its stages, on a recorded session replayed at real time.

The session: 8 s of the demo scene (160x120) with the Festival fixture "What am I looking at?" in the Neon microphone
at 3 s (8 kHz, a quiet room's noise), replayed at 1x real time through the streaming session with spoken questions
(Silero VAD + faster-whisper tiny.en, int8, CPU) and spoken answers (espeak-ng), the tiny random demo model answering.
Stages, each measured on its own, in order:
- end of speech -> VAD closes the utterance: the silence the detector waits for (600 ms) plus its delivery;
- speech recognition (faster-whisper);
- question -> first token: its wait for the model, prompt, prefill and first token (`ttft_ms`);
- first token -> first sentence synthesised: decoding until a sentence is complete, then the TTS (the tiny model's
  answers have no sentence end, so here this runs to the end of the answer);
and the end to end: from the end of the speech to the first audio ready to play. There are no targets (the issue
gives none): the figures are for choosing hardware and settings.
    .venv/bin/python benchmarks/voice_latency.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

MODEL = "tiny GazeQwen (random), faster-whisper tiny.en int8, espeak-ng"


def measure(workdir: Path) -> dict:
    """One replay at 1x of the spoken session: {stage: ms}."""
    from gazeqwen_edge.cli.runtime import voice_factory
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import Session, SessionConfig
    from gazeqwen_edge.voice.asr import Transcriber
    from gazeqwen_edge.voice.tts import SpeechSink
    from tests.voice.test_voice import _session_with_speech

    src_dir = _session_with_speech(workdir, 3.0)
    gq = build_tiny_gazeqwen(seed=0, gaze_encoding="spatial", perturb=0.5, sampling_fps=2.0)
    marks: dict[str, float] = {}
    audio_wall: list[tuple[int, float]] = []
    push = Session._push_voice

    def timed_push(self, chunk):
        audio_wall.append((chunk.ts_ns + chunk.duration_ns, time.perf_counter()))  # the chunk's end is here now
        push(self, chunk)

    transcribe = Transcriber.transcribe

    def timed_transcribe(self, pcm):
        marks.setdefault("asr_start", time.perf_counter())
        out = transcribe(self, pcm)
        marks.setdefault("asr_end", time.perf_counter())
        return out

    class FirstAudio(SpeechSink):
        def _say(self, qid, sentence):
            super()._say(qid, sentence)
            marks.setdefault("first_audio", time.perf_counter())

    Session._push_voice, Transcriber.transcribe = timed_push, timed_transcribe
    try:
        with open_source(src_dir) as src:
            result = replay(
                src,
                gq,
                SessionConfig(max_new_tokens=8),
                workdir / "s",
                [],
                speed=1.0,
                sinks=[FirstAudio(speak_to=workdir / "wav")],
                voice=voice_factory(True, "tiny.en", lockstep=False),
            )
    finally:
        Session._push_voice, Transcriber.transcribe = push, transcribe
    rec = next(r for r in result.records if r.source == "voice")
    end_ns = rec.meta["speech_end_ns"]
    speech_end = next(w for ts, w in audio_wall if ts >= end_ns)
    first_token = rec.ttft_ms / 1e3
    arrived = marks["asr_end"]  # the question is asked as soon as it is recognised
    return {
        "end of speech -> VAD closes": (marks["asr_start"] - speech_end) * 1e3,
        "speech recognition": (marks["asr_end"] - marks["asr_start"]) * 1e3,
        "question -> first token": rec.ttft_ms,
        "first token -> first audio (decode + TTS)": (marks["first_audio"] - arrived - first_token) * 1e3,
        "end of speech -> first audio": (marks["first_audio"] - speech_end) * 1e3,
    }


def rows(quick: bool, device: str = "cpu") -> list[dict]:
    """The stages and the end to end as benchmarks/suite.py rows (medians of 1 run quick, else 3); no targets."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt install espeak-ng)")
    runs = []
    for _ in range(1 if quick else 3):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(measure(Path(tmp)))
    out = []
    for name in runs[0]:
        v = statistics.median(r[name] for r in runs)
        out.append({"group": "spoken question", "figure": name, "value": v, "unit": "ms", "shown": f"{v:.0f} ms"})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="replays (median)")
    args = ap.parse_args()
    runs = []
    for _ in range(max(1, args.runs)):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(measure(Path(tmp)))
    print(f"spoken question -> first spoken word ({MODEL}; median of {len(runs)} replays at 1x)")
    for name in runs[0]:
        print(f"  {name:44s} {statistics.median(r[name] for r in runs):8.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
