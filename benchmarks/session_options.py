"""A session option's worth, side by side in one run: the demo model answers the demo's scripted questions through
the streaming session (lockstep replay, fixation detector, the model's 2 s window) with a boolean SessionConfig option
on and off, on the same scenes; prints right answers per scene range.

    .venv/bin/python benchmarks/session_options.py [--option gaze_settle] [--seeds 20-27,40-95] [--questions 8]
                                                   [--quick]

Options compared: question_view (VideoStream.question_view: the video ends at the question), gaze_settle (a
question's fixations are read once the detector can know the one in progress at its time), gaze_refresh (a question
re-prefills the newest chunks with the gaze known at its time). The others stay at their defaults (all on). Latency
costs are the profile's (`gazeqwen-edge profile`: question_view's encoders, gaze_settle's "gaze_settle" stage, at
most the detector's 105 ms for a live typed question); lockstep replay queues questions behind chunks, so its times
to first token say nothing.

The default seeds are the held-out demo scenes (none trained or tuned on; seeds 0-4 were used while the question view
was built, 20-21 while the gaze settle was). Figures of the runs this was written with: README "The video at the
question" and "The gaze at the question".
"""

from __future__ import annotations

import argparse

OPTIONS = ("question_view", "gaze_settle", "gaze_refresh")


def seed_ranges(text: str) -> list[range]:
    """ "20-27,40-95" -> [range(20, 28), range(40, 96)]; "7" -> [range(7, 8)]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out.append(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--option", choices=OPTIONS, default="gaze_settle", help="the SessionConfig option compared")
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
    print(f"option: {args.option}")
    print(f"{'seeds':>8}  {'questions':>9}  {'on':>5}  {'off':>5}", flush=True)
    for seeds in seed_ranges(args.seeds):
        right = {True: 0, False: 0}
        n = 0
        for seed in seeds:
            scene = SyntheticScene(seed=seed, duration_s=20.0, width=320, height=240, object_scale=DEFAULT_OBJECT_SCALE)
            qs = demo_questions(scene, n=args.questions)
            n += len(qs)
            for on in (True, False):
                config = SessionConfig(window_s=model_window_s(gq), max_new_tokens=4, **{args.option: on})
                res = replay(scene, gq, config, None, qs)
                right[on] += sum(r.answer == r.meta["answer"] for r in res.records if r.options)
        label = f"{seeds.start}-{seeds.stop - 1}"
        print(f"{label:>8}  {n:>9}  {right[True]:>5}  {right[False]:>5}", flush=True)
        n_total += n
        for on in (True, False):
            total[on] += right[on]
    print(f"{'all':>8}  {n_total:>9}  {total[True]:>5}  {total[False]:>5}")
    print(
        f"accuracy: {100 * total[True] / n_total:.1f} % with {args.option}, {100 * total[False] / n_total:.1f} % without"
    )


if __name__ == "__main__":
    main()
