"""Jetson power, clocks and memory from `tegrastats` (L4T's monitor, one line per interval), sampled during a profile.

A line looks like (JetPack 5/6; fields vary by module and release):
    11-30-2026 10:00:00 RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [12%@1510,off,...] EMC_FREQ 3%@2133
    GR3D_FREQ 45%@[624] ... CPU@45.5C GPU@44.2C VDD_IN 5120mW/4980mW VDD_CPU_GPU_CV 1200mW/1100mW VDD_SOC 1400mW/1390mW
Parsed: RAM used/total (MB), the GPU (GR3D) load in % and clock in MHz, the memory controller (EMC) load and clock,
every power rail's instantaneous mW (NAME XmW/YmW: X now, Y tegrastats' running average) and every temperature in C.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading

import numpy as np

_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_FREQ = re.compile(r"\b(GR3D_FREQ|EMC_FREQ) (\d+)%(?:@\[?([\d,]+)\]?)?")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW/(\d+)mW")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")


def parse_line(line: str) -> dict:
    """One tegrastats line -> {"ram_mb": (used, total), "gpu_load_pct", "gpu_mhz", "emc_load_pct", "emc_mhz",
    "power_mw": {rail: now}, "temp_c": {sensor: C}} with only the fields the line has ({} for an unrelated line).
    A GR3D clock per GPC ("@[624,624]") is averaged."""
    out: dict = {}
    if m := _RAM.search(line):
        out["ram_mb"] = (int(m.group(1)), int(m.group(2)))
    for name, load, mhz in _FREQ.findall(line):
        key = "gpu" if name == "GR3D_FREQ" else "emc"
        out[f"{key}_load_pct"] = float(load)
        if mhz:
            out[f"{key}_mhz"] = float(np.mean([float(x) for x in mhz.split(",") if x]))
    rails = {name: int(now) for name, now, _avg in _RAIL.findall(line)}
    if rails:
        out["power_mw"] = rails
    temps = {name: float(c) for name, c in _TEMP.findall(line) if not name.isdigit()}
    if temps:
        out["temp_c"] = temps
    return out


def summarise(samples: list[dict]) -> dict | None:
    """Mean and max of each numeric field over parsed samples: {"samples": n, "gpu_load_pct": {mean, max}, ...,
    "power_mw": {rail: {mean, max}}, "temp_c": {sensor: {mean, max}}}; None without samples."""
    samples = [s for s in samples if s]
    if not samples:
        return None
    out: dict = {"samples": len(samples)}

    def stat(values):
        a = np.asarray(values, dtype=np.float64)
        return {"mean": float(a.mean()), "max": float(a.max())}

    for key in ("gpu_load_pct", "gpu_mhz", "emc_load_pct", "emc_mhz"):
        vals = [s[key] for s in samples if key in s]
        if vals:
            out[key] = stat(vals)
    ram = [s["ram_mb"][0] for s in samples if "ram_mb" in s]
    if ram:
        out["ram_used_mb"] = stat(ram)
    for group in ("power_mw", "temp_c"):
        names = sorted({k for s in samples for k in s.get(group, {})})
        if names:
            out[group] = {n: stat([s[group][n] for s in samples if n in s.get(group, {})]) for n in names}
    return out


class TegraStats:
    """Runs `tegrastats --interval MS` in the background while a profile runs and parses its lines.

    with TegraStats() as ts:   # ts.available is False (and nothing runs) where tegrastats is not installed
        ...
    ts.summary()               # summarise() of the samples, None when there were none
    """

    def __init__(self, interval_ms: int = 500, command: str = "tegrastats"):
        self.interval_ms = interval_ms
        self.path = shutil.which(command)
        self.samples: list[dict] = []
        self._proc = None
        self._thread = None

    @property
    def available(self) -> bool:
        return self.path is not None

    def __enter__(self) -> TegraStats:
        if self.path is None:
            return self
        try:
            self._proc = subprocess.Popen(
                [self.path, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            self.path = None
            return self
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            parsed = parse_line(line)
            if parsed:
                self.samples.append(parsed)

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            if self._thread is not None:
                self._thread.join(timeout=2)

    def summary(self) -> dict | None:
        """summarise() of the samples so far."""
        return summarise(list(self.samples))
