"""Shared test fixtures. Real data lives in ../shared/fixtures (beside the checkout) and is never copied here;
tests that need it skip cleanly where it is absent."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = (REPO_ROOT / ".." / "shared").resolve()
NEON_RECORDING_DIR = SHARED_DIR / "fixtures" / "neon_demo_recording"


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the scripts are not a package), loaded afresh under a name of its own."""
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", REPO_ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pytest_configure(config):
    """Tests stop commands with Ctrl-C (tests/cli/test_fuzz.py sends SIGINT to the main thread, and children get it
    too). A suite started in the background by a non-interactive shell (`nohup make test &`) inherits SIGINT as
    ignored, and Python then installs no KeyboardInterrupt handler, so those Ctrl-Cs were lost and the command ran on
    (the fuzz once hung 15 min in train-vision, twice in simulate --loop). Python's own handler is put back; children
    started from here then get SIGINT's default, as from a terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def neon_recording_dir() -> Path:
    if not (NEON_RECORDING_DIR / "info.json").is_file():
        pytest.skip(f"Neon demo recording not found at {NEON_RECORDING_DIR}")
    return NEON_RECORDING_DIR
