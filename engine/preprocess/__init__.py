"""Frame pre-processing for detectors: letterbox (fused numba kernel, and the OpenCV reference),
layout, the inverse box mapping and motion gating (tiles are cut and merged in
engine/detect/tiling.py)."""

from engine.preprocess.fused import letterbox_fused
from engine.preprocess.letterbox import (
    InputLayout,
    LetterboxParams,
    letterbox_boxes,
    letterbox_into,
    letterbox_params,
    rect_input_shape,
    unletterbox_boxes,
)

__all__ = [
    "InputLayout",
    "LetterboxParams",
    "letterbox_boxes",
    "letterbox_fused",
    "letterbox_into",
    "letterbox_params",
    "rect_input_shape",
    "unletterbox_boxes",
]
