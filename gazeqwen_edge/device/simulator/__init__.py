"""A Neon device on this machine: serves any `Source` over the Pupil Labs real-time protocol (HTTP REST + status
websocket, RTSP with RTP/RTCP over UDP, time echo), with fault injection for tests and demos.

One idea per module: device.py (`NeonSimulator`: state, controls, presence on the network), player.py (real-time
replay of the source), streams.py (RTP/RTCP sending and subscriptions), rtsp.py, http_api.py, status.py,
time_echo.py, announce.py (zeroconf), faults.py, calibration.py (calibration.bin), rtp.py (packet formats),
encoders.py (H.264, AAC)."""

from gazeqwen_edge.device.simulator.calibration import calibration_bytes
from gazeqwen_edge.device.simulator.device import NeonSimulator
from gazeqwen_edge.device.simulator.faults import STREAMS, FaultPlan, Faults

__all__ = ["STREAMS", "FaultPlan", "Faults", "NeonSimulator", "calibration_bytes"]
