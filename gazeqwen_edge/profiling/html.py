"""The profile report as one self-contained HTML page: tables, and plots drawn by matplotlib as inline SVG (the page
loads nothing from the network). Without matplotlib (the `profile` extra) the page has the tables and says how to get
the plots."""

from __future__ import annotations

import html
import io
from pathlib import Path

from gazeqwen_edge.profiling.report import NON_ADDITIVE

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}h2{margin-top:1.6em}.note{color:#666}.bad{color:#b00}.good{color:#070}
svg{max-width:100%;height:auto}"""


def _fmt(v, digits: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def plots(doc: dict) -> dict[str, str] | None:
    """{name: inline SVG} of the stage bars, TTFT against context length and one question's timeline; None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    out = {}
    stages = {k: v for k, v in (doc.get("stages") or {}).items() if k not in NON_ADDITIVE}
    if stages:
        names = list(stages)[::-1]
        fig, ax = plt.subplots(figsize=(9, 0.35 * len(names) + 1.2))
        means = [stages[n]["mean"] for n in names]
        p95 = [stages[n]["p95"] for n in names]
        ax.barh(names, means, color="#4c78a8", label="mean")
        ax.scatter(p95, names, color="#e45756", marker="|", s=200, label="p95", zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel("ms per call (log scale)")
        ax.set_title("per-stage latency")
        ax.legend(loc="lower right")
        out["stages"] = _svg(fig)
    rows = [r for r in doc.get("questions") or [] if r.get("context_tokens") is not None]
    if rows:
        fig, ax = plt.subplots(figsize=(7, 4))
        for kind, color in (("open", "#4c78a8"), ("mc", "#f58518")):
            pts = [(r["context_tokens"], r["ttft_ms"]) for r in rows if r["kind"] == kind]
            if pts:
                ax.scatter(*zip(*pts, strict=True), color=color, label=kind)
        ax.set_xlabel("context before the question (KV cache tokens)")
        ax.set_ylabel("time to first token from arrival (ms)")
        ax.set_title("time to first token against context length")
        ax.set_ylim(bottom=0)
        ax.legend()
        out["ttft_context"] = _svg(fig)
    q = timeline_question(doc)
    if q is not None:
        segments = timeline_segments(q)
        fig, ax = plt.subplots(figsize=(9, 2.6))
        colors = plt.get_cmap("tab10")
        for i, (name, start, length) in enumerate(segments):
            ax.barh([0], [length], left=[start], color=colors(i % 10), label=f"{name} ({length:.1f} ms)")
        ax.axvline(q["ttft_ms"], color="k", linestyle="--", label=f"first token ({q['ttft_ms']:.1f} ms)")
        ax.set_yticks([])
        ax.set_xlabel("ms from the question's arrival")
        ax.set_title(f"one question (#{q['id']}, the median time to first token): arrival to its last token")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize="small")
        out["timeline"] = _svg(fig)
    return out


def timeline_question(doc: dict) -> dict | None:
    """The open question with the median time to first token (any question when none is open); None without any."""
    rows = [r for r in doc.get("questions") or [] if r["kind"] == "open"] or list(doc.get("questions") or [])
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: r["ttft_ms"])
    return rows[len(rows) // 2]


def timeline_segments(q: dict) -> list[tuple[str, float, float]]:
    """(name, start ms, length ms) of one question's path laid end to end from its arrival: the model's work it
    waited for, the time nobody timed before its first token ("untimed"), its own stages, then decode."""
    segs, t = [], 0.0
    path = q["path_ms"]
    for name, ms in path.items():
        segs.append((name, t, ms))
        t += ms
    if q["ttft_ms"] > t:
        segs.append(("untimed", t, q["ttft_ms"] - t))
        t = q["ttft_ms"]
    if q.get("decode_ms"):
        segs.append((f"decode ({q['n_tokens']} tokens)", t, q["decode_ms"]))
    return segs


def render_html(doc: dict) -> str:
    """The report as a self-contained HTML page."""
    s = doc.get("settings") or {}
    m = doc.get("machine") or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gazeqwen-edge profile</title>",
        f"<style>{_CSS}</style></head><body><h1>gazeqwen-edge profile</h1>",
        f"<p>{html.escape(doc.get('created', ''))} &middot; <code>{html.escape(doc.get('command', ''))}</code></p>",
        "<p>machine: "
        + html.escape(
            f"{m.get('cpu')} ({m.get('cores')} cores, {m.get('torch_threads')} torch threads), torch {m.get('torch')}, "
            f"device {m.get('torch_device')}" + (f" ({m['cuda_device']})" if m.get("cuda_device") else "")
        )
        + f"; clock: {html.escape(str(doc.get('clock')))}</p>",
        "<p>settings: " + html.escape(", ".join(f"{k}={v}" for k, v in s.items())) + "</p>",
    ]
    figs = plots(doc)
    if figs is None:
        parts.append(
            "<p class='note'>plots need matplotlib: pip install 'gazeqwen-edge[profile]' and profile again.</p>"
        )
        figs = {}
    path = doc.get("question_path")
    if path:
        cls = "good" if path["adds_up"] else "bad"
        parts.append("<h2>a question's path, arrival to first token (means over the questions)</h2>")
        parts.append(_table(["stage", "mean ms"], [[k, v] for k, v in path["stages_ms"].items()]))
        parts.append(
            f"<p class='{cls}'>timed stages sum to {path['timed_ms']:.1f} ms of the measured {path['end_to_end_ms']:.1f}"
            f" ms end to end ({100 * path['coverage']:.1f} %; within 10 %: {'yes' if path['adds_up'] else 'no'})</p>"
        )
    if "timeline" in figs:
        parts.append(figs["timeline"])
    parts.append("<h2>stages</h2>")
    rows = [
        [k, v["group"], v["count"], v["mean"], v["p50"], v["p95"], v["max"], v["what"]]
        for k, v in (doc.get("stages") or {}).items()
    ]
    parts.append(_table(["stage", "group", "count", "mean ms", "p50 ms", "p95 ms", "max ms", "one call"], rows))
    if "stages" in figs:
        parts.append(figs["stages"])
    qs = doc.get("questions_summary") or {}
    parts.append("<h2>questions</h2>")
    parts.append(
        _table(
            ["figure", "count", "mean ms", "p50 ms", "p95 ms", "max ms"],
            [
                [label, v["count"], v["mean"], v["p50"], v["p95"], v["max"]]
                for label, v in (
                    ("time to first token (from arrival)", qs.get("ttft_ms")),
                    ("waiting for the model", qs.get("queued_ms")),
                )
                if v
            ],
        )
    )
    if "ttft_context" in figs:
        parts.append(figs["ttft_context"])
    bw = doc.get("bandwidth")
    if bw:
        b = bw["bytes_per_token"]
        parts.append("<h2>decode bandwidth</h2>")
        parts.append(
            _table(
                ["figure", "value"],
                [
                    ["weights read per token (MB)", b["weights"] / 1e6],
                    ["KV cache per context position (KB)", b["kv_per_position"] / 1e3],
                    ["mean context (positions)", b["context"]],
                    ["bytes per token (MB)", b["total"] / 1e6],
                    ["time per token (ms)", bw["seconds_per_token"] * 1e3],
                    ["decode tokens/s", bw["tokens_per_s"]],
                    ["achieved GB/s", bw["achieved_gbs"]],
                    [f"peak GB/s ({bw['preset_label']})", bw["bandwidth_gbs"]],
                    ["utilisation (%)", 100 * bw["utilisation"]],
                ],
            )
        )
    for title, key in (("throughput", "throughput"), ("memory", "memory"), ("session", "session")):
        d = {k: v for k, v in (doc.get(key) or {}).items() if not isinstance(v, dict)}
        parts.append(f"<h2>{title}</h2>" + _table(["figure", "value"], [[k, v] for k, v in d.items()]))
    tg = doc.get("tegrastats")
    if tg:
        rows = [[k, v["mean"], v["max"]] for k, v in tg.items() if isinstance(v, dict) and "mean" in v]
        for group in ("power_mw", "temp_c"):
            rows += [[f"{group} {n}", v["mean"], v["max"]] for n, v in (tg.get(group) or {}).items()]
        parts.append("<h2>Jetson (tegrastats)</h2>" + _table(["figure", "mean", "max"], rows))
    nm = doc.get("not_measured") or {}
    if nm:
        parts.append("<h2>not measured</h2><ul>")
        parts += [f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in nm.items()]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(doc: dict, path: str | Path) -> Path:
    """Write render_html(doc) to `path`."""
    p = Path(path)
    p.write_text(render_html(doc), encoding="utf-8")
    return p
