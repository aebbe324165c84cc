"""PyTorch -> ONNX -> TensorRT with parity checks, and the Triton model repository writer."""
