"""Model commands: `convert-checkpoint` (authors' best_model.pt -> our safetensors checkpoint) and `demo` (the whole
spine on a synthetic clip with tiny random models)."""

from __future__ import annotations

from pathlib import Path

import typer

from gazeqwen_edge.cli.app import app, console
from gazeqwen_edge.cli.options import choice, float_option, output_dir, seed_option
from gazeqwen_edge.errors import ConfigError, InputError

MAX_NEW_TOKENS = 1024  # the tiny demo models answer in a few tokens; more only costs time


def _parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError as e:
        raise ConfigError(f"--injected-layers must be comma-separated integers like 6,13,20,27, got {text!r}") from e


@app.command(
    "convert-checkpoint",
    short_help="Convert the authors' best_model.pt into a gazeqwen-edge checkpoint directory.",
)
def convert_checkpoint(
    src: Path = typer.Argument(..., help="The authors' checkpoint (best_model.pt: a torch.save dict with state_dict)."),
    dst: Path = typer.Argument(
        ..., callback=output_dir, help="Output directory (config.json + resampler.safetensors [+ lora files])."
    ),
    injected_layers: str = typer.Option(
        None,
        "--injected-layers",
        help="Comma-separated LLM layers the resampler modules inject into (default 6,13,20,27 for the 7B model).",
    ),
    gaze_encoding: str = typer.Option(
        "reference",
        "--gaze-encoding",
        callback=choice("reference", "spatial"),
        help="Gaze encoding to record in the config: reference or spatial.",
    ),
    force: bool = typer.Option(False, "--force", help="Write into DST even if it already holds files."),
) -> None:
    """Convert a GazeQwen reference checkpoint to gazeqwen-edge's format (loaded with weights_only=True; every key
    and shape is checked)."""
    from gazeqwen_edge.model.checkpoint import convert_reference_checkpoint, load_checkpoint

    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())) and not force:
        raise InputError(dst, "already exists and is not empty", hint="choose another directory or pass --force")
    out = convert_reference_checkpoint(src, dst, _parse_layers(injected_layers), gaze_encoding)
    ck = load_checkpoint(out)  # read back what was written
    cfg = ck.resampler.config
    n = sum(p.numel() for p in ck.resampler.parameters())
    console.print(
        f"wrote {out}: {cfg.n_modules} resampler modules for layers {list(cfg.injected_layers)} of a "
        f"{cfg.n_llm_layers}-layer, {cfg.d_llm}-d LLM; {n / 1e6:.2f}M parameters"
        + (f"; LoRA with {len(ck.lora_state_dict)} tensors" if ck.lora_state_dict else "; no LoRA")
    )


@app.command(
    "demo", short_help="Run the model spine end to end on a synthetic clip (tiny random models) and time each stage."
)
def demo(
    seed: int = seed_option(0, "--seed", help="Seed of the synthetic scene and of the tiny models."),
    duration: float = float_option(
        8.0, "--duration", min=1.0, max=600.0, help="Clip length in seconds (the clip is held in memory)."
    ),
    max_new_tokens: int = typer.Option(16, min=1, max=MAX_NEW_TOKENS, help="Tokens to generate per answer."),
    gaze_encoding: str = typer.Option(
        "spatial", callback=choice("spatial", "reference"), help="Gaze encoding of the resampler: spatial or reference."
    ),
) -> None:
    """Run the whole model spine end to end on a generated synthetic clip with its scanpath: Qwen video
    preprocessing, Qwen vision tower, V-JEPA features, gaze resampler, prefill with injection, streamed decoding and
    option scoring. The models are tiny and random, so the answers are noise: this shows the plumbing and the time of
    each stage (a trained demo checkpoint makes it meaningful)."""
    import numpy as np
    import torch

    from gazeqwen_edge.calibration import FrameTransform, GazeMapper, ScanpathBuilder
    from gazeqwen_edge.device.records import Fixation, SceneFrame
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.model.gazeqwen import Video
    from gazeqwen_edge.model.tiny import build_tiny_gazeqwen
    from gazeqwen_edge.timing import StageTimer

    timer = StageTimer()
    with timer.stage("synthetic clip"):
        scene = SyntheticScene(seed=seed, duration_s=duration, width=320, height=240, fps=10, gaze_hz=200)
        frames, fixations = [], []
        for rec in scene.records(kinds={SceneFrame, Fixation}):
            (frames if isinstance(rec, SceneFrame) else fixations).append(rec)
        video = Video(np.stack([f.rgb for f in frames]), fps=scene.fps)
        width, height = scene.scene_size
        # the runtime's path: fixations -> [x, y, mid_t, dur] rows normalised to the frames Qwen is given
        rows = ScanpathBuilder(GazeMapper(None, FrameTransform.identity(width, height)), origin_ns=scene.start_ns)
        rows.extend(fixations)
        scanpath = rows.rows()
    with timer.stage("build tiny models"):
        gq = build_tiny_gazeqwen(seed=seed, gaze_encoding=gaze_encoding, perturb=0.05, timer=timer)
    torch.manual_seed(seed)

    console.print(
        f"[bold]synthetic clip[/]: {len(frames)} frames {width}x{height} at {scene.fps:g} fps, "
        f"{len(scanpath)} fixations; objects: {', '.join(o.name for o in scene.objects)}"
    )
    if scene.looked_at:
        last = scene.looked_at[-1]
        console.print(f"ground truth: the last object looked at is the [bold]{last[2]}[/]")
    console.print("[dim]tiny random weights: the answers below are noise; the stages and their timings are real[/]")

    for question, sp, label in (
        ("What am I looking at?", scanpath, "with gaze"),
        ("What am I looking at?", None, "no gaze (plain Qwen2.5-VL)"),
    ):
        console.print(f"\n[bold cyan]Q ({label}):[/] {question}\n[bold green]A:[/] ", end="")
        for piece in gq.answer(video, sp, question, max_new_tokens=max_new_tokens):
            console.print(piece, end="", markup=False, highlight=False)
        console.print()

    names = [o.name for o in scene.objects][:4]
    options = [f"{chr(65 + i)}. {n}" for i, n in enumerate(names)]
    scores = gq.score_options(video, scanpath, "Which object did I look at last?", options)
    best = max(scores, key=scores.get)
    console.print(
        "\n[bold cyan]Q (option scoring):[/] Which object did I look at last? "
        + "  ".join(f"{k}: {v:+.3f}" for k, v in scores.items())
        + f"  -> {best}"
    )
    console.print(timer.table("stage timings (tiny models, CPU)"))
