"""Fixtures for the Neon tests: a simulator serving the exactly known ToySource on loopback ports, torn down after
each test."""

from __future__ import annotations

import pytest

from tests.neon.toy import ToySource

OUR_THREADS = ("neon-live", "neon-sim-loop", "neon-sim-player", "recorder-flush")


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Every test leaves no live-source, simulator or recorder thread running (closed sources release them)."""
    import threading
    import time

    yield
    deadline = time.monotonic() + 2.0
    while True:
        left = [t.name for t in threading.enumerate() if t.name in OUR_THREADS and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"threads left running: {left}"


@pytest.fixture
def make_sim():
    pytest.importorskip("pupil_labs.realtime_api")
    pytest.importorskip("av")
    from gazeqwen_edge.device.simulator import NeonSimulator

    sims = []

    def make(source=None, **kw):
        sim = NeonSimulator(source or ToySource(duration_s=30.0), **kw).start()
        sims.append(sim)
        return sim

    yield make
    for s in sims:
        s.stop()


@pytest.fixture
def sim(make_sim):
    return make_sim()
