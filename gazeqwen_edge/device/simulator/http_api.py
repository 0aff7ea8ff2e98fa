"""The simulated phone's HTTP API (aiohttp), as the Neon Companion app serves it: `GET /api/status` (JSON, or the
status websocket on the same path), `POST /api/recording:start`, `/api/recording:stop_and_save`,
`/api/recording:cancel`, `POST /api/event` and `GET /calibration.bin`. Replies are `{"message", "result"}` objects."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING

from gazeqwen_edge.device.simulator import status
from gazeqwen_edge.device.simulator.calibration import calibration_bytes
from gazeqwen_edge.errors import require

if TYPE_CHECKING:
    from gazeqwen_edge.device.simulator.device import NeonSimulator


class HttpApi:
    """The REST handlers and the status websockets of one simulator (whose state they read and change)."""

    def __init__(self, sim: NeonSimulator):
        self.sim = sim
        self._ws: set = set()
        self._rec_t0 = 0

    def application(self):
        """A fresh aiohttp Application with every route (one per time the simulator comes onto the network)."""
        web = require("aiohttp.web", "device", "the Neon simulator")
        app = web.Application()
        app.router.add_get("/api/status", self._status)
        app.router.add_post("/api/recording:start", self._rec_start)
        app.router.add_post("/api/recording:stop_and_save", self._rec_stop)
        app.router.add_post("/api/recording:cancel", self._rec_cancel)
        app.router.add_post("/api/event", self._event)
        app.router.add_get("/calibration.bin", self._calibration)
        app.router.add_get("/api/../calibration.bin", self._calibration)
        return app

    async def broadcast(self, component: dict | None) -> None:
        """Send a status component to every open status websocket."""
        if component is None:
            return
        text = json.dumps(component)
        for ws in list(self._ws):
            with contextlib.suppress(Exception):
                await ws.send_str(text)

    async def close_websockets(self) -> None:
        for ws in list(self._ws):
            with contextlib.suppress(Exception):
                await ws.close()
        self._ws.clear()

    def _json(self, result, message: str = "Success", status_code: int = 200):
        from aiohttp import web

        return web.json_response({"message": message, "result": result}, status=status_code)

    async def _status(self, request):
        from aiohttp import WSMsgType, web

        if request.headers.get("Upgrade", "").lower() != "websocket":
            return self._json(status.components(self.sim))
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._ws.add(ws)
        try:
            for comp in status.components(self.sim):
                await ws.send_str(json.dumps(comp))
            async for msg in ws:
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self._ws.discard(ws)
        return ws

    async def _rec_start(self, request):
        sim = self.sim
        if sim.recording is not None and sim.recording["action"] == "START":
            return self._json(None, "Recording already running", 400)
        rec_id = str(uuid.uuid4())
        sim.recording = {"action": "START", "id": rec_id, "message": "", "rec_duration_ns": 0}
        self._rec_t0 = time.time_ns()
        await self.broadcast(status.recording(sim))
        return self._json({"id": rec_id})

    async def _rec_stop(self, request):
        return await self._rec_end("STOP")

    async def _rec_cancel(self, request):
        return await self._rec_end("CANCEL")

    async def _rec_end(self, action: str):
        sim = self.sim
        if sim.recording is None or sim.recording["action"] != "START":
            return self._json(None, "Recording not running", 400)
        sim.recording = dict(sim.recording, action=action, rec_duration_ns=time.time_ns() - self._rec_t0)
        await self.broadcast(status.recording(sim))
        return self._json({})

    async def _event(self, request):
        sim = self.sim
        try:
            body = await request.json()
            name = str(body["name"])
            ts = int(body.get("timestamp") or sim.now_device_ns())
        except Exception:  # noqa: BLE001 - any malformed body is the client's error
            return self._json(None, "Event needs a JSON body with 'name' (and optional 'timestamp' in ns)", 400)
        rec_id = sim.recording["id"] if sim.recording and sim.recording["action"] == "START" else None
        ev = {"name": name, "recording_id": rec_id, "timestamp": ts}
        sim.events.append(ev)
        return self._json(ev)

    async def _calibration(self, request):
        from aiohttp import web

        data = calibration_bytes(self.sim.source, self.sim.module_serial)
        if data is None:
            return self._json(None, "No calibration for this source", 404)
        return web.Response(body=data, content_type="application/octet-stream")
