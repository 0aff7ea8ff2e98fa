"""Wrong address, closed port, a non-Neon HTTP server: one clear DeviceError (and CLI exit code) within seconds.
Malformed RTSP requests are rejected and the simulator keeps serving."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gazeqwen_edge.errors import DeviceError

pytest.importorskip("pupil_labs.realtime_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    body = b"<html>hello</html>"
    ctype = "text/html"

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", self.ctype)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


class _JsonHandler(_Handler):
    body = b'{"message": "Success", "result": [{"model": "Sensor", "data": {}}]}'
    ctype = "application/json"


@pytest.fixture(params=[_Handler, _JsonHandler], ids=["html", "json-without-phone"])
def other_http(request):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _connect_fails(address, port, match):
    from gazeqwen_edge.device.neon import NeonLiveSource

    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=match) as ei:
        NeonLiveSource(address, port, connect_timeout_s=2.0)
    assert time.monotonic() - t0 < 5.0
    return ei.value


def test_closed_port_is_a_clear_error():
    e = _connect_fails("127.0.0.1", _free_port(), "cannot connect to a Neon at 127.0.0.1")
    assert e.hint and "8080" in e.hint


def test_wrong_address_is_a_clear_error():
    _connect_fails("127.0.0.3", _free_port(), "cannot connect to a Neon at 127.0.0.3")


def test_non_neon_http_server_is_a_clear_error(other_http):
    _connect_fails("127.0.0.1", other_http, "answered, but not like a Neon Companion app")


def test_cli_run_exits_nonzero_with_one_line(capsys, other_http):
    from gazeqwen_edge.cli import main

    t0 = time.monotonic()  # (--status-only: no model to load first, which alone took 5 s when torch was not yet
    # imported, the test run by itself)
    rc = main(["run", "--device", "pupil-neon", "--address", "127.0.0.1", "--port", str(other_http), "--status-only"])
    assert rc == DeviceError.exit_code
    assert time.monotonic() - t0 < 5.0
    err = capsys.readouterr().err
    assert "not like a Neon Companion app" in err and "Traceback" not in err
    rc = main(["run", "--address", "127.0.0.1", "--port", str(_free_port()), "--duration", "1"])
    assert rc == DeviceError.exit_code


def test_open_source_spec_reaches_live_neon():
    from gazeqwen_edge.device import open_source
    from gazeqwen_edge.device.neon import parse_neon_spec
    from gazeqwen_edge.errors import ConfigError

    assert parse_neon_spec("pupil-neon") == (None, 8080)
    assert parse_neon_spec("neon://10.0.0.5:8081") == ("10.0.0.5", 8081)
    assert parse_neon_spec("pupil-neon:phone.local") == ("phone.local", 8080)
    with pytest.raises(ConfigError):
        parse_neon_spec("neon://:80")
    for v6 in ("neon://[::1", "neon://[::1]:8080", "pupil-neon:fe80::1"):  # was "bad port ... ':1' is not a number"
        with pytest.raises(ConfigError, match="is an IPv6 address"):
            parse_neon_spec(v6)
    with pytest.raises(DeviceError, match="cannot connect"):
        open_source(f"neon://127.0.0.1:{_free_port()}", connect_timeout_s=1.0)


def _rtsp(port: int, data: bytes, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while b"\r\n\r\n" not in out:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
        except TimeoutError:
            pass
        return out


def test_simulator_rejects_malformed_rtsp_and_keeps_serving(sim):
    port = sim.rtsp_port
    assert _rtsp(port, b"HELLO THERE\r\n\r\n").startswith(b"RTSP/1.0 400")
    assert _rtsp(port, b"\x00\xff\xfe garbage \x80\r\n\r\n").startswith(b"RTSP/1.0 400")
    assert _rtsp(port, b"OPTIONS rtsp://x/ RTSP/1.0\r\nno colon here\r\n\r\n").startswith(b"RTSP/1.0 400")
    assert _rtsp(port, b"OPTIONS rtsp://x/ RTSP/1.0\r\n\r\n").startswith(b"RTSP/1.0 400")  # no CSeq
    r = _rtsp(port, b"DESCRIBE rtsp://127.0.0.1/?camera=nose RTSP/1.0\r\nCSeq: 2\r\n\r\n")
    assert r.startswith(b"RTSP/1.0 404") and b"CSeq: 2" in r
    r = _rtsp(port, b"RECORD rtsp://127.0.0.1/?camera=gaze RTSP/1.0\r\nCSeq: 3\r\n\r\n")
    assert r.startswith(b"RTSP/1.0 405")
    r = _rtsp(port, b"SETUP rtsp://127.0.0.1/?camera=gaze RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP\r\n\r\n")
    assert r.startswith(b"RTSP/1.0 461")
    r = _rtsp(port, b"PLAY rtsp://127.0.0.1/?camera=gaze RTSP/1.0\r\nCSeq: 5\r\nSession: nope\r\n\r\n")
    assert r.startswith(b"RTSP/1.0 454")
    _rtsp(port, b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 999999999\r\n\r\n")
    _rtsp(port, b"DESCRIBE rtsp://x/?camera=gaze RTSP/1.0\r\nCSeq: 1\r\n", read=False)  # cut off mid-request
    _rtsp(port, b"A" * 70000, read=False)  # no end of headers at all
    # still a working Neon: the real client streams gaze
    from pupil_labs.realtime_api.simple import Device

    d = Device("127.0.0.1", sim.port)
    try:
        assert d.receive_gaze_datum(timeout_seconds=10) is not None
    finally:
        d.close()
    r = _rtsp(port, b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 9\r\n\r\n")
    assert r.startswith(b"RTSP/1.0 200") and b"Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN" in r


def test_simulator_on_a_busy_port_fails_cleanly_and_frees_the_others():
    import os

    from gazeqwen_edge.device.simulator import NeonSimulator
    from tests.neon.toy import ToySource

    n_fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        http = _free_port()
        sim = NeonSimulator(ToySource(duration_s=5.0), port=http, rtsp_port=busy.getsockname()[1])
        with pytest.raises(DeviceError, match="could not serve") as ei:
            sim.start()
        assert "--rtsp-port" in ei.value.hint
    with socket.socket() as s:
        s.bind(("127.0.0.1", http))  # the HTTP port it did get is free again
    assert not (sim._thread and sim._thread.is_alive())
    if n_fds is not None:
        assert len(os.listdir("/proc/self/fd")) <= n_fds  # no socket left open
