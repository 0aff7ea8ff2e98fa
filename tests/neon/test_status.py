"""What `run` shows about the device: values that are not current are not shown as if they were, and waiting for a
device honours --connect-timeout. Also the simulator's real-time pacing, which every other Neon test relies on."""

from __future__ import annotations

import time

import pytest

from gazeqwen_edge.device.records import GazeSample, Notice
from tests.neon.test_faults import drain
from tests.neon.toy import ToySource

pytest.importorskip("pupil_labs.realtime_api")


def test_run_without_address_gives_up_discovery_after_connect_timeout(capsys):
    """Discovery used to wait 10 s whatever --connect-timeout said."""
    from gazeqwen_edge.cli import main

    t0 = time.monotonic()
    rc = main(["run", "--connect-timeout", "1"])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "no Neon found on the network within 1 s" in err
    assert elapsed < 5.0, elapsed


def test_status_after_a_disconnect_shows_worn_and_battery_unknown(sim):
    """After the device left, status() kept the last worn and battery values, and `run` showed them as current."""
    from gazeqwen_edge.cli.neon import _status_line
    from gazeqwen_edge.device.neon import NeonLiveSource

    rates = {"gaze": 0.0, "world": 0.0, "audio": 0.0}
    with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze",)) as neon:
        drain(neon, 5.0, until=lambda r: isinstance(r, GazeSample))
        st = neon.status()
        assert st.connected and st.worn is True and st.battery_level == sim.battery_level
        line = _status_line(st, rates, 0)
        assert "worn yes" in line and f"battery {sim.battery_level}%" in line

        sim.disconnect()
        drain(neon, 5.0, until=lambda r: isinstance(r, Notice) and r.kind == "disconnected")
        st = neon.status()
        assert not st.connected
        assert st.worn is None and st.battery_level is None and st.recording_id is None and st.sensors == {}
        assert st.device_name == "Neon Simulator"  # what cannot change is kept
        line = _status_line(st, rates, 0)
        assert "worn ?" in line and "battery ?" in line and "recording ?" in line and "device away" in line

        sim.reconnect()
        drain(neon, 5.0, until=lambda r: isinstance(r, GazeSample))
        st = neon.status()
        assert st.connected and st.worn is True and st.battery_level == sim.battery_level


def test_worn_is_unknown_while_gaze_is_stalled(sim):
    from gazeqwen_edge.device.neon import NeonLiveSource

    with NeonLiveSource("127.0.0.1", sim.port, streams=("gaze",), stall_timeout_s=0.5) as neon:
        drain(neon, 5.0, until=lambda r: isinstance(r, GazeSample))
        assert neon.status().worn is True
        sim.stall("gaze", 2.0)
        drain(neon, 3.0, until=lambda r: isinstance(r, Notice) and r.kind == "stalled")
        assert neon.status().worn is None
        drain(neon, 4.0, until=lambda r: isinstance(r, GazeSample))
        assert neon.status().worn is True


def test_simulator_sends_each_record_at_its_due_time(make_sim):
    """The player (paced by pacing.paced) sends a record when the wall clock reaches its device timestamp (live
    timestamps, no clock offset): never early, and on time while nothing else loads the machine much."""
    sent = []
    sim = make_sim(ToySource(duration_s=3.0), start_lead_s=0.3)
    sim.send_log = lambda stream, device_ns, wall: sent.append((stream, device_ns, wall))
    t_start = time.time()
    time.sleep(1.5)
    gaze = [(d, w) for s, d, w in sent if s == "gaze"]
    assert len(gaze) > 100
    lags = sorted(w - d / 1e9 for d, w in gaze)
    assert lags[0] > -0.002, lags[:5]  # never before its time
    assert lags[len(lags) // 2] < 0.02, lags[len(lags) // 2]
    assert gaze[0][0] / 1e9 - t_start > 0.3  # the first record waited for the start lead
