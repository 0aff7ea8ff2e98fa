"""`gazeqwen-edge profile`: one session on a source with scripted questions, every stage timed, written up as a
versioned JSON report (profiling/report.py) and an HTML page with plots (profiling/html.py).

    doc = profile_session(source, gq, SessionConfig(), questions, out_dir="runs/profile", speed=1.0, preset="auto")

The session is the runtime's own (runtime/session.py), so the stages timed are the ones a live session runs: records
from the source to the session's buffers, fixation detection, per-chunk preprocessing, Qwen vision, V-JEPA, the
resampler and the chunk prefill, then per question its wait for the model, its prefill, its first token and decode.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import InputError
from gazeqwen_edge.profiling import report as rp
from gazeqwen_edge.profiling.bandwidth import decode_bytes, utilisation
from gazeqwen_edge.profiling.presets import (
    DevicePreset,
    cpu_model,
    detect_preset,
    get_preset,
    jetson_model,
    probe_host_bandwidth,
)
from gazeqwen_edge.profiling.tegrastats import TegraStats
from gazeqwen_edge.runtime.questions import ScheduledQuestion

OPEN_QUESTION = "What am I looking at?"


def scripted_questions(duration_s: float | None, every_s: float = 3.0, first_s: float = 2.0) -> list[ScheduledQuestion]:
    """Open questions ("What am I looking at?") every `every_s` seconds from `first_s` to 1 s before the end of a
    source `duration_s` long (six when the length is unknown, e.g. live)."""
    end = (duration_s - 1.0) if duration_s is not None else first_s + 5.5 * every_s
    return [ScheduledQuestion(round(float(t), 3), OPEN_QUESTION) for t in np.arange(first_s, end + 1e-9, every_s)]


def source_duration_s(source) -> float | None:
    """Seconds from a recorded source's first to last record; None for a live one."""
    if source.start_ns is None or source.end_ns is None:
        return None
    return (source.end_ns - source.start_ns) / 1e9


def check_questions(questions: list[ScheduledQuestion], duration_s: float | None, label: str = "") -> None:
    """InputError when there is no question (`label`: the questions file they came from; "" for scripted ones), or
    when the source ends before the first one."""
    if not questions:
        if label:
            raise InputError(label, "has no questions to profile", hint="give a questions file with at least one")
        raise InputError(
            None,
            f"the source ({duration_s or 0:.1f} s) is too short for a scripted question (the first is asked at 2 s)",
            hint="profile a longer source",
        )
    first = min(q.t_s for q in questions)
    if duration_s is not None and first > duration_s:
        raise InputError(
            None,
            f"the source ends at {duration_s:.1f} s, before the first question at {first:.1f} s",
            hint="ask earlier, or profile a longer source",
        )


def resolve_preset(name: str, torch_device: str) -> DevicePreset:
    """The DevicePreset for --preset (auto: the device the model runs on). ConfigError for an unknown name."""
    return detect_preset(torch_device) if name == "auto" else get_preset(name)


def machine_info(torch_device: str) -> dict:
    """The machine: CPU, cores, OS, Python, torch, the CUDA device and the Jetson model when there is one."""
    import os

    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_device": torch_device,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "jetson": jetson_model(),
    }


def _peak_rss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def _question_tokens(gq, text: str) -> int:
    from gazeqwen_edge.runtime.stream import prompt_pieces

    return len(prompt_pieces(gq, text)[1])


def profile_session(
    source,
    gq,
    config,
    questions: list[ScheduledQuestion],
    out_dir: str | Path,
    speed: float | None = 1.0,
    preset: DevicePreset | None = None,
    settings: dict | None = None,
    sinks=(),
    probe_mb: int = 256,
    timeout_s: float | None = None,
    voice=None,
) -> dict:
    """Run one session of `source` through `gq` with `questions` and return the profile report (also written to
    OUT/profile.json and OUT/profile.html; the session directory is OUT/session).

    config: the SessionConfig; speed: replay pace (1 = real time, as live; None = lockstep, as fast as the model
    goes); preset: the device decode bandwidth is judged against (None: "cpu", measured); settings: what the report
    records as the run's settings (model, injection, fps ...: what `compare` lists when two reports differ);
    timeout_s: wall seconds to run a live source (it never ends); probe_mb: size of the host bandwidth probe;
    voice: spoken questions from the source's audio (runtime.replay's `voice`).
    Raises InputError for no questions or a source that ends before the first one.
    """
    import torch

    from gazeqwen_edge.runtime.replay import replay

    duration = source_duration_s(source)
    check_questions(questions, duration)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preset = preset or get_preset("cpu")
    cuda = str(gq.device).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_before = _peak_rss_mib()
    with TegraStats() as tegra:
        result = replay(
            source,
            gq,
            config,
            out / "session",
            questions,
            speed=speed,
            sinks=list(sinks),
            timeout_s=timeout_s,
            voice=voice,
        )
    rows = rp.question_rows(result.records)
    stages = rp.stage_table(gq.timer)
    n_tokens = sum(r["n_tokens"] for r in rows)

    # decode bandwidth: bytes read per token at the mean context of the decoded tokens
    bandwidth = None
    decode = stages.get("decode")
    if decode is not None and decode["mean"] > 0:
        ctx = []
        for r in rows:
            if r["context_tokens"] is not None and r["kind"] == "open" and r["n_tokens"]:
                ctx += [r["context_tokens"] + _question_tokens(gq, r["question"]) + r["n_tokens"] / 2] * r["n_tokens"]
        context = float(np.mean(ctx)) if ctx else 0.0
        db = decode_bytes(gq.qwen, context)
        peak = preset.bandwidth_gbs if preset.bandwidth_gbs is not None else probe_host_bandwidth(probe_mb)
        bandwidth = {
            "bytes_per_token": db.to_dict(),
            "seconds_per_token": decode["mean"] / 1e3,
            "tokens_per_s": 1e3 / decode["mean"],
            "preset": preset.name,
            "preset_label": preset.label,
            "preset_source": preset.source,
        } | utilisation(db.total, decode["mean"] / 1e3, peak)

    video_s = result.stats.chunks_prefilled * 2 * config.chunk_steps / config.fps
    chunk_ms = sum(
        stages[k]["total"] for k in ("preprocess", "qwen_vision", "vjepa", "resampler", "prefill_chunk") if k in stages
    )
    fix = stages.get("fixation_detection")
    throughput = {
        "decode_tokens_per_s": None if decode is None else 1e3 / decode["mean"],
        "video_x_real_time": (video_s * 1e3 / chunk_ms) if chunk_ms > 0 else None,
        "fixation_samples_per_s": (fix["count"] / (fix["total"] / 1e3)) if fix and fix["total"] > 0 else None,
        "replay_x_real_time": (duration / result.wall_s) if duration and result.wall_s > 0 else None,
    }
    memory = {
        "peak_rss_mib": _peak_rss_mib(),
        "peak_rss_before_session_mib": rss_before,
        "gpu_peak_allocated_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "gpu_peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20 if cuda else None,
    }
    not_measured = {k: v for k, v in rp.NOT_MEASURED.items() if k not in stages}
    for name in ("device_to_buffer_gaze", "device_to_buffer_scene"):
        if name not in stages:
            not_measured[name] = "a recorded source: its records were never on a network (profile a live source)"
    if not tegra.available:
        not_measured["tegrastats"] = "tegrastats is not installed here (Jetson only)"
    answered = [r for r in result.records if not r.error]
    doc = {
        "format": rp.FORMAT,
        "version": rp.VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
        "clock": gq.timer.clock,
        "machine": machine_info(str(gq.device)),
        "settings": dict(settings or {})
        | {
            "fps": config.fps,
            "chunk_s": config.chunk_used_s,  # as used: whole temporal steps
            "window_s": config.window_s,
            "max_new_tokens": config.max_new_tokens,
            "gaze_refresh": config.gaze_refresh,
            "question_view": config.question_view,
            "gaze_settle": config.gaze_settle,
            "speed": "max" if speed is None else speed,
            "preset": preset.name,
        },
        "model": {
            "regime": gq.regime,
            "llm_layers": gq.qwen.config.text_config.num_hidden_layers,
            "llm_hidden": gq.qwen.config.text_config.hidden_size,
            "llm_parameters": int(sum(p.numel() for p in gq.qwen.model.language_model.parameters())),
            "injection": type(gq.injector).__name__ if gq.injector is not None else None,
        },
        "session": {
            "source_s": duration,
            "wall_s": result.wall_s,
            "questions": result.stats.questions,
            "answered": result.stats.answered,
            "failed": result.stats.failed,
            "chunks_prefilled": result.stats.chunks_prefilled,
            "chunks_skipped": result.stats.chunks_skipped,
            "source_dropped": result.stats.source_dropped,
            "records": dict(result.stats.records),
            "tokens_decoded": n_tokens,
            "interrupted": result.interrupted,
        },
        "stages": stages,
        "questions": rows,
        "questions_summary": {
            "ttft_ms": rp.stats_ms([r["ttft_ms"] for r in rows]),
            "queued_ms": rp.stats_ms([r["queued_ms"] for r in rows]),
            "answered": len(answered),
        },
        "question_path": rp.question_path(rows),
        "throughput": throughput,
        "memory": memory,
        "bandwidth": bandwidth,
        "tegrastats": tegra.summary(),
        "not_measured": not_measured,
    }
    rp.write_report(doc, out / "profile.json")
    from gazeqwen_edge.profiling.html import write_html

    write_html(doc, out / "profile.html")
    return doc
