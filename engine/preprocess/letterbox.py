"""Letterbox pre-processing: fit a frame into a model input undistorted, and map boxes back.

The frame is scaled by one factor to fit inside the input, placed in the centre (Ultralytics) or the
top-left corner (YOLOX), the rest padded with grey 114, channels reordered and scaled, and written
HWC->CHW into one slot of a preallocated batch tensor. `unletterbox_boxes` is the exact inverse for
boxes. The arithmetic mirrors the reference implementations, so that accuracy matches theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "InputLayout",
    "LetterboxParams",
    "letterbox_boxes",
    "letterbox_into",
    "letterbox_params",
    "rect_input_shape",
    "unletterbox_boxes",
]

PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class InputLayout:
    """How a model wants its input tensor filled.

    Attributes:
        channel_order: "rgb" or "bgr".
        scale_to_unit: divide by 255 (Ultralytics) or keep 0..255 (YOLOX).
        pad: "center" (Ultralytics) or "top_left" (YOLOX).
    """

    channel_order: Literal["rgb", "bgr"] = "rgb"
    scale_to_unit: bool = True
    pad: Literal["center", "top_left"] = "center"


@dataclass(frozen=True, slots=True)
class LetterboxParams:
    """Where a frame went inside the model input.

    Attributes:
        scale: input pixels per source pixel.
        pad_x, pad_y: offset of the scaled image inside the input, input pixels.
        new_w, new_h: size of the scaled image, input pixels.
        src_w, src_h: size of the source frame, pixels.
    """

    scale: float
    pad_x: int
    pad_y: int
    new_w: int
    new_h: int
    src_w: int
    src_h: int


def rect_input_shape(src_h: int, src_w: int, imgsz: int, stride: int = 32) -> tuple[int, int]:
    """The smallest stride-aligned (h, w) that holds the frame scaled to fit `imgsz` (long side).

    For models with dynamic spatial axes: 16:9 footage at 640 becomes 384x640 instead of 640x640.
    """
    r = min(imgsz / src_h, imgsz / src_w)
    h = round(src_h * r)
    w = round(src_w * r)
    return (math.ceil(h / stride) * stride, math.ceil(w / stride) * stride)


def letterbox_params(
    src_h: int, src_w: int, dst_h: int, dst_w: int, pad: Literal["center", "top_left"]
) -> LetterboxParams:
    """Scale and offsets that fit a src_h x src_w frame into dst_h x dst_w.

    Centre padding rounds like Ultralytics' LetterBox; top-left like YOLOX's preproc.
    """
    if src_h <= 0 or src_w <= 0:
        raise ValueError(f"frame size must be positive, got {src_w}x{src_h}")
    r = min(dst_h / src_h, dst_w / src_w)
    # at least one pixel: a 1920x1 strip in a 320 input is 320x1, not 320x0
    if pad == "center":
        new_w, new_h = max(1, round(src_w * r)), max(1, round(src_h * r))
        pad_x = round((dst_w - new_w) / 2 - 0.1)
        pad_y = round((dst_h - new_h) / 2 - 0.1)
    else:
        new_w, new_h = max(1, int(src_w * r)), max(1, int(src_h * r))
        pad_x = pad_y = 0
    return LetterboxParams(r, pad_x, pad_y, new_w, new_h, src_w, src_h)


def letterbox_into(
    image: npt.NDArray[np.uint8],
    out: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    layout: InputLayout,
) -> LetterboxParams:
    """Letterbox a BGR frame into one CHW slot of a batch tensor, in place.

    Args:
        image: BGR uint8 [h, w, 3].
        out: float32 or float16 [3, H, W]: a slot of the batch tensor (a view), overwritten.
        layout: channel order, scaling and padding the model wants.

    Returns:
        The parameters that `unletterbox_boxes` needs to map boxes back.
    """
    dst_h, dst_w = out.shape[1], out.shape[2]
    p = letterbox_params(image.shape[0], image.shape[1], dst_h, dst_w, layout.pad)
    if (p.new_w, p.new_h) != (image.shape[1], image.shape[0]):
        resized = cv2.resize(image, (p.new_w, p.new_h), interpolation=cv2.INTER_LINEAR)
    else:
        resized = image
    pad = PAD_VALUE / 255.0 if layout.scale_to_unit else float(PAD_VALUE)
    out.fill(pad)
    order = (2, 1, 0) if layout.channel_order == "rgb" else (0, 1, 2)
    scale = 1.0 / 255.0 if layout.scale_to_unit else 1.0
    region = out[:, p.pad_y : p.pad_y + p.new_h, p.pad_x : p.pad_x + p.new_w]
    for c_out, c_in in enumerate(order):
        np.multiply(resized[:, :, c_in], scale, out=region[c_out], casting="unsafe")
    return p


def letterbox_boxes(xyxy: npt.NDArray[np.float32], p: LetterboxParams) -> npt.NDArray[np.float32]:
    """Map boxes from source-frame pixels into model-input pixels (a new array)."""
    out = xyxy * np.float32(p.scale)
    out[:, [0, 2]] += p.pad_x
    out[:, [1, 3]] += p.pad_y
    return out.astype(np.float32)


def unletterbox_boxes(
    xyxy: npt.NDArray[np.float32], p: LetterboxParams, clip: bool = True
) -> npt.NDArray[np.float32]:
    """Map boxes from model-input pixels back to source-frame pixels (in place, and returned).

    Args:
        xyxy: f32 [n, 4] boxes in input pixels.
        p: what `letterbox_into` returned for that frame.
        clip: clamp to the frame.
    """
    xyxy[:, [0, 2]] -= p.pad_x
    xyxy[:, [1, 3]] -= p.pad_y
    xyxy /= p.scale
    if clip:
        xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, p.src_w)
        xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, p.src_h)
    return xyxy
