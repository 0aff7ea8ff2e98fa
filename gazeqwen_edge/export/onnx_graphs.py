"""ONNX graphs of the V-JEPA video encoder and of the gaze resampler: export (torch.onnx, dynamo), verification against
eager PyTorch on onnxruntime's CPU provider, and runners that stand in for the PyTorch modules in GazeQwen and the
stream.

    enc_info = export_video_encoder(gq.video_encoder, "bundle/video_encoder.onnx")   # verified before it returns
    res_info = export_resampler(gq.resampler, "bundle/resampler.onnx", grid_hw=(12, 16))
    gq.video_encoder = OnnxVideoEncoder("bundle/video_encoder.onnx")
    gq.resampler = OnnxResampler("bundle/resampler.onnx")

The graphs (opset DEFAULT_OPSET, float32, weights inside the file unless they pass the 2 GB protobuf limit):
- video encoder: `pixels` (batch, frames, 3, S, S), frames prepared by VideoEncoder.prepare_frames (resized,
  ImageNet-normalised) -> `features` (batch, tubelets, S/p, S/p, D), tubelets = frames / tubelet_size: what
  VideoEncoder.encode returns. The batch is dynamic (clips, or the causal windows of a stream chunk); the frame
  count is dynamic for transformers' V-JEPA 2 (its RoPE positions come from the token index, checked against eager
  at two frame counts) and static (n_frames) for other backends, whose positions are not verified here.
- resampler: `features` (batch, steps, H, W, d_vjepa) float32, `gaze_points` (batch, steps, gaze_points, 2) float32,
  `gaze_mask` (batch, steps, gaze_points) bool, `has_gaze` (batch,) bool -> `residuals` (M, batch, steps, H*W, d_llm),
  what GazeResampler.forward returns. batch, steps and gaze_points (K) are dynamic; the H x W merged grid is fixed
  at export (one camera and pixel budget).
Each graph carries its geometry / resampler config in its metadata (keys METADATA_KIND, METADATA_CONFIG), so a
runner needs only the file. The onnx, onnxruntime and onnxscript modules are imported inside the functions; without
them a MissingDependencyError (exit code 4) names the `onnx` extra.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gazeqwen_edge.errors import ConfigError, GazeQwenError, InputError, require
from gazeqwen_edge.model.config import ResamplerConfig
from gazeqwen_edge.model.gaze_encoding import GazeInputs
from gazeqwen_edge.model.resampler import GazeResampler
from gazeqwen_edge.model.video_encoder import TransformersVJEPA2Encoder, VideoEncoder

DEFAULT_OPSET = 20  # what torch 2.13's dynamo exporter emits; TensorRT 10 parses it
DEFAULT_TOLERANCE = 1e-4  # max |ONNX - PyTorch| accepted by verify_graph (float32; measured here: ~5e-6 and ~1e-6)
METADATA_KIND = "gazeqwen_edge.graph"  # "video_encoder" or "resampler"
METADATA_CONFIG = "gazeqwen_edge.config"  # JSON: the encoder's geometry, or the resampler config and its grid
ENCODER_INPUTS, ENCODER_OUTPUTS = ("pixels",), ("features",)
RESAMPLER_INPUTS = ("features", "gaze_points", "gaze_mask", "has_gaze")
RESAMPLER_OUTPUTS = ("residuals",)
# onnxruntime's providers, best first; make_session keeps the available ones
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_PROTOBUF_LIMIT = 2**31 - 1  # one-file ONNX models cannot pass 2 GB (protobuf); larger weights go to a .data file


class ExportVerificationError(GazeQwenError):
    """An ONNX graph computes something else than the PyTorch module it is checked against (max |difference| above
    the tolerance in at least one case). `diffs` holds every case's max |difference|, `failed` the cases over it."""

    def __init__(self, path: str | None, diffs: dict[str, float], tol: float):
        self.path, self.diffs, self.tol = path, dict(diffs), tol
        self.failed = {k: v for k, v in diffs.items() if not v <= tol}
        cases = ", ".join(f"{k} {v:.2e}" for k, v in self.failed.items())
        where = f"{path}: " if path else ""
        super().__init__(
            f"{where}the ONNX graph differs from PyTorch by more than {tol:.0e} in {len(self.failed)} of "
            f"{len(diffs)} cases: {cases}",
            hint="re-export the graph from the module it must match (a graph of other weights, or an operator "
            "onnxruntime computes differently, fails here)",
        )


@dataclass
class TensorSpec:
    """One input or output of a graph: name, shape (ints, or the names of dynamic dims such as "batch"), numpy dtype
    name ("float32", "bool")."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str


@dataclass
class GraphInfo:
    """What an exported graph is: kind ("video_encoder" or "resampler"), file name (within its directory),
    inputs/outputs with symbolic dims, opset, the max |ONNX - PyTorch| of every verification case (empty when not
    verified) and the tolerance they passed, the config stored in the graph's metadata, and the external weights
    file beside it (None when the graph is one file)."""

    kind: str
    file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    opset: int
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    tolerance: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    external_data: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("inputs", "outputs"):
            for spec in d[key]:
                spec["shape"] = list(spec["shape"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GraphInfo:
        try:
            specs = {
                k: [TensorSpec(s["name"], tuple(s["shape"]), s["dtype"]) for s in d[k]] for k in ("inputs", "outputs")
            }
            return cls(**{**d, **specs})
        except (KeyError, TypeError) as e:
            raise ConfigError(f"malformed graph info ({type(e).__name__}: {e})") from e


# ---------------------------------------------------------------------------------------------------- dependencies
def _onnx():
    return require("onnx", "onnx", "ONNX export")


def _ort():
    return require("onnxruntime", "onnx", "running ONNX graphs")


# ---------------------------------------------------------------------------------------------------- graph modules
class _EncoderGraph(nn.Module):
    """What the video-encoder graph computes: (B, F, 3, S, S) -> (B, F / tubelet, S/p, S/p, D); VideoEncoder.encode
    without its frame-count check (the graph may take other frame counts)."""

    def __init__(self, encoder: VideoEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        tokens = self.encoder._tokens(pixels)  # the subclass contract of VideoEncoder: (B, N, D), time-major
        g = self.encoder.crop_size // self.encoder.patch_size
        return tokens.reshape(pixels.shape[0], -1, g, g, tokens.shape[-1])


def _reference_module(module: nn.Module) -> nn.Module:
    if isinstance(module, VideoEncoder):
        return _EncoderGraph(module).eval()
    if isinstance(module, GazeResampler):
        return module
    raise ConfigError(f"no ONNX graph for a {type(module).__name__}: expected a VideoEncoder or a GazeResampler")


def encoder_dynamic_frames(encoder: VideoEncoder) -> bool:
    """Whether the encoder's graph may take other frame counts than n_frames: True for transformers' V-JEPA 2 (RoPE
    positions computed from the token index; no learned table tied to frames_per_clip), False for other backends."""
    return isinstance(encoder, TransformersVJEPA2Encoder)


def _encoder_geometry(encoder: VideoEncoder, dynamic_frames: bool) -> dict[str, Any]:
    return {
        "n_frames": int(encoder.n_frames),
        "crop_size": int(encoder.crop_size),
        "patch_size": int(encoder.patch_size),
        "tubelet_size": int(encoder.tubelet_size),
        "hidden_size": int(encoder.hidden_size),
        "dynamic_frames": bool(dynamic_frames),
    }


# ---------------------------------------------------------------------------------------------------- export
@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter logs a line per missing torchvision op and warns about torch internals; neither is ours."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx._internal.exporter._registration", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used", category=UserWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _param_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _export(
    module: nn.Module,
    args: tuple,
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_shapes: dict,
    dim_names: dict[str, dict[int, str]],
    kind: str,
    config: dict[str, Any],
    opset: int,
    external_data: bool | None,
) -> GraphInfo:
    """torch.onnx.export (dynamo) of `module` at the example `args`, then the graph's metadata and the names of its
    inputs' and outputs' dynamic dims (dim_names: tensor -> {axis: name}) written into the file."""
    onnx = _onnx()
    require("onnxscript", "onnx", "ONNX export")
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(path.parent, "the directory to write the ONNX graph into does not exist")
    if external_data is None:
        external_data = _param_bytes(module) > 0.9 * _PROTOBUF_LIMIT
    was_training = module.training
    module.eval()
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=True,
                verbose=False,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=dynamic_shapes,
                opset_version=opset,
                external_data=external_data,
                optimize=True,
            )
    finally:
        module.train(was_training)
    model = onnx.load(str(path), load_external_data=False)
    for value in list(model.graph.input) + list(model.graph.output):
        for axis, name in dim_names.get(value.name, {}).items():
            dim = value.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = name
    meta = {METADATA_KIND: kind, METADATA_CONFIG: json.dumps(config, sort_keys=True)}
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))  # external tensors keep pointing at the .data file written beside it
    return graph_info(path)


def graph_info(path: str | PathLike) -> GraphInfo:
    """Describe an exported graph file from its contents (inputs/outputs with symbolic dims, opset, metadata); no
    verification figures. Raises InputError for a missing file or one that is not a graph of this package."""
    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ONNX graph not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - onnx raises DecodeError and others for a file that is not a model
        raise InputError(path, f"not an ONNX model ({type(e).__name__}: {e})") from e
    meta = {p.key: p.value for p in model.metadata_props}
    if METADATA_KIND not in meta:
        raise InputError(path, "not a graph exported by gazeqwen_edge (no graph metadata)")

    def specs(values) -> list[TensorSpec]:
        out = []
        for v in values:
            tt = v.type.tensor_type
            shape = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim)
            out.append(TensorSpec(v.name, shape, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name))
        return out

    ext = sorted(
        {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
    )  # the weights file(s) beside the graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return GraphInfo(
        kind=meta[METADATA_KIND],
        file=path.name,
        inputs=specs(model.graph.input),
        outputs=specs(model.graph.output),
        opset=int(opset),
        config=json.loads(meta.get(METADATA_CONFIG, "{}")),
        external_data=ext[0] if ext else None,
    )


def export_video_encoder(
    encoder: VideoEncoder,
    path: str | PathLike,
    *,
    dynamic_frames: bool | None = None,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    tol: float = DEFAULT_TOLERANCE,
    external_data: bool | None = None,
) -> GraphInfo:
    """Export the video encoder as `pixels` (batch, frames, 3, S, S) -> `features` (batch, tubelets, S/p, S/p, D)
    float32 (VideoEncoder.encode; module docstring). The batch is always dynamic (exported at batch 2: a batch of 1
    would specialise it); dynamic_frames (None: encoder_dynamic_frames) makes the frame count dynamic too, in steps
    of the tubelet size. verify: run verify_graph (batch 1 and 3; n_frames and n_frames/2 frames when dynamic) and
    raise ExportVerificationError above `tol`. external_data None: one file unless the weights pass ~2 GB.
    Raises MissingDependencyError without the onnx extra, InputError for a directory that does not exist."""
    if dynamic_frames is None:
        dynamic_frames = encoder_dynamic_frames(encoder)
    from torch.export import Dim

    tub = encoder.tubelet_size
    batch = Dim("batch", min=1, max=1024)
    frames_axis = tub * Dim("tubelets", min=1, max=4096) if dynamic_frames else None
    dynamic = {"pixels": {0: batch, **({1: frames_axis} if dynamic_frames else {})}}
    names = {"pixels": {0: "batch"}, "features": {0: "batch"}}
    if dynamic_frames:
        names["pixels"][1], names["features"][1] = "frames", "tubelets"
    s = encoder.crop_size
    example = torch.randn(2, encoder.n_frames, 3, s, s, dtype=encoder.dtype, device=encoder.device)
    info = _export(
        _EncoderGraph(encoder),
        (example,),
        Path(path),
        ENCODER_INPUTS,
        ENCODER_OUTPUTS,
        dynamic,
        names,
        "video_encoder",
        _encoder_geometry(encoder, dynamic_frames),
        opset,
        external_data,
    )
    if verify:
        info.max_abs_diff, info.tolerance = verify_graph(encoder, path, tol=tol), tol
    return info


def export_resampler(
    resampler: GazeResampler,
    path: str | PathLike,
    grid_hw: tuple[int, int],
    *,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    tol: float = DEFAULT_TOLERANCE,
    external_data: bool | None = None,
) -> GraphInfo:
    """Export the resampler (either gaze encoding) for video features on an H x W = grid_hw merged grid (the LLM's
    video tokens per temporal step: VideoStream.merged_hw): inputs features (batch, steps, H, W, d_vjepa),
    gaze_points (batch, steps, gaze_points, 2), gaze_mask (batch, steps, gaze_points) bool, has_gaze (batch,) bool ->
    residuals (M, batch, steps, H*W, d_llm) float32 (GazeResampler.forward). batch, steps and gaze_points are dynamic
    (exported at 2, 3 and 4). verify: run verify_graph (batch 1 and 3, 2 and 5 steps, random and scanpath inputs) and
    raise ExportVerificationError above `tol`. Raises ConfigError for a grid smaller than 1 x 1."""
    from torch.export import Dim

    h, w = (int(v) for v in grid_hw)
    if h < 1 or w < 1:
        raise ConfigError(f"the resampler's token grid must be at least 1 x 1, got {grid_hw}")
    c = resampler.config
    dev = next(resampler.parameters()).device
    b, t, k = Dim("batch", min=1, max=1024), Dim("steps", min=1, max=4096), Dim("gaze_points", min=1, max=1024)
    dynamic = {
        "features": {0: b, 1: t},
        "gaze_points": {0: b, 1: t, 2: k},
        "gaze_mask": {0: b, 1: t, 2: k},
        "has_gaze": {0: b},
    }
    names = {
        "features": {0: "batch", 1: "steps"},
        "gaze_points": {0: "batch", 1: "steps", 2: "gaze_points"},
        "gaze_mask": {0: "batch", 1: "steps", 2: "gaze_points"},
        "has_gaze": {0: "batch"},
        "residuals": {1: "batch", 2: "steps"},
    }
    example = (
        torch.randn(2, 3, h, w, c.d_vjepa, device=dev),
        torch.rand(2, 3, 4, 2, device=dev),
        torch.ones(2, 3, 4, dtype=torch.bool, device=dev),
        torch.ones(2, dtype=torch.bool, device=dev),
    )
    config = {"resampler": c.to_dict(), "grid_hw": [h, w]}
    info = _export(
        resampler, example, Path(path), RESAMPLER_INPUTS, RESAMPLER_OUTPUTS, dynamic, names, "resampler", config,
        opset, external_data,
    )  # fmt: skip
    if verify:
        info.max_abs_diff, info.tolerance = verify_graph(resampler, path, tol=tol), tol
    return info


# ---------------------------------------------------------------------------------------------------- verification
def _scene_clip(n_frames: int, size: int, shift: int) -> np.ndarray:
    """(n_frames, size, size, 3) uint8: a bright square moving right over a colour gradient (a stand-in scene)."""
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 255 // max(size - 1, 1), yy * 255 // max(size - 1, 1), np.full_like(xx, 60)], -1)
    clip = np.repeat(base[None].astype(np.uint8), n_frames, axis=0)
    side = max(2, size // 5)
    for f in range(n_frames):
        x0 = (shift + f * max(1, size // (2 * n_frames))) % (size - side)
        y0 = (shift * 3) % (size - side)
        clip[f, y0 : y0 + side, x0 : x0 + side] = (250, 240, 30)
    return clip


def encoder_cases(
    encoder: VideoEncoder, batches: Sequence[int] = (1, 3), frames: Sequence[int] | None = None, seed: int = 0
) -> dict[str, tuple[torch.Tensor]]:
    """Inputs (pixels,) to check an encoder graph with: for each batch size and frame count, random N(0, 1) pixels
    ("random") and a synthetic scene prepared as the runtime prepares frames ("scene": VideoEncoder.prepare_frames).
    frames None: n_frames only (the graph's static count)."""
    gen = torch.Generator().manual_seed(seed)
    s = encoder.crop_size
    cases: dict[str, tuple[torch.Tensor]] = {}
    for f in frames or (encoder.n_frames,):
        for b in batches:
            cases[f"b{b}_f{f}_random"] = (torch.randn(b, f, 3, s, s, generator=gen),)
            scene = [encoder.prepare_frames(_scene_clip(f, s, shift=7 * i + 3)) for i in range(b)]
            cases[f"b{b}_f{f}_scene"] = (torch.stack(scene),)
    return cases


def resampler_cases(
    config: ResamplerConfig,
    grid_hw: tuple[int, int],
    batches: Sequence[int] = (1, 3),
    steps: Sequence[int] = (2, 5),
    seed: int = 0,
) -> dict[str, tuple[torch.Tensor, ...]]:
    """Inputs (features, gaze_points, gaze_mask, has_gaze) to check a resampler graph with, per batch size and step
    count: "random" (N(0, 1) features, 3 uniform gaze points per step, about a third of them masked off, every sample
    with gaze) and "scanpath" (the GazeInputs of random scanpaths at 1 s steps, the stream's span rule: K varies, the
    last step of sample 0 loses its fixations, and the last sample of a batch > 1 has an empty scanpath, so
    has_gaze is False there)."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    h, w = grid_hw
    cases: dict[str, tuple[torch.Tensor, ...]] = {}
    for t in steps:
        for b in batches:
            feats = torch.randn(b, t, h, w, config.d_vjepa, generator=gen)
            pts = torch.rand(b, t, 3, 2, generator=gen)
            mask = torch.rand(b, t, 3, generator=gen) > 0.33
            mask[:, :, 0] = True
            cases[f"b{b}_t{t}_random"] = (feats, pts, mask, torch.ones(b, dtype=torch.bool))
            scanpaths = []
            for i in range(b):
                if b > 1 and i == b - 1:
                    scanpaths.append(None)
                    continue
                n = int(rng.integers(2, 2 * t + 2))
                mids = np.sort(rng.uniform(0.0, t, n))
                scanpaths.append(np.column_stack([rng.uniform(0, 1, (n, 2)), mids, rng.uniform(0.2, 1.2, n)]))
            gi = GazeInputs.from_scanpaths(scanpaths, np.arange(t, dtype=np.float64), span_s=1.0)
            gmask = gi.mask.clone()
            gmask[0, -1] = False
            feats = torch.randn(b, t, h, w, config.d_vjepa, generator=gen)
            cases[f"b{b}_t{t}_scanpath"] = (feats, gi.points, gmask, gi.has_gaze)
    return cases


def _as_numpy(x: torch.Tensor) -> np.ndarray:
    if x.dtype == torch.bool:
        return x.detach().cpu().numpy()
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


def _graph_path(graph) -> str | None:
    return None if _is_session(graph) else str(graph)


def _is_session(graph) -> bool:
    return hasattr(graph, "run") and hasattr(graph, "get_inputs")


def _session_metadata(session) -> tuple[str, dict[str, Any]]:
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KIND not in meta:
        raise InputError(None, "the ONNX graph was not exported by gazeqwen_edge (no graph metadata)")
    return meta[METADATA_KIND], json.loads(meta.get(METADATA_CONFIG, "{}"))


def verify_graph(
    module: nn.Module,
    graph,
    *,
    cases: dict[str, tuple[torch.Tensor, ...]] | None = None,
    tol: float = DEFAULT_TOLERANCE,
    seed: int = 0,
) -> dict[str, float]:
    """Run the ONNX graph (a path, or an onnxruntime InferenceSession) on onnxruntime's CPU provider (for a path)
    and the PyTorch module (VideoEncoder or GazeResampler) eagerly on the same inputs; return the max |difference|
    per case. cases None: encoder_cases (with n_frames/2 frames too when the graph's frames are dynamic) or
    resampler_cases on the graph's grid. Raises ExportVerificationError if any case differs by more than `tol` (or
    its shapes differ, or is not finite), InputError for a graph that is not one of ours. Warns when every PyTorch
    output is exactly zero (an untrained resampler's zero proj_out): the check then proves nothing."""
    session = graph if _is_session(graph) else make_session(graph, providers=["CPUExecutionProvider"])
    kind, config = _session_metadata(session)
    ref_module = _reference_module(module)
    if cases is None:
        if kind == "video_encoder":
            frames = None
            if config.get("dynamic_frames"):
                tub = int(config["tubelet_size"])
                other = max(tub, (module.n_frames // 2) // tub * tub)
                frames = (module.n_frames, other if other != module.n_frames else 2 * module.n_frames)
            cases = encoder_cases(module, frames=frames, seed=seed)
        else:
            cases = resampler_cases(module.config, tuple(config["grid_hw"]), seed=seed)
    names = [i.name for i in session.get_inputs()]
    dev = next(module.parameters()).device
    diffs: dict[str, float] = {}
    all_zero = True
    for name, args in cases.items():
        with torch.no_grad():
            want = ref_module(*(a.to(dev) for a in args)).float().cpu().numpy()
        try:
            got = session.run(None, dict(zip(names, (_as_numpy(a) for a in args), strict=True)))[0]
        except Exception as e:  # noqa: BLE001 - onnxruntime's own error types: inputs the graph does not accept
            raise ExportVerificationError(_graph_path(graph), {**diffs, name: math.inf}, tol) from e
        all_zero &= not np.any(want)
        diffs[name] = float(np.max(np.abs(got - want))) if got.shape == want.shape else math.inf
        if not math.isfinite(diffs[name]):
            diffs[name] = math.inf
    if any(not v <= tol for v in diffs.values()):
        raise ExportVerificationError(_graph_path(graph), diffs, tol)
    if all_zero:
        warnings.warn(
            "every PyTorch output of the verification was zero (an untrained resampler: proj_out is zero-initialised); "
            "the graph's agreement proves nothing about its other weights",
            stacklevel=2,
        )
    return diffs


# ---------------------------------------------------------------------------------------------------- runners
def make_session(
    path: str | PathLike,
    providers: Sequence[str | tuple[str, dict]] | None = None,
    trt_cache_dir: str | PathLike | None = None,
    *,
    threads: int | None = None,
    trt_fp16: bool = True,
    spin: bool = False,
):
    """An onnxruntime InferenceSession of the graph at `path` on the best available providers, in the order
    TensorrtExecutionProvider (engine cache in trt_cache_dir, default <graph dir>/trt_cache; fp16 when trt_fp16) ->
    CUDAExecutionProvider -> CPUExecutionProvider (providers None; otherwise those given, names or (name, options),
    keeping only the available ones). threads: intra-op threads (None: onnxruntime's default, one per core).
    spin False turns off the busy-waiting of idle worker threads, which would take the cores from PyTorch running
    beside it. Raises InputError for a missing or malformed graph, ConfigError when none of the providers asked for
    is available, MissingDependencyError without onnxruntime."""
    ort = _ort()
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "ONNX graph not found")
    available = set(ort.get_available_providers())
    wanted = list(PREFERRED_PROVIDERS if providers is None else providers)
    chosen: list[tuple[str, dict]] = []
    for p in wanted:
        name, opts = (p, {}) if isinstance(p, str) else (p[0], dict(p[1]))
        if name not in available:
            continue
        if name == "TensorrtExecutionProvider":
            cache = Path(trt_cache_dir) if trt_cache_dir is not None else path.parent / "trt_cache"
            cache.mkdir(parents=True, exist_ok=True)
            opts = {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(cache),
                "trt_fp16_enable": bool(trt_fp16),
                **opts,
            }
        chosen.append((name, opts))
    if not chosen:
        raise ConfigError(
            f"none of the onnxruntime providers {[p if isinstance(p, str) else p[0] for p in wanted]} is available "
            f"(available: {sorted(available)})",
            hint="CPUExecutionProvider is always there; TensorRT and CUDA need onnxruntime-gpu (the gpu extra)",
        )
    so = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"onnxruntime threads must be >= 1, got {threads}")
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            str(path), so, providers=[n for n, _ in chosen], provider_options=[o for _, o in chosen]
        )
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
        raise InputError(path, f"onnxruntime cannot load the graph ({type(e).__name__}: {e})") from e


def _open(graph, kind: str, providers, threads, trt_cache_dir):
    session = graph if _is_session(graph) else make_session(graph, providers, trt_cache_dir, threads=threads)
    got, config = _session_metadata(session)
    if got != kind:
        raise InputError(_graph_path(graph), f"is a {got} graph, not a {kind} graph")
    return session, config


class OnnxVideoEncoder(VideoEncoder):
    """The video encoder run from its ONNX graph: a VideoEncoder (same prepare / prepare_frames / encode / features /
    stream_features / clip_stream_features, same shapes, float32) whose tokens come from onnxruntime. It holds no
    parameters; `device` is the CPU (its outputs are CPU tensors, whatever provider runs the graph).
    graph: a path (opened with make_session(graph, providers, trt_cache_dir, threads=threads)) or a session."""

    def __init__(self, graph, *, providers=None, threads: int | None = None, trt_cache_dir=None):
        super().__init__()
        self.session, geo = _open(graph, "video_encoder", providers, threads, trt_cache_dir)
        self.path = _graph_path(graph)
        self.n_frames, self.crop_size = int(geo["n_frames"]), int(geo["crop_size"])
        self.patch_size, self.tubelet_size = int(geo["patch_size"]), int(geo["tubelet_size"])
        self.hidden_size = int(geo["hidden_size"])
        self._input = self.session.get_inputs()[0].name

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def providers(self) -> list[str]:
        """The onnxruntime providers the session runs on, best first."""
        return list(self.session.get_providers())

    def _tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self._input: _as_numpy(pixels)})[0]  # (B, Tj, h, w, D)
        return torch.from_numpy(out).reshape(out.shape[0], -1, out.shape[-1])


class OnnxResampler(nn.Module):
    """The gaze resampler run from its ONNX graph, a drop-in for GazeResampler in GazeQwen and the stream: same
    forward(features, gaze_points, gaze_mask, has_gaze=None) -> residuals (M, B, T, H*W, d_llm) float32, returned
    on the features' device; `config` is the exported ResamplerConfig, `grid_hw` the (H, W) grid it was exported for.
    It holds no parameters; `device` is the CPU. graph: a path or an onnxruntime session (as OnnxVideoEncoder)."""

    def __init__(self, graph, *, providers=None, threads: int | None = None, trt_cache_dir=None):
        super().__init__()
        self.session, meta = _open(graph, "resampler", providers, threads, trt_cache_dir)
        self.path = _graph_path(graph)
        self.config = ResamplerConfig.from_dict(meta["resampler"])
        self.grid_hw = tuple(int(v) for v in meta["grid_hw"])
        self._inputs = [i.name for i in self.session.get_inputs()]

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def forward(
        self,
        features: torch.Tensor,
        gaze_points: torch.Tensor,
        gaze_mask: torch.Tensor,
        has_gaze: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """As GazeResampler.forward. Raises ValueError for features of another width than d_vjepa (as the module
        does) and InputError for another token grid than the graph's."""
        b, t, h, w = self.config.feature_shape(features.shape)
        if (h, w) != self.grid_hw:
            raise InputError(
                self.path,
                f"the resampler graph was exported for a {self.grid_hw[0]}x{self.grid_hw[1]} token grid, the video "
                f"gives {h}x{w}",
                hint=f"re-export it with grid_hw=({h}, {w}) (the stream's merged grid for this camera and pixel budget)",
            )
        if has_gaze is None:
            has_gaze = torch.ones(b, dtype=torch.bool)
        feed = dict(
            zip(
                self._inputs,
                (_as_numpy(features), _as_numpy(gaze_points), _as_numpy(gaze_mask.bool()), _as_numpy(has_gaze.bool())),
                strict=True,
            )
        )
        out = self.session.run(None, feed)[0]
        return torch.from_numpy(out).to(features.device)
