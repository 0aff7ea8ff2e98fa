"""`gazeqwen-edge profile` (one session with every stage timed: JSON + HTML report) and `gazeqwen-edge profile
compare A.json B.json` (two reports side by side)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from gazeqwen_edge.cli.app import HelpGroup, app, console, console_err
from gazeqwen_edge.cli.options import float_option, new_output_dir, seed_option
from gazeqwen_edge.cli.runtime import (
    ASR_MODEL,
    BUNDLE,
    CHECKPOINT,
    CHUNK,
    FIXATIONS,
    FPS,
    GAZE_SETTLE,
    INJECTION,
    MODEL,
    PROMPT,
    QUESTION_VIEW,
    TORCH_DEVICE,
    VOICE,
    WINDOW,
    load,
    model_window_s,
    session_config,
    voice_factory,
)

profile_app = typer.Typer(
    cls=HelpGroup,
    help="Profile a session stage by stage (JSON + HTML report), or compare two profiles.",
    no_args_is_help=False,
    subcommand_metavar="[compare A B]",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(profile_app, name="profile")

LIVE_PREFIXES = ("simulator", "neon://", "pupil-neon")


@profile_app.callback(invoke_without_command=True)
def profile(
    ctx: typer.Context,
    source: str = typer.Option(
        "demo",
        "--source",
        help="demo (the demo's synthetic scene), simulator[:SOURCE] or neon://HOST:PORT / pupil-neon (live), or any "
        "SOURCE replay reads.",
    ),
    questions: Path = typer.Option(
        None, "--questions", "-q", help="JSONL {t, question, options?} per line, or a StreamGaze QA JSON."
    ),
    every: float = float_option(
        3.0, "--every", min=0.1, max=3600.0, help="Without --questions: an open question every this many seconds"
    ),
    speed: str = typer.Option(
        "1", help="Replay pace: 1 = real time (as live; the default), N x (0.05 to 1000), or max or 0 (lockstep)."
    ),
    duration: float = float_option(
        0.0,
        "--duration",
        min=0.0,
        max=86400.0,
        help="Seconds: the demo scene's length (0: 20 s) or a live source's run (0: the last question + 8 s)",
    ),
    seed: int = seed_option(0, "--seed", help="Seed of the demo scene."),
    preset: str = typer.Option(
        "auto", help="Device decode bandwidth is judged against: auto (the model's device), agx-orin, orin-nx, ..."
    ),
    out: Path = typer.Option(
        None, "--out", callback=new_output_dir, help="Report directory (default runs/profile-<time>)."
    ),
    model: str = MODEL,
    checkpoint: str = CHECKPOINT,
    bundle: Path = BUNDLE,
    injection: str = INJECTION,
    fps: float = FPS,
    chunk: float = CHUNK,
    window: float = WINDOW,
    max_new_tokens: int = typer.Option(16, min=1, max=4096, help="Longest generated answer, in tokens."),
    fixations: str = FIXATIONS,
    prompt: str = PROMPT,
    question_view: bool = QUESTION_VIEW,
    gaze_settle: bool = GAZE_SETTLE,
    torch_device_: str = TORCH_DEVICE,
    voice: bool = VOICE,
    asr_model: str = ASR_MODEL,
) -> None:
    """Run one session (a replay at real time by default, or live) with scripted questions and time every stage:
    device-to-buffer latency (live), fixation detection, preprocessing, Qwen vision, V-JEPA, resampler, chunk
    prefill, question prefill, time to first token (from the question's arrival), per-token decode; mean / p50 / p95
    / max, throughput, peak host RSS and GPU memory, skipped chunks, decode bandwidth utilisation against --preset,
    and Jetson power and clocks (tegrastats) where present. Writes OUT/profile.json (versioned), OUT/profile.html
    (plots; loads nothing from the network) and the session directory OUT/session."""
    if ctx.invoked_subcommand is not None:
        return
    from gazeqwen_edge.profiling.run import (
        check_questions,
        profile_session,
        resolve_preset,
        scripted_questions,
        source_duration_s,
    )
    from gazeqwen_edge.runtime.replay import load_replay_questions, parse_speed

    pace = parse_speed(speed)
    chosen = resolve_preset(preset, torch_device_)  # an unknown preset fails before the model loads
    cfg = session_config(fps, chunk, window, max_new_tokens, fixations, prompt, question_view, gaze_settle)
    live = source.startswith(LIVE_PREFIXES)
    with _open(source, seed, duration) as src:
        length = source_duration_s(src)
        if questions is not None:
            qf = load_replay_questions(questions, src)
            for line, why in qf.problems:
                console_err.print(f"[yellow]questions file line {line} skipped:[/] {escape(why)}")
            qs = qf.questions
        else:
            qs = scripted_questions(length, every)
        check_questions(qs, length, str(questions) if questions is not None else "")  # before the (slow) model load
        voices = voice_factory(voice, asr_model, lockstep=pace is None)
        gq = load(model, checkpoint, torch_device_, fps, bundle, injection, cuda_sync=True)
        cfg.window_s = cfg.window_s if window is not None else model_window_s(gq)
        timeout = None
        if live:
            timeout = duration or (max(q.t_s for q in qs) + 8.0)
        out_dir = out or Path("runs") / f"profile-{time.strftime('%Y%m%d-%H%M%S')}"
        settings = {
            "source": source,
            "model": str(bundle) if bundle is not None else model,
            "bundle": bundle is not None,
            "injection": injection,
            "torch_device": torch_device_,
            "questions": str(questions) if questions else f"every {every:g} s",
        }
        console_err.print(
            f"profiling {escape(source)}: {len(qs)} question{'s' * (len(qs) != 1)}"
            + (f", {length:.1f} s of source" if length else "")
            + (" as fast as the model goes" if pace is None else f" at {pace:g}x real time")
            + f"; decode judged against {escape(chosen.label)}"
        )
        doc = profile_session(src, gq, cfg, qs, out_dir, pace, chosen, settings, timeout_s=timeout, voice=voices)
    print_profile(doc, out_dir)


def print_profile(doc: dict, out_dir: Path) -> None:
    """The terminal summary of a profile: the stage table, the question path, bandwidth, memory, where it was written."""
    t = Table(title="stages (ms per call)")
    for col in ("stage", "count", "mean", "p50", "p95", "max"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for name, s in doc["stages"].items():
        t.add_row(
            name,
            str(s["count"]),
            *(f"{s[k]:.3f}" if s[k] < 1 else f"{s[k]:.1f}" for k in ("mean", "p50", "p95", "max")),
        )
    console.print(t)
    qs = doc["questions_summary"]
    if qs.get("ttft_ms"):
        s = qs["ttft_ms"]
        console.print(
            f"time to first token from arrival: mean {s['mean']:.1f} ms, p50 {s['p50']:.1f}, p95 {s['p95']:.1f}, "
            f"max {s['max']:.1f} ({s['count']} question{'s' * (s['count'] != 1)})"
        )
        if doc.get("settings", {}).get("speed") == "max":  # the source ran ahead: questions queue behind chunks
            console.print(
                "[dim]  (--speed max: the source runs ahead of the model, so this includes each question's wait "
                "behind the chunks queued before it; profile at real time for a wearer's time to first token)[/]"
            )
    path = doc.get("question_path")
    if path:
        console.print(
            f"a question's path: timed stages {path['timed_ms']:.1f} ms of {path['end_to_end_ms']:.1f} ms measured "
            f"({100 * path['coverage']:.0f} %: {'they add up to it' if path['adds_up'] else 'they do NOT add up to it'} "
            "within 10 %)"
        )
    bw = doc.get("bandwidth")
    if bw:
        console.print(
            f"decode: {bw['tokens_per_s']:.1f} tokens/s, {bw['bytes_per_token']['total'] / 1e6:.2f} MB read per token, "
            f"{bw['achieved_gbs']:.2f} GB/s = {100 * bw['utilisation']:.1f} % of {bw['bandwidth_gbs']:.1f} GB/s "
            f"({escape(bw['preset_label'])})"
        )
    mem, ses = doc["memory"], doc["session"]
    gpu = mem.get("gpu_peak_allocated_mib")
    console.print(
        f"peak host RSS {mem['peak_rss_mib']:.0f} MiB"
        + (f", peak GPU memory {gpu:.0f} MiB" if gpu is not None else "")
        + f"; {ses['answered']} of {ses['questions']} question{'s' * (ses['questions'] != 1)} answered; chunks "
        + f"{ses['chunks_prefilled']} prefilled, "
        f"{ses['chunks_skipped']} skipped"
    )
    for name, why in doc.get("not_measured", {}).items():
        console.print(f"[dim]not measured: {escape(name)}: {escape(why)}[/]")
    if ses["chunks_skipped"]:
        total = ses["chunks_prefilled"] + ses["chunks_skipped"]
        console_err.print(
            f"[yellow]warning:[/] the model fell behind real time: {ses['chunks_skipped']} of {total} chunks were "
            "skipped, so these figures are of a machine that could not keep up (another job running, or too much "
            "video for it): profile again on a quiet machine, at a lower --fps, or with --speed max"
        )
    console.print(f"report: {escape(str(out_dir / 'profile.json'))} and {escape(str(out_dir / 'profile.html'))}")


@profile_app.command("compare")
def compare(
    a: Path = typer.Argument(..., metavar="A", help="The first profile.json (or its directory): the baseline."),
    b: Path = typer.Argument(..., metavar="B", help="The second profile.json (or its directory)."),
) -> None:
    """Two profiles side by side: the settings in which they differ, then every headline figure of both with the
    ratio B / A (below 1: B is faster or smaller)."""
    from gazeqwen_edge.profiling.report import compare as compare_reports
    from gazeqwen_edge.profiling.report import load_report, settings_diff

    ra, rb = load_report(a), load_report(b)
    diff = settings_diff(ra, rb)
    console.print(
        "settings that differ: "
        + (", ".join(f"{k}: {escape(str(x))} -> {escape(str(y))}" for k, (x, y) in diff.items()) or "none")
    )
    t = Table(title=f"A = {escape(str(a))}, B = {escape(str(b))}")
    for col in ("figure", "A", "B", "B / A"):
        t.add_column(col, justify="left" if col == "figure" else "right")
    for r in compare_reports(ra, rb):
        t.add_row(
            escape(r["figure"]),
            *(_number(v) for v in (r["a"], r["b"])),
            "" if r["ratio"] is None else f"{r['ratio']:.2f}x",
        )
    console.print(t)


def _number(v: float | None) -> str:
    """A figure for the compare table: n/a, a whole number as such, else 3 decimals below 1 and 1 above."""
    if v is None:
        return "n/a"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3f}" if abs(v) < 1 else f"{v:.1f}"


class _open:
    """The profiled source: the demo scene, a live one (the simulator serving a source, or Neon glasses), or any
    SOURCE `replay` reads."""

    def __init__(self, spec: str, seed: int, duration_s: float = 0.0):
        self.spec, self.seed, self.duration_s, self.ctx = spec, seed, duration_s, None

    def __enter__(self):
        if self.spec == "demo":
            from gazeqwen_edge.device.synthetic import SyntheticScene
            from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE

            self.ctx = SyntheticScene(
                seed=self.seed,
                duration_s=self.duration_s or 20.0,
                width=320,
                height=240,
                object_scale=DEFAULT_OBJECT_SCALE,
            )
            return self.ctx
        if self.spec.startswith(LIVE_PREFIXES):
            from gazeqwen_edge.cli.runtime import _device

            device, _, served = self.spec.partition(":") if self.spec.startswith("simulator") else (self.spec, "", "")
            self.ctx = _device(device, None, 8080, served or "synthetic", 3.0, "gaze,world,eye_events")
            return self.ctx.__enter__()
        from gazeqwen_edge.device import open_source

        self.ctx = open_source(self.spec)
        return self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None and hasattr(self.ctx, "__exit__"):
            return self.ctx.__exit__(*exc)
        return False
