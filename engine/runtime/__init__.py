"""What serving computes with: the in-process runtime, ONNX sessions, request batching, metrics."""
