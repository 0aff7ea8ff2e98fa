"""Fixtures for the device tests."""

from tests.neon.conftest import no_leaked_threads  # noqa: F401  (autouse: no source/simulator/recorder thread survives a test)
