"""The fused numba letterbox equals the OpenCV + NumPy reference within one grey level, for any
frame and input size (tiny, odd, extreme aspect ratios), both layouts, float32 and float16; box
mappings round-trip to within half a pixel."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.preprocess import (
    InputLayout,
    letterbox_boxes,
    letterbox_fused,
    letterbox_into,
    unletterbox_boxes,
)

LAYOUTS = [InputLayout("rgb", True, "center"), InputLayout("bgr", False, "top_left")]
sides = st.one_of(st.integers(1, 8), st.integers(9, 400), st.sampled_from([1, 2, 3, 1079, 1920]))


DST = st.integers(8, 320)


@settings(max_examples=250, deadline=None)
@given(sides, sides, DST, DST, st.sampled_from(LAYOUTS), st.booleans(), st.integers(0, 2**31 - 1))
def test_fused_equals_reference(
    src_h: int, src_w: int, dst_h: int, dst_w: int, layout: InputLayout, half: bool, seed: int
) -> None:
    image = np.random.default_rng(seed).integers(0, 256, (src_h, src_w, 3), np.uint8)
    ref = np.full((3, dst_h, dst_w), -1.0, np.float32)
    fused = np.full((3, dst_h, dst_w), -1.0, np.float16 if half else np.float32)
    p_ref = letterbox_into(image, ref, layout)
    p = letterbox_fused(image, fused, layout)
    assert p == p_ref
    level = 1 / 255 if layout.scale_to_unit else 1.0  # one grey level, as the model sees it
    f16_rounding = 0.126 * level if half else 0.0  # 11 bits: 0.125 of a level at 255
    err = np.abs(fused.astype(np.float32) - ref).max()
    assert err <= level * 1.0001 + f16_rounding


@settings(max_examples=200, deadline=None)
@given(sides, sides, st.integers(16, 1280), st.sampled_from(LAYOUTS), st.data())
def test_boxes_round_trip_within_half_a_pixel(
    src_h: int, src_w: int, dst: int, layout: InputLayout, data: st.DataObject
) -> None:
    from engine.preprocess import letterbox_params

    p = letterbox_params(src_h, src_w, dst, dst, layout.pad)
    n = data.draw(st.integers(1, 20))

    def pairs(top: int) -> np.ndarray:
        values = data.draw(st.lists(st.floats(0, top), min_size=2 * n, max_size=2 * n))
        return np.sort(np.array(values).reshape(n, 2), axis=1)

    xs, ys = pairs(src_w), pairs(src_h)
    boxes = np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1).astype(np.float32)
    back = unletterbox_boxes(letterbox_boxes(boxes, p), p)
    assert np.abs(back - boxes).max() <= 0.5
