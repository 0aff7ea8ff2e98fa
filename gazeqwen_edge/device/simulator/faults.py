"""Fault injection for the Neon simulator: the switches the player reads for every packet (`Faults`)."""

from __future__ import annotations

from dataclasses import dataclass, field

STREAMS = ("gaze", "world", "audio", "eye_events")


@dataclass
class Faults:
    """Fault switches, read by the player for every packet (change them at any time, from any thread)."""

    drop_percent: float = 0.0  # random loss of RTP packets, per packet and client
    drop_streams: tuple[str, ...] = STREAMS  # streams the loss applies to
    not_worn: bool = False  # gaze reports worn = 0
    stalled_until: dict[str, float] = field(default_factory=dict)  # stream -> time.monotonic() deadline
