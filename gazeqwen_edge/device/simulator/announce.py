"""Announcing the simulator on the local network with zeroconf, as the Neon Companion app does ("PI monitor:<phone
name>:<device id>" under `_http._tcp.local.`), so the client's discovery finds it; and the address to announce."""

from __future__ import annotations

import contextlib
import socket

from gazeqwen_edge.errors import require


def primary_ip() -> str:
    """The address other machines reach this one at (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


async def announce(device_name: str, device_id: str, ip: str, port: int):
    """Register the service on the interface of `ip`; returns the AsyncZeroconf to pass to `withdraw`."""
    zc = require("zeroconf.asyncio", "device", "announcing the simulator")
    from zeroconf import ServiceInfo

    name = f"PI monitor:{device_name}:{device_id}._http._tcp.local."
    info = ServiceInfo(
        "_http._tcp.local.",
        name,
        addresses=[socket.inet_aton(ip)],
        port=port,
        server="neon-simulator.local.",
    )
    zeroconf = zc.AsyncZeroconf(interfaces=[ip])
    try:
        await zeroconf.async_register_service(info)
    except BaseException:
        await withdraw(zeroconf)
        raise
    return zeroconf


async def withdraw(zeroconf) -> None:
    """Unregister everything announced and close the zeroconf instance (errors ignored: shutting down)."""
    with contextlib.suppress(Exception):
        await zeroconf.async_unregister_all_services()
    with contextlib.suppress(Exception):
        await zeroconf.async_close()
