"""What the simulated phone reports about itself: the components of `GET /api/status` and of the status websocket
(Phone, Hardware, one Sensor per stream, Recording), in the Neon Companion app's JSON layout as the official client
parses it (`pupil_labs.realtime_api.models`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gazeqwen_edge.device.simulator.device import NeonSimulator

# the RTSP URL parameters of each sensor (the client builds its stream URLs from them)
SENSOR_PARAMS = {
    "gaze": "camera=gaze&audioenable=on",
    "world": "camera=world&audioenable=on",
    "eye_events": "camera=eye_events",
}


def phone(sim: NeonSimulator) -> dict:
    """The Phone component: battery, memory, name, id, address, time-echo port."""
    level = sim.battery_level
    return {
        "model": "Phone",
        "data": {
            "battery_level": level,
            "battery_state": "OK" if level > 15 else ("LOW" if level > 5 else "CRITICAL"),
            "device_id": sim.device_id,
            "device_name": sim.device_name,
            "ip": sim.advertised_ip,
            "memory": 48_000_000_000,
            "memory_state": "OK",
            "time_echo_port": sim.time_echo_port,
        },
    }


def hardware(sim: NeonSimulator) -> dict:
    """The Hardware component: module serial (glasses and camera serials unknown, -1)."""
    return {
        "model": "Hardware",
        "data": {
            "version": "2.0",
            "glasses_serial": "-1",
            "world_camera_serial": "-1",
            "module_serial": sim.module_serial,
        },
    }


def sensor(sim: NeonSimulator, name: str) -> dict:
    """The Sensor component of stream `name`: connected or not, and its RTSP address and URL parameters."""
    return {
        "model": "Sensor",
        "data": {
            "sensor": name,
            "conn_type": "DIRECT",
            "connected": bool(sim.sensor_connected.get(name, False)),
            "ip": sim.advertised_ip,
            "port": sim.rtsp_port,
            "protocol": "rtsp",
            "params": SENSOR_PARAMS[name],
            "stream_error": False,
        },
    }


def recording(sim: NeonSimulator) -> dict | None:
    """The Recording component (action START/STOP/CANCEL, id, duration), or None before any recording."""
    if sim.recording is None:
        return None
    return {"model": "Recording", "data": dict(sim.recording)}


def components(sim: NeonSimulator) -> list[dict]:
    """Every status component, in the order the Companion app sends them."""
    comps = [phone(sim), hardware(sim)] + [sensor(sim, s) for s in SENSOR_PARAMS]
    rec = recording(sim)
    if rec is not None:
        comps.append(rec)
    return comps
