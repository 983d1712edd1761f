"""Frame pre-processing for detectors: letterbox, layout, and the inverse box mapping."""

from engine.preprocess.letterbox import (
    InputLayout,
    LetterboxParams,
    letterbox_into,
    letterbox_params,
    rect_input_shape,
    unletterbox_boxes,
)

__all__ = [
    "InputLayout",
    "LetterboxParams",
    "letterbox_into",
    "letterbox_params",
    "rect_input_shape",
    "unletterbox_boxes",
]
