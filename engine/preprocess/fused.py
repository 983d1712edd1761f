"""The engine's pre-processing: letterbox through the fused numba kernel.

Same geometry as `letterbox.letterbox_into` (the OpenCV + NumPy reference the tests compare
against): one scale factor, centre (Ultralytics) or top-left (YOLOX) padding with grey 114,
channel order and scaling from the model's layout, HWC->CHW into a batch slot — float32, or
float16 for half-precision models.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.preprocess.kernels import bilinear_tables, letterbox_kernel, letterbox_kernel_f16
from engine.preprocess.letterbox import PAD_VALUE, InputLayout, LetterboxParams, letterbox_params

__all__ = ["letterbox_fused"]


def letterbox_fused(
    image: npt.NDArray[np.uint8],
    out: npt.NDArray[np.float32] | npt.NDArray[np.float16],
    layout: InputLayout,
) -> LetterboxParams:
    """Letterbox a BGR frame into one CHW slot of a batch tensor, in place (one pass).

    Args:
        image: BGR uint8 [h, w, 3] (any strides along the first axis are copied contiguous).
        out: float32 or float16 [3, H, W], a slot (view) of the batch tensor; overwritten.
        layout: channel order, scaling and padding the model wants.

    Returns:
        The parameters `unletterbox_boxes` needs to map boxes back.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a BGR uint8 [h, w, 3] image, got {image.dtype} {image.shape}")
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    dst_h, dst_w = out.shape[1], out.shape[2]
    p = letterbox_params(image.shape[0], image.shape[1], dst_h, dst_w, layout.pad)
    y = bilinear_tables(p.src_h, p.new_h)
    x = bilinear_tables(p.src_w, p.new_w)
    scale = np.float32(1.0 / 255.0 if layout.scale_to_unit else 1.0)
    pad = np.float32(PAD_VALUE * scale)
    swap = layout.channel_order == "rgb"
    if out.dtype == np.float16:
        letterbox_kernel_f16(image, out.view(np.uint16), p.pad_y, p.pad_x, *y, *x, swap, scale, pad)
    elif out.dtype == np.float32:
        letterbox_kernel(image, out, p.pad_y, p.pad_x, *y, *x, swap, scale, pad)
    else:
        raise ValueError(f"expected a float32 or float16 slot, got {out.dtype}")
    return p
