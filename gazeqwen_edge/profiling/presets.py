"""Memory bandwidth of the devices decode speed is judged against, and a probe that measures this machine's.

Decoding one token at batch 1 reads every weight of the LLM once plus the KV cache, so time per token is bounded below
by bytes read / memory bandwidth; `profiling.bandwidth` compares the two. Peak figures (GB/s = 1e9 bytes/s):
- Jetson AGX Orin 64GB 204.8, Orin NX 16GB 102.4, Orin Nano 8GB 68 (102 with the "super" JetPack 6.2 clocks),
  RTX 4090 1008: shared/REFERENCE.md section 5 (NVIDIA's Jetson module data sheets and the RTX 4090 spec page);
- RTX 4070 Laptop GPU 256 (128-bit GDDR6 at 16 Gbps, NVIDIA's RTX 40 laptop spec table);
- H100 SXM5 80GB 3350 (HBM3) and H100 PCIe 80GB 2000 (HBM2e), H200 SXM 141GB 4800 (HBM3e): NVIDIA's H100 and H200
  data sheets;
- "cpu": this machine, measured by `probe_host_bandwidth` (a large tensor copy: what one process's threads reach).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from gazeqwen_edge.errors import ConfigError


@dataclass(frozen=True)
class DevicePreset:
    """A device decode is judged against: `name` (the --preset value), a readable `label`, its peak memory bandwidth
    in GB/s (1e9 bytes/s; None for "cpu", measured at run time) and where the figure comes from."""

    name: str
    label: str
    bandwidth_gbs: float | None
    source: str


PRESETS: dict[str, DevicePreset] = {
    p.name: p
    for p in (
        DevicePreset("agx-orin", "Jetson AGX Orin 64GB", 204.8, "REFERENCE.md section 5 (Jetson AGX Orin data sheet)"),
        DevicePreset("orin-nx", "Jetson Orin NX 16GB", 102.4, "REFERENCE.md section 5 (Jetson Orin NX data sheet)"),
        DevicePreset("orin-nano", "Jetson Orin Nano 8GB", 68.0, "REFERENCE.md section 5 (Jetson Orin Nano data sheet)"),
        DevicePreset("orin-nano-super", "Jetson Orin Nano 8GB (super clocks)", 102.0, "REFERENCE.md section 5"),
        DevicePreset("rtx-4090", "GeForce RTX 4090", 1008.0, "REFERENCE.md section 5 (NVIDIA RTX 4090 spec)"),
        DevicePreset(
            "rtx-4070-laptop", "GeForce RTX 4070 Laptop GPU", 256.0, "NVIDIA RTX 40 laptop spec (128-bit, 16 Gbps)"
        ),
        DevicePreset("h100", "H100 SXM5 80GB", 3350.0, "NVIDIA H100 data sheet"),
        DevicePreset("h100-pcie", "H100 PCIe 80GB", 2000.0, "NVIDIA H100 data sheet"),
        DevicePreset("h200", "H200 SXM 141GB", 4800.0, "NVIDIA H200 data sheet"),
        DevicePreset("cpu", "this machine's CPU (measured)", None, "probe_host_bandwidth: tensor copy"),
    )
}

# substrings of a CUDA device name or of /proc/device-tree/model -> preset (first match wins)
_DETECT = (
    ("agx orin", "agx-orin"),
    ("orin nx", "orin-nx"),
    ("orin nano", "orin-nano"),
    ("4090", "rtx-4090"),
    ("4070 laptop", "rtx-4070-laptop"),
    ("h100 pcie", "h100-pcie"),
    ("h100", "h100"),
    ("h200", "h200"),
)


def get_preset(name: str) -> DevicePreset:
    """The preset called `name` (case-insensitive). Raises ConfigError naming the known ones."""
    key = str(name).strip().lower()
    if key not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}", hint=f"use one of: auto, {', '.join(PRESETS)}")
    return PRESETS[key]


def cpu_model() -> str:
    """This machine's CPU model ("model name" in /proc/cpuinfo; else what `platform` knows)."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def jetson_model() -> str | None:
    """The board's model from /proc/device-tree/model (e.g. "NVIDIA Jetson AGX Orin Developer Kit"); None where
    there is none (not a Jetson or other device-tree board)."""
    try:
        return Path("/proc/device-tree/model").read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
    except OSError:
        return None


def detect_preset(torch_device: str = "cpu") -> DevicePreset:
    """The preset of the device the model runs on: a CUDA device by its name (or a Jetson by its device-tree model),
    "cpu" otherwise or when the device is not one of the presets."""
    names = []
    if str(torch_device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            names.append(torch.cuda.get_device_name(torch.device(torch_device)))
        if (board := jetson_model()) is not None:
            names.append(board)
        for text in names:
            low = text.lower()
            for needle, preset in _DETECT:
                if needle in low:
                    return PRESETS[preset]
    return PRESETS["cpu"]


def probe_host_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """This machine's memory bandwidth in GB/s: the best of `repeats` copies of a `megabytes` MB tensor with torch's
    threads (bytes read + bytes written per second; the copy is larger than any CPU cache). Raises ConfigError for a
    size under 16 MB (it would measure the cache)."""
    if megabytes < 16 or repeats < 1:
        raise ConfigError("the bandwidth probe needs at least 16 MB and one repeat")
    import torch

    n = megabytes * 1_000_000 // 4
    src = torch.ones(n, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)  # touch the pages first
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * n * 4 / best / 1e9
