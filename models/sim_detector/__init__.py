"""Recipe of the bundled detector: render a randomised dataset, train YOLO11n, export ONNX."""
