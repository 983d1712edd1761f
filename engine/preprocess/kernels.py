# mypy: disable-error-code="no-untyped-def"
# (numba kernels: their types come from the arrays they are called with)
"""Fused numba kernels: letterbox (bilinear) + channel order + scaling + HWC->CHW in one pass.

One pass over the output rows: the two source rows an output row needs are blended vertically
(a contiguous, vectorised loop), then each output pixel takes two samples of the blend (OpenCV's
INTER_LINEAR geometry: half-pixel centres, edges clamped), swaps channels if asked, scales, and
is written straight into its plane of a preallocated batch slot (float32 or float16). Only the
padding borders are filled, not the whole slot. Compiled once and cached on disk (`cache=True`),
the GIL released (`nogil=True`) so that sources pre-process in parallel threads, which spreads
across sources: each source's thread runs its own (serial) kernel.

The tables of source indices and weights depend only on the sizes, so they are computed once per
(source size, input size) and reused frame after frame.
"""

from __future__ import annotations

from functools import lru_cache

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = [
    "bilinear_tables",
    "block_grey",
    "letterbox_kernel",
    "letterbox_kernel_f16",
    "motion_kernel",
]


@lru_cache(maxsize=64)
def bilinear_tables(
    src: int, dst: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float32]]:
    """For each of `dst` output positions: the two source indices and the weight of the second,
    as OpenCV's INTER_LINEAR computes them (centre-aligned, clamped at the edges)."""
    scale = src / dst
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    pos = np.maximum(pos, 0.0)
    i0 = np.floor(pos).astype(np.int32)
    w1 = (pos - i0).astype(np.float32)
    i0 = np.minimum(i0, src - 1)
    i1 = np.minimum(i0 + 1, src - 1).astype(np.int32)
    w1[i0 == src - 1] = 0.0
    for a in (i0, i1, w1):
        a.setflags(write=False)
    return i0, i1, w1


@nb.njit(nogil=True, cache=True, fastmath=True, inline="always")
def _row(ra, rb, fy, gy, tmp, x0, x1, wx, p0, p1, p2, at):
    """One output row, separably: first the two source rows blended vertically over their whole
    width (contiguous: vectorised), then each output pixel from two samples of that blend;
    channels into p0/p1/p2 from position `at`."""
    for j in range(tmp.shape[0]):
        tmp[j] = np.float32(ra[j]) * gy + np.float32(rb[j]) * fy
    one = np.float32(1.0)
    for q in range(x0.shape[0]):
        a = x0[q] * 3
        b = x1[q] * 3
        fx = wx[q]
        gx = one - fx
        k = at + q
        p0[k] = tmp[a] * gx + tmp[b] * fx
        p1[k] = tmp[a + 1] * gx + tmp[b + 1] * fx
        p2[k] = tmp[a + 2] * gx + tmp[b + 2] * fx


@nb.njit(nogil=True, cache=True, fastmath=True)
def letterbox_kernel(image, out, pad_y, pad_x, y0, y1, wy, x0, x1, wx, swap_rb, scale, pad_value):
    """Fill float32 `out` [3, H, W] from BGR `image` [h, w, 3] letterboxed at (pad_y, pad_x).

    y0/y1/wy (length new_h) and x0/x1/wx (length new_w) are `bilinear_tables`; swap_rb writes
    RGB; every value is multiplied by `scale`; the border gets `pad_value`. Serial on purpose:
    sources pre-process in their own threads (the GIL is released), which scales across cores
    without nesting thread pools.
    """
    _, out_h, _ = out.shape
    new_h = y0.shape[0]
    new_w = x0.shape[0]
    h, w, _ = image.shape
    rows = image.reshape(h, w * 3)
    tmp = np.empty(w * 3, np.float32)
    pv = np.float32(pad_value)
    sc = np.float32(scale)
    c_first = 2 if swap_rb else 0
    c_last = 0 if swap_rb else 2
    for r in range(out_h):
        oy = r - pad_y
        if oy < 0 or oy >= new_h:
            out[:, r, :] = pv
            continue
        out[:, r, :pad_x] = pv
        out[:, r, pad_x + new_w :] = pv
        fy = wy[oy] * sc  # the scaling folds into the vertical weights
        gy = (np.float32(1.0) - wy[oy]) * sc
        _row(
            rows[y0[oy]],
            rows[y1[oy]],
            fy,
            gy,
            tmp,
            x0,
            x1,
            wx,
            out[c_first, r],
            out[1, r],
            out[c_last, r],
            pad_x,
        )


@nb.njit(nogil=True, cache=True)
def _f16_bits(v):
    """IEEE half-precision bits of a float32 in [0, 65504] (round to nearest even; values below
    half's normal range, 6.1e-5, become 0 — far below one grey level)."""
    bits = np.array([v], np.float32).view(np.uint32)[0]
    exp = (bits >> 23) & 0xFF
    if exp < 113:
        return np.uint16(0)
    mant = bits & 0x7FFFFF
    half = ((exp - 112) << 10) | (mant >> 13)
    rest = mant & 0x1FFF
    if rest > 0x1000 or (rest == 0x1000 and (half & 1)):
        half += 1
    return np.uint16(half)


@nb.njit(nogil=True, cache=True, fastmath=True)
def letterbox_kernel_f16(
    image, out_bits, pad_y, pad_x, y0, y1, wy, x0, x1, wx, swap_rb, scale, pad_value
):
    """As `letterbox_kernel`, into a float16 slot seen as uint16 bits (`out.view(np.uint16)`)."""
    _, out_h, out_w = out_bits.shape
    new_h = y0.shape[0]
    new_w = x0.shape[0]
    h, w, _ = image.shape
    rows = image.reshape(h, w * 3)
    pv = _f16_bits(np.float32(pad_value))
    sc = np.float32(scale)
    scratch = np.empty((3, new_w), np.float32)
    tmp = np.empty(w * 3, np.float32)
    c_first = 2 if swap_rb else 0
    c_last = 0 if swap_rb else 2
    for r in range(out_h):
        oy = r - pad_y
        if oy < 0 or oy >= new_h:
            out_bits[:, r, :] = pv
            continue
        out_bits[:, r, :pad_x] = pv
        out_bits[:, r, pad_x + new_w :] = pv
        fy = wy[oy] * sc
        gy = (np.float32(1.0) - wy[oy]) * sc
        _row(
            rows[y0[oy]],
            rows[y1[oy]],
            fy,
            gy,
            tmp,
            x0,
            x1,
            wx,
            scratch[0],
            scratch[1],
            scratch[2],
            0,
        )
        for c in range(3):
            dst = out_bits[(c_first, 1, c_last)[c], r]
            for q in range(new_w):
                dst[pad_x + q] = _f16_bits(scratch[c, q])
    return out_w


@nb.njit(nogil=True, cache=True, fastmath=True)
def block_grey(image, step, out):
    """Mean grey level of each `step` x `step` block (every other pixel of it, each way): a
    downscaled grey image in which sensor noise and compression speckle average out."""
    bh, bw = out.shape
    for i in range(bh):
        for j in range(bw):
            acc = np.float32(0.0)
            n = 0
            for y in range(i * step, i * step + step, 2 if step > 1 else 1):
                for x in range(j * step, j * step + step, 2 if step > 1 else 1):
                    acc += (
                        np.float32(0.114) * image[y, x, 0]
                        + np.float32(0.587) * image[y, x, 1]
                        + np.float32(0.299) * image[y, x, 2]
                    )
                    n += 1
            out[i, j] = acc / n


@nb.njit(nogil=True, cache=True, fastmath=True)
def motion_kernel(grey, background, alpha, threshold, mask):
    """The fraction of (masked) blocks whose grey level differs from the running `background`
    by more than `threshold`; then the background moves towards the frame by `alpha`.
    `grey` and `background` [bh, bw] float32 (background updated in place), `mask` uint8."""
    bh, bw = background.shape
    moving = 0
    counted = 0
    for i in range(bh):
        for j in range(bw):
            d = grey[i, j] - background[i, j]
            if mask[i, j]:
                counted += 1
                if d > threshold or d < -threshold:
                    moving += 1
            background[i, j] += alpha * d
    return moving / counted if counted else 0.0
