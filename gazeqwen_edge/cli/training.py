"""`gazeqwen-edge train` (two-stage training, the demo model's pre-stage) and `gazeqwen-edge eval` (StreamGaze or the
synthetic benchmark under the reference, generation or option-text protocol, one model variant per run)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import typer
from rich.markup import escape

from gazeqwen_edge.cli.app import app, console, console_err
from gazeqwen_edge.cli.options import (
    WATCH_CHECKS,
    choice,
    float_option,
    new_output_dir,
    output_dir,
    output_file,
    run_output_dir,
    seed_option,
    torch_device,
)
from gazeqwen_edge.errors import ConfigError, InputError, one_line, write_bytes_atomic, write_error
from gazeqwen_edge.runtime.watches import DEFAULT_HOLD_S, IDENTIFY_THRESHOLD, YES_THRESHOLD

TINY_MAX_PIXELS = 224 * 224  # a new tiny model's pixel budget: 320x240 scenes -> 9 x 6 merged tokens per step
TINY_LLM = (4, 64)  # a new tiny model's LLM: decoder layers, hidden size (model/tiny.py)
TINY_VISION = (2, 32)  # a new tiny model's vision tower: blocks, width (model/tiny.py TINY_VISION; torch-free here)


LLM_SIZE = re.compile(r"([0-9]+)[xX]([0-9]+)")  # "4x128", ASCII digits only (int() takes any Unicode digit)


def parse_llm_size(text: str | None, option: str = "--tiny-llm", default=TINY_LLM, min_layers: int = 2):
    """ "LAYERSxHIDDEN" (e.g. "4x128") -> (layers, hidden) of a new tiny model's LLM (or, with option="--tiny-vision",
    min_layers=1, its vision tower); None -> `default`. ConfigError (exit 2) for anything else: min_layers-32 layers
    (the demo model injects into LLM layers 0 and 1), hidden a multiple of 32 in 32..1024 (the LLM's 4 attention heads
    split into Qwen's 3-D rotary sections; the vision tower's heads are 32 wide)."""
    if text is None:
        return default
    hint = f"e.g. {option} 4x128 ({min_layers}-32 layers, hidden 32-1024, a multiple of 32)"
    m = LLM_SIZE.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f"{option} {text!r} is not LAYERSxHIDDEN", hint=hint)
    n, h = int(m[1]), int(m[2])
    if not min_layers <= n <= 32 or not (32 <= h <= 1024 and h % 32 == 0):
        raise ConfigError(
            f"{option} {text!r} is not LAYERSxHIDDEN with {min_layers}-32 layers and hidden 32-1024, a multiple of 32",
            hint=hint,
        )
    return n, h


MODEL_HELP = (
    "'demo' (the shipped demo model), 'tiny' (a new random tiny GazeQwen, for training from scratch), a model "
    "directory (gazeqwen.json), or a Qwen2.5-VL hub id / directory (with --checkpoint for its gaze resampler)."
)


VIDEOS_DIR = typer.Option(None, "--videos", help="Directory of the videos (default: QA file's folder/videos).")
FIXATIONS_DIR = typer.Option(
    None, "--fixations", help="Directory of the fixation CSVs (default: QA folder/fixations, else beside videos)."
)


def _progress(what: str, show: bool = True):
    """A rich progress bar on stderr (none when stderr is not a terminal or `show` is False); returns (bar,
    update(done, total))."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console_err,
        disable=not (show and console_err.is_terminal),
        transient=False,
    )
    task = bar.add_task(what, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def _load_items(
    qa: Path,
    videos: Path | None,
    fixations: Path | None,
    split: Path | None,
    which: str | None,
    quiet: bool = False,
    tasks: set[str] | None = None,
    listed_in_results: bool = False,
):
    """The QAItems of a QA file (its skipped items listed unless `quiet`), of one split of `split` if given, and of
    the task types in `tasks` only if given (parse_tasks); listed_in_results: the caller writes every skipped item into
    its results.json (eval), which the listing then points to."""
    from gazeqwen_edge.training.streamgaze import load_streamgaze, read_split_file, select_split

    vids = videos if videos is not None else qa.parent / "videos"
    fix = (
        fixations
        if fixations is not None
        else (qa.parent / "fixations" if (qa.parent / "fixations").is_dir() else None)
    )
    items = load_streamgaze(qa, vids, fix)
    if split is not None:
        items = select_split(items, read_split_file(split), which or "test")
    if tasks is not None:
        from gazeqwen_edge.training.tasks import task_short

        absent = sorted({task_short(t) for t in tasks} - {task_short(it.task_type) for it in items.items})
        items.items = [it for it in items.items if it.task_type in tasks]
        if absent and not quiet:
            console_err.print(
                f"[yellow]warning[/] {escape(str(qa))} holds no {', '.join(absent)} question", highlight=False
            )
    if quiet:
        return items
    for p in items.problems[:10]:
        console_err.print(f"[yellow]skipped[/] {escape(str(p))}", highlight=False)
    if len(items.problems) > 10:
        # eval's results.json lists them all; with no usable item there is no run and no results.json
        where = " (all listed in results.json)" if listed_in_results and items.items else ""
        console_err.print(f"[yellow]skipped[/] ... {len(items.problems) - 10} more{where}")
    return items


def parse_tasks(text: str | None) -> set[str] | None:
    """--tasks "OI-E,GTA" -> the task types; None for all. ConfigError (exit 2) naming an unknown task."""
    if text is None:
        return None
    from gazeqwen_edge.errors import ConfigError
    from gazeqwen_edge.training.tasks import ALL_TASKS

    by_short = {short.lower(): t for t, (short, _) in ALL_TASKS.items()}
    out = set()
    for name in (x.strip() for x in text.split(",")):
        if not name:
            continue
        t = name if name in ALL_TASKS else by_short.get(name.lower())
        if t is None:
            shorts = ", ".join(short for short, _ in ALL_TASKS.values())
            raise ConfigError(f"unknown task {name!r} in --tasks", hint=f"short names: {shorts}")
        out.add(t)
    if not out:
        raise ConfigError("--tasks names no task", hint="e.g. --tasks OI-E,OI-H,GTA")
    return out


def _model(
    model: str,
    checkpoint: str | None,
    device: str,
    encoding: str,
    regime: str,
    max_pixels: int | None,
    llm_size: tuple[int, int] = TINY_LLM,
    vision_size: tuple[int, int] = TINY_VISION,
    gaze_mark: bool = False,
):
    from gazeqwen_edge.runtime.models import load_model

    if model == "tiny":
        from gazeqwen_edge.model.tiny import build_tiny_gazeqwen

        if checkpoint is not None:
            raise ConfigError(
                "--checkpoint is a gaze checkpoint for a Qwen2.5-VL --model; --model tiny builds a new model",
                hint="to start from a trained tiny model, give its directory as --model DIR",
            )

        kw = {"max_pixels": max_pixels or TINY_MAX_PIXELS}
        # injecting into layers 0 and 1: a residual after the last layer never reaches an answer (tiny.py)
        gq = build_tiny_gazeqwen(
            seed=0,
            gaze_encoding=encoding,
            regime=regime,
            injected_layers=(0, 1),
            vjepa_crop=128,
            hidden=llm_size[1],
            n_layers=llm_size[0],
            vision=vision_size,
            gaze_mark=gaze_mark,
            **kw,
        )
        gq.qwen.to(device)
        return gq
    return load_model(model, checkpoint, device=device)


@app.command("eval", short_help="Evaluate a model variant on StreamGaze or the synthetic benchmark.")
def eval_cmd(
    qa: Path = typer.Option(..., "--qa", help="QA JSON (StreamGaze format: a list of items with questions)."),
    videos: Path = VIDEOS_DIR,
    fixations: Path = FIXATIONS_DIR,
    out: Path = typer.Option(
        ...,
        "--out",
        callback=run_output_dir("items.jsonl"),
        help="Output directory: items.jsonl (resumable), results.json, results.md.",
    ),
    protocol: str = typer.Option(
        "auto",
        callback=choice("auto", "reference", "generation", "option_text"),
        help="reference (letter logits, GazeQwen's numbers) | generation (free text, letter extracted) | option_text "
        "(likelihood of each option's words) | auto (the model's own: option_text for the demo model).",
    ),
    variant: str = typer.Option(
        "gazeqwen",
        callback=choice("gazeqwen", "no_gaze", "visual_prompt", "gaze_text", "gazeqwen_reference", "gazeqwen_spatial"),
        help="How gaze reaches the model: gazeqwen (its resampler) | no_gaze | visual_prompt | gaze_text.",
    ),
    model: str = typer.Option("demo", help=MODEL_HELP),
    checkpoint: str = typer.Option(None, help="Gaze checkpoint directory for a Qwen2.5-VL --model."),
    clip: str = typer.Option(
        "auto",
        callback=choice("auto", "reference", "stream"),
        help="Clip policy: reference (window + fps rule, 8 frames) | stream (the runtime's 2 fps frames, as long as "
        "the model's stream training clips, else 60 s) | auto (the model's training policy).",
    ),
    split: Path = typer.Option(None, "--split", help="Split file (train/val/test video lists) to select from."),
    which: str = typer.Option("test", callback=choice("train", "val", "test"), help="Which split of --split."),
    limit: int = typer.Option(0, min=0, help="Evaluate only the first N items (0: all)."),
    tasks: str = typer.Option(
        None, "--tasks", help="Evaluate these tasks only: short names or task types, comma separated (default all)."
    ),
    batch_size: int = typer.Option(8, min=1, max=512, help="Items per forward (scoring protocols)."),
    cache_dir: Path = typer.Option(
        None, "--cache-dir", callback=output_dir, help="Keep the frozen encoders' outputs here."
    ),
    dev: str = typer.Option("cpu", "--torch-device", callback=torch_device, help="Torch device: cpu, cuda, ..."),
) -> None:
    """Evaluate one model variant on a QA file (StreamGaze format: the benchmark, or `dataset synthetic`'s splits).
    Accuracy per task, overall = mean of the task accuracies, proactive precision/recall/F1; results.json keeps one
    record per item with its prediction. Rerun with the same --out to resume."""
    from gazeqwen_edge.training.data import ClipConfig, model_cache_key
    from gazeqwen_edge.training.evaluate import evaluate_items
    from gazeqwen_edge.training.results import markdown_table

    items = _load_items(qa, videos, fixations, split, which, tasks=parse_tasks(tasks), listed_in_results=True)
    chosen = items.items[:limit] if limit else items.items
    if not chosen:
        raise InputError(
            qa,
            "holds no usable item" + (f" of the tasks asked ({tasks})" if tasks else ""),
            hint="see the skipped items above" if items.problems else "--tasks names the task types to evaluate",
        )
    gq = _model(model, checkpoint, dev, "spatial", "stream", None)
    meta = getattr(gq, "meta", {}) or {}
    train_clip = meta.get("train_config", {}).get("clip", {}) if isinstance(meta, dict) else {}
    if clip == "auto":
        clip_cfg = ClipConfig(**train_clip) if train_clip else ClipConfig()
    else:
        # a stream clip as long and as dense as the model's own stream training clips (the demo model's are 2 s):
        # the policy named, not other defaults
        trained = train_clip if clip == "stream" and train_clip.get("policy") == "stream" else {}
        rate = {k: trained[k] for k in ("stream_fps", "stream_max_s") if k in trained}
        clip_cfg = ClipConfig(policy=clip, scanpath="reference" if clip == "reference" else "stream", **rate)
    proto = protocol if protocol != "auto" else ("option_text" if gq.mc_protocol == "option_text" else "reference")
    header = {
        "model": model if checkpoint is None else f"{model}+{checkpoint}",
        "qa_file": str(qa.resolve()),
        "clip": dataclasses.asdict(clip_cfg),
        "skipped": [str(p) for p in items.problems],
    }
    bar, update = _progress("eval")
    with bar:
        summary = evaluate_items(
            gq,
            chosen,
            out,
            header,
            variant=variant,
            protocol=proto,
            clip=clip_cfg,
            batch_size=batch_size,
            cache_dir=cache_dir,
            model_key=model_cache_key(gq),
            progress=update,
        )
    label = json.loads((out / "results.json").read_text())["variant"]
    console.print(markdown_table({label: summary}), highlight=False)
    console.print(f"{len(chosen)} items ({len(items.problems)} skipped); results in {escape(str(out))}/results.json")


@app.command("eval-alerts", short_help="Gaze-triggered alerts (StreamGaze GTA) through the runtime's watch path.")
def eval_alerts_cmd(
    qa: Path = typer.Option(
        ..., "--qa", help="QA JSON with proactive_gaze_triggered_alert questions (StreamGaze format)."
    ),
    videos: Path = VIDEOS_DIR,
    fixations: Path = FIXATIONS_DIR,
    out: Path = typer.Option(
        ...,
        "--out",
        callback=run_output_dir("videos.jsonl"),
        help="Output directory: videos.jsonl (resumable), results.json, results.md.",
    ),
    model: str = typer.Option("demo", help=MODEL_HELP),
    checkpoint: str = typer.Option(None, help="Gaze checkpoint directory for a Qwen2.5-VL --model."),
    threshold: float = float_option(
        None,
        "--threshold",
        above=0.0,
        max=0.99,
        help="Score at which a watch says yes (default: the model's, as run and replay use it: "
        f"{IDENTIFY_THRESHOLD:g} for a model that answers in words, {YES_THRESHOLD:g} for p(Yes)).",
    ),
    hold: float = float_option(
        DEFAULT_HOLD_S, "--watch-hold", min=0.0, max=60.0, help="Seconds a yes must hold to alert."
    ),
    rearm: float = float_option(3.0, "--rearm", min=0.0, max=600.0, help="Seconds of no before a watch re-arms."),
    delay: float = float_option(
        1.5, "--delay", min=0.0, max=600.0, help="An alert is on time within this many seconds of the first gaze."
    ),
    fps: float = float_option(2.0, "--fps", min=0.1, max=30.0, help="Frames per second the model sees."),
    limit: int = typer.Option(0, min=0, help="Replay only the first N videos with GTA questions (0: all)."),
    truth: str = typer.Option(
        "auto",
        callback=choice("auto", "generator", "first-appearance"),
        help="generator: delays from the first fixation on the target and a control watch per object never fixated, "
        "from the synthetic benchmark's manifest.json beside --qa (refused without one); first-appearance: delays "
        "from the QA file's first_appearance (whole seconds), no controls; auto: generator where the manifest is.",
    ),
    detector: bool = typer.Option(
        True,
        "--detector/--no-detector",
        help="--detector: the session finds fixations with its online detector, fed the CSV's fixations as 200 Hz "
        "gaze, as a live session does (each known 105 ms after it begins); --no-detector: the CSV's fixations, each "
        "known once it ends, as replay reads a StreamGaze item.",
    ),
    watch_checks: str = WATCH_CHECKS,
    dev: str = typer.Option("cpu", "--torch-device", callback=torch_device, help="Torch device: cpu, cuda, ..."),
) -> None:
    """Replay each video of a QA file through the streaming session with one watch per gaze-triggered alert (GTA)
    question ("tell me when I look at X", added when it is asked), exactly as `replay --watch` runs, and score what the
    wearer would hear: at each test point the watch's last p(Yes) (StreamGaze's precision / recall / F1), and per
    watch whether its first alert came on time (within --delay of the first gaze at the target), early, late or
    never. On a synthetic benchmark, delays count from the first fixation on the target (the generator's truth) and
    a control watch on each object never fixated must stay silent. Appearance alerts (OAA) are not watches and are
    left out. Rerun with the same --out to resume."""
    from gazeqwen_edge.cli.runtime import model_window_s
    from gazeqwen_edge.runtime.alerts_eval import evaluate_alerts, markdown, watch_cases
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.runtime.watches import default_threshold
    from gazeqwen_edge.training.synthetic_benchmark import benchmark_watch_truth

    items = _load_items(qa, videos, fixations, None, None)
    videos_with, _ = watch_cases(items.items)
    if not videos_with:
        skipped = (  # the questions may be there but unusable (a wrong --fixations folder): say so, not "none"
            f" that could be used ({len(items.problems)} questions skipped, the first: {one_line(str(items.problems[0]))})"
            if items.problems
            else ""
        )
        raise InputError(
            qa,
            f"holds no gaze-triggered alert question{skipped}",
            hint="proactive_gaze_triggered_alert items (dataset synthetic) with their videos and fixation CSVs",
        )
    watch_truth = None if truth == "first-appearance" else benchmark_watch_truth(qa)
    if truth == "generator" and watch_truth is None:
        raise InputError(
            qa,
            "has no synthetic benchmark manifest.json beside it: the generator's truth is not known",
            hint="--truth first-appearance (or auto) measures from the QA file's first_appearance",
        )
    gq = _model(model, checkpoint, dev, "spatial", "stream", None)
    if limit:
        keep = {vc.video for vc in videos_with[:limit]}
        chosen = [it for it in items.items if it.video in keep]
    else:
        chosen = items.items
    config = SessionConfig(fps=fps, window_s=model_window_s(gq), max_new_tokens=16, watch_checks=watch_checks)
    header = {
        "model": model if checkpoint is None else f"{model}+{checkpoint}",
        "qa_file": str(qa.resolve()),
        "fps": fps,
        "limit": limit,
    }
    bar, update = _progress("alerts")
    with bar:
        doc = evaluate_alerts(
            gq,
            chosen,
            out,
            config,
            header,
            threshold=default_threshold(gq) if threshold is None else threshold,
            hold_s=hold,
            rearm_s=rearm,
            delay_s=delay,
            progress=update,
            truth=watch_truth,
            fixations="detector" if detector else "source",
        )
    console.print(markdown(doc), highlight=False, markup=False)
    console.print(f"results in {escape(str(out))}/results.json")


@app.command("train", short_help="Train the gaze resampler (stage 1), LoRA (stage 2) or a small LLM's pre-stage.")
def train_cmd(
    qa: Path = typer.Option(..., "--qa", help="Training QA JSON (e.g. a synthetic benchmark's train.json)."),
    val: Path = typer.Option(None, "--val", help="Validation QA JSON (default: val.json beside --qa, if any)."),
    out: Path = typer.Option(
        ...,
        "--out",
        callback=run_output_dir("last", "metrics.jsonl", "stage1"),
        help="Output directory: best/, last/ (resume), metrics.jsonl.",
    ),
    stage: str = typer.Option(
        "1",
        callback=choice("lm", "1", "2", "1+2", "joint"),
        help="lm | 1 | 2 | 1+2 (one after the other) | joint (LLM + resampler: small models from scratch).",
    ),
    objective: str = typer.Option(
        "letter",
        callback=choice("letter", "answer"),
        help="letter (reference: option-letter cross-entropy) | answer (the option's words; small models).",
    ),
    model: str = typer.Option("tiny", help=MODEL_HELP),
    checkpoint: str = typer.Option(None, help="Start from this gaze checkpoint (with a Qwen2.5-VL --model)."),
    gaze_encoding: str = typer.Option(
        None,
        callback=choice("reference", "spatial"),
        help="Resampler gaze encoding: of a new tiny model (default spatial), or switched on a loaded one (both "
        "encodings share the resampler's parameters).",
    ),
    max_pixels: int = typer.Option(None, min=28 * 28, help="Pixel budget per frame of a new tiny model (224x224)."),
    tiny_llm: str = typer.Option(
        None,
        "--tiny-llm",
        help="LLM of a new tiny model (--model tiny): LAYERSxHIDDEN, 2-32 layers, hidden 32-1024 and a multiple of "
        "32; default 4x64.",
    ),
    gaze_mark: bool = typer.Option(
        False,
        "--gaze-mark",
        help="Give a new tiny model's resampler the gaze mark: a learned vector added to each video token's residual "
        "by its closeness to the gaze (ours, not the reference's).",
    ),
    step_fixations: str = typer.Option(
        None,
        "--step-fixations",
        callback=choice("all", "latest"),
        help="Which fixations a temporal step gives the resampler: all it finds (the reference; a new tiny model's "
        "default) or only the latest (ours: the one looked at now); switched on a loaded model like "
        "--gaze-encoding.",
    ),
    clip: str = typer.Option("stream", callback=choice("reference", "stream"), help="Clip policy (see eval)."),
    clip_seconds: float = float_option(
        60.0, "--clip-seconds", above=0.0, max=3600.0, help="Longest clip of the stream policy, in seconds."
    ),
    epochs: int = typer.Option(3, min=1, max=1000, help="Epochs over the training items."),
    lr: float = float_option(3e-4, "--lr", above=0.0, max=1.0, help="Peak learning rate (AdamW, one-cycle cosine)."),
    batch_size: int = typer.Option(1, min=1, max=1024, help="Items per micro-batch."),
    grad_accum: int = typer.Option(8, min=1, max=1024, help="Micro-batches per optimizer step."),
    max_steps: int = typer.Option(0, min=0, help="Stop after this many optimizer steps (0: epochs decide)."),
    eval_every: int = typer.Option(0, min=0, help="Validate every N optimizer steps (0: every epoch)."),
    seed: int = seed_option(0, "--seed", help="Seed of shuffling, augmentation and initialisation."),
    no_gaze: bool = typer.Option(False, "--no-gaze", help="Train without feeding the scanpath (baselines)."),
    variant: str = typer.Option(
        "gazeqwen",
        callback=choice("gazeqwen", "no_gaze", "visual_prompt", "gaze_text"),
        help="How gaze reaches the model in training (baselines get the same training): gazeqwen | no_gaze | "
        "visual_prompt | gaze_text.",
    ),
    free_text: float = float_option(
        0.0, "--free-text", min=0.0, max=1.0, help="Share of items asked without options (answer objective)"
    ),
    tasks: str = typer.Option(
        None,
        "--tasks",
        help="Train (and validate) on these tasks only: short names or task types, comma separated "
        "(e.g. OI-E,OI-H,OAR,GTA,CTL-O,CTL-A,CTL-G; default all).",
    ),
    alert_pairs: bool = typer.Option(
        False,
        "--alert-pairs",
        help="Add two gaze-triggered-alert test points per object-identification item (a Yes about the gazed object, "
        "a No about another option): balanced data for the watches.",
    ),
    mixed_precision: str = typer.Option("no", callback=choice("no", "fp16", "bf16"), help="accelerate precision."),
    cache_dir: Path = typer.Option(
        None, "--cache-dir", callback=output_dir, help="Cache the frozen encoders' outputs (V-JEPA, vision)."
    ),
    dev: str = typer.Option(
        "cpu",
        "--torch-device",
        callback=torch_device,
        help="Torch device. Under accelerate launch, cuda means each process's own GPU (cuda:LOCAL_RANK).",
    ),
) -> None:
    """Train GazeQwen (REFERENCE.md section 1 defaults: AdamW 3e-4, wd 1e-2, 20 warm-up steps, batch 1 x 8, clip 1.0,
    label smoothing 0.1, scanpath noise 0.02 / drop 0.1, 3 epochs). Rerun with the same --out to resume from last/;
    best/ holds the model with the best validation accuracy.

    Several GPUs (data parallel): `accelerate launch --num_processes N -m gazeqwen_edge.training --torch-device cuda
    --qa ... --out ...` (or `torchrun --nproc_per_node N -m gazeqwen_edge.training ...`). Each process takes every N-th
    item of each epoch's shuffled order (cut to a multiple of N items), so --batch-size is per process (global batch
    N x batch x grad-accum); gradients are averaged over processes; only the first process prints, logs and saves. Several CPU processes:
    `accelerate launch --multi_gpu --num_processes N ... --torch-device cpu` (plain `--cpu --num_processes N` starts
    one process)."""
    from gazeqwen_edge.training.distributed import launch_env, process_device
    from gazeqwen_edge.training.run import train_stages

    main = launch_env().is_main  # the other processes of a launch print nothing
    dev = process_device(dev)
    vals = val if val is not None else (qa.parent / "val.json" if (qa.parent / "val.json").is_file() else None)
    chosen = parse_tasks(tasks)  # before anything loads: a typo is exit 2 at once
    llm_size = parse_llm_size(tiny_llm)
    if tiny_llm is not None and model != "tiny":
        raise ConfigError(
            f"--tiny-llm sizes a new tiny model, not {model!r}", hint="drop --tiny-llm, or use --model tiny"
        )
    if max_pixels is not None and model != "tiny":
        raise ConfigError(
            f"--max-pixels sets a new tiny model's pixel budget; {model!r} keeps the one it was trained with",
            hint="drop --max-pixels, or use --model tiny",
        )
    if gaze_mark and model != "tiny":
        raise ConfigError(
            f"--gaze-mark builds a new tiny model's resampler; {model!r} keeps the one it was trained with",
            hint="drop --gaze-mark, or use --model tiny",
        )
    train_items = _load_items(qa, None, None, None, None, quiet=not main, tasks=chosen)
    val_items = _load_items(vals, None, None, None, None, quiet=not main, tasks=chosen) if vals is not None else None
    if chosen is not None and not train_items.items:
        raise InputError(qa, f"holds no item of the tasks {tasks}", hint="see the task counts in its manifest.json")
    if alert_pairs:
        from gazeqwen_edge.training.tasks import alert_pairs as derive_alert_pairs

        train_items.items = train_items.items + derive_alert_pairs(train_items.items, seed)
    gq = _model(model, checkpoint, dev, gaze_encoding or "spatial", "stream", max_pixels, llm_size, gaze_mark=gaze_mark)
    if gaze_encoding is not None and gq.resampler is not None:
        gq.resampler.config.gaze_encoding = gaze_encoding
    if step_fixations is not None and gq.resampler is not None:
        gq.resampler.config.step_fixations = step_fixations
    bar, update = _progress("train", show=main)
    with bar:
        result = train_stages(
            gq,
            train_items.items,
            val_items.items if val_items else [],
            out,
            stage=stage,
            objective=objective,
            clip=clip,
            clip_seconds=clip_seconds,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            grad_accum=grad_accum,
            max_steps=max_steps,
            eval_every=eval_every,
            seed=seed,
            gaze=not no_gaze,
            free_text_p=free_text,
            variant=variant,
            mixed_precision=mixed_precision,
            cache_dir=cache_dir,
            model_name=model,
            progress=update,
            log=lambda rec: console.print(json.dumps(rec), highlight=False),
        )
    if not main:
        return
    best = "none (no validation items)" if result.best_val is None else f"{100 * result.best_val:.1f} %"
    console.print(f"{result.steps} optimizer steps; best validation accuracy {best}; model in {escape(str(out))}/best")


@app.command("train-vision", short_help="The tiny model's vision pre-stage: a vision tower that sees shapes.")
def train_vision_cmd(
    out: Path = typer.Option(
        ...,
        "--out",
        callback=new_output_dir,
        help="Output directory, new or empty: metrics.jsonl (a line per held-out evaluation), then at the end best/ "
        "(a model directory for train --model). Stopped early, it keeps no model.",
    ),
    tiny_llm: str = typer.Option(None, "--tiny-llm", help="LLM of the new tiny model: LAYERSxHIDDEN (default 4x64)."),
    tiny_vision: str = typer.Option(
        "4x64",
        "--tiny-vision",
        help="Its vision tower: BLOCKSxWIDTH, 1-32 blocks, width 32-1024 and a multiple of 32 (an untrained tiny "
        "model has 2x32).",
    ),
    max_pixels: int = typer.Option(None, min=28 * 28, help="Pixel budget per frame (224x224)."),
    steps: int = typer.Option(4000, min=1, max=10**6, help="Optimizer steps."),
    scenes: int = typer.Option(6000, min=1, max=10**6, help="Training scenes (2 samples each, rendered first)."),
    held_out: int = typer.Option(100, "--held-out", min=1, max=10**5, help="Held-out scenes for the accuracies."),
    batch_size: int = typer.Option(32, min=1, max=4096, help="Samples (temporal steps) per optimizer step."),
    lr: float = float_option(2e-3, "--lr", above=0.0, max=1.0, help="Peak learning rate (AdamW, one-cycle)."),
    seed: int = seed_option(0, "--seed", help="Seed of sample times, batch order and the head."),
    dev: str = typer.Option("cpu", "--torch-device", callback=torch_device, help="Torch device."),
) -> None:
    """Train a new tiny GazeQwen's vision tower to tell the colour and shape of the object under each video token of
    synthetic scenes no benchmark split holds (training/vision_pretrain.py), standing in for the pretrained tower of
    the real model; then `train --model OUT/best` trains the LLM and the resampler on top of it, frozen. A random
    tower keeps colour but not shape (benchmarks/vision_probe.py). About half an hour on 2 CPU cores with the defaults
    (29 min measured)."""
    from gazeqwen_edge.training.vision_pretrain import EVAL_EVERY, VisionPretrainConfig, pretrain_vision

    llm_size = parse_llm_size(tiny_llm)
    vision_size = parse_llm_size(tiny_vision, "--tiny-vision", TINY_VISION, min_layers=1)
    # pretrain_vision refuses a batch larger than the training samples before it renders or writes anything
    cfg = VisionPretrainConfig(steps=steps, scenes=scenes, held_out=held_out, batch_size=batch_size, lr=lr, seed=seed)
    gq = _model("tiny", None, dev, "spatial", "stream", max_pixels, llm_size, vision_size)
    console_err.print(
        f"rendering {scenes + held_out} scenes, then {steps} optimizer steps (held-out accuracies every {EVAL_EVERY})",
        markup=False,
    )
    bar, update = _progress("render + train")  # one bar: scenes rendered, then optimizer steps
    with bar:
        result = pretrain_vision(
            gq,
            out,
            cfg,
            render_progress=lambda done, _: update(done, scenes + steps),
            progress=lambda done, _: update(scenes + done, scenes + steps),
            log=lambda rec: console.print(json.dumps(rec), highlight=False),
        )
    console.print(
        f"held-out object tokens: colour {100 * result.colour_acc:.1f} %, shape {100 * result.shape_acc:.1f} % "
        f"(chance 12.5 %); model in {escape(str(result.model_dir))}",
        highlight=False,
    )


@app.command("eval-table", short_help="One table of several evaluations (variants side by side).")
def eval_table(
    results: list[Path] = typer.Argument(
        ..., metavar="RESULTS", help="Output directories of `eval` (or their results.json files)."
    ),
    out: Path = typer.Option(None, "--out", callback=output_file, help="Also write the table to this markdown file."),
) -> None:
    """Put the results of several `eval` runs side by side, one row per run (named by its variant, or by its model
    when two runs share a variant): accuracy per task, overall, control tasks, and proactive precision/recall/F1.
    Runs on different items (another QA file or limit) are refused: a table compares variants on the same items."""
    from gazeqwen_edge.training.results import markdown_table, read_results, summarise

    summaries, item_sets, seen = {}, {}, set()
    for r in results:
        path = r / "results.json" if r.is_dir() else r
        if path.resolve() in seen:
            raise InputError(r, "is given twice", hint="list each run once")
        seen.add(path.resolve())
        doc, items = read_results(path)
        name = str(doc.get("variant", path.parent.name))
        if name in summaries:
            name = f"{name} ({doc.get('model', path.parent.name)})"
        if name in summaries:  # the same variant of the same model twice: the runs' own paths tell them apart
            name = f"{doc.get('variant', path.parent.name)} ({r})"
        summaries[name] = summarise(items)
        item_sets[name] = {i.item_id for i in items}
    first = next(iter(item_sets.values()))
    other = [n for n, s in item_sets.items() if s != first]
    if other:
        raise InputError(
            results[0],
            f"was evaluated on other items than {', '.join(other)}",
            hint="evaluate every variant on one QA file",
        )
    text = markdown_table(summaries)
    console.print(text, highlight=False, markup=False)
    if out is not None:  # whole or not at all: a full disk leaves no cut table, and the error names the file
        try:
            write_bytes_atomic(out, text.encode("utf-8"))
        except OSError as e:
            raise write_error(out, "the table", e) from e
