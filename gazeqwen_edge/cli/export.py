"""`gazeqwen-edge export`: one verified edge bundle (4-bit LLM, ONNX encoder + resampler, optional TensorRT engines)
that `run` and `replay` load with `--bundle`; `export --plan`: the memory plan of the real 7B runtime."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.markup import escape

from gazeqwen_edge.cli.app import app, console, console_err
from gazeqwen_edge.cli.options import choice, float_option, new_output_dir
from gazeqwen_edge.errors import OUTPUT_ERRNOS, DeviceError, disk_hint, one_line

QUANT_HELP = "LLM weights: nf4 (bitsandbytes 4-bit, double quantisation; vision tower and lm_head kept) | none."


@app.command("export", short_help="Build an edge bundle (NF4 LLM + ONNX gaze path), or print the memory plan.")
def export(
    out: Path = typer.Argument(
        None,
        metavar="OUT",
        callback=new_output_dir,
        help="The bundle directory to create (new or empty). Not needed with --plan.",
    ),
    model: str = typer.Option("demo", help="Qwen2.5-VL hub id or directory, a model directory, or 'demo'."),
    checkpoint: str = typer.Option(None, help="Gaze checkpoint directory for a Qwen2.5-VL --model."),
    quant: str = typer.Option("nf4", callback=choice("nf4", "none"), help=QUANT_HELP),
    compute_dtype: str = typer.Option(
        "bfloat16",
        "--compute-dtype",
        callback=choice("bfloat16", "float16", "float32"),
        help="dtype the NF4 matmuls compute in (float16 on Jetson Orin / Turing, bfloat16 on Ampere+).",
    ),
    source_dtype: str = typer.Option(
        "float32",
        "--source-dtype",
        callback=choice("float32", "bfloat16", "float16"),
        help="dtype the source model is loaded in (bfloat16 for a 7B: in float32 it takes ~33 GB of host memory).",
    ),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Export and verify the encoder + resampler ONNX graphs."),
    tensorrt: bool = typer.Option(
        False, "--tensorrt", help="Also build TensorRT engines for this machine's GPU (needs tensorrt + CUDA)."
    ),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Load the bundle back and compare it with the source model."
    ),
    plan: bool = typer.Option(
        False, "--plan", help="Print the memory plan of the real Qwen2.5-VL-7B + V-JEPA 2.1 runtime and exit."
    ),
    fps: float = float_option(2.0, "--fps", min=0.1, max=30.0, help="Model frames per second (for --plan)"),
    context: float = float_option(60.0, "--context", above=0.0, max=3600.0, help="Seconds of video context (--plan)"),
    as_json: bool = typer.Option(False, "--json", help="With --plan: print the plan as JSON."),
) -> None:
    """Export a GazeQwen for the edge: the LLM quantised to NF4 and saved pre-quantised, the V-JEPA encoder and the
    gaze resampler as ONNX graphs (verified against PyTorch), optional TensorRT engines, all listed with their sha256
    in manifest.json. The bundle is loaded back and compared with the source model before the manifest is written.

    Example: gazeqwen-edge export bundles/demo  (then: gazeqwen-edge replay synthetic --bundle bundles/demo)."""
    if plan:
        _print_plan(fps, context, as_json)
        return
    if out is None:
        from gazeqwen_edge.errors import ConfigError

        raise ConfigError("give the bundle directory to create (OUT), or --plan for the memory plan")
    from gazeqwen_edge.export.bundle import write_bundle
    from gazeqwen_edge.runtime.models import load_model

    rebuild = "gazeqwen-edge export " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    if not sys.argv[2:] or sys.argv[1] != "export":  # called as a function (tests): rebuild from the options
        rebuild = _rebuild_command(out, model, checkpoint, quant, compute_dtype, onnx, tensorrt, source_dtype)
    say = (lambda msg: console_err.print(f"[dim]{escape(msg)} ...[/]")) if console_err.is_terminal else None
    gq = load_model(model, checkpoint, device="cpu", dtype=source_dtype, injection="hooks")
    try:
        manifest = write_bundle(
            gq,
            out,
            source={"model": model, "checkpoint": checkpoint},
            rebuild=rebuild,
            quant=quant,
            compute_dtype=compute_dtype,
            onnx=onnx,
            tensorrt=tensorrt,
            verify=verify,
            progress=say,
        )
    except OSError as e:  # the disk refused the bundle: write_bundle removed what it wrote
        if e.errno not in OUTPUT_ERRNOS:
            raise
        raise DeviceError(
            f"cannot write the bundle {one_line(str(out))}: {e.strerror or e}",
            hint=disk_hint(e.errno, "that disk") + "; the unfinished bundle was removed, so the same command can run "
            "again",
        ) from None
    _print_summary(out, manifest)


def _rebuild_command(out, model, checkpoint, quant, compute_dtype, onnx, tensorrt, source_dtype) -> str:
    parts = ["gazeqwen-edge", "export", str(out), "--model", model, "--quant", quant, "--compute-dtype", compute_dtype]
    if source_dtype != "float32":
        parts += ["--source-dtype", source_dtype]
    if checkpoint:
        parts += ["--checkpoint", checkpoint]
    if not onnx:
        parts.append("--no-onnx")
    if tensorrt:
        parts.append("--tensorrt")
    return " ".join(shlex.quote(p) for p in parts)


def _print_summary(out: Path, manifest: dict) -> None:
    files = manifest["files"]
    total = sum(f["bytes"] for f in files.values())
    q = manifest["quantization"]
    console.print(f"wrote {escape(one_line(str(out)))}: {len(files)} files, {total / 1e6:.1f} MB, LLM {q['method']}")
    for name, g in (manifest.get("onnx") or {}).items():
        worst = max((g.get("max_abs_diff") or {}).values(), default=float("nan"))
        console.print(f"  onnx {name}: max |onnx - torch| {worst:.1e} over {len(g.get('max_abs_diff') or {})} cases")
    v = (manifest.get("verification") or {}).get("llm_vs_source")
    if v:
        console.print(
            f"  bundle vs source model: max |logit diff| {v['max_abs_logit_diff']:.3g} (logits up to "
            f"{v['logit_scale']:.3g}), top token {'agrees' if v['top1_agrees'] else 'DIFFERS'}, greedy answer "
            f"{'identical' if v['answer_equal'] else 'differs'}"
        )
    console.print(f"  load it with: gazeqwen-edge replay synthetic --bundle {escape(str(out))}")


def _print_plan(fps: float, context: float, as_json: bool) -> None:
    import json

    from gazeqwen_edge.export.plan import memory_plan, render_plan

    p = memory_plan(fps=fps, context_s=context)
    if as_json:
        print(json.dumps(p, indent=2))
    else:
        print(render_plan(p))
