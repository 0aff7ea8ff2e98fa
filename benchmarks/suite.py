"""The performance suite (issue #13): every side-by-side figure of the other benchmarks in one run and one table.

Each row is a figure with its target and a mark: pass, SHORT (measured, short of its target: reported, not fatal),
n/a (could not be measured: an exception, a missing optional dependency such as onnxruntime; the reason is printed
below the table) or blank (no target: shown for context). Rows, in order, from the benchmarks that measure them:

- gaze overhead, TTFT and decode per token for no gaze / hooks / fused (benchmarks/export.py; fused <= 1.02x none);
- time to first token streamed after 5 s and 60 s of video, their ratio (<= 1.2) and re-prefilling the 60 s clip
  vs streamed (>= 20x) (benchmarks/streaming.py);
- onnxruntime vs eager PyTorch for the resampler (both gaze encodings) and the video encoder (>= 1.5x; always on the
  CPU at 2 threads: the target is a CPU one) (benchmarks/export_onnx.py);
- replay vs real time: decode only (>= 20x) and through the streaming session with the tiny model encoding every
  chunk (>= 1x) (benchmarks/replay_speed.py);
- fixation detector throughput at 200 Hz, push_many and push (>= 20x real time) (benchmarks/fixation_detector.py);
- Neon simulator -> the live source, gaze and scene frame p95 latency (<= 20 ms, <= 100 ms), and on into the
  streaming session, which reads the live source in time order with its 0.25 s reorder window (the same targets +
  the window) (benchmarks/neon_latency.py);
- a spoken question to the first spoken word, by stage: end of speech to the VAD closing the utterance, speech
  recognition, question to first token, first token to first audio, and the end to end (no targets; needs the
  speech extra and espeak-ng) (benchmarks/voice_latency.py).
The 30-minute soak (benchmarks/soak.py) is not part of it. Every model is small and random (sizes in the header);
`--device cuda` puts the PyTorch models on the GPU, nothing else changes.

Exit status: 0 when every figure was measured (SHORT rows included), 1 when any is n/a (after the whole table), 2 for
a bad option.

    .venv/bin/python benchmarks/suite.py [--quick] [--json PATH] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the benchmark scripts as modules, and this checkout's package

WIDTH = 120  # the table's line length
# column caps: group, figure, value, target, mark, with two spaces between columns (27+36+31+13+5+8 = 120)
CAPS = (27, 36, 31, 13, 5)
FIELDS = ("group", "figure", "value", "unit", "shown", "target", "ok")


@dataclass(frozen=True)
class Producer:
    """One benchmark's part of the suite: `rows(quick, device)` returns its rows (dicts with FIELDS; target and ok may
    be left out: "" and None); `group` names the single n/a row written when it raises."""

    group: str
    rows: Callable[[bool, str], list[dict]]


def _from(module: str) -> Callable[[bool, str], list[dict]]:
    """`rows` of a script in benchmarks/, imported only when called (an import error becomes an n/a row)."""

    def rows(quick: bool, device: str) -> list[dict]:
        return importlib.import_module(module).rows(quick, device)

    return rows


PRODUCERS = [
    Producer("gaze overhead", _from("export")),
    Producer("time to first token", _from("streaming")),
    Producer("onnxruntime vs PyTorch", _from("export_onnx")),
    Producer("replay vs real time", _from("replay_speed")),
    Producer("fixation detector", _from("fixation_detector")),
    Producer("simulator -> live source", _from("neon_latency")),
    Producer("spoken question", _from("voice_latency")),
]
MODEL_MODULES = ("export", "streaming", "replay_speed", "export_onnx")  # each states its model sizes in MODEL


def mark(row: dict) -> str:
    """'n/a' when the figure was not measured (value None or not finite), '' when it has no target (ok None), else
    'pass' or 'SHORT'."""
    v = row.get("value")
    if v is None or not math.isfinite(v):
        return "n/a"
    if row.get("ok") is None:
        return ""
    return "pass" if row["ok"] else "SHORT"


def not_measured(group: str, figure: str, reason: str) -> dict:
    """The row of a figure that could not be measured: value None, mark n/a, the reason kept."""
    return {
        "group": group,
        "figure": figure,
        "value": None,
        "unit": "",
        "shown": "not measured (below)",
        "target": "",
        "ok": None,
        "mark": "n/a",
        "reason": reason,
    }


def normalise(row: dict, group: str) -> dict:
    """A producer's row with every field present (group defaults to the producer's, target to '', ok to None,
    shown to the value), value as a float, and its mark. A row without a usable value becomes an n/a row."""
    out = {"group": group, "unit": "", "target": "", "ok": None, **row}
    try:
        value = float(out["value"])
    except (KeyError, TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        na = not_measured(out["group"], str(out.get("figure", "?")), out.get("reason") or "no value")
        return {**na, "unit": out["unit"], "target": out["target"]}
    out["value"] = value
    out.setdefault("shown", f"{value:g} {out['unit']}".strip())
    out["ok"] = None if out["ok"] is None else bool(out["ok"])
    out["mark"] = mark(out)
    return out


def run(producers: list[Producer], quick: bool, device: str, log=None) -> list[dict]:
    """Every producer's rows, normalised, in order. A producer that raises gives one n/a row (its group, the
    exception as the reason) and the suite goes on. torch's thread count is put back after each producer (they set
    their own). `log(text)` gets a progress line per producer."""
    threads = _torch_threads()
    rows: list[dict] = []
    for p in producers:
        t0 = time.perf_counter()
        try:
            got = [normalise(r, p.group) for r in p.rows(quick, device)]
            if not got:
                got = [not_measured(p.group, "(all figures)", "the benchmark returned no rows")]
        except Exception as e:  # noqa: BLE001 - any failure of a benchmark is an unmeasured figure, not a crash
            got = [not_measured(p.group, "(all figures)", f"{type(e).__name__}: {e}")]
        finally:
            _torch_threads(threads)
        rows.extend(got)
        if log is not None:
            log(f"{p.group}: {len(got)} rows in {time.perf_counter() - t0:.1f} s")
    return rows


def exit_status(rows: list[dict]) -> int:
    """1 when any figure could not be measured (an n/a row), else 0: SHORT rows are reported, not fatal."""
    return 1 if any(mark(r) == "n/a" for r in rows) else 0


def _cell(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 2] + ".."


def format_table(rows: list[dict]) -> str:
    """The rows as one aligned plain-text table (group, figure, value, target, mark; no colour), every line at most
    WIDTH characters (long cells are cut, marked '..'), the group written on its first row only, a rule between
    groups; then the reasons of the n/a rows, wrapped."""
    head = ("group", "figure", "value", "target", "mark")
    cells = [(r["group"], r["figure"], r["shown"], r.get("target", ""), mark(r)) for r in rows]
    widths = [min(cap, max(len(_cell(c[i], cap)) for c in [head, *cells])) for i, cap in enumerate(CAPS)]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))

    def line(c) -> str:
        return "  ".join(_cell(c[i], w).ljust(w) for i, w in enumerate(widths)).rstrip()

    lines = [line(head)]
    for n, c in enumerate(cells):
        if n == 0 or c[0] != cells[n - 1][0]:
            lines.append(rule)
        else:
            c = ("", *c[1:])
        lines.append(line(c))
    reasons = [r for r in rows if mark(r) == "n/a"]
    if reasons:
        lines += ["", "not measured:"]
        for r in reasons:
            text = f"{r['group']} / {r['figure']}: {r.get('reason', 'no value')}"
            lines += textwrap.wrap(text, WIDTH, initial_indent="- ", subsequent_indent="  ")
    return "\n".join(lines)


def _torch_threads(n: int | None = None) -> int | None:
    """torch's intra-op thread count, set to `n` first when given; None when torch is not imported yet."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def machine(device: str) -> dict:
    """What the figures were measured on: CPU model, cores, OMP_NUM_THREADS, Python, torch, CUDA device (or None),
    onnxruntime (or None), the device the PyTorch models ran on."""
    import torch

    from gazeqwen_edge.profiling.presets import cpu_model

    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "onnxruntime": ort,
        "device": device,
    }


def models() -> list[str]:
    """The model sizes the benchmarks state (their MODEL), or why one could not be read."""
    out = []
    for m in MODEL_MODULES:
        try:
            out.append(importlib.import_module(m).MODEL)
        except Exception as e:  # noqa: BLE001 - the header only; the producer reports the failure as n/a
            out.append(f"{m}: model not stated ({type(e).__name__}: {e})")
    return out


def header(info: dict, model_lines: list[str], quick: bool) -> str:
    """The lines above the table: the machine and the models (wrapped to WIDTH)."""
    cuda = info["cuda_device"] or "none"
    lines = [
        f"performance suite{' (--quick)' if quick else ''}: PyTorch models on {info['device']}",
        f"machine: {info['cpu']}, {info['cores']} cores (OMP_NUM_THREADS={info['omp_num_threads'] or 'unset'}); "
        f"CUDA device: {cuda}",
        f"python {info['python']}, torch {info['torch']}, onnxruntime {info['onnxruntime'] or 'not installed'}",
        "models (all random weights):",
    ]
    for m in model_lines:
        lines.extend(textwrap.wrap(m, WIDTH, initial_indent="- ", subsequent_indent="  "))
    return "\n".join(lines)


def main(argv=None, producers: list[Producer] | None = None) -> int:
    """Run the suite (module docstring); `producers` replaces PRODUCERS (tests). Returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run: shorter recordings, fewer repetitions")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the machine and the rows as JSON")
    ap.add_argument("--device", choices=("cpu", "cuda"), help="where the PyTorch models run (default: cuda if any)")
    args = ap.parse_args(argv)
    import torch

    if args.json is not None and not args.json.parent.is_dir():
        print(f"error: --json {args.json}: no directory {args.json.parent}", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        return 2
    info = machine(device)
    print(header(info, models() if producers is None else [], args.quick), flush=True)
    t0 = time.perf_counter()
    rows = run(PRODUCERS if producers is None else producers, args.quick, device, log=_log)
    print()
    print(format_table(rows))
    status = exit_status(rows)
    short = sum(mark(r) == "SHORT" for r in rows)
    print(
        f"\n{len(rows)} figures in {time.perf_counter() - t0:.0f} s: {sum(mark(r) == 'pass' for r in rows)} pass, "
        f"{short} short, {sum(mark(r) == 'n/a' for r in rows)} not measured"
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "quick": args.quick, "rows": rows}, indent=1) + "\n")
    return status


def _log(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
