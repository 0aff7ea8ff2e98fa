"""Fault injection for the Neon simulator: the switches the player reads for every packet (`Faults`) and a plan of
faults scheduled at times after the start (`FaultPlan`, what `gazeqwen-edge simulate --stall/--not-worn/
--disconnect-at` builds). A plan is checked completely when it is made, so a bad spec fails before anything is
served, not seconds later on the simulator's event loop."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gazeqwen_edge.errors import ConfigError

if TYPE_CHECKING:
    from gazeqwen_edge.device.simulator.device import NeonSimulator

STREAMS = ("gaze", "world", "audio", "eye_events")


@dataclass
class Faults:
    """Fault switches, read by the player for every packet (change them at any time, from any thread)."""

    drop_percent: float = 0.0  # random loss of RTP packets, per packet and client
    drop_streams: tuple[str, ...] = STREAMS  # streams the loss applies to
    not_worn: bool = False  # gaze reports worn = 0
    stalled_until: dict[str, float] = field(default_factory=dict)  # stream -> time.monotonic() deadline


@dataclass(frozen=True)
class FaultPlan:
    """Faults at given times after the simulator starts (seconds).

    stalls: (stream or "all", at, for) - send nothing on the stream for that long;
    not_worn: (at, for) - report the glasses as not worn;
    disconnect: (at, for) - leave the network and come back.
    """

    stalls: tuple[tuple[str, float, float], ...] = ()
    not_worn: tuple[tuple[float, float], ...] = ()
    disconnect: tuple[float, float] | None = None

    @classmethod
    def parse(
        cls,
        stalls: list[str] | None = None,
        not_worn: list[str] | None = None,
        disconnect_at: float | None = None,
        disconnect_for: float = 3.0,
    ) -> FaultPlan:
        """From the command-line forms 'STREAM:AT:FOR' (stalls) and 'AT:FOR' (not worn). ConfigError naming the
        option and the spec for an unknown stream, a missing part, or a time that is not a finite number >= 0."""
        stall_list = []
        for spec in stalls or []:
            stream, at, dur = _split(spec, "--stall", "STREAM:AT:FOR", 3)
            if stream not in STREAMS + ("all",):
                raise ConfigError(f"--stall '{spec}': unknown stream '{stream}'; one of {', '.join(STREAMS)} or all")
            stall_list.append((stream, at, dur))
        worn_list = [tuple(_split(spec, "--not-worn", "AT:FOR", 2)) for spec in not_worn or []]
        disconnect = None
        if disconnect_at is not None:
            disconnect = (_time(disconnect_at, "--disconnect-at"), _time(disconnect_for, "--disconnect-for"))
        return cls(tuple(stall_list), tuple(worn_list), disconnect)

    def unseen(self, length_s: float) -> list[str]:
        """For a source of `length_s` seconds played once (no loop): one sentence per fault a client would never
        see, because it starts after the source has played out, or (a disconnect) ends after it: the device comes
        back with nothing left to stream."""
        out = [f"--stall {s}:{at:g}:{d:g} starts after" for s, at, d in self.stalls if at >= length_s]
        out += [f"--not-worn {at:g}:{d:g} starts after" for at, d in self.not_worn if at >= length_s]
        if self.disconnect is not None:
            at, dur = self.disconnect
            if at >= length_s:
                out.append(f"--disconnect-at {at:g} starts after")
            elif at + dur >= length_s:
                out.append(f"the device comes back at {at + dur:g} s (--disconnect-at/--disconnect-for), after")
        return [f"{what} the source has played out ({length_s:g} s): use --loop to see it" for what in out]

    def schedule(self, sim: NeonSimulator) -> None:
        """Schedule every fault on a started simulator."""
        for stream, at, dur in self.stalls:
            sim.schedule(at, lambda s=stream, d=dur: sim.stall(s, d))
        for at, dur in self.not_worn:
            sim.schedule(at, lambda: sim.set_worn(False))
            sim.schedule(at + dur, lambda: sim.set_worn(True))
        if self.disconnect is not None:
            at, dur = self.disconnect
            sim.schedule(at, lambda: sim.disconnect(dur))


def _time(value: float, what: str) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{what} must be a finite number of seconds >= 0, got {value:g}")
    return float(value)


def _split(spec: str, option: str, form: str, n: int) -> list:
    parts = spec.split(":")
    if len(parts) != n:
        raise ConfigError(f"{option} takes {form} (seconds), got '{spec}'")
    try:
        times = [float(p) for p in parts[-2:]]
    except ValueError:
        raise ConfigError(f"{option} '{spec}': AT and FOR must be numbers of seconds") from None
    if not all(math.isfinite(t) and t >= 0 for t in times):
        raise ConfigError(f"{option} '{spec}': AT and FOR must be finite numbers of seconds >= 0")
    return parts[:-2] + times
