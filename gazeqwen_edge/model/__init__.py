"""The GazeQwen model: gaze resampler, gaze encodings, injection into Qwen2.5-VL, video encoders, Qwen video
preprocessing, checkpoints, and tiny random-weight configs for tests and the demo."""

from gazeqwen_edge.model.config import GazeQwenConfig, ResamplerConfig, VideoEncoderConfig
from gazeqwen_edge.model.gaze_encoding import GazeInputs
from gazeqwen_edge.model.gazeqwen import GazeQwen, Video
from gazeqwen_edge.model.injection import FusedInjector, HookInjector, Injector
from gazeqwen_edge.model.resampler import GazeResampler

__all__ = [
    "GazeInputs",
    "GazeQwen",
    "GazeQwenConfig",
    "GazeResampler",
    "FusedInjector",
    "HookInjector",
    "Injector",
    "ResamplerConfig",
    "Video",
    "VideoEncoderConfig",
]
