"""The question view's worth, side by side in one run: the demo model answers the demo's scripted questions through
the streaming session (lockstep replay, fixation detector, the model's 2 s window) with and without
VideoStream.question_view, on the same scenes; prints right answers per scene range. (Its latency cost is the
profile's: `gazeqwen-edge profile` with and without --no-question-view; lockstep replay queues questions behind
chunks, so its times to first token say nothing.)

    .venv/bin/python benchmarks/question_view.py [--seeds 20-27,40-95] [--questions 8] [--quick]

The default seeds are the held-out demo scenes (none trained, tuned or developed on; seeds 0-4 were used while the
view was built). Figures of the run this was written with: README "The video at the question".
"""

from __future__ import annotations

import argparse


def seed_ranges(text: str) -> list[range]:
    """ "20-27,40-95" -> [range(20, 28), range(40, 96)]; "7" -> [range(7, 8)]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.append(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="20-27,40-95", help="scene seed ranges, e.g. 20-27,40-95")
    ap.add_argument("--questions", type=int, default=8, help="scripted questions per scene")
    ap.add_argument("--quick", action="store_true", help="two scenes (20-21), a smoke run")
    args = ap.parse_args()
    if args.quick:
        args.seeds = "20-21"

    from gazeqwen_edge.cli.runtime import model_window_s
    from gazeqwen_edge.device.synthetic import SyntheticScene
    from gazeqwen_edge.runtime.demo import demo_questions
    from gazeqwen_edge.runtime.models import load_model
    from gazeqwen_edge.runtime.replay import replay
    from gazeqwen_edge.runtime.session import SessionConfig
    from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE

    gq = load_model("demo", sampling_fps=2.0)
    total = {True: 0, False: 0}
    n_total = 0
    print(f"{'seeds':>8}  {'questions':>9}  {'view':>5}  {'no view':>7}")
    for seeds in seed_ranges(args.seeds):
        right = {True: 0, False: 0}
        n = 0
        for seed in seeds:
            scene = SyntheticScene(seed=seed, duration_s=20.0, width=320, height=240, object_scale=DEFAULT_OBJECT_SCALE)
            qs = demo_questions(scene, n=args.questions)
            n += len(qs)
            for view in (True, False):
                config = SessionConfig(window_s=model_window_s(gq), max_new_tokens=4, question_view=view)
                res = replay(scene, gq, config, None, qs)
                right[view] += sum(r.answer == r.meta["answer"] for r in res.records if r.options)
        label = f"{seeds.start}-{seeds.stop - 1}"
        print(f"{label:>8}  {n:>9}  {right[True]:>5}  {right[False]:>7}")
        n_total += n
        for view in (True, False):
            total[view] += right[view]
    print(f"{'all':>8}  {n_total:>9}  {total[True]:>5}  {total[False]:>7}")
    print(f"accuracy: {100 * total[True] / n_total:.1f} % with the view, {100 * total[False] / n_total:.1f} % without")


if __name__ == "__main__":
    main()
