"""What the demo model's frozen encoders can tell about the gazed object: a linear probe on the feature at the gaze
point (Qwen's merged video token of the clip's last temporal step, and V-JEPA's feature the resampler reads there),
fitted on the object-identification fixations of some synthetic scenes and scored on other scenes, for the object's
colour (8 classes), shape (8) and name (colour x shape, 64). Chance: 12.5 % / 12.5 % / 1.6 %.

    .venv/bin/python benchmarks/vision_probe.py [--train 300] [--held-out 60] [--quick] [--model demo|DIR]

Clips are the runtime's: 4 model frames at 2 fps ending in the middle of the fixation, the synthetic benchmark's
scenes (8 s, 4 objects, objects 2.5x, 320 x 240). Probe: multinomial logistic regression on standardised features
(Adam, 500 steps, weight decay 1e-3, fixed beforehand); training scenes are seeds 1000.., held-out ones 100.. .
Figures of the run this was written with (Qwen 87.7 / 17.0 / 18.4 %, V-JEPA 92.1 / 13.1 / 17.5 %; 3143 / 624
fixations): README "Training and evaluation", "What limits it".
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def gazed_features(gq, scene) -> list[tuple[dict[str, np.ndarray], str]]:
    """(features by encoder name, object name) for each fixation on an object whose middle is at least 2.5 s in and
    where the gaze point lies on that object. The clip goes through training.data.encode_clip, the encoders' path of
    training and evaluation."""
    from gazeqwen_edge.training.data import Clip, encode_clip

    out = []
    w, h = scene.width, scene.height
    for f, name in zip(scene.true_fixations, scene.fixation_targets, strict=True):
        if name is None:
            continue
        t = ((f.start_ns + f.end_ns) / 2 - scene.start_ns) / 1e9
        if t < 2.5 or t > 7.9 or scene.object_at(f.x, f.y, scene.start_ns + int(t * 1e9)) != name:
            continue
        times = t - np.arange(4)[::-1] / 2.0
        frames = np.stack([scene.render(scene.start_ns + int(x * 1e9)) for x in times])
        enc = encode_clip(gq, Clip(frames, times - times[0], 2.0, 2.0, float(times[0])), np.zeros((0, 4), np.float32))
        steps, mh, mw = enc.merged_grid
        r, c = min(mh - 1, int(f.y / h * mh)), min(mw - 1, int(f.x / w * mw))
        qwen = enc.vision.reshape(steps, mh, mw, -1)[-1, r, c].numpy()
        vj = enc.features[-1, r, c].numpy()
        out.append(({"Qwen vision (merged token)": qwen, "V-JEPA (resampler input)": vj}, name))
    return out


def probe(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, n_classes: int) -> float:
    """Held-out accuracy of a multinomial logistic regression fitted on (x_tr, y_tr)."""
    import torch

    torch.manual_seed(0)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    a, b = torch.tensor((x_tr - mu) / sd), torch.tensor((x_te - mu) / sd)
    lin = torch.nn.Linear(a.shape[1], n_classes)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-3)
    target = torch.tensor(y_tr)
    for _ in range(500):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(a), target).backward()
        opt.step()
    with torch.no_grad():
        return float((lin(b).argmax(1) == torch.tensor(y_te)).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--train", type=int, default=300, help="scenes the probe is fitted on")
    ap.add_argument("--held-out", type=int, default=60, help="scenes it is scored on")
    ap.add_argument("--quick", action="store_true", help="30 + 10 scenes, a smoke run (instead of --train/--held-out)")
    ap.add_argument("--model", default="demo", help="the model whose encoders are probed (default: the demo model)")
    args = ap.parse_args()
    if args.train < 1 or args.held_out < 1:
        ap.error("--train and --held-out need at least 1 scene each")
    if args.quick:
        args.train, args.held_out = 30, 10

    import torch

    from gazeqwen_edge.device.synthetic import COLOURS, SHAPES, object_classes
    from gazeqwen_edge.runtime.models import load_model
    from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE, make_scene

    torch.set_num_threads(2)
    gq = load_model(args.model)
    colours, shapes = list(COLOURS), list(SHAPES)

    def rows(seeds):
        out = []
        for s in seeds:
            scene = make_scene(s, duration_s=8.0, n_objects=(4, 4), object_scale=DEFAULT_OBJECT_SCALE)
            out += gazed_features(gq, scene)
        return out

    t0 = time.monotonic()
    tr = rows(range(1000, 1000 + args.train))
    te = rows(range(100, 100 + args.held_out))
    print(f"{len(tr)} training / {len(te)} held-out fixations ({time.monotonic() - t0:.0f} s)")

    def labels(data):
        col, shp = np.array([object_classes(n) for _, n in data]).T
        return col, shp, col * len(shapes) + shp

    y_tr, y_te = labels(tr), labels(te)
    n_classes = (len(colours), len(shapes), len(colours) * len(shapes))  # colour, shape, name
    print(f"{'features at the gaze point':<30} {'dim':>4} {'colour':>7} {'shape':>7} {'name':>7}")
    for enc in tr[0][0]:
        x_tr = np.stack([f[enc] for f, _ in tr])
        x_te = np.stack([f[enc] for f, _ in te])
        accs = [probe(x_tr, a, x_te, b, k) for a, b, k in zip(y_tr, y_te, n_classes, strict=True)]
        print(f"{enc:<30} {x_tr.shape[1]:>4} " + " ".join(f"{100 * a:>6.1f}%" for a in accs))
    print(f"{'chance':<30} {'':>4} " + " ".join(f"{100 / k:>6.1f}%" for k in n_classes))


if __name__ == "__main__":
    main()
