"""Super-resolution: the tiled ONNX runner, model cards, scoring."""
