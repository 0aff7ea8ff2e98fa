"""Fixtures for the Neon tests: a simulator serving the exactly known ToySource on loopback ports, torn down after
each test."""

from __future__ import annotations

import pytest

from tests.neon.toy import ToySource


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
