"""Running training stages end to end: configs, the metrics log, saving, stage 1 then 2. Used by `gazeqwen-edge
train` and by `python -m gazeqwen_edge.training` (e.g. under `accelerate launch --num_processes N`, data parallel:
training/distributed.py, trainer.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from gazeqwen_edge.training.distributed import launch_env
from gazeqwen_edge.training.tasks import QAItem
from gazeqwen_edge.training.trainer import TrainConfig, Trainer, TrainResult

SMALL_LLM_PARAMS = 50_000_000  # an LLM this small is saved whole with its checkpoint (the demo model: ~0.2 M)


def _saver(gq, model_name: str, save_llm: bool) -> Callable:
    from gazeqwen_edge.model.model_dir import save_model_dir

    def save(model, path: Path, meta: dict, lora) -> None:
        lsd, lcfg = lora if lora else (None, None)
        model.mc_protocol = meta.get("mc_protocol", model.mc_protocol)
        save_model_dir(
            model,
            path,
            qwen_source=None if save_llm else model_name,
            save_llm=save_llm,
            meta=meta,
            lora_state_dict=None if save_llm else lsd,
            lora_config=lcfg,
        )

    return save


class MetricsLog:
    """metrics.jsonl (one JSON record per line, appended, flushed) and, when the tensorboard package is installed,
    the same scalars as TensorBoard events under tb/."""

    def __init__(self, out: Path, echo: Callable[[dict], None] | None = None):
        out.mkdir(parents=True, exist_ok=True)
        self._f = open(out / "metrics.jsonl", "a")
        self.echo = echo
        self._tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out / "tb"))
        except Exception:  # tensorboard is optional
            self._tb = None

    def __call__(self, rec: dict) -> None:
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()
        if self._tb is not None:
            for k, v in rec.items():
                if isinstance(v, (int, float)) and k != "step":
                    self._tb.add_scalar(k, v, rec.get("step", 0))
        if self.echo:
            self.echo(rec)

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()


def model_identity(gq) -> dict[str, str]:
    """What a resumed run's model must share with the run that wrote its last/, besides its name (`--model`) and its
    frozen encoders (`model_cache_key`): the LLM's shape ("LAYERSxHIDDEN") and the resampler's whole config as JSON
    (its sizes and gaze rules: gaze_encoding, step_fixations, gaze_mark). A tiny model is rebuilt from the options
    on every run, so these are what `--tiny-llm`, `--gaze-encoding`, `--step-fixations` and `--gaze-mark` change."""
    import dataclasses

    tc = gq.qwen.config.text_config
    out = {"llm": f"{tc.num_hidden_layers}x{tc.hidden_size}"}
    if gq.resampler is not None:
        out["resampler"] = json.dumps(dataclasses.asdict(gq.resampler.config), sort_keys=True, default=str)
    return out


def train_stages(
    gq,
    train: Sequence[QAItem],
    val: Sequence[QAItem],
    out: Path,
    *,
    stage: str = "1",
    objective: str = "letter",
    clip: str = "stream",
    clip_seconds: float = 60.0,
    model_name: str = "tiny",
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[dict], None] | None = None,
    **hparams,
) -> TrainResult:
    """Train `gq` in place through `stage` ("lm", "1", "2" or "1+2": stage 1 into OUT/stage1, then stage 2 from its
    best resampler into OUT/stage2). hparams: TrainConfig fields (epochs, lr, batch_size, ...). The result's
    best_dir is a model directory (model/model_dir.py) that run, replay and eval load with --model.

    Data parallel: run the same call in every process of `accelerate launch --num_processes N -m
    gazeqwen_edge.training ...` (or torchrun), each with the same model on its own device (training.distributed.
    process_device). Each process trains on every N-th item of each epoch's order, so batch_size is per process (the
    global batch is N x batch_size x grad_accum); only the main process writes metrics.jsonl, TensorBoard events,
    the checkpoints and the stage link, and stage 2 starts only after stage 1's best/ is written."""
    from gazeqwen_edge.model.model_dir import load_model_dir
    from gazeqwen_edge.training.data import model_cache_key

    out = Path(out)
    n_llm = sum(p.numel() for p in gq.qwen.model.language_model.parameters())
    save_llm = stage in ("lm", "joint") or n_llm <= SMALL_LLM_PARAMS
    stages = ["1", "2"] if stage == "1+2" else [stage]
    clip_cfg = {"policy": clip, "scanpath": "stream" if clip == "stream" else "reference", "stream_max_s": clip_seconds}
    if clip == "reference":
        clip_cfg["max_frames"] = 3  # the released training's cap (evaluation uses 8): REFERENCE.md section 1
    model_key = model_cache_key(gq)
    main = launch_env().is_main
    result = None
    for i, st in enumerate(stages):
        sub = out if len(stages) == 1 else out / f"stage{st}"
        cfg = TrainConfig(stage=st, objective=objective, clip=clip_cfg, gaze=hparams.pop("gaze", True), **hparams)
        metrics = MetricsLog(sub, log) if main else None  # the other processes of a launch log nothing
        try:
            trainer = Trainer(
                gq,
                train,
                val,
                cfg,
                sub,
                _saver(gq, model_name, save_llm),
                cache_dir,
                model_key,
                metrics,
                progress,
                identity={"model": model_name, **model_identity(gq)},
            )
            result = trainer.run()
        finally:
            if metrics is not None:
                metrics.close()
        if i + 1 < len(stages) and result.best_dir is not None:  # stage 2 starts from stage 1's best resampler
            best = load_model_dir(result.best_dir)
            gq.resampler.load_state_dict(best.resampler.state_dict())
        hparams["gaze"] = cfg.gaze
    if main and len(stages) > 1 and result is not None and result.best_dir is not None:
        link = out / "best"
        if not link.exists():
            link.symlink_to(result.best_dir.relative_to(out), target_is_directory=True)
    return result
