"""Training GazeQwen (REFERENCE.md section 1): stage 1 trains the gaze resampler with everything else frozen, stage
2 adds peft LoRA on the LLM's q_proj / v_proj; "lm" is a pre-stage for small LLMs built from scratch (the demo
model): the whole LLM learns the scene's vocabulary on questions without gaze (REFERENCE.md section 6).

Objectives: "letter" (the released code: cross-entropy with label smoothing over the option letters' logits at the
first assistant position of the reference prompt) and "answer" (cross-entropy on the correct option's text + end of
turn written as the answer; for small models, scored with the option-text protocol).

Reproducible (seeded shuffling, augmentation and initialisation), resumable (`last/` holds the trainable weights,
optimizer, scheduler, step and random states; a rerun with the same OUT continues from it), best checkpoint by
validation accuracy (`best/`), metrics in `metrics.jsonl` (and TensorBoard when installed), accelerate for devices,
mixed precision and data parallelism.

Data parallelism (`accelerate launch --num_processes N -m gazeqwen_edge.training ...`, training/distributed.py): every
process builds the same model and holds the same trainable weights (broadcast from the main process before the first
step). Each epoch's shuffled order of the N items (seeded by seed and epoch, the same on every process) is cut to a
multiple of P processes (the last N mod P items of that epoch's order are left out: every process then runs the same
number of micro-batches and optimizer steps, which the all-reduce needs); process i takes the items at positions
i, i+P, i+2P, ... of it. So micro-batch k of the P processes together (P x batch_size items) is micro-batch k of a
single process with batch P x batch_size over the same order, and the scanpath augmentation is seeded per item
(seed, epoch, item), not per batch: with the "letter" objective (a mean of per-item losses) P processes at batch b
train as one process at batch P x b does, to rounding. With the "answer" objective the loss is a mean over answer
tokens, which each process takes over its own items, so items with short answers weigh a little more than in the
single-process batch. Gradients are averaged over the processes (one all-reduce) before clipping and the optimizer
step; validation items are split the same way and the right/total counts summed, so every process reaches the same
accuracy and best-checkpoint decision; the logged loss is the mean over processes; only the main process logs,
reports progress and writes last/ and best/, and all wait for it at the end of a run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from gazeqwen_edge.errors import ConfigError, InputError, write_bytes_atomic
from gazeqwen_edge.model.gazeqwen import mc_prompt, option_letters, option_texts
from gazeqwen_edge.training.data import ClipConfig, Encoded, ItemEncoder
from gazeqwen_edge.training.distributed import (
    average_gradients,
    broadcast_parameters,
    check_in_sync,
    reduce_mean,
    reduce_sum,
)
from gazeqwen_edge.training.forward import answer_logprobs, build_inputs, forward, letter_ids
from gazeqwen_edge.training.tasks import QAItem

STAGES = ("lm", "1", "2", "joint")
OBJECTIVES = ("letter", "answer")
LORA_TARGETS = r".*language_model\.layers\.\d+\.self_attn\.(q_proj|v_proj)"  # the LLM only (REFERENCE.md section 6)


@dataclass
class TrainConfig:
    """Hyper-parameters; defaults are the reference's (REFERENCE.md section 1): AdamW lr 3e-4, weight decay 1e-2 (0
    for LoRA, biases and 1-D parameters), one-cycle cosine with 20 warm-up steps, batch 1 x grad-accum 8, grad-clip
    1.0, label smoothing 0.1, scanpath augmentation (xy noise sigma 0.02, fixation drop p 0.1), 3 epochs, LoRA rank 8
    alpha 16. `max_steps` caps optimizer steps (0: none); `eval_every`: optimizer steps between validations (0: each
    epoch); `save_every`: optimizer steps between saves of `last/` (and at each epoch's end); `gaze`: feed the scanpath
    through the resampler (False for the no-gaze pre-stage); `free_text_p`: with the "answer" objective, the
    probability that an item is asked without its options (the bare question, answered with the option's words) so
    the model also answers open questions such as the runtime's "What am I looking at?"; `variant`: how gaze
    reaches the model (training.evaluate.EVAL_VARIANTS: "gazeqwen" through the resampler, "no_gaze", "visual_prompt"
    drawn on the frames, "gaze_text" in the prompt), so baselines get the same training as GazeQwen. Resuming needs the same settings except max_steps,
    eval_every and save_every."""

    stage: str = "1"
    objective: str = "letter"
    epochs: int = 3
    lr: float = 3e-4
    weight_decay: float = 1e-2
    warmup_steps: int = 20
    batch_size: int = 1
    grad_accum: int = 8
    grad_clip: float = 1.0
    label_smoothing: float = 0.1
    xy_noise: float = 0.02
    drop_p: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 16
    seed: int = 0
    max_steps: int = 0
    eval_every: int = 0
    prompt: str = "reference"
    gaze: bool = True
    mixed_precision: str = "no"
    free_text_p: float = 0.0
    variant: str = "gazeqwen"
    save_every: int = 50
    clip: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.variant not in ("gazeqwen", "no_gaze", "visual_prompt", "gaze_text"):
            raise ConfigError(f"unknown training variant {self.variant!r}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1 or not self.lr > 0:
            raise ConfigError("need epochs, batch size and grad-accum >= 1 and lr > 0")
        mc_prompt(self.prompt)


def augment_scanpath(scan: np.ndarray, rng: np.random.Generator, xy_noise: float, drop_p: float) -> np.ndarray:
    """The reference's scanpath augmentation: Gaussian noise (sigma in normalised units) on x, y and each fixation
    dropped with probability drop_p (an empty result keeps one fixation, so a gaze item stays a gaze item)."""
    if len(scan) == 0:
        return scan
    out = scan.copy()
    out[:, :2] += rng.normal(0.0, xy_noise, (len(out), 2)).astype(np.float32)
    keep = rng.random(len(out)) >= drop_p
    if not keep.any():
        keep[rng.integers(len(out))] = True
    return out[keep]


def item_prompt(item: QAItem, prompt: str, gaze_text: str | None = None) -> tuple[str, str]:
    """(user text, assistant prefix) of an item under the named multiple-choice prompt; `gaze_text` (the gaze-as-text
    baseline) is put before the question."""
    q = item.question if gaze_text is None else f"{gaze_text}\n{item.question}"
    return mc_prompt(prompt).render(q, item.options)


def trainable_parameters(gq, stage: str) -> list[torch.nn.Parameter]:
    """Freeze everything, then unfreeze what the stage trains: "1" the resampler; "2" the resampler and the LoRA
    matrices (inject_lora first); "lm" the LLM's decoder and embeddings (not the vision tower); "joint" the LLM and
    the resampler together (small models trained from scratch: on a toy task the resampler learned only with the LLM
    trainable)."""
    for p in gq.qwen.parameters():
        p.requires_grad_(False)
    if gq.video_encoder is not None:
        for p in gq.video_encoder.parameters():
            p.requires_grad_(False)
    params: list[torch.nn.Parameter] = []
    if stage in ("1", "2", "joint"):
        if gq.resampler is None:
            raise ConfigError(f"stage {stage} trains the gaze resampler, but the model has none")
        for p in gq.resampler.parameters():
            p.requires_grad_(True)
            params.append(p)
    if stage == "2":
        lora = [p for n, p in gq.qwen.named_parameters() if "lora_" in n]
        if not lora:
            raise ConfigError("stage 2 needs LoRA adapters in the LLM (inject_lora)")
        for p in lora:
            p.requires_grad_(True)
        params += lora
    if stage in ("lm", "joint"):
        lm = gq.qwen.model.language_model
        for p in list(lm.parameters()) + list(gq.qwen.lm_head.parameters()):
            if not p.requires_grad:
                p.requires_grad_(True)
                params.append(p)
        if gq.resampler is not None and stage == "lm":
            for p in gq.resampler.parameters():
                p.requires_grad_(False)
    return params


def inject_lora(gq, r: int = 8, alpha: int = 16) -> dict:
    """Add peft LoRA adapters (A kaiming-uniform, B zeros: the model is unchanged until trained) to the LLM's q_proj
    and v_proj in place (the decoder layers stay the same modules, so the injection hooks still fire). Returns the
    LoRA config saved with the checkpoint."""
    from peft import LoraConfig, inject_adapter_in_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGETS, bias="none")
    inject_adapter_in_model(cfg, gq.qwen)
    return {"r": r, "lora_alpha": alpha, "target_modules": LORA_TARGETS}


def lora_state_dict(gq) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu() for k, v in get_peft_model_state_dict(gq.qwen).items()}


def param_groups(named: Sequence[tuple[str, torch.nn.Parameter]], weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices, none on biases, 1-D parameters and LoRA (REFERENCE.md section 1)."""
    decay, no_decay = [], []
    for n, p in named:
        (no_decay if p.ndim < 2 or n.endswith("bias") or "lora_" in n else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def one_cycle_cosine(optimizer, total_steps: int, warmup_steps: int):
    """Linear warm-up for `warmup_steps`, then cosine decay to 0 at `total_steps` (optimizer steps)."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        span = max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)


def batch_loss(
    gq,
    encs: list[Encoded],
    items: list[QAItem],
    cfg: TrainConfig,
    use_gaze: bool,
    free: list[bool] | None = None,
    gaze_texts: list[str] | None = None,
) -> torch.Tensor:
    """Mean loss over the batch under the configured objective (`free`: per item, ask it without its options, the
    answer objective only; `gaze_texts`: the gaze-as-text baseline's fixation lists, put before each question)."""
    gt = gaze_texts or [None] * len(items)
    prompts = [item_prompt(it, cfg.prompt, g) for it, g in zip(items, gt, strict=True)]
    if cfg.objective == "answer" and free is not None:
        prompts = [
            (it.question if g is None else f"{g}\n{it.question}", "") if f else p
            for it, p, f, g in zip(items, prompts, free, gt, strict=True)
        ]
    if cfg.objective == "letter":
        inputs = build_inputs(gq, encs, prompts)
        out = forward(gq, encs, inputs, use_gaze, logits_to_keep=1)
        losses = []
        for i, it in enumerate(items):
            letters = option_letters(it.options)
            logits = out.logits[i, -1, letter_ids(gq.tokenizer, letters)].float()
            target = torch.tensor(letters.index(it.answer), device=logits.device)
            losses.append(torch.nn.functional.cross_entropy(logits, target, label_smoothing=cfg.label_smoothing))
        return torch.stack(losses).mean()
    answers = [
        gq.answer_ids(it.truth or option_texts(it.options)[option_letters(it.options).index(it.answer)]) for it in items
    ]
    inputs = build_inputs(gq, encs, prompts, answers)
    out = forward(gq, encs, inputs, use_gaze)
    lp = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
    tgt = inputs.labels[:, 1:].to(lp.device)
    return torch.nn.functional.cross_entropy(
        lp.reshape(-1, lp.shape[-1]), tgt.reshape(-1), ignore_index=-100, label_smoothing=0.0
    )


@torch.no_grad()
def predict(
    gq,
    encs: list[Encoded],
    items: list[QAItem],
    protocol: str,
    prompt: str,
    use_gaze: bool,
    gaze_texts: list[str] | None = None,
) -> list[dict[str, float]]:
    """{letter: score} per item under "letter" (letter logits) or "option_text" (log p of each option's text) from
    one batched forward (option texts: one forward per option position across the batch)."""
    prompts = [item_prompt(it, prompt, None if gaze_texts is None else gaze_texts[i]) for i, it in enumerate(items)]
    if protocol == "letter":
        out = forward(gq, encs, build_inputs(gq, encs, prompts), use_gaze, logits_to_keep=1)
        res = []
        for i, it in enumerate(items):
            letters = option_letters(it.options)
            vals = out.logits[i, -1, letter_ids(gq.tokenizer, letters)].float().tolist()
            res.append(dict(zip(letters, vals, strict=True)))
        return res
    n_opt = max(len(it.options) for it in items)
    scores: list[dict[str, float]] = [{} for _ in items]
    for k in range(n_opt):
        sel = [i for i, it in enumerate(items) if k < len(it.options)]
        answers = [gq.answer_ids(option_texts(items[i].options)[k]) for i in sel]
        sub = [encs[i] for i in sel]
        inputs = build_inputs(gq, sub, [prompts[i] for i in sel], answers)
        out = forward(gq, sub, inputs, use_gaze)
        lps = answer_logprobs(out.logits, inputs.labels)
        for j, i in enumerate(sel):
            scores[i][option_letters(items[i].options)[k]] = float(lps[j])
    return scores


@dataclass
class TrainResult:
    best_dir: Path | None
    best_val: float | None
    steps: int
    history: list[dict]


def epoch_order(n_items: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """The indices (into the training items) that process `rank` of `world` trains on in `epoch`, in order: the
    epoch's seeded permutation of range(n_items), cut to a multiple of `world` (its last n_items mod world entries
    left out), every world-th from position `rank`. One process (world 1) gets the whole permutation. Raises
    InputError when there are fewer items than processes."""
    if n_items < world:
        raise InputError(None, f"{n_items} training items for {world} processes", hint="launch fewer processes")
    order = np.random.default_rng([seed, 7, epoch]).permutation(n_items)
    return order[: n_items - n_items % world][rank::world]


IDENTITY_WORDS = {
    "train_items": "training items",
    "val_items": "validation items",
    "encoders": "frozen encoders",
    "model": "model (--model)",
    "llm": "LLM shape (--tiny-llm)",
    "resampler": "resampler settings (--gaze-encoding, --step-fixations, --gaze-mark)",
}


def items_digest(items: Sequence[QAItem]) -> str:
    """16 hex digits identifying a set of items by their item_ids (order-free): what a resumed run checks it trains
    and validates on the same items as the run that wrote last/."""
    return hashlib.sha256("\n".join(sorted(i.item_id for i in items)).encode()).hexdigest()[:16]


class _StepBoundary:
    """Ctrl-C during training keeps every completed optimizer step. A SIGINT between steps stops at once
    (KeyboardInterrupt; the micro-batches of the step in progress are dropped); one during a step's update,
    validation and logging (`critical()`) is held until they end, so last/ never holds half a step; a second Ctrl-C
    stops at once (`torn`: then last/ keeps its previous save). `rng` is the (torch, python) RNG state at the last boundary, saved with last/ so a resumed run
    draws what the uninterrupted one would. Installs its handler only in the main thread (signals go there)."""

    def __init__(self):
        self.rng = (torch.get_rng_state(), random.getstate())
        self._critical = self._pending = self.torn = False
        self._old = None

    def __enter__(self) -> _StepBoundary:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)

    def _on_sigint(self, signum, frame) -> None:
        if self._critical and not self._pending:
            self._pending = True
            return
        self.torn = self._critical  # stopped inside a step: its state is half updated
        raise KeyboardInterrupt

    @contextmanager
    def critical(self):
        self._critical = True
        try:
            yield
        finally:
            self._critical = False
        self.rng = (torch.get_rng_state(), random.getstate())
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt


class Trainer:
    """Train `gq` on `train` items, validating on `val` (see the module docstring). `save(gq, path, meta)` writes a
    checkpoint or model directory; `log` receives each metrics record; `progress(done, total)` is called per step
    (both on the main process only). A rerun resumes from out_dir/last/ only when it has the same config, the same
    training and validation items (items_digest), frozen encoders (`model_key`) and `identity` (e.g. {"model": its
    name}); otherwise InputError.

    Under `accelerate launch --num_processes N -m gazeqwen_edge.training ...` (or torchrun) every process runs the
    same Trainer on the same items and model (on its own device: the model's device decides, a CPU model runs with
    gloo, a GPU one with NCCL and must sit on accelerate's device, cuda:LOCAL_RANK); the data-parallel split is in the
    module docstring."""

    def __init__(
        self,
        gq,
        train: Sequence[QAItem],
        val: Sequence[QAItem],
        cfg: TrainConfig,
        out_dir: Path,
        save: Callable,
        cache_dir: Path | None = None,
        model_key: str = "",
        log: Callable[[dict], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
        identity: dict | None = None,
    ):
        cfg.validate()
        if not train:
            raise InputError(None, "no training items")
        self.gq, self.train, self.val, self.cfg = gq, list(train), list(val), cfg
        self.out = Path(out_dir)
        self.save = save
        self.log = log or (lambda rec: None)
        self.progress = progress or (lambda done, total: None)
        self.encoder = ItemEncoder(gq, ClipConfig(**cfg.clip), cache_dir, model_key)
        self.lora_config = None
        # what a resumed run must share with the one that wrote last/ besides the config: the items and the model
        # (`identity`, e.g. the model's name; model_key fingerprints its frozen encoders)
        self.identity = {
            "train_items": items_digest(self.train),
            "val_items": items_digest(self.val),
            "encoders": model_key,
            **(identity or {}),
        }

    def _encode(self, items: Sequence[QAItem]) -> tuple[list[Encoded], list[str] | None]:
        """The items' encodings under the variant (frames drawn for visual_prompt) and the gaze_text prompts."""
        from gazeqwen_edge.training.baselines import gaze_as_text

        encs = [self.encoder.encode(it, draw_gaze=self.cfg.variant == "visual_prompt") for it in items]
        texts = [gaze_as_text(e.scanpath) for e in encs] if self.cfg.variant == "gaze_text" else None
        return encs, texts

    def evaluate(self, items: Sequence[QAItem], batch_size: int = 16) -> float:
        """Accuracy on items under the objective's protocol (letter logits / option-text likelihood); nan for none."""
        right, n = self.count_right(items, batch_size)
        return right / n if n else float("nan")

    def count_right(self, items: Sequence[QAItem], batch_size: int = 16) -> tuple[int, int]:
        """(items answered right, items) under the objective's protocol."""
        if not items:
            return 0, 0
        self.gq.qwen.eval()
        protocol = "letter" if self.cfg.objective == "letter" else "option_text"
        right = 0
        for i in range(0, len(items), batch_size):
            chunk = list(items[i : i + batch_size])
            encs, texts = self._encode(chunk)
            use_gaze = self.cfg.gaze and self.cfg.variant == "gazeqwen"
            for it, sc in zip(
                chunk, predict(self.gq, encs, chunk, protocol, self.cfg.prompt, use_gaze, texts), strict=True
            ):
                right += max(sc, key=sc.get) == it.answer
        return right, len(items)

    def run(self, resume: bool = True) -> TrainResult:
        from accelerate import Accelerator

        cfg = self.cfg
        # the model's device decides: a CPU model trains on the CPU (gloo between processes) even where GPUs exist
        acc = Accelerator(mixed_precision=cfg.mixed_precision, cpu=self.gq.device.type == "cpu")
        here, there = self.gq.device, acc.device
        if acc.num_processes > 1 and (here.type != there.type or (here.index or 0) != (there.index or 0)):
            raise ConfigError(
                f"process {acc.process_index}'s model is on {here}, accelerate gave the process {there}",
                hint="under accelerate launch pass --torch-device cuda (each process then uses cuda:LOCAL_RANK)",
            )
        torch.manual_seed(cfg.seed)
        if cfg.stage == "2" and not any("lora_" in n for n, _ in self.gq.qwen.named_parameters()):
            self.lora_config = inject_lora(self.gq, cfg.lora_r, cfg.lora_alpha)
        params = trainable_parameters(self.gq, cfg.stage)
        names = {
            id(p): n
            for n, p in list(self.gq.qwen.named_parameters())
            + [(f"resampler.{n}", p) for n, p in (self.gq.resampler.named_parameters() if self.gq.resampler else [])]
        }
        opt = torch.optim.AdamW(param_groups([(names.get(id(p), ""), p) for p in params], cfg.weight_decay), lr=cfg.lr)
        # this process's share of each epoch's items (epoch_order): the same count on every process
        rank, world = acc.process_index, acc.num_processes
        n_local = len(epoch_order(len(self.train), cfg.seed, 0, rank, world))
        steps_per_epoch = max(1, math.ceil(n_local / (cfg.batch_size * cfg.grad_accum)))
        total = steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        sched = one_cycle_cosine(opt, total, cfg.warmup_steps)
        state = {"step": 0, "epoch": 0, "best_val": None, "history": []}
        last = self.out / "last"
        if resume and (last / "trainer.pt").is_file():
            state = self._load_last(last, params, opt, sched)
        broadcast_parameters(params, acc)  # the main process's initial (or resumed) weights everywhere
        self.gq.qwen.train() if cfg.stage in ("lm", "joint") else self.gq.qwen.eval()
        if self.gq.resampler is not None:
            self.gq.resampler.train(cfg.stage in ("1", "2", "joint"))
        use_gaze = cfg.gaze and cfg.stage != "lm" and cfg.variant == "gazeqwen"
        t_start = time.perf_counter()
        n_seen = 0
        with _StepBoundary() as boundary:
            try:
                while state["step"] < total:
                    # the order of an epoch depends on (seed, epoch), an item's augmentation on (seed, epoch, item): a run
                    # resumed in the middle of an epoch continues exactly as the uninterrupted run would have
                    order = epoch_order(len(self.train), cfg.seed, state["epoch"], rank, world)
                    skip = state.get("skip", 0)
                    batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
                    micro = 0
                    losses = []
                    for bi, b in enumerate(batches):
                        if bi < skip:
                            continue
                        items = [self.train[int(i)] for i in b]
                        encs = []
                        raw, texts = self._encode(items)
                        for i, e in zip(b, raw, strict=True):
                            if use_gaze and len(e.scanpath):
                                rng = np.random.default_rng([cfg.seed, 11, state["epoch"], int(i)])
                                e = Encoded(
                                    e.vision,
                                    e.grid,
                                    e.second_per_grid_t,
                                    e.step_times,
                                    e.features,
                                    augment_scanpath(e.scanpath, rng, cfg.xy_noise, cfg.drop_p),
                                )
                            encs.append(e)
                        with acc.autocast():
                            free = None
                            if cfg.free_text_p > 0:  # per item, like the augmentation: the same under any sharding
                                free = [
                                    np.random.default_rng([cfg.seed, 13, state["epoch"], int(i)]).random()
                                    < cfg.free_text_p
                                    for i in b
                                ]
                            loss = batch_loss(self.gq, encs, items, cfg, use_gaze, free, texts) / cfg.grad_accum
                        acc.backward(loss)
                        losses.append(loss.item() * cfg.grad_accum)
                        n_seen += len(items)
                        micro += 1
                        if micro % cfg.grad_accum and bi != len(batches) - 1:
                            continue
                        with boundary.critical():  # a Ctrl-C here waits for the step's end
                            average_gradients(params, acc)
                            # fp16: acc.backward scaled the loss; unscale before clipping
                            scaler = getattr(acc, "scaler", None)
                            if scaler is not None:
                                scaler.unscale_(opt)
                            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                            if scaler is not None:
                                scaler.step(opt)
                                scaler.update()
                            else:
                                opt.step()
                            sched.step()
                            opt.zero_grad(set_to_none=True)
                            state["step"] += 1
                            state["skip"] = bi + 1
                            rec = {
                                "step": state["step"],
                                "epoch": state["epoch"],
                                "loss": round(reduce_mean(float(np.mean(losses)), acc), 5),
                                "lr": sched.get_last_lr()[0],
                                "samples_per_s": round(world * n_seen / max(1e-9, time.perf_counter() - t_start), 3),
                            }
                            losses = []
                            if cfg.eval_every and state["step"] % cfg.eval_every == 0:
                                self._validate(state, rec, acc)
                            if acc.is_main_process:
                                self.log(rec)
                            state["history"].append(rec)
                            if cfg.save_every and state["step"] % cfg.save_every == 0:
                                self._save_last(last, params, opt, sched, state, acc)
                            if acc.is_main_process:
                                self.progress(state["step"], total)
                        if state["step"] >= total:
                            break
                    else:
                        with boundary.critical():
                            state["epoch"] += 1
                            state["skip"] = 0
                            if not cfg.eval_every:
                                rec = {"step": state["step"], "epoch": state["epoch"]}
                                self._validate(state, rec, acc)
                                if acc.is_main_process:
                                    self.log(rec)
                            self._save_last(last, params, opt, sched, state, acc)
                        continue
                    break
            except KeyboardInterrupt:  # Ctrl-C: last/ at the last completed step, then the CLI says how to resume
                if not boundary.torn:  # (a second Ctrl-C inside a step: last/ keeps the save before it)
                    self._save_last(last, params, opt, sched, state, acc, rng=boundary.rng)
                raise
        if state.get("validated_at") != state["step"]:  # the run ended between validations
            rec = {"step": state["step"], "epoch": state["epoch"]}
            self._validate(state, rec, acc)
            if acc.is_main_process:
                self.log(rec)
        self._save_last(last, params, opt, sched, state, acc)
        check_in_sync(params, acc)
        acc.wait_for_everyone()  # last/ and best/ are written before any process goes on (stage 2 reads best/)
        best = self.out / "best"
        return TrainResult(best if best.exists() else None, state["best_val"], state["step"], state["history"])

    def _meta(self, state: dict) -> dict:
        return {
            "train_config": asdict(self.cfg),
            "step": state["step"],
            "val_accuracy": state["best_val"],
            "mc_protocol": "letter" if self.cfg.objective == "letter" else "option_text",
        }

    def _validate(self, state: dict, rec: dict, acc) -> None:
        """Each process scores its share of the validation items (every P-th); the summed counts give every process
        the same accuracy, hence the same best decision and state; only the main process writes best/."""
        was = self.gq.qwen.training
        right, n = reduce_sum(list(self.count_right(self.val[acc.process_index :: acc.num_processes])), acc)
        val = right / n if n else float("nan")
        self.gq.qwen.train(was)
        rec["val_accuracy"] = None if math.isnan(val) else round(val, 5)  # no validation items: null, not NaN (JSON)
        rec["val_items"] = int(n)  # all of them, whatever the number of processes
        state["validated_at"] = state["step"]
        better = state["best_val"] is None or (not math.isnan(val) and val > state["best_val"])
        if better:
            state["best_val"] = None if math.isnan(val) else val
            if acc.is_main_process:
                self.save(self.gq, self.out / "best", self._meta(state), self._lora())
            rec["best"] = True

    def _lora(self):
        if not any("lora_" in n for n, _ in self.gq.qwen.named_parameters()):
            return None
        return lora_state_dict(self.gq), self.lora_config or {"r": self.cfg.lora_r, "lora_alpha": self.cfg.lora_alpha}

    def _save_last(self, last: Path, params, opt, sched, state, acc, rng=None) -> None:
        """Write last/ (trainable weights, optimizer, scheduler, state, RNG): `rng` the (torch, python) RNG state to
        resume with (default: the current one)."""
        if not acc.is_main_process:
            return
        torch_rng, python_rng = rng if rng is not None else (torch.get_rng_state(), random.getstate())
        last.mkdir(parents=True, exist_ok=True)
        blob = {
            "params": [p.detach().cpu() for p in params],
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "state": state,
            "config": asdict(self.cfg),
            "identity": self.identity,
            "torch_rng": torch_rng,
            "python_rng": python_rng,
        }
        buf = io.BytesIO()
        torch.save(blob, buf)  # (into bytes: a full disk then raises its OSError, not torch's "unexpected pos")
        write_bytes_atomic(last / "trainer.pt", buf.getvalue())
        (last / "state.json").write_text(json.dumps({k: v for k, v in state.items() if k != "history"}) + "\n")

    def _load_last(self, last: Path, params, opt, sched) -> dict:
        blob = torch.load(last / "trainer.pt", weights_only=False)
        free = ("max_steps", "eval_every", "save_every")
        if {k: v for k, v in blob["config"].items() if k not in free} != {
            k: v for k, v in asdict(self.cfg).items() if k not in free
        }:
            raise InputError(
                last,
                "was written by a run with other settings",
                hint="use another --out, or the same options as that run to resume it",
            )
        # (a last/ from before identities, or one of their keys, were kept: not checked there)
        was = blob.get("identity", self.identity)
        changed = [k for k in sorted(was) if was[k] != self.identity.get(k)]
        if changed:
            raise InputError(
                last,
                f"was written by a run on other {', '.join(IDENTITY_WORDS.get(k, k) for k in changed)}",
                hint="use another --out, or the same --qa, --val, --model and model options as that run to resume it",
            )
        with torch.no_grad():
            for p, v in zip(params, blob["params"], strict=True):
                p.copy_(v)
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["torch_rng"])
        random.setstate(blob["python_rng"])
        return blob["state"]
