"""Model commands: `convert-checkpoint` (authors' best_model.pt -> our safetensors checkpoint) and `demo` (the whole
spine on a synthetic clip with tiny random models)."""

from __future__ import annotations

from pathlib import Path

import typer

from gazeqwen_edge.cli.app import app, console
from gazeqwen_edge.cli.options import choice, float_option, new_output_dir, output_dir, seed_option
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
    src: Path = typer.Argument(
        ..., metavar="BEST_MODEL_PT", help="The authors' checkpoint (best_model.pt: a torch.save dict with state_dict)."
    ),
    dst: Path = typer.Argument(
        ...,
        metavar="OUT_DIR",
        callback=output_dir,
        help="Output directory (config.json + resampler.safetensors [+ lora files]).",
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
    force: bool = typer.Option(False, "--force", help="Write into OUT_DIR even if it already holds files."),
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
    "demo", short_help="Replay a built-in synthetic session through the streaming session with scripted questions."
)
def demo(
    seed: int = seed_option(0, "--seed", help="Seed of the synthetic scene (the wearer's scanpath and the objects)."),
    duration: float = float_option(20.0, "--duration", min=4.0, max=600.0, help="Length of the session in seconds."),
    max_new_tokens: int = typer.Option(16, min=1, max=MAX_NEW_TOKENS, help="Tokens to generate per answer."),
    out: Path = typer.Option(
        None, "--out", callback=new_output_dir, help="Keep the session directory here (default: none)."
    ),
) -> None:
    """The main job on a built-in demo: a synthetic egocentric session (a table scene, a wearer whose gaze moves
    between objects, 200 Hz gaze, 30 fps video) replayed through the streaming session with the demo model. Scripted
    questions ask what the wearer is looking at, with the ground truth from the scene generator; answers stream, and
    every stage is timed. The demo model is the tiny GazeQwen `make demo-model` trains from random weights on the
    synthetic gaze benchmark and ships in the package (2.7 MB): it names the gazed object in 94 % of held-out
    benchmark questions through the evaluator, and in 88 % of 511 held-out demo questions through the streaming
    session (chance: 25 %; README "Training and evaluation" says why the two differ)."""
    import tempfile

    from gazeqwen_edge.cli.runtime import model_window_s
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.runtime.demo import DEMO_QUESTION, demo_free_question, demo_questions
    from gazeqwen_edge.runtime.models import load_model
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.runtime.sinks import TerminalSink
    from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE

    scene = SyntheticScene(seed=seed, duration_s=duration, width=320, height=240, object_scale=DEFAULT_OBJECT_SCALE)
    questions = demo_questions(scene) + demo_free_question(scene, DEMO_QUESTION)
    n_mc = sum(1 for q in questions if q.options)
    console.print(
        f"[bold]demo session[/]: {duration:g} s synthetic scene {scene.width}x{scene.height}, seed {seed}; objects: "
        f"{', '.join(o.name for o in scene.objects)}; {n_mc} scripted multiple-choice question{'s' * (n_mc != 1)}"
        + (
            f" and {len(questions) - n_mc} open one{'s' * (len(questions) - n_mc != 1)}"
            if len(questions) > n_mc
            else ""
        )
    )
    gq = load_model("demo", sampling_fps=2.0)
    trained = (gq.meta or {}).get("val_accuracy")
    if trained is not None:
        console.print(
            "[dim]demo model: a tiny GazeQwen trained on the synthetic gaze benchmark by `make demo-model` "
            f"(validation accuracy {100 * trained:.1f} %; 88 % of 511 held-out demo questions right through the "
            f"streaming session, chance 25 %); context window {model_window_s(gq):g} s[/]"
        )
    else:
        console.print(
            "[dim]demo model: tiny and untrained, so its answers are noise; the stages and timings are real[/]"
        )
    with tempfile.TemporaryDirectory() as tmp:
        result = replay(
            scene,
            gq,
            SessionConfig(max_new_tokens=max_new_tokens, window_s=model_window_s(gq)),
            out or Path(tmp) / "demo",
            questions,
            sinks=[TerminalSink(console)],
            label="demo",
        )
    scored = [q for q in questions if q.options]
    asked = [r for r in result.records if r.options]  # a demo stopped with Ctrl-C scores only what it asked
    right = sum(1 for r in asked if r.answer == r.meta.get("answer"))
    free = [r for r in result.records if not r.options and r.meta.get("truth")]
    free_right = sum(1 for r in free if (r.answer or "").strip() == r.meta["truth"])
    n_opts = len(scored[0].options) if scored else 4
    stopped = (
        f"stopped after {len(asked)} of the {len(scored)} scripted multiple-choice questions; "
        if len(asked) < len(scored)
        else ""
    )
    console.print(
        f"\n{stopped}scripted multiple-choice questions answered right: {right} of {len(asked)} "
        f"(chance {100 / n_opts:.0f} %)"
        + (f"; open questions named the object: {free_right} of {len(free)}" if free else "")
    )
    console.print(gq.timer.table("stage timings (demo model, this machine)"))
