"""`gazeqwen-edge simulate` in a subprocess (with scheduled faults) and `gazeqwen-edge run` against it."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

pytest.importorskip("pupil_labs.realtime_api")


def test_simulate_then_run_prints_status_and_notices(capsys):
    from gazeqwen_edge.cli import main

    cmd = [
        sys.executable,
        "-c",
        "from gazeqwen_edge.cli import run; run()",
        "simulate",
        "synthetic:2",
        "--port",
        "0",
        "--rtsp-port",
        "0",
        "--time-echo-port",
        "0",
        "--size",
        "160x120",
        "--scene-seconds",
        "12",
        "--not-worn",
        "2:1",
        "--stall",
        "gaze:3.5:2.5",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        t0 = time.monotonic()
        while "http://" not in line and time.monotonic() - t0 < 20:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert m, f"simulate did not start: {line!r}"
        port = m.group(1)
        rc = main(
            [
                "run",
                "--address",
                "127.0.0.1",
                "--port",
                port,
                "--duration",
                "8",
                "--streams",
                "gaze,world",
                "--status-only",
            ]
        )
        assert rc == 0
        out = capsys.readouterr().out
        assert "connected to Neon Simulator" in out
        rates = [float(v) for v in re.findall(r"gaze\s+([\d.]+) Hz", out)]
        assert rates and max(rates) > 150
        assert "not_worn" in out  # the scheduled fault reached the session as a Notice
        assert "stalled" in out
        assert proc.wait(timeout=20) == 0  # played out (no --loop) and stopped by itself
        rest = proc.stdout.read()
        assert "source played out" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
