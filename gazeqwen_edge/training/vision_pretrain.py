"""The tiny model's vision pre-stage: teach a random tiny Qwen2.5-VL vision tower to see the synthetic scenes' objects,
standing in for the pretrained tower of the real 7B.

Why: a random vision tower keeps an object's colour but not its shape (`benchmarks/vision_probe.py`: a linear probe
at the gaze point reads colour in 88 % of cases, shape in 17 %, chance 12.5 %), so a tiny GazeQwen trained on top of
it can pick the gazed object among options by colour but cannot say its name. Here the tower (patch embedding, blocks
and merger) is trained to tell, for every merged video token, the colour and the shape of the object under the
token's centre (or background), through a linear head that is thrown away afterwards. The tower is then frozen by
every later stage, as a pretrained one would be.

Data: scenes of `training.synthetic_benchmark.make_scene` (the benchmark's renderer, 4 objects, 8 s, 320 x 240,
objects 2.5x) with scene seeds from SCENE_SEED_RANGE up, which no benchmark split draws (its seeds lie below
SCENE_SEED_RANGE), so no benchmark scene is seen; held-out scenes from 2 x SCENE_SEED_RANGE up. Each sample is one
temporal step: two frames 0.5 s apart (the runtime's 2 fps), labelled at the later frame; labels are the generator's
own ground truth (`SyntheticScene.object_at`, the object whose bounding circle holds the point, occlusion included).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gazeqwen_edge.device.synthetic import COLOURS, SHAPES, object_classes

STEP_S = 0.5  # the two frames of a temporal step at the runtime's 2 fps
EVAL_EVERY = 500  # optimizer steps between held-out evaluations (and the last step)
TRAIN_SEED0_FACTOR = 1  # training scenes: SCENE_SEED_RANGE * 1 + k
HELD_OUT_SEED0_FACTOR = 2  # held-out scenes: SCENE_SEED_RANGE * 2 + k
N_COLOUR = len(COLOURS) + 1  # + background
N_SHAPE = len(SHAPES) + 1


@dataclass
class VisionPretrainConfig:
    """steps: optimizer steps of batch_size samples; scenes / held_out: training and held-out scenes, samples_per_scene
    temporal steps drawn from each (at uniform random times); lr: peak of a one-cycle schedule (AdamW, weight decay
    0.01, gradients clipped to 1.0); seed: sample times, batch order and the head's initialisation."""

    steps: int = 4000
    scenes: int = 6000
    held_out: int = 100
    samples_per_scene: int = 2
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0


@dataclass
class VisionPretrainResult:
    """Accuracies in [0, 1] over the object tokens (tokens whose centre lies on an object) of the last evaluation:
    colour_acc / shape_acc on the held-out scenes, train_* on as many training samples; the optimizer steps done,
    the seconds spent (rendering included) and the model directory written (OUT/best)."""

    colour_acc: float
    shape_acc: float
    train_colour_acc: float
    train_shape_acc: float
    steps: int
    seconds: float
    model_dir: Path


def token_labels(scene, t_s: float, merged_hw: tuple[int, int]) -> np.ndarray:
    """(mh * mw, 2) int64 [colour index, shape index] (COLOURS / SHAPES order) of the object under each merged token's
    centre at scene time t_s (seconds from the scene's start), row-major; background is (len(COLOURS), len(SHAPES)).
    Token (r, c) covers the frame's r-th of mh rows and c-th of mw columns (Qwen's resize keeps the whole frame)."""
    mh, mw = merged_hw
    t_ns = scene.start_ns + int(round(t_s * 1e9))
    out = np.empty((mh, mw, 2), np.int64)
    for r in range(mh):
        for c in range(mw):
            name = scene.object_at((c + 0.5) / mw * scene.width, (r + 0.5) / mh * scene.height, t_ns)
            if name is None:
                out[r, c] = (len(COLOURS), len(SHAPES))
            else:
                out[r, c] = object_classes(name)
    return out.reshape(-1, 2)


def render_samples(
    gq, seeds, per_scene: int, rng: np.random.Generator, progress: Callable[[int, int], None] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each scene seed, `per_scene` (frames, labels): frames (2, h, w, 3) uint8 already resized to the model's
    frame size (so a batch needs only normalising and patching), labels from token_labels at the second frame."""
    from gazeqwen_edge.model.preprocessing import resize_frames
    from gazeqwen_edge.training.synthetic_benchmark import DEFAULT_OBJECT_SCALE, make_scene

    seeds = list(seeds)
    out = []
    hw = None
    for i, s in enumerate(seeds):
        scene = make_scene(s, duration_s=8.0, n_objects=(4, 4), object_scale=DEFAULT_OBJECT_SCALE)
        for t in rng.uniform(STEP_S, 8.0 - 0.1, per_scene):
            frames = np.stack([scene.render(scene.start_ns + int(round(x * 1e9))) for x in (t - STEP_S, t)])
            if hw is None:
                vi = gq.preprocess(frames, 1 / STEP_S, np.array([0.0, STEP_S]))
                hw, merged = vi.resized_hw, vi.merged_grid[1:]
            out.append((resize_frames(frames, *hw), token_labels(scene, t, merged)))
        if progress is not None:
            progress(i + 1, len(seeds))
    return out


def _batch(gq, samples):
    """Samples -> (pixel_values_videos, video_grid_thw, labels (N_tokens, 2)) of one vision-tower call: the frames
    (already at the model's size) normalised and patched as `preprocess_video` does after its resize."""
    from gazeqwen_edge.model.preprocessing import normalise, patchify

    pvs, grids = [], []
    for frames, _ in samples:
        pv, thw = patchify(normalise(frames), gq.patch_size, gq.temporal_patch, gq.merge)
        pvs.append(torch.from_numpy(pv))
        grids.append(thw)
    labels = torch.from_numpy(np.concatenate([lab for _, lab in samples]))
    return torch.cat(pvs), torch.tensor(grids, dtype=torch.long), labels


def _logits(tower, head, pv, grid):
    dev = head.weight.device
    z = head(tower(pv.to(dev), grid_thw=grid.to(dev)).pooler_output)
    return z[:, :N_COLOUR], z[:, N_COLOUR:]


def object_token_accuracy(gq, tower, head, samples, batch_size: int = 64) -> tuple[float, float]:
    """(colour, shape) accuracy over the samples' object tokens (NaN when none)."""
    right = np.zeros(2)
    n = 0
    was = tower.training
    tower.eval()
    with torch.no_grad():
        for i in range(0, len(samples), batch_size):
            pv, grid, lab = _batch(gq, samples[i : i + batch_size])
            zc, zs = _logits(tower, head, pv, grid)
            zc, zs = zc.cpu(), zs.cpu()
            obj = lab[:, 1] < len(SHAPES)
            right += [(zc.argmax(1)[obj] == lab[obj, 0]).sum().item(), (zs.argmax(1)[obj] == lab[obj, 1]).sum().item()]
            n += int(obj.sum())
    tower.train(was)
    return (float(right[0] / n), float(right[1] / n)) if n else (float("nan"), float("nan"))


def pretrain_vision(
    gq,
    out: Path,
    cfg: VisionPretrainConfig,
    *,
    render_progress: Callable[[int, int], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[dict], None] | None = None,
    eval_every: int = EVAL_EVERY,
) -> VisionPretrainResult:
    """Train `gq`'s Qwen vision tower in place (module docstring), then freeze it and write `gq` as a model directory
    into `out` (its meta records this stage: config and held-out accuracies); `out/metrics.jsonl` gets one record per
    evaluation {step, loss, colour_acc, shape_acc (held-out), train_colour_acc, train_shape_acc}. The LLM, V-JEPA and
    the resampler are saved as they are (random): the joint stage trains them next.

    Raises ConfigError for a config that cannot run (no steps or scenes, a batch larger than the training samples)."""
    from gazeqwen_edge.errors import ConfigError
    from gazeqwen_edge.model.model_dir import save_model_dir
    from gazeqwen_edge.training.synthetic_benchmark import SCENE_SEED_RANGE

    n_train = cfg.scenes * cfg.samples_per_scene
    if cfg.steps < 1 or cfg.scenes < 1 or cfg.held_out < 1 or cfg.samples_per_scene < 1:
        raise ConfigError("the vision pre-stage needs at least 1 step, 1 training and 1 held-out scene")
    if cfg.batch_size > n_train:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} is larger than the {n_train} training samples",
            hint="raise --scenes or lower --batch-size",
        )
    t0 = time.monotonic()
    rng = np.random.default_rng(cfg.seed)
    train_seeds = range(TRAIN_SEED0_FACTOR * SCENE_SEED_RANGE, TRAIN_SEED0_FACTOR * SCENE_SEED_RANGE + cfg.scenes)
    held_seeds = range(
        HELD_OUT_SEED0_FACTOR * SCENE_SEED_RANGE, HELD_OUT_SEED0_FACTOR * SCENE_SEED_RANGE + cfg.held_out
    )
    train = render_samples(gq, train_seeds, cfg.samples_per_scene, rng, render_progress)
    held = render_samples(gq, held_seeds, cfg.samples_per_scene, rng)

    tower = gq.qwen.model.visual
    torch.manual_seed(cfg.seed)
    head = torch.nn.Linear(gq.qwen.config.vision_config.out_hidden_size, N_COLOUR + N_SHAPE).to(gq.device)
    params = list(tower.parameters()) + list(head.parameters())
    for p in tower.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng([cfg.seed, 1])
    tower.train()
    metrics = open(out / "metrics.jsonl", "w")  # the CLI gives a new or empty --out
    try:
        for step in range(1, cfg.steps + 1):
            idx = order.choice(n_train, cfg.batch_size, replace=False)
            pv, grid, lab = _batch(gq, [train[i] for i in idx])
            zc, zs = _logits(tower, head, pv, grid)
            lab = lab.to(zc.device)
            loss = torch.nn.functional.cross_entropy(zc, lab[:, 0]) + torch.nn.functional.cross_entropy(zs, lab[:, 1])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            if progress is not None:
                progress(step, cfg.steps)
            if step % eval_every == 0 or step == cfg.steps:
                c, s = object_token_accuracy(gq, tower, head, held)
                tc, ts = object_token_accuracy(gq, tower, head, train[: len(held)])
                rec = {"step": step, "loss": round(loss.item(), 4), "colour_acc": round(c, 4)}
                rec |= {"shape_acc": round(s, 4), "train_colour_acc": round(tc, 4), "train_shape_acc": round(ts, 4)}
                metrics.write(json.dumps(rec) + "\n")
                metrics.flush()
                if log is not None:
                    log(rec)
    finally:
        metrics.close()
    tower.eval()
    for p in tower.parameters():
        p.requires_grad_(False)
    result = VisionPretrainResult(c, s, tc, ts, cfg.steps, time.monotonic() - t0, out / "best")
    meta = {"vision_pretrain": {**asdict(cfg), "colour_acc": c, "shape_acc": s, "seconds": round(result.seconds)}}
    save_model_dir(gq, out / "best", meta=meta)
    return result
