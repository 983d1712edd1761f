"""A stamp in the pixels of a test camera's frames: capture time and frame number.

64 bits in two rows of 32 flat blocks at the top-left of the luma plane (white = 1): the
sender's monotonic clock in microseconds (40 bits, wraps after 12 days), the frame number
(20 bits) and a 4-bit check. Blocks are large enough (>= 8 px) to survive H.264 compression.
On Linux `time.monotonic_ns()` is one clock for every process, so a receiver on the same machine
gets camera-to-frame latency as its own clock minus the stamp, and lost frames as gaps in the
numbers. The writer needs no NumPy (it runs inside the GStreamer server).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TIME_MASK", "block_size", "latency_us", "read_stamp", "stamp_i420"]

TIME_BITS, INDEX_BITS, CHECK_BITS = 40, 20, 4
TIME_MASK = (1 << TIME_BITS) - 1
INDEX_MASK = (1 << INDEX_BITS) - 1
ONE, ZERO = 235, 16


def block_size(width: int) -> int:
    """Side of one bit's block for a frame this wide."""
    return max(8, width // 40)


def _check(value: int) -> int:
    return sum((value >> s) & 0xF for s in range(0, 60, 4)) & 0xF


def _bits(time_us: int, index: int) -> list[int]:
    value = (time_us & TIME_MASK) | ((index & INDEX_MASK) << TIME_BITS)
    value |= _check(value) << (TIME_BITS + INDEX_BITS)
    return [(value >> k) & 1 for k in range(64)]


def stamp_i420(data: bytearray, width: int, height: int, time_us: int, index: int) -> None:
    """Write the stamp into an I420 frame's luma plane, in place."""
    b = block_size(width)
    if 2 * b > height or 32 * b > width:
        raise ValueError(f"frame {width}x{height} too small for a stamp")
    for k, bit in enumerate(_bits(time_us, index)):
        row, col = divmod(k, 32)
        block = bytes([ONE if bit else ZERO]) * b
        for y in range(row * b, row * b + b):
            start = y * width + col * b
            data[start : start + b] = block


def read_stamp(image: Any) -> tuple[int, int] | None:
    """(time_us, frame number) from a decoded BGR frame, or None if no valid stamp is there."""
    import numpy as np

    h, w = image.shape[:2]
    b = block_size(w)
    if 2 * b > h or 32 * b > w:
        return None
    q = b // 4
    luma = image[: 2 * b, : 32 * b].astype(np.float32).mean(axis=2)
    centres = luma.reshape(2, b, 32, b)[:, q : b - q, :, q : b - q].mean(axis=(1, 3))
    bits = (centres.reshape(64) > (ONE + ZERO) / 2).astype(np.uint64)
    value = int((bits << np.arange(64, dtype=np.uint64)).sum())
    payload = value & ((1 << (TIME_BITS + INDEX_BITS)) - 1)
    if value >> (TIME_BITS + INDEX_BITS) != _check(payload):
        return None
    return payload & TIME_MASK, payload >> TIME_BITS


def latency_us(stamp_time_us: int, now_us: int) -> int:
    """Receiver clock minus the stamp, modulo the stamp's 40-bit wrap."""
    return (now_us - stamp_time_us) & TIME_MASK
