"""Shared test fixtures. Real data lives in ../shared/fixtures (beside the checkout) and is never copied here;
tests that need it skip cleanly where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = (REPO_ROOT / ".." / "shared").resolve()
NEON_RECORDING_DIR = SHARED_DIR / "fixtures" / "neon_demo_recording"


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
