"""`gazeqwen-edge replay`: the streaming session on a recorded or synthetic source, questions from a file."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from gazeqwen_edge.cli.app import app, console

MODEL_HELP = "Qwen2.5-VL hub id or local directory; 'demo' (default) is the built-in tiny model."


def session_config(fps: float, chunk: float, window: float, max_new_tokens: int, fixations: str, prompt: str):
    """The SessionConfig of the shared run/replay options (window 0 = keep all)."""
    from gazeqwen_edge.runtime.session import SessionConfig

    return SessionConfig(
        fps=fps,
        chunk_s=chunk,
        window_s=window or None,
        max_new_tokens=max_new_tokens,
        fixations=fixations,
        prompt=prompt,
    )


def default_out_dir(kind: str) -> Path:
    """runs/<kind>-YYYYmmdd-HHMMSS (a new directory for every session)."""
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def print_summary(result_stats, out_dir: Path | None, timer) -> None:
    s = result_stats
    console.print(
        f"\n{s.answered} of {s.questions} questions answered ({s.failed} could not be); "
        f"{s.chunks_prefilled} chunks prefilled, {s.chunks_skipped} skipped; "
        f"{s.records.get('GazeSample', 0)} gaze samples, {s.records.get('SceneFrame', 0)} scene frames "
        f"({s.model_frames} to the model)",
        highlight=False,
        soft_wrap=True,
    )
    if out_dir is not None:
        console.print(f"session written to {out_dir} (answers in {out_dir / 'answers.jsonl'})", highlight=False)
    console.print(timer.table("stage timings"))


@app.command("replay", short_help="Replay a recording through the streaming session, asking questions from a file.")
def replay(
    source: str = typer.Argument(
        ..., help="A Neon recording, Pupil Cloud export, session dir, StreamGaze item or synthetic[:SEED]."
    ),
    questions: Path = typer.Option(
        None, "--questions", "-q", help="JSONL {t, question, options?} per line, or a StreamGaze QA JSON."
    ),
    speed: str = typer.Option(
        "max", help="max (as fast as the model goes, nothing skipped), or N x real time (1 = live pace)."
    ),
    out: Path = typer.Option(None, "--out", help="Session directory to write (default: runs/replay-<time>)."),
    model: str = typer.Option("demo", help=MODEL_HELP),
    checkpoint: str = typer.Option(
        None, help="Gaze checkpoint directory (ours, or converted with convert-checkpoint)."
    ),
    wearer: str = typer.Option(
        None, help="Apply this wearer's stored offset (calibrate offset) instead of the source's."
    ),
    fps: float = typer.Option(2.0, help="Model frames per second taken from the scene camera."),
    chunk: float = typer.Option(1.0, help="Seconds of video per prefilled chunk."),
    window: float = typer.Option(60.0, help="Seconds of video kept in the model's context (0 = all)."),
    max_new_tokens: int = typer.Option(64, min=1, help="Longest generated answer, in tokens."),
    fixations: str = typer.Option("auto", help="auto | detector (ours, on the gaze) | source (the recording's own)."),
    prompt: str = typer.Option("reference", help="Multiple-choice prompt: reference (the released one) | instruction."),
    device: str = typer.Option("cpu", help="Torch device for the model: cpu, cuda, cuda:1..."),
) -> None:
    """Replay SOURCE through the streaming session (the same code as `run` on a live device): the video is prefilled
    as it arrives, questions of the file are asked at their times, answers stream to the terminal and are written to
    OUT/answers.jsonl with the whole session (gaze, fixations, scene video, events)."""
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.runtime.models import load_model
    from gazeqwen_edge.runtime.replay import parse_speed
    from gazeqwen_edge.runtime.replay import replay as run_replay
    from gazeqwen_edge.runtime.sinks import TerminalSink

    pace = parse_speed(speed)
    cfg = session_config(fps, chunk, window, max_new_tokens, fixations, prompt)
    out_dir = out or default_out_dir("replay")
    gq = load_model(model, checkpoint, device=device, sampling_fps=fps)
    with open_source(source) as src:
        result = run_replay(src, gq, cfg, out_dir, questions, pace, [TerminalSink(console)], wearer=wearer, spec=source)
    print_summary(result.stats, result.out_dir, gq.timer)
