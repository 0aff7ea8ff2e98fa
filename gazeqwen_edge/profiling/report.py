"""The profile report: stage statistics, a question's path from arrival to first token, decode bandwidth, memory,
all in one versioned JSON document (`FORMAT`, `VERSION`), and the comparison of two reports.

Times are milliseconds on this machine's monotonic clock (perf_counter, or CUDA events for GPU stages: the report's
`clock`). Stage statistics are over each stage's calls: mean, p50, p95, max, count and total.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from gazeqwen_edge.errors import InputError, json_safe

FORMAT = "gazeqwen-edge-profile"
VERSION = 1

# stage -> (group, what one call is); the order is the order of the report's tables
STAGES: dict[str, tuple[str, str]] = {
    "device_to_buffer_gaze": ("ingest", "a gaze sample, device clock to the session's buffer"),
    "device_to_buffer_scene": ("ingest", "a scene frame, device clock to the session's buffer (decoded)"),
    "fixation_detection": ("ingest", "one gaze sample through the online fixation detector"),
    "prefill_prefix": ("video", "the system turn, once per stream"),
    "preprocess": ("video", "Qwen preprocessing of a chunk's frames"),
    "qwen_vision": ("video", "Qwen vision encoder, one chunk"),
    "vjepa": ("video", "V-JEPA encoder, one chunk's causal windows"),
    "resampler": ("video", "gaze resampler, one chunk"),
    "prefill_chunk": ("video", "LLM prefill of one chunk's video tokens (residuals injected)"),
    "prefill": ("question", "full prefill of a re-encoded clip + question (reference regime)"),
    "gaze_settle": (
        "question",
        "a question waiting for the gaze that settles its fixations (live: the detector's 105 ms, at most 0.5 s)",
    ),
    "question_intake": ("question", "the answer record started, the question told to the sinks"),
    "gaze_refresh": (
        "question",
        "the newest chunks prefilled again with the gaze known now (encloses their resampler and prefill)",
    ),
    "question_view_encode": (
        "question",
        "the question view's encoders (no gaze needed: run while the question waits for its gaze; encloses them)",
    ),
    "question_view": (
        "question",
        "the newest steps re-paired to end at the newest frame: their gaze, resampler and prefill (encloses those "
        "stages; the encoders are question_view_encode)",
    ),
    "question_prompt": ("question", "the question's prompt rendered and tokenised, its positions built"),
    "prefill_question": ("question", "LLM prefill of the question after the video"),
    "first_token": ("question", "the first token chosen from the question's last logits"),
    "score_continuation": ("question", "one option text scored (option-text protocol)"),
    "score_options": ("question", "a whole multiple-choice scoring (encloses its stages)"),
    "ttft_from_model_start": (
        "question",
        "from the model taking the question to its first token (answers.jsonl ttft_ms counts from its arrival)",
    ),
    "decode": ("question", "one decoded token (per-token decode)"),
    "watch_check": ("watch", "one watch scored after a chunk (encloses its prompt and prefill)"),
    "vad": ("voice", "voice activity detection of one audio chunk"),
    "speech_recognition": ("voice", "one utterance transcribed (faster-whisper)"),
    "tts": ("voice", "one sentence of an answer synthesised"),
    "tts_first_audio": ("voice", "an answer's first piece to its first synthesised sentence"),
}
# stages that enclose others (not added up on a question's path) and stages after the first token
NON_ADDITIVE = frozenset(
    {
        "ttft_from_model_start",
        "score_options",
        "tts_first_audio",
        "watch_check",
        "gaze_refresh",
        "question_view",
        "question_view_encode",
    }
)
AFTER_FIRST_TOKEN = frozenset({"decode", "tts"})
# what this build cannot measure yet, with the reason (the voice stages arrive with spoken questions)
NOT_MEASURED = {
    "speech_recognition": "no speech in the source's audio (or no audio, or the speech extra is not installed)",
    "question_to_spoken_answer": "the profile does not speak its answers (benchmarks/voice_latency.py times that)",
}


def stats_ms(values_ms) -> dict | None:
    """{count, mean, p50, p95, max, total} of millisecond values; None for none."""
    a = np.asarray([v for v in values_ms if v is not None and math.isfinite(v)], dtype=np.float64)
    if a.size == 0:
        return None
    return {
        "count": int(a.size),
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
        "total": float(a.sum()),
    }


def stage_table(timer) -> dict[str, dict]:
    """{stage: {count, mean, p50, p95, max, total} ms + group + what} for every stage the timer saw (unknown stages
    in group "other"): count and total over every call, the rest over the timer's window of recent calls."""
    summary = timer.summary()
    out = {}
    for name in [n for n in STAGES if n in summary] + [n for n in summary if n not in STAGES]:
        s = summary[name]
        group, what = STAGES.get(name, ("other", ""))
        out[name] = {
            "count": int(s["count"]),
            "mean": s["mean_ms"],
            "p50": s["p50_ms"],
            "p95": s["p95_ms"],
            "max": s["max_ms"],
            "total": s["total_ms"],
            "group": group,
            "what": what,
        }
    return out


# a question's own stages in the order it goes through them (session._answer): the question view's encoders (run
# while it waits for its gaze), the wait for its gaze, the intake, then the gaze refresh's or the view's resampler and
# prefill, then its prompt, prefill and first token
OWN_PATH = ("preprocess", "qwen_vision", "vjepa", "gaze_settle", "question_intake", "resampler", "prefill_chunk")


def path_order(name: str) -> tuple:
    """Sort key of a question's path stages: the waiting stages first, in STAGES order ("waiting: other", the rest
    of the wait, last among them), then its own, in the order it goes through them (OWN_PATH, then STAGES order);
    stages neither names after those, by name."""
    base = name.removeprefix("waiting: ")
    order = list(STAGES) if base != name else list(OWN_PATH) + [s for s in STAGES if s not in OWN_PATH]
    return (base == name, base == "other", order.index(base) if base in order else len(order), base)


def question_rows(records) -> list[dict]:
    """One row per answered question (AnswerRecords or their dicts): id, t (s), kind (mc / open), ttft_ms (from
    arrival), queued_ms, the path stages before its first token {stage: ms} (the model's work while it waited, the
    rest of the wait as "waiting: other": the hand-off to the model thread, or a live question's wait for the first
    video), then its own stages), decode_ms (after the first token), n_tokens, context_tokens and the answer."""
    rows = []
    for r in records:
        r = r if isinstance(r, dict) else r.__dict__
        if r.get("error") or r.get("ttft_ms") is None:
            continue
        path = {}
        # the wait's stages count each instant once already (StageTimer.spent_between), enclosing stages included
        for k, v in (r.get("queue_stages_ms") or {}).items():
            path[f"waiting: {k}"] = path.get(f"waiting: {k}", 0.0) + v
        # the rest of the wait: the hand-off to the model thread, or a live question asked before the first video
        if r.get("queued_ms") is not None:
            path["waiting: other"] = round(max(0.0, r["queued_ms"] - sum(path.values())), 3)
        stages = r.get("stages_ms") or {}
        for k, v in stages.items():
            if k not in NON_ADDITIVE and k not in AFTER_FIRST_TOKEN:
                path[k] = path.get(k, 0.0) + v
        rows.append(
            {
                "id": r["id"],
                "t": r["t"],
                "question": r.get("question", ""),
                "kind": "mc" if r.get("options") else "open",
                "ttft_ms": r["ttft_ms"],
                "queued_ms": r.get("queued_ms"),
                "path_ms": dict(sorted(path.items(), key=lambda kv: path_order(kv[0]))),
                "decode_ms": sum(v for k, v in stages.items() if k in AFTER_FIRST_TOKEN),
                "n_tokens": r.get("n_tokens", 0),
                "context_tokens": r.get("context_tokens"),
                "answer": r.get("answer", ""),
            }
        )
    return rows


def question_path(rows: list[dict]) -> dict | None:
    """The mean question's path from arrival to first token: {stages: {stage: mean ms over all questions}, timed_ms
    (their sum), end_to_end_ms (mean measured TTFT from arrival), coverage (timed / end to end), adds_up (within
    10 %)}. The stages are timed on their own, the end to end from the arrival to the first token, so the two agree
    only when every step on the path is timed. None without questions."""
    if not rows:
        return None
    names = sorted({k for r in rows for k in r["path_ms"]}, key=path_order)
    means = {k: float(np.mean([r["path_ms"].get(k, 0.0) for r in rows])) for k in names}
    timed = sum(means.values())
    e2e = float(np.mean([r["ttft_ms"] for r in rows]))
    coverage = timed / e2e if e2e > 0 else float("nan")
    return {
        "stages_ms": means,
        "timed_ms": timed,
        "end_to_end_ms": e2e,
        "coverage": coverage,
        "adds_up": bool(abs(coverage - 1) <= 0.10),
    }


def check_report(doc, path: str | Path | None = None) -> dict:
    """`doc` if it is a profile report this version reads; InputError (naming `path`) otherwise."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(path, "is not a gazeqwen-edge profile report", hint="make one with `gazeqwen-edge profile`")
    v = doc.get("version")
    if not isinstance(v, int) or v > VERSION:
        raise InputError(path, f"is a profile report of version {v!r}; this release reads up to {VERSION}")
    return doc


def load_report(path: str | Path) -> dict:
    """Read and check a profile report (JSON). InputError for a missing, unreadable or foreign file."""
    p = Path(path)
    if p.is_dir():
        p = p / "profile.json"
        if not p.is_file():
            raise InputError(path, "holds no profile.json", hint="give a profile's directory or its profile.json")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "does not exist", hint="give a profile.json (or its directory)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, f"cannot be read as JSON ({e})") from None
    return check_report(doc, path)


def write_report(doc: dict, path: str | Path) -> Path:
    """Write the report as strict JSON (errors.json_safe: NaN and infinities become null)."""
    p = Path(path)
    p.write_text(json.dumps(json_safe(doc), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return p


def headline(doc: dict) -> dict[str, float | None]:
    """The figures two reports are compared on: {figure: value} (ms unless named otherwise)."""
    out: dict[str, float | None] = {}
    q = doc.get("questions_summary") or {}
    for key in ("ttft_ms", "queued_ms"):
        s = q.get(key)
        out[f"{key[:-3]} mean (ms)"] = None if not s else s["mean"]
        out[f"{key[:-3]} p95 (ms)"] = None if not s else s["p95"]
    for name, s in (doc.get("stages") or {}).items():
        out[f"{name} mean (ms)"] = s["mean"]
    bw = doc.get("bandwidth") or {}
    out["decode tokens/s"] = bw.get("tokens_per_s")
    out["bandwidth utilisation (%)"] = None if bw.get("utilisation") is None else 100 * bw["utilisation"]
    mem = doc.get("memory") or {}
    out["peak host RSS (MiB)"] = mem.get("peak_rss_mib")
    out["peak GPU memory (MiB)"] = mem.get("gpu_peak_allocated_mib")
    out["chunks skipped"] = (doc.get("session") or {}).get("chunks_skipped")
    return out


def compare(a: dict, b: dict) -> list[dict]:
    """Rows {figure, a, b, ratio (b / a)} over the figures either report has (headline); a figure one report lacks
    has None there."""
    ha, hb = headline(a), headline(b)
    rows = []
    for k in list(ha) + [k for k in hb if k not in ha]:
        va, vb = ha.get(k), hb.get(k)
        if va is None and vb is None:
            continue
        ratio = vb / va if va not in (None, 0) and vb is not None else None
        rows.append({"figure": k, "a": va, "b": vb, "ratio": ratio})
    return rows


def settings_diff(a: dict, b: dict) -> dict[str, tuple]:
    """{setting: (a's, b's)} for the settings in which two reports differ."""
    sa, sb = a.get("settings") or {}, b.get("settings") or {}
    return {k: (sa.get(k), sb.get(k)) for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)}
