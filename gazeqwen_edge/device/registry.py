"""`open_source(spec)`: one entry point from a user's SOURCE argument to a `Source`.

Accepted specs:
- `synthetic` or `synthetic:SEED` (SEED 0 .. 2**32 - 1): a `SyntheticScene` (keyword arguments go to its constructor);
- a directory recognised by its files:
  - our own session (`session.json`), written by `Recorder` / `gazeqwen-edge record`;
  - a Neon native recording (`info.json` and `*.raw` files);
  - a Pupil Cloud "Timeseries + Scene Video" export (`gaze.csv` and `world_timestamps.csv`);
  - a StreamGaze item (one video and one fixation CSV with StreamGaze's columns);
- a video file (a StreamGaze item): its fixation CSV is `fixations=` or found beside it (`<stem>.csv`,
  `<stem>_fixation*.csv`, or the only fixation CSV in the folder);
- a registered prefix (e.g. `pupil-neon`, `neon://host:port`, registered by the live Neon module).

Other modules add sources with `register_source(prefix, factory)`; the factory gets the full spec and the keyword
arguments and returns a Source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from gazeqwen_edge.device.source import Source
from gazeqwen_edge.errors import InputError

SourceFactory = Callable[..., Source]

# prefix -> factory(spec, **kw); a spec matches a prefix when it equals it or starts with it
_REGISTRY: dict[str, SourceFactory] = {}
# modules that register sources when imported (imported lazily on the first unmatched spec)
_PLUGIN_MODULES = ["gazeqwen_edge.device.neon"]
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are unsigned; 32 bits is what both take everywhere
MAX_FRAME_SIDE = 4096  # no head-worn scene camera delivers more (the Neon scene camera: 1600x1200)


def parse_seed(text: str) -> int:
    """A seed as written in a spec or option: a whole number 0 .. MAX_SEED (digits only); ValueError otherwise."""
    if not text.isascii() or not text.isdigit() or int(text) > MAX_SEED:
        raise ValueError(f"a seed is a whole number from 0 to {MAX_SEED}, got '{text}'")
    return int(text)


def parse_frame_size(text: str, min_side: int = 1) -> tuple[int, int]:
    """'640x480' -> (640, 480): whole pixels, each side from `min_side` to MAX_FRAME_SIDE (a frame larger than any
    scene camera's is refused before anything is allocated for it); ValueError saying what is wrong otherwise."""
    m = re.fullmatch(r"\s*(\d{1,9})\s*[xX]\s*(\d{1,9})\s*", text)
    if m is None:
        raise ValueError(f"must look like 640x480 (width x height in px), got '{text}'")
    w, h = int(m.group(1)), int(m.group(2))
    if not (min_side <= w <= MAX_FRAME_SIDE and min_side <= h <= MAX_FRAME_SIDE):
        raise ValueError(
            f"{w}x{h} is not a scene camera frame size: each side must be {min_side} to {MAX_FRAME_SIDE} px "
            "(the Neon scene camera is 1600x1200)"
        )
    return w, h


def register_source(prefix: str, factory: SourceFactory) -> None:
    """Make `open_source(spec)` call `factory(spec, **kw)` for specs equal to or starting with `prefix`."""
    _REGISTRY[prefix] = factory


def registered_prefixes() -> list[str]:
    return sorted(_REGISTRY)


def _load_plugins() -> None:
    import importlib

    for m in list(_PLUGIN_MODULES):
        try:
            importlib.import_module(m)
        except ImportError:
            pass  # not written / its extra not installed: its prefixes are simply not offered
        _PLUGIN_MODULES.remove(m)


def _match_registry(spec: str) -> SourceFactory | None:
    for prefix in sorted(_REGISTRY, key=len, reverse=True):
        if spec == prefix or spec.startswith(prefix):
            return _REGISTRY[prefix]
    return None


def accepted_specs() -> str:
    """What SOURCE can be, in one short line for an error's hint: the same whatever was imported before (the live
    prefixes' modules are loaded first); the README ("Commands") and each command's --help say more."""
    if _PLUGIN_MODULES:
        _load_plugins()
    prefixes = [f"'{p}HOST:PORT'" if p.endswith("://") else f"'{p}'" for p in registered_prefixes() if p != "synthetic"]
    return (
        "synthetic[:SEED]; a directory of a session, a Neon native recording or a Pupil Cloud export; a video with "
        "its fixation CSV (StreamGaze); " + ", ".join(prefixes)
    )


def _synthetic(spec: str, **kw) -> Source:
    from gazeqwen_edge.device.synthetic import SyntheticScene

    if spec != "synthetic":
        seed_text = spec[len("synthetic:") :] if spec.startswith("synthetic:") else ""
        try:
            kw["seed"] = parse_seed(seed_text)
        except ValueError:
            raise InputError(
                None,
                f"bad synthetic spec '{spec}': expected 'synthetic' or 'synthetic:SEED' "
                f"(SEED a whole number from 0 to {MAX_SEED})",
            ) from None
    return SyntheticScene(**kw)


register_source("synthetic", _synthetic)


def detect_kind(path: Path) -> str:
    """'session' | 'neon' | 'cloud' | 'streamgaze' for a directory or file, or raise InputError saying why not."""
    if not path.exists():
        raise InputError(path, "does not exist", hint=f"SOURCE is {accepted_specs()}")
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "streamgaze"
        raise InputError(
            path,
            "is a file that is not a video; expected a recording directory or a video",
            hint=f"SOURCE is {accepted_specs()}",
        )
    if not path.is_dir():  # a device, a pipe, a socket (/dev/null): neither a recording nor a video file
        raise InputError(
            path,
            "is neither a directory nor a regular file; expected a recording directory or a video",
            hint=f"SOURCE is {accepted_specs()}",
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(path, "directory cannot be read (permission denied)")
    try:
        names = {p.name for p in path.iterdir()}
    except OSError as e:
        raise InputError(path, f"directory cannot be read ({e.strerror or e})") from e
    if "session.json" in names:
        return "session"
    if "info.json" in names and any(n.endswith(".raw") for n in names):
        return "neon"
    if "gaze.csv" in names and "world_timestamps.csv" in names:
        return "cloud"
    from gazeqwen_edge.device.cloud_export import enrichment_kind, not_an_export_error

    if "gaze.csv" in names or enrichment_kind(path, names) is not None:
        raise not_an_export_error(path, names)  # an enrichment download is named as such, with the download to pick
    if "info.json" in names:
        raise InputError(path, "has info.json but no *.raw sensor files: not a complete Neon native recording")
    if any(Path(n).suffix.lower() in VIDEO_SUFFIXES for n in names):
        from gazeqwen_edge.device.streamgaze import _is_fixation_csv

        if any(n.lower().endswith(".csv") and _is_fixation_csv(path / n) for n in names):
            return "streamgaze"
    raise InputError(
        path,
        "is not a recording this tool recognises (no session.json, info.json + *.raw, gaze.csv + world_timestamps.csv, "
        "or video + fixation CSV)",
        hint=f"SOURCE is {accepted_specs()}",
    )


def open_source(spec: str | os.PathLike, **kw) -> Source:
    """Open SOURCE (see the module docstring). Unknown specs raise InputError naming the spec and what is accepted."""
    spec_s = os.fspath(spec)
    path = Path(spec_s).expanduser()
    if spec_s == "synthetic" or spec_s.startswith("synthetic:"):
        return _synthetic(spec_s, **kw)
    if not isinstance(spec, os.PathLike) and not path.exists():
        factory = _match_registry(spec_s)
        if factory is None and _PLUGIN_MODULES:
            _load_plugins()
            factory = _match_registry(spec_s)
        if factory is not None:
            return factory(spec_s, **kw)
        if "://" in spec_s:
            raise InputError(None, f"unknown source '{spec_s}'", hint=f"SOURCE is {accepted_specs()}")
    kind = detect_kind(path)
    if kind == "session":
        from gazeqwen_edge.device.session import SessionSource

        return SessionSource(path, **kw)
    if kind == "neon":
        from gazeqwen_edge.device.neon_native import NeonRecordingSource

        return NeonRecordingSource(path, **kw)
    if kind == "cloud":
        from gazeqwen_edge.device.cloud_export import CloudExportSource

        return CloudExportSource(path, **kw)
    from gazeqwen_edge.device.streamgaze import StreamGazeSource

    return StreamGazeSource(path, **kw)
