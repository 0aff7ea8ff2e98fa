"""A Neon device on this machine: serves any `Source` over the Pupil Labs real-time protocol (HTTP REST + status
websocket, RTSP with RTP/RTCP over UDP, time echo), with fault injection for tests and demos."""

from gazeqwen_edge.device.simulator.server import STREAMS, Faults, NeonSimulator, calibration_bytes

__all__ = ["STREAMS", "Faults", "NeonSimulator", "calibration_bytes"]
