"""Watches on live-like synthetic scenes: what a wearer of `replay synthetic:SEED --watch ...` would hear.

    .venv/bin/python benchmarks/watch_scenes.py [--seeds 1-10 | --quick] [--fixations detector|source]
        [--watch-checks chunk|fixation|both] [--model demo]

`gazeqwen-edge eval-alerts` measures the watch path on a synthetic benchmark's files: an 8 s, 320x240, 10 fps video
and the generator's fixations replayed as noiseless gaze on each fixation's centre. A wearer's session is fed
something else: the scene camera at its own rate and size and the eye tracker's gaze, drift, tremor and saccades
included. This script replays the CLI's synthetic scenes (`synthetic:SEED`: 10 s, 640x480 at 30 fps, 200 Hz gaze,
objects at the benchmark's size, device.synthetic) through the same session code (runtime.alerts_eval.replay_video
with the scene as the source), with a watch on every object from the start, and judges the first alert of each
against the scene's truth as eval-alerts does: on time (within --delay s of the first fixation on the object), early
(before it), late, missed; an object never fixated is a control that must stay silent ("false" when it fires). The
checks are broken down by what the newest fixation the session knew landed on (target / other object / background /
none yet), as eval-alerts' results.md does.

The default seeds (1-10) are not scene seeds of `make demo-model`'s dataset (its seeds start at 300), but they are
where the "nothing" answer and the checks at each fixation were found (runtime/watches.py): held-out figures come
from other seeds (README: 11-40). `--fixations source` reads the scene's own fixations (known once each
ends) instead of the online detector on its gaze: the two side by side say how much the detector on noisy gaze costs.
`--watch-checks chunk|fixation|both` sets when the watches are checked (SessionConfig.watch_checks; default the
session's). With `--out DIR` the records go to DIR/results.json in eval-alerts' format, so
benchmarks/alert_threshold.py can choose a threshold on one set of seeds and report it on another. About 4 s a scene on 2 CPU cores with the demo model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from gazeqwen_edge.runtime import alerts_eval as al

MAX_SEEDS = 1000
REARM_S = 3.0  # runtime.watches.Watches' default re-arm time, as a session (and eval-alerts) runs it
MAX_SEED = 2**32 - 1  # synthetic:SEED's range (device.registry)


def parse_seeds(text: str) -> list[int]:
    """ "1-10" or "1,4,7" or "3" -> the seeds; ValueError for anything else (empty, reversed, negative, > MAX_SEEDS)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"not a seed or a range of seeds: {part!r}")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(f"a range runs upwards: {part!r}")
        if b > MAX_SEED:
            raise ValueError(f"a scene seed is at most {MAX_SEED}: {part!r}")
        seeds.extend(range(a, b + 1))
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"at most {MAX_SEEDS} scenes, got {len(seeds)}")
    return seeds


def scene_cases(scene, label: str) -> al.VideoCases:
    """The watches of one synthetic scene (device.synthetic.SyntheticScene) as eval-alerts' cases: one per object,
    asked at 0 s, its first_gaze_s the start of the first true fixation on it (s from the scene's start) with one
    alerting test point there; an object never fixated is a control (no test point). `fixations` carries the scene's
    true fixations [(start_s, end_s, object or None)] for the breakdown by what each check looked at."""
    t0 = scene.start_ns
    fixations = [
        ((f.start_ns - t0) / 1e9, (f.end_ns - t0) / 1e9, name)
        for f, name in zip(scene.true_fixations, scene.fixation_targets, strict=True)
    ]
    first = {name: (start_ns - t0) / 1e9 for name, start_ns in scene.first_looked_at.items()}
    cases = []
    for o in scene.objects:
        looked = o.name in first
        cases.append(
            al.WatchCase(
                f"{label}/{o.name}",
                o.name,
                0.0,
                None,
                [(first[o.name], True)] if looked else [],
                first.get(o.name),
                control=not looked,
            )
        )
    return al.VideoCases(video=_Named(label), fixation_csv=None, cases=cases, fixations=fixations)


class _Named:
    """What replay_video reads of a VideoCases' video when the source is given: its name."""

    def __init__(self, name: str):
        self.name = name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default=None, help="scene seeds: '1-10', '1,4,7' (default 1-10; --quick: 1-3)")
    ap.add_argument("--quick", action="store_true", help="three scenes (seeds 1-3) unless --seeds says otherwise")
    ap.add_argument(
        "--fixations", choices=al.FIXATION_MODES, default="detector", help="how the session learns them (detector)"
    )
    ap.add_argument(
        "--watch-checks",
        choices=("chunk", "fixation", "both"),
        default=None,
        help="when the watches are checked (SessionConfig.watch_checks; default: the session's)",
    )
    ap.add_argument("--model", default="demo", help="model directory or hub id (default: the demo model)")
    ap.add_argument("--duration", type=float, default=10.0, help="scene length, s (default 10, as synthetic:SEED)")
    ap.add_argument("--delay", type=float, default=al.DEFAULT_DELAY_S, help="on-time window, s (default 1.5)")
    ap.add_argument("--out", help="also write results.json / results.md here, as eval-alerts does (alert_threshold.py)")
    args = ap.parse_args(argv)
    try:
        args.seeds = ("1-3" if args.quick else "1-10") if args.seeds is None else args.seeds
        seeds = parse_seeds(args.seeds)
    except ValueError as e:
        ap.error(f"--seeds: {e}")
    if not (0.5 <= args.duration <= 600):
        ap.error("--duration must be from 0.5 to 600 s")
    if not (0 <= args.delay <= 60):
        ap.error("--delay must be from 0 to 60 s")
    if args.out is not None:  # checked before the scenes run, not after
        if not args.out.strip():
            ap.error("--out is empty: give a directory for results.json and results.md")
        args.out = Path(args.out)
        try:
            args.out.mkdir(parents=True, exist_ok=True)
            probe = args.out / ".watch_scenes_probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            ap.error(f"--out {args.out} cannot be written ({e.strerror or e})")

    from gazeqwen_edge.cli.device import synthetic_options
    from gazeqwen_edge.cli.runtime import model_window_s
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.errors import GazeQwenError
    from gazeqwen_edge.runtime.models import load_model
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.runtime.watches import DEFAULT_HOLD_S, default_threshold

    try:
        gq = load_model(args.model)
    except GazeQwenError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    threshold = default_threshold(gq)
    config = SessionConfig(window_s=model_window_s(gq), max_new_tokens=16)  # as replay and eval-alerts run it
    if args.watch_checks is not None:
        config = dataclasses.replace(config, watch_checks=args.watch_checks)
    records = []
    t_start = time.perf_counter()
    for seed in seeds:
        spec = f"synthetic:{seed}"
        with open_source(spec, **synthetic_options(spec, args.duration)) as scene:
            vc = scene_cases(scene, spec)
            rec = al.replay_video(
                gq,
                vc,
                config,
                threshold=threshold,
                hold_s=DEFAULT_HOLD_S,
                rearm_s=REARM_S,
                delay_s=args.delay,
                fixations=args.fixations,
                source=scene,
            )
        records.append(rec)
        told = ", ".join(f"{w['target']} {w['outcome']}" for w in rec["watches"])
        print(f"{spec}: {told} ({rec['wall_s']:.0f} s)", flush=True)
    s = al.summarise(records, args.delay, threshold)
    if args.out is not None:
        doc = {
            "format": al.RESULTS_FORMAT,
            "version": al.RESULTS_VERSION,
            "model": args.model,
            "scenes": f"synthetic:{args.seeds} ({args.duration:g} s)",
            "fps": config.fps,
            "threshold": threshold,
            "hold_s": DEFAULT_HOLD_S,
            "rearm_s": REARM_S,
            "delay_s": args.delay,
            "truth": "generator",
            "fixations": args.fixations,
            "watch_checks": config.watch_checks,
            "left_out_test_points": 0,
            "summary": s,
            "videos": records,
        }
        (args.out / "results.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
        (args.out / "results.md").write_text(al.markdown(doc), encoding="utf-8")
    a = s["alerts"]
    looked = a["on_time"] + a["early"] + a["late"] + a["missed"]
    scenes = f"{len(seeds)} scene{'s' * (len(seeds) != 1)} of {args.duration:g} s"
    print(
        f"\n{scenes}, model {args.model}, threshold {threshold:g}, fixations {args.fixations}, "
        f"checks {config.watch_checks}, "
        f"{time.perf_counter() - t_start:.0f} s"
    )
    print(
        f"{'watches':>8} {'on time':>8} {'early':>6} {'late':>5} {'missed':>7} {'controls':>9} {'fired':>6} {'median':>7}"
    )
    med = "-" if a["delay_s_median"] is None else f"{a['delay_s_median']:.2f}"
    print(
        f"{s['watches']:>8} {a['on_time']:>8} {a['early']:>6} {a['late']:>5} {a['missed']:>7} "
        f"{a['false'] + a['silent']:>9} {a['false']:>6} {med:>7}"
    )
    if looked:
        print(f"on time: {100 * a['on_time'] / looked:.1f} % of the {looked} watches whose object was looked at")
    print("\nchecks by what the newest known fixation landed on (yes: score >= threshold):")
    for g, b in s.get("by_gaze", {}).items():
        rate = "-" if not b["checks"] else f"{100 * b['yes'] / b['checks']:.0f} %"
        print(f"  {g:<10} {b['checks']:>5} checks, yes {rate:>5}, early or false first alerts {b['early_or_false']}")
    return 0 if s["watches"] else 1


if __name__ == "__main__":
    sys.exit(main())
