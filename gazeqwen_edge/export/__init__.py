"""Export for the edge: the 4-bit LLM, ONNX / TensorRT gaze graphs, the verified bundle, the memory plan."""
