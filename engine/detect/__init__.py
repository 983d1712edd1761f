"""Object detectors: ONNX models run with onnxruntime, decoded per model family; per-source
inference (motion gate, tiles and their merge) in `inference` and `tiling`."""

from __future__ import annotations

from engine.config import DetectorConfig
from engine.detect.onnx_detector import OnnxDetector

__all__ = ["OnnxDetector", "build_detector"]

DETECTORS: dict[str, type[OnnxDetector]] = {"onnx": OnnxDetector}


def build_detector(cfg: DetectorConfig) -> OnnxDetector:
    """The detector a config names (`type` -> class)."""
    return DETECTORS[cfg.type](cfg)
