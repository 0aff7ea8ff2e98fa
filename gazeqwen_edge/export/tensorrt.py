"""TensorRT engines of the exported ONNX graphs (TensorRT 10 Python API) and a small runner.

    profiles = default_profiles(graph_info("bundle/resampler.onnx"), batch=(1, 1, 2), steps=(1, 4, 32))
    build_engine("bundle/resampler.onnx", "bundle/resampler.engine", fp16=True, profiles=profiles)
    runner = TensorRTRunner("bundle/resampler.engine")
    out = runner(features=f, gaze_points=p, gaze_mask=m, has_gaze=h)   # {"residuals": CUDA tensor}

An engine is built for one GPU and TensorRT version (build it on the target: the Jetson, the RTX machine). Every
dynamic dim of the graph (batch, steps, gaze_points, frames: onnx_graphs) needs a min/opt/max range in an
optimisation profile; an input outside the profile is refused at run time. fp16 sets the builder's FP16 flag: the
engine's inputs and outputs stay float32 (and bool), its layers may run in half precision. tensorrt is imported
inside the functions; without it MissingDependencyError (exit code 4) says how to get it. Written against the
TensorRT 10 API documentation; not run on this project's CPU-only machines (the tests skip without tensorrt).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import torch

from gazeqwen_edge.errors import ConfigError, DeviceError, GazeQwenError, InputError, MissingDependencyError

Shape = tuple[int, ...]
Profile = dict[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max) shapes


class EngineBuildError(GazeQwenError):
    """TensorRT could not parse the graph or build an engine from it (an unsupported operator, a profile that does
    not fit the graph, not enough GPU memory)."""


def _trt():
    try:
        import tensorrt
    except ImportError as e:
        raise MissingDependencyError(
            f"TensorRT engines need the Python module 'tensorrt', which is not installed ({e})",
            hint="pip install tensorrt (x86-64 CUDA machines; or the gpu extra: pip install 'gazeqwen-edge[gpu]'); "
            "on Jetson it comes with JetPack (apt install python3-libnvinfer)",
        ) from e
    return tensorrt


def default_profiles(
    info,
    batch: tuple[int, int, int] = (1, 1, 4),
    steps: tuple[int, int, int] = (1, 4, 64),
    gaze_points: tuple[int, int, int] = (1, 1, 8),
    frames: tuple[int, int, int] | None = None,
) -> list[Profile]:
    """One optimisation profile for a graph described by onnx_graphs.GraphInfo: every input's static dims as they
    are, each dynamic dim (by its name in the graph) from the (min, opt, max) range given for it. frames None: the
    encoder's n_frames only (what the runtime feeds it). Raises ConfigError for a range that is not
    1 <= min <= opt <= max or a dynamic dim without one."""
    ranges = {"batch": batch, "steps": steps, "gaze_points": gaze_points}
    n = info.config.get("n_frames")
    ranges["frames"] = frames if frames is not None else ((n, n, n) if n else None)
    for name, r in ranges.items():
        if r is not None and not (len(r) == 3 and 1 <= r[0] <= r[1] <= r[2]):
            raise ConfigError(f"profile range for {name} must be (min, opt, max) with 1 <= min <= opt <= max, got {r}")
    profile: Profile = {}
    for spec in info.inputs:
        dims = []
        for d in spec.shape:
            if isinstance(d, int):
                dims.append((d, d, d))
            elif ranges.get(d) is None:
                raise ConfigError(f"input {spec.name!r} has a dynamic dim {d!r} without a profile range")
            else:
                dims.append(tuple(ranges[d]))
        lo, opt, hi = (tuple(int(r[i]) for r in dims) for i in range(3))
        profile[spec.name] = (lo, opt, hi)
    return [profile]


def build_engine(
    onnx_path: str | PathLike,
    engine_path: str | PathLike,
    fp16: bool = True,
    profiles: Sequence[Mapping[str, tuple[Shape, Shape, Shape]]] | None = None,
    workspace_gb: float = 4.0,
) -> Path:
    """Parse the ONNX graph (weights in an external .data file beside it are found by the parser) and write a
    serialized TensorRT engine to engine_path. profiles: one or more {input: (min, opt, max)} optimisation profiles
    (None: default_profiles of the graph); fp16: allow half-precision layers; workspace_gb: the builder's workspace
    pool limit. Returns engine_path. Raises MissingDependencyError without tensorrt, InputError for a missing graph,
    EngineBuildError when TensorRT refuses it."""
    trt = _trt()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise InputError(onnx_path, "ONNX graph not found")
    if profiles is None:
        from gazeqwen_edge.export.onnx_graphs import graph_info

        profiles = default_profiles(graph_info(onnx_path))
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"{onnx_path}: TensorRT cannot parse the graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if fp16 and hasattr(trt.BuilderFlag, "FP16"):
        config.set_flag(trt.BuilderFlag.FP16)
    inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    for prof in profiles:
        unknown = sorted(set(prof) - inputs)
        if unknown:
            raise ConfigError(f"profile names inputs {unknown} the graph does not have (inputs: {sorted(inputs)})")
        p = builder.create_optimization_profile()
        for name, (lo, opt, hi) in prof.items():
            p.set_shape(name, tuple(lo), tuple(opt), tuple(hi))
        config.add_optimization_profile(p)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"{onnx_path}: TensorRT could not build an engine (see its log above)",
            hint="check the profiles fit the graph's static dims, and the GPU memory",
        )
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    return engine_path


_TORCH_DTYPES = {
    "FLOAT": torch.float32,
    "HALF": torch.float16,
    "BF16": torch.bfloat16,
    "INT32": torch.int32,
    "INT64": torch.int64,
    "INT8": torch.int8,
    "BOOL": torch.bool,
}


class TensorRTRunner:
    """Runs a serialized engine on one CUDA device with torch tensors as buffers: call with the inputs by name (torch
    tensors or numpy arrays, moved to the device and cast to the engine's dtypes), get {output name: CUDA tensor}.
    Uses optimisation profile 0. Raises MissingDependencyError without tensorrt, DeviceError without CUDA,
    InputError for a missing or unreadable engine or inputs that do not match it."""

    def __init__(self, engine_path: str | PathLike, device: str | torch.device = "cuda"):
        trt = _trt()
        if not torch.cuda.is_available():
            raise DeviceError("TensorRT engines run on a CUDA GPU and torch sees none")
        self.path = Path(engine_path)
        if not self.path.is_file():
            raise InputError(self.path, "TensorRT engine not found")
        self.device = torch.device(device)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise InputError(
                self.path,
                "TensorRT cannot load the engine",
                hint="engines are built per GPU and TensorRT version: rebuild it here (build_engine)",
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [n for n in names if is_input[n]]
        self.outputs = [n for n in names if not is_input[n]]
        self.dtypes = {n: _TORCH_DTYPES[self.engine.get_tensor_dtype(n).name] for n in names}

    def __call__(self, **inputs) -> dict[str, torch.Tensor]:
        missing = sorted(set(self.inputs) - set(inputs))
        if missing:
            raise InputError(self.path, f"inputs {missing} are missing (the engine takes {self.inputs})")
        keep = {}
        for name in self.inputs:
            x = inputs[name]
            x = torch.as_tensor(x).to(self.device, self.dtypes[name]).contiguous()
            keep[name] = x  # the buffers must outlive the launch
            if not self.context.set_input_shape(name, tuple(x.shape)):
                raise InputError(self.path, f"input {name!r} of shape {tuple(x.shape)} is outside the engine's profile")
            self.context.set_tensor_address(name, x.data_ptr())
        out = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            out[name] = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out[name].data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise DeviceError(f"{self.path}: TensorRT failed to run the engine")
        stream.synchronize()
        return out
