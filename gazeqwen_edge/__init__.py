"""gazeqwen-edge: an edge runtime for GazeQwen, gaze-aware Qwen2.5-VL on Pupil Labs Neon."""

__version__ = "0.1.0"
