"""Export for the edge: the V-JEPA video encoder and the gaze resampler as verified ONNX graphs (onnx_graphs), their
TensorRT engines (tensorrt), and the runners that stand in for the PyTorch modules. Needs the `onnx` extra
(`pip install 'gazeqwen-edge[onnx]'`); TensorRT needs the `gpu` extra or JetPack. Imports only gazeqwen_edge.model."""
