"""Choose a watch threshold on one `eval-alerts` run and report it on another, without running the model again.

    .venv/bin/python benchmarks/alert_threshold.py --val runs/alerts-val --test runs/alerts-test [--hold 0]

Both directories are finished `gazeqwen-edge eval-alerts --out` directories of the same model and settings (their
results.json: the videos of the run's last --limit, each watch's score after every chunk). runtime.alerts_eval.rescore puts those scores through the session's own
debouncing again at each threshold of --thresholds, so a sweep costs seconds, and prints per threshold what the
wearer would have heard on the validation run: first alerts on time (within the run's --delay of the first gaze at
the target), early (before the wearer looked), late, missed, control watches that fired ("false") or stayed silent,
and the test-point F1. The threshold chosen is the one with the most first alerts on time less the early and false
ones (a false alarm costs the wearer as much as an alert on time is worth; ties: the higher threshold), chosen on
--val only; the --test run is then scored at it and at its own threshold, side by side. With one directory
(--val only) it prints the sweep and the choice.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from gazeqwen_edge.runtime import alerts_eval as al

DEFAULT_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


HEADER_KEYS = ("threshold", "hold_s", "rearm_s", "delay_s")


def read_run(path: Path) -> tuple[dict, list[dict]]:
    """(header, video records) of a finished eval-alerts output directory (its results.json, which holds the videos
    of the run's last --limit once); SystemExit with one error line when it is none or not readable."""
    doc_path = path / "results.json"
    hint = "give an eval-alerts --out directory whose run has finished (rerun eval-alerts to finish it)"
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except OSError as e:
        sys.exit(f"error: {doc_path} cannot be read ({e.strerror or e})\n  hint: {hint}")
    except ValueError as e:
        sys.exit(f"error: {doc_path} is not JSON ({e})\n  hint: {hint}")
    ok = (
        isinstance(doc, dict)
        and doc.get("format") == al.RESULTS_FORMAT
        and all(isinstance(doc.get(k), int | float) for k in HEADER_KEYS)
        and isinstance(doc.get("videos"), list)
    )
    if not ok:
        sys.exit(f"error: {doc_path} is no eval-alerts result\n  hint: {hint}")
    records = doc["videos"]
    if not records:
        sys.exit(f"error: {doc_path} holds no replayed video\n  hint: {hint}")
    try:  # every record rescorable, or one error line
        figures(doc, records, doc["threshold"], doc["hold_s"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        sys.exit(
            f"error: {doc_path} holds a video record that cannot be rescored ({type(e).__name__}: {e})\n  hint: {hint}"
        )
    return doc, records


def figures(header: dict, records: list[dict], threshold: float, hold_s: float) -> dict:
    """summarise() of the records rescored at `threshold` and `hold_s` (the run's re-arm and delay window)."""
    again = al.rescore(
        records, threshold=threshold, hold_s=hold_s, rearm_s=header["rearm_s"], delay_s=header["delay_s"]
    )
    return al.summarise(again, header["delay_s"], threshold)


def _videos(n: int) -> str:
    return f"{n} video{'s' * (n != 1)}"


def worth(s: dict) -> int:
    """The choice's criterion: first alerts on time less the early and the false ones."""
    a = s["alerts"]
    return a["on_time"] - a["early"] - a["false"]


def row(label: str, s: dict) -> str:
    a, t = s["alerts"], s["test_points"]
    f1 = "-" if t["f1"] is None else f"{100 * t['f1']:.1f}"
    med = "-" if a["delay_s_median"] is None else f"{a['delay_s_median']:.2f}"
    return (
        f"{label:>10} {a['on_time']:>7} {a['early']:>5} {a['late']:>4} {a['missed']:>6} {a['false']:>5} "
        f"{a['silent']:>6} {med:>7} {f1:>5} {worth(s):>6}"
    )


HEAD = f"{'threshold':>10} {'on time':>7} {'early':>5} {'late':>4} {'missed':>6} {'false':>5} {'silent':>6} {'median':>7} {'F1':>5} {'worth':>6}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--val", type=Path, required=True, help="eval-alerts --out of the split the threshold is chosen on")
    ap.add_argument("--test", type=Path, help="eval-alerts --out of the held-out split it is reported on")
    ap.add_argument("--hold", type=float, default=None, help="watch hold, s (default: the runs' own)")
    ap.add_argument(
        "--thresholds",
        default=",".join(map(str, DEFAULT_THRESHOLDS)),
        help="comma-separated thresholds to try, each in (0, 1)",
    )
    args = ap.parse_args(argv)
    try:
        grid = sorted({float(x) for x in args.thresholds.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--thresholds must be numbers, got {args.thresholds!r}")
    if not grid:
        ap.error("--thresholds is empty: give comma-separated numbers in (0, 1)")
    if not all(0 < x < 1 for x in grid):
        ap.error("--thresholds must each lie in (0, 1)")
    if args.hold is not None and not (math.isfinite(args.hold) and 0 <= args.hold <= 60):
        ap.error("--hold must be a finite number of seconds from 0 to 60 (eval-alerts' --watch-hold range)")
    val_header, val = read_run(args.val)
    test_run = None if args.test is None else read_run(args.test)  # a bad --test is told before the sweep
    hold = val_header["hold_s"] if args.hold is None else args.hold
    print(
        f"{args.val} ({val_header.get('model')}, {_videos(len(val))}; hold {hold:g} s, re-arm {val_header['rearm_s']:g} "
        f"s, on time within {val_header['delay_s']:g} s; worth = on time - early - false):"
    )
    print(HEAD)
    sweep = {thr: figures(val_header, val, thr, hold) for thr in grid}
    for thr, s in sweep.items():
        print(row(f"{thr:g}", s))
    chosen = max(grid, key=lambda thr: (worth(sweep[thr]), thr))
    print(f"chosen on {args.val}: threshold {chosen:g} (the run's own: {val_header['threshold']:g})")
    if test_run is None:
        return 0
    test_header, test = test_run
    same = ("model", "fps", "rearm_s", "delay_s", "truth", "fixations")
    differ = [k for k in same if test_header.get(k) != val_header.get(k)]
    if differ:
        print(f"warning: the two runs differ in {', '.join(differ)}", file=sys.stderr)
    own = test_header["threshold"]
    print(
        f"\n{args.test} ({test_header.get('model')}, {_videos(len(test))}; held out: nothing above was chosen on it):"
    )
    print(HEAD)
    for thr in sorted({own, chosen}):
        label = " / ".join(x for x, v in (("chosen", chosen), ("own", own)) if v == thr)
        print(row(f"{thr:g}", figures(test_header, test, thr, hold)) + f"   ({label})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
