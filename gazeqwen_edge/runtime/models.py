"""Choosing the model a session runs: a Qwen2.5-VL (hub id or local directory) with an optional gaze checkpoint, a
model directory (model/model_dir.py: what `train` writes), or the built-in demo model: a tiny GazeQwen trained by our
own pipeline on the synthetic gaze benchmark and shipped in the package (gazeqwen_edge/assets/demo_model, rebuilt
with `make demo-model`), so every command runs on a fresh machine."""

from __future__ import annotations

from pathlib import Path

from gazeqwen_edge.errors import ConfigError
from gazeqwen_edge.model.gazeqwen import GazeQwen

DEMO_MODEL = "demo"
DEMO_MODEL_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo_model"


def load_model(
    model: str | None = None,
    checkpoint: str | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    sampling_fps: float | None = None,
    timer=None,
    bundle: str | Path | None = None,
    injection: str = "fused",
) -> GazeQwen:
    """The GazeQwen a session runs.

    model: None or "demo" for the shipped demo model, a model directory (gazeqwen.json), else a Qwen2.5-VL hub id or
    local directory; checkpoint: our
    checkpoint directory (convert the authors' with `convert-checkpoint`), None for plain Qwen2.5-VL; device: "cpu",
    "cuda", "cuda:1"...; dtype: "auto" (bf16 on CUDA, fp32 on CPU), "float32", "bfloat16", "float16";
    sampling_fps: the frame rate of clips re-encoded per question (reference regime); bundle: an edge bundle made
    by `gazeqwen-edge export` (export/bundle.py: verified, then loaded; model and checkpoint are then ignored);
    injection: "fused" (residuals added inside the decoder layers, the default) or "hooks" (the reference hooks).
    Raises InputError for sources that cannot be loaded (BundleError for a bundle that fails its checks),
    ConfigError for a bad dtype or a checkpoint given with the demo model.
    """
    import torch

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    elif dtype in dtypes:
        torch_dtype = dtypes[dtype]
    else:
        raise ConfigError(f"--dtype must be auto, {', '.join(dtypes)}; got {dtype!r}")
    if bundle is not None:
        from gazeqwen_edge.export.bundle import load_bundle

        return load_bundle(
            bundle, device=device, dtype=torch_dtype, injection=injection, timer=timer, sampling_fps=sampling_fps
        )
    if model in (None, DEMO_MODEL):
        if checkpoint is not None:
            raise ConfigError(
                "--checkpoint needs a Qwen2.5-VL --model (the one it was trained for); the demo model brings its own "
                "resampler"
            )
        from gazeqwen_edge.model.model_dir import is_model_dir, load_model_dir

        if is_model_dir(DEMO_MODEL_DIR):
            return load_model_dir(
                DEMO_MODEL_DIR,
                device=device,
                dtype=torch_dtype,
                timer=timer,
                sampling_fps=sampling_fps,
                injection=injection,
            )
        from gazeqwen_edge.model.tiny import build_tiny_gazeqwen  # until the trained demo model is shipped

        gq = build_tiny_gazeqwen(
            seed=0,
            gaze_encoding="spatial",
            perturb=0.05,
            timer=timer,
            sampling_fps=sampling_fps,
            injection=injection,
        )
        gq.qwen.to(device, torch_dtype)
        gq.video_encoder.to(device)
        gq.resampler.to(device)
        return gq
    from gazeqwen_edge.model.model_dir import is_model_dir, load_model_dir

    if is_model_dir(model):
        if checkpoint is not None:
            raise ConfigError(
                "a model directory brings its own gaze checkpoint; --checkpoint is for a Qwen2.5-VL --model"
            )
        return load_model_dir(
            model, device=device, dtype=torch_dtype, timer=timer, sampling_fps=sampling_fps, injection=injection
        )
    kw = {"timer": timer} if timer is not None else {}
    kw["injection"] = injection
    return GazeQwen.from_pretrained(
        model, checkpoint=checkpoint, dtype=torch_dtype, device=device, sampling_fps=sampling_fps, **kw
    )
