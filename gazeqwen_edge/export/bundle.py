"""The edge bundle: one verified directory `run` and `replay` load with `--bundle DIR`.

    bundle/
      manifest.json    format + version, how it was made (source ids and revisions, package versions, the command that
                       rebuilds it), quantisation, shapes, the sha256 and size of every file, verification results
      model/           a model directory (model/model_dir.py): qwen/ (the LLM, pre-quantised NF4 or full precision,
                       safetensors + tokenizer), vjepa/ (the V-JEPA encoder), gaze/ (the resampler checkpoint)
      onnx/            video_encoder.onnx, resampler.onnx (dynamic batch and temporal length; export/onnx_graphs.py)
      tensorrt/<key>/  optional TensorRT engines, key = GPU name + TensorRT version (export/tensorrt.py)

The runtime refuses a bundle whose format is not ours, whose format version is newer than this package reads, whose
files are missing or differ from their recorded sha256, or whose TensorRT engines were built for another GPU or
TensorRT version; each refusal names the problem and prints the command that rebuilds the bundle.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gazeqwen_edge.errors import InputError

BUNDLE_FORMAT = "gazeqwen-edge-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HASH_CHUNK = 1 << 20


class BundleError(InputError):
    """A bundle that cannot be used as it is (exit 2); the hint carries the command that rebuilds it."""

    def __init__(self, path, problem: str, rebuild: str | None = None):
        # the command's OUT may be this very directory (export refuses one that holds files): say to empty it
        hint = (
            f"rebuild it into a new or emptied directory: {rebuild}"
            if rebuild
            else "rebuild it with `gazeqwen-edge export` into a new or emptied directory"
        )
        super().__init__(path, problem, hint=hint)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_table(root: Path) -> dict[str, dict[str, Any]]:
    """{relative posix path: {"sha256", "bytes"}} of every file under root except the manifest, sorted."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            out[p.relative_to(root).as_posix()] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return out


def package_versions() -> dict[str, str | None]:
    """Versions of the packages a bundle depends on (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("gazeqwen-edge", "torch", "transformers", "bitsandbytes", "onnx", "onnxruntime", "tensorrt"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def engine_key(gpu_name: str, trt_version: str) -> str:
    """Directory name of the TensorRT engines for one GPU and TensorRT version, e.g. 'Orin_trt10.3.0'."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in gpu_name).strip("_")
    return f"{safe}_trt{trt_version}"


def verification_clip(seconds: float = 4.0, fps: float = 2.0, hw: tuple[int, int] = (120, 160), seed: int = 0):
    """A fixed random clip ((N, H, W, 3) uint8 at `fps`) and a three-fixation scanpath ((3, 4) rows [x, y, mid_t,
    dur], normalised coordinates, seconds from the clip start) the export verifies the bundle on."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (int(seconds * fps), *hw, 3), dtype=np.uint8)
    scanpath = np.array([[0.3, 0.4, 0.6, 0.8], [0.7, 0.3, 1.9, 1.0], [0.5, 0.7, 3.2, 1.1]])
    return frames, fps, scanpath


VERIFY_QUESTION = "What am I looking at?"


def compare_models(reference, candidate, max_new_tokens: int = 8) -> dict[str, Any]:
    """Run both GazeQwens on the verification clip with gaze: the question's last-position logits (max |difference|,
    whether the top token agrees) and the greedy answers (equal or not, both texts). Used to verify a bundle against
    the model it was exported from."""
    from gazeqwen_edge.model.gazeqwen import Video

    frames, fps, scanpath = verification_clip()
    video = Video(frames, fps=fps)
    logits, answers = [], []
    for gq in (reference, candidate):
        batch = gq.collate([gq.prepare(video, scanpath, VERIFY_QUESTION)])
        logits.append(gq.prefill(batch).logits[0, -1].float().cpu())
        answers.append("".join(gq.answer(video, scanpath, VERIFY_QUESTION, max_new_tokens=max_new_tokens)))
    diff = (logits[0] - logits[1]).abs()
    return {
        "max_abs_logit_diff": float(diff.max()),
        "logit_scale": float(logits[0].abs().max()),
        "top1_agrees": bool(logits[0].argmax() == logits[1].argmax()),
        "answer_equal": answers[0] == answers[1],
        "answer_reference": answers[0],
        "answer_bundle": answers[1],
    }


# Scene-camera frame sizes (height, width) whose token grids get a resampler graph: the Neon scene camera (4:3, as the
# synthetic scenes and EGTEA Gaze+) and 16:9 video (HoloAssist, EgoExoLearn, most phone video). Other grids run the
# bundle's PyTorch resampler.
GRAPH_FRAME_SIZES = ((1200, 1600), (720, 1280))


def merged_grid(gq, frame_hw: tuple[int, int]) -> tuple[int, int]:
    """The LLM's merged video-token grid (H, W) for frames of frame_hw under gq's pixel budget (as VideoStream)."""
    from gazeqwen_edge.model.preprocessing import smart_resize

    factor = gq.patch_size * gq.merge
    h, w = smart_resize(int(frame_hw[0]), int(frame_hw[1]), factor, gq.min_pixels, gq.max_pixels)
    return h // factor, w // factor


def export_gaze_graphs(gq, out_dir: Path, tolerance: float = 1e-4, frame_sizes=GRAPH_FRAME_SIZES) -> dict[str, Any]:
    """Export gq's video encoder and, for the token grid of each frame size, its resampler to ONNX under out_dir, each
    verified against PyTorch (batch 1 and 3, two temporal lengths; export/onnx_graphs.py). Returns the manifest's
    "onnx" section: {name: GraphInfo dict (file relative to the bundle, inputs, outputs, max_abs_diff, config)}.
    Raises ExportVerificationError above `tolerance`, MissingDependencyError without the onnx extra."""
    from gazeqwen_edge.export.onnx_graphs import export_resampler, export_video_encoder

    out_dir.mkdir(parents=True, exist_ok=True)
    graphs: dict[str, Any] = {}
    info = export_video_encoder(gq.video_encoder, out_dir / "video_encoder.onnx", tol=tolerance)
    graphs["video_encoder"] = {**info.to_dict(), "file": f"{out_dir.name}/video_encoder.onnx"}
    for hw in dict.fromkeys(merged_grid(gq, fs) for fs in frame_sizes):
        name = f"resampler_{hw[0]}x{hw[1]}"
        info = export_resampler(gq.resampler, out_dir / f"{name}.onnx", hw, tol=tolerance)
        graphs[name] = {**info.to_dict(), "file": f"{out_dir.name}/{name}.onnx", "grid_hw": list(hw)}
    return graphs


class GridResampler(torch.nn.Module):
    """The bundle's resampler: the ONNX graph exported for the features' token grid when there is one, else the
    PyTorch resampler (same weights). Same forward and `config` as GazeResampler; `onnx_calls` / `torch_calls` count
    which ran (the session's stage timings show the time either way)."""

    def __init__(self, graphs: dict[tuple[int, int], Any], fallback: torch.nn.Module):
        super().__init__()
        self.graphs = graphs
        self.fallback = fallback
        self.config = fallback.config
        self.onnx_calls = 0
        self.torch_calls = 0

    @property
    def device(self) -> torch.device:
        """Where callers put the inputs (gazeqwen.module_device): the PyTorch fallback's device, which must get them
        there; an ONNX graph takes tensors on any device and returns its residuals on theirs. (The CPU here sent
        CPU features into a CUDA fallback: an NF4 bundle on CUDA failed on every grid without a graph.)"""
        from gazeqwen_edge.model.gazeqwen import module_device

        return module_device(self.fallback)

    def forward(self, features, gaze_points, gaze_mask, has_gaze=None):
        """As GazeResampler.forward: features (B, T, H, W, d_vjepa) -> residuals (M, B, T, H*W, d_llm), on the
        features' device (float32 from a graph, the fallback's dtype from it)."""
        graph = self.graphs.get((int(features.shape[2]), int(features.shape[3])))
        if graph is None:
            self.torch_calls += 1
            return self.fallback(features, gaze_points, gaze_mask, has_gaze)
        self.onnx_calls += 1
        return graph(features, gaze_points, gaze_mask, has_gaze)


def attach_onnx_gaze_path(gq, bundle_dir: Path, graphs: dict[str, Any]) -> None:
    """Replace gq's video encoder and resampler by the bundle's ONNX graphs run by onnxruntime (providers TensorRT ->
    CUDA -> CPU, whichever are available; TensorRT engines cached under bundle/tensorrt/ort-cache). Raises
    ImportError-derived MissingDependencyError without onnxruntime."""
    from gazeqwen_edge.export.onnx_graphs import OnnxResampler, OnnxVideoEncoder

    cache = bundle_dir / "tensorrt" / "ort-cache"
    enc = OnnxVideoEncoder(bundle_dir / graphs["video_encoder"]["file"], trt_cache_dir=cache)
    res = {
        tuple(g["grid_hw"]): OnnxResampler(bundle_dir / g["file"], trt_cache_dir=cache)
        for name, g in graphs.items()
        if name.startswith("resampler_")
    }
    gq.video_encoder = enc
    gq.resampler = GridResampler(res, gq.resampler)


def build_bundle_engines(bundle_dir: Path, graphs: dict[str, Any]) -> dict[str, Any]:
    """Build a TensorRT engine (FP16, one optimisation profile over batch, steps and gaze points:
    export/tensorrt.py default_profiles) for every ONNX graph of the bundle, for this machine's GPU, into
    tensorrt/<engine_key>/<graph>.engine. Returns the manifest's "tensorrt" section {key: {gpu, tensorrt, files}}.
    Raises MissingDependencyError without tensorrt, DeviceError without a CUDA GPU, InputError without ONNX graphs."""
    from gazeqwen_edge.errors import DeviceError
    from gazeqwen_edge.export.onnx_graphs import GraphInfo
    from gazeqwen_edge.export.tensorrt import _trt, build_engine, default_profiles

    trt = _trt()
    if not torch.cuda.is_available():
        raise DeviceError("--tensorrt builds engines for this machine's GPU, and torch sees no CUDA GPU")
    if not graphs:
        raise InputError(bundle_dir, "TensorRT engines are built from the ONNX graphs: leave out --no-onnx")
    gpu = torch.cuda.get_device_name(0)
    key = engine_key(gpu, trt.__version__)
    files = []
    for name, g in graphs.items():
        rel = f"tensorrt/{key}/{name}.engine"
        build_engine(bundle_dir / g["file"], bundle_dir / rel, profiles=default_profiles(GraphInfo.from_dict(g)))
        files.append(rel)
    return {key: {"gpu": gpu, "tensorrt": trt.__version__, "files": files}}


def write_bundle(
    gq,
    out: str | Path,
    *,
    source: dict[str, Any],
    rebuild: str,
    quant: str = "nf4",
    compute_dtype: str = "bfloat16",
    onnx: bool = True,
    tensorrt: bool = False,
    verify: bool = True,
    onnx_tolerance: float = 1e-4,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Export `gq` (a GazeQwen with a resampler, loaded in fp32 on the CPU) into the bundle directory `out` (must not
    hold files). source: what it came from (model, checkpoint, ids, revisions) for the manifest; rebuild: the command
    line that remakes this bundle (printed when a runtime refuses it); quant: "nf4" or "none"; onnx: export and verify
    the encoder + resampler graphs (needs the onnx extra); tensorrt: also build engines for this GPU (needs tensorrt
    and CUDA); verify: load the finished bundle back and compare it with `gq` (recorded, never fatal for NF4: 4-bit
    weights change the logits). Raises InputError for a model without a gaze path, MissingDependencyError for a
    missing extra, ExportVerificationError when an ONNX graph differs from PyTorch by more than onnx_tolerance.
    Returns the manifest (also written to out/manifest.json, last). An export that fails, is refused by the disk
    (OSError with its errno) or is stopped (Ctrl-C) removes what it wrote, so the same command can be run again."""
    say = progress or (lambda _msg: None)
    if gq.resampler is None or gq.video_encoder is None:
        raise InputError(None, "the model has no gaze resampler: nothing to export for the gaze path")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(out, "already holds files", hint="choose a new directory or remove this one")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _write_bundle(
            gq, out, source, rebuild, quant, compute_dtype, onnx, tensorrt, verify, onnx_tolerance, say
        )
    except BaseException:  # failed, refused by the disk or Ctrl-C: an export does not resume, so leave no half bundle
        _remove_partial(out, made)
        raise


def _remove_partial(out: Path, made: bool) -> None:
    """Remove what an unfinished export wrote into `out` (empty or new when it began, so all of it is the export's),
    and `out` itself when the export made it; errors are let be (the export's own error is the one to report)."""
    for p in list(out.iterdir()) if out.is_dir() else []:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    if made:
        try:
            out.rmdir()
        except OSError:
            pass


def _write_bundle(gq, out, source, rebuild, quant, compute_dtype, onnx, tensorrt, verify, onnx_tolerance, say):
    from gazeqwen_edge.export.quantize import quantize_llm
    from gazeqwen_edge.model.model_dir import save_model_dir

    t0 = time.perf_counter()
    say("saving the model directory")
    save_model_dir(gq, out / "model", meta=gq.meta)
    qwen_dir = out / "model" / "qwen"
    say(f"quantising the LLM ({quant})")
    staged = out / "model" / "qwen.full"
    qwen_dir.rename(staged)
    quant_record = quantize_llm(staged, qwen_dir, quant, compute_dtype)
    shutil.rmtree(staged)
    graphs: dict[str, Any] = {}
    if onnx:
        say("exporting the V-JEPA encoder and the resampler to ONNX and verifying them against PyTorch")
        graphs = export_gaze_graphs(gq, out / "onnx", tolerance=onnx_tolerance)
    engines: dict[str, Any] = {}
    if tensorrt:
        say("building TensorRT engines")
        engines = build_bundle_engines(out, graphs)
    rc, tc = gq.resampler.config, gq.qwen.config.text_config
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {**source, "qwen_revision": getattr(gq.qwen.config, "_commit_hash", None)},
        "rebuild": rebuild,
        "packages": package_versions(),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "quantization": quant_record,
        "shapes": {
            "llm_hidden": tc.hidden_size,
            "llm_layers": tc.num_hidden_layers,
            "vocab": tc.vocab_size,
            "injected_layers": list(rc.injected_layers),
            "gaze_encoding": rc.gaze_encoding,
            "d_vjepa": rc.d_vjepa,
            "resampler_parameters": sum(p.numel() for p in gq.resampler.parameters()),
        },
        "onnx": graphs,
        "tensorrt": engines,
        "verification": {},
    }
    if verify:
        say("loading the bundle back and comparing it with the source model")
        # hashes are not written yet: load without the manifest check, compare, then write the manifest
        cand = _load(out, manifest, device="cpu", dtype=torch.float32, injection="fused", gaze_backend="auto")
        manifest["verification"] = {"llm_vs_source": compare_models(gq, cand), "gaze_backend": cand.meta["backend"]}
        cand.close()
        if quant == "none" and not manifest["verification"]["llm_vs_source"]["answer_equal"]:
            raise InputError(out, "the fp32 bundle answers differently from the model it was exported from")
    manifest["export_seconds"] = round(time.perf_counter() - t0, 1)
    manifest["files"] = file_table(out)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def is_bundle(path) -> bool:
    """Whether `path` is a directory with a bundle manifest."""
    return Path(path, MANIFEST).is_file()


def read_manifest(path) -> dict[str, Any]:
    """The bundle's manifest, format and version checked. Raises BundleError."""
    d = Path(path)
    if not d.is_dir():
        raise InputError(d, "no such bundle directory", hint="make one with `gazeqwen-edge export OUT`")
    try:
        manifest = json.loads((d / MANIFEST).read_text())
    except FileNotFoundError:
        raise BundleError(d, f"is not a bundle (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise BundleError(d / MANIFEST, f"unreadable manifest ({e})") from e
    rebuild = manifest.get("rebuild") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(d / MANIFEST, f"not a {BUNDLE_FORMAT} manifest", rebuild)
    ver = manifest.get("format_version")
    if not isinstance(ver, int) or ver > FORMAT_VERSION or ver < 1:
        raise BundleError(
            d / MANIFEST,
            f"bundle format version {ver!r}; this gazeqwen-edge reads version {FORMAT_VERSION} "
            "(a newer release made it: upgrade gazeqwen-edge, or rebuild the bundle with this one)",
            rebuild,
        )
    return manifest


def verify_bundle(path, *, gpu: tuple[str, str] | None = None) -> dict[str, Any]:
    """Check a bundle before loading it: manifest format and version, every recorded file present with its size and
    sha256, no file added under model/ or onnx/ (weights that are not the verified ones), and, when `gpu` = (GPU
    name, TensorRT version) is given and the bundle has TensorRT engines, that some engine set was built for that GPU
    and TensorRT version. Returns the manifest; raises BundleError naming the first problem with the rebuild command."""
    d = Path(path)
    manifest = read_manifest(d)
    rebuild = manifest.get("rebuild")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(d / MANIFEST, "lists no files", rebuild)
    for rel, rec in files.items():
        p = d / rel
        if not p.is_file():
            raise BundleError(p, "is missing from the bundle", rebuild)
        if p.stat().st_size != rec.get("bytes") or sha256_file(p) != rec.get("sha256"):
            raise BundleError(p, "differs from the file the bundle was verified with (sha256 mismatch)", rebuild)
    for sub in ("model", "onnx"):
        for p in sorted((d / sub).rglob("*")) if (d / sub).is_dir() else []:
            if p.is_file() and p.relative_to(d).as_posix() not in files:
                raise BundleError(p, "is not part of the verified bundle (not in its manifest)", rebuild)
    engines = manifest.get("tensorrt") or {}
    if gpu is not None and engines:
        key = engine_key(*gpu)
        if key not in engines:
            built = ", ".join(sorted(engines)) or "none"
            raise BundleError(
                d,
                f"has TensorRT engines for {built}, not for this GPU and TensorRT ({key}); engines only run on the GPU "
                "model and TensorRT version that built them",
                (rebuild or "gazeqwen-edge export ...") + " --tensorrt",
            )
    return manifest


def _load(path: Path, manifest, *, device, dtype, injection, gaze_backend, timer=None, sampling_fps=None):
    """Assemble the GazeQwen of a bundle (no checks): the model directory, then the ONNX (or TensorRT) gaze path in
    place of the PyTorch encoder and resampler when asked for and available. gq.meta["backend"] says which ran."""
    from gazeqwen_edge.export.quantize import check_can_load, load_dtype
    from gazeqwen_edge.model.model_dir import load_model_dir

    check_can_load(path / "model" / "qwen")
    dtype = load_dtype(path / "model" / "qwen", dtype)
    gq = load_model_dir(
        path / "model", device=device, dtype=dtype, injection=injection, timer=timer, sampling_fps=sampling_fps
    )
    backend = "torch"
    graphs = manifest.get("onnx") or {}
    if gaze_backend in ("auto", "onnx") and graphs:
        from gazeqwen_edge.errors import MissingDependencyError

        try:
            attach_onnx_gaze_path(gq, path, graphs)
            backend = "onnx"
        except MissingDependencyError:
            if gaze_backend == "onnx":
                raise
    elif gaze_backend == "onnx":
        raise BundleError(path, "has no ONNX graphs", manifest.get("rebuild"))
    gq.meta = {**gq.meta, "backend": backend, "bundle": str(path)}
    return gq


GAZE_BACKENDS = ("auto", "onnx", "torch")


def load_bundle(
    path,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    injection: str = "fused",
    gaze_backend: str = "auto",
    timer=None,
    sampling_fps: float | None = None,
):
    """Verify (verify_bundle) and load a bundle as a GazeQwen. gaze_backend: "auto" (ONNX graphs through onnxruntime,
    TensorRT -> CUDA -> CPU providers, when onnxruntime is installed, else PyTorch), "onnx" (required) or "torch" (the
    bundle's PyTorch weights). injection: "fused" or "hooks". Raises BundleError / InputError for a bad bundle,
    MissingDependencyError (exit 4) for an NF4 bundle without bitsandbytes or "onnx" without onnxruntime."""
    if gaze_backend not in GAZE_BACKENDS:
        raise InputError(None, f"gaze backend must be one of {', '.join(GAZE_BACKENDS)}, got {gaze_backend!r}")
    d = Path(path)
    gpu = None
    if str(device).startswith("cuda") and torch.cuda.is_available():
        try:
            import tensorrt  # noqa: F401  (only to read its version)

            gpu = (torch.cuda.get_device_name(torch.device(device)), tensorrt.__version__)
        except ImportError:
            gpu = None
    manifest = verify_bundle(d, gpu=gpu)
    return _load(
        d,
        manifest,
        device=device,
        dtype=dtype,
        injection=injection,
        gaze_backend=gaze_backend,
        timer=timer,
        sampling_fps=sampling_fps,
    )
