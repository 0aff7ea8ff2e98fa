"""The Neon time-echo service (TCP): the client sends its time as 8 bytes (ms, big-endian); the phone answers with
that value and its own clock in ms (16 bytes). The client's `TimeOffsetEstimator` turns round trips into the offset
between the two clocks."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable


async def serve_client(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, now_device_ns: Callable[[], int], open_writers: set
) -> None:
    """Answer one client until it goes away. `open_writers` holds the connection while it is open (the simulator
    closes them all when it leaves the network)."""
    open_writers.add(writer)
    try:
        while True:
            data = await reader.readexactly(8)
            (t1,) = struct.unpack("!Q", data)
            writer.write(struct.pack("!QQ", t1, now_device_ns() // 1_000_000))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        open_writers.discard(writer)
        with contextlib.suppress(Exception):
            writer.close()
