"""Hypothesis checks of the hot-path maths against plain references (OpenCV, pure Python)."""

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detect.nms import nms, nms_numpy
from engine.preprocess import InputLayout, letterbox_into, letterbox_params, unletterbox_boxes
from engine.rules.geometry import points_in_polygon

coord = st.integers(0, 1000)  # whole pixels: float32 and float64 IoU then agree


@st.composite
def boxes(draw: st.DrawFn, max_n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, max_n))
    xy = np.array(draw(st.lists(st.tuples(coord, coord), min_size=n, max_size=n)), np.float32)
    wh = np.array(
        draw(st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=n, max_size=n)),
        np.float32,
    )
    xyxy = (
        np.concatenate([xy, xy + wh], axis=1).reshape(n, 4) if n else np.zeros((0, 4), np.float32)
    )
    scores = np.array(draw(st.lists(st.floats(0.01, 1), min_size=n, max_size=n)), np.float32)
    classes = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.int32)
    return xyxy.astype(np.float32), scores.reshape(n), classes.reshape(n)


def reference_nms(xyxy: np.ndarray, score: np.ndarray, cls: np.ndarray, thr: float) -> list[int]:
    """Greedy NMS written the slow, obvious way."""

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    keep: list[int] = []
    for i in sorted(range(len(score)), key=lambda k: (-score[k], k)):
        if all(cls[i] != cls[j] or iou(xyxy[i], xyxy[j]) <= thr for j in keep):
            keep.append(i)
    return keep


@settings(max_examples=150, deadline=None)
@given(boxes(), st.sampled_from([0.3, 0.45, 0.6, 0.7]))
def test_nms_matches_reference(data: tuple[np.ndarray, np.ndarray, np.ndarray], thr: float) -> None:
    xyxy, score, cls = data
    got = nms(xyxy, score, cls, thr, max_det=1000).tolist()
    want = reference_nms(xyxy, score, cls, thr)
    assert got == want


@settings(max_examples=150, deadline=None)
@given(
    boxes(max_n=80),
    st.sampled_from([0.3, 0.5, 0.7]),
    st.booleans(),
    st.integers(1, 100),
    st.floats(0.0, 1.0, width=32),
)
def test_nms_kernel_equals_numpy_twin(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    thr: float,
    agnostic: bool,
    max_det: int,
    jitter: float,
) -> None:
    """Fractional coordinates, equal scores (ties), agnostic or class-aware, any max_det."""
    xyxy, score, cls = data
    xyxy = xyxy + np.float32(jitter)
    score = np.round(score, 1)  # many ties: both must break them by input order
    classes = None if agnostic else cls
    got = nms(xyxy, score, classes, thr, max_det)
    want = nms_numpy(xyxy, score, classes, thr, max_det)
    assert got.dtype == np.int64
    assert got.tolist() == want.tolist()


@settings(max_examples=100, deadline=None)
@given(boxes(), st.integers(1, 5))
def test_nms_respects_max_det(data: tuple[np.ndarray, np.ndarray, np.ndarray], k: int) -> None:
    xyxy, score, _cls = data
    assert len(nms(xyxy, score, None, 0.5, max_det=k)) <= k


@settings(max_examples=100, deadline=None)
@given(
    st.integers(8, 1500),
    st.integers(8, 1500),
    st.sampled_from([320, 416, 640]),
    st.sampled_from(["center", "top_left"]),
    boxes(max_n=10),
)
def test_unletterbox_inverts_letterbox(
    h: int, w: int, size: int, pad: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    xyxy = np.clip(data[0], 0, [w, h, w, h]).astype(np.float32)
    p = letterbox_params(h, w, size, size, pad)  # type: ignore[arg-type]
    assert p.pad_x >= 0 and p.pad_x + p.new_w <= size and p.pad_y + p.new_h <= size
    forward = xyxy * p.scale + np.array([p.pad_x, p.pad_y, p.pad_x, p.pad_y], np.float32)
    back = unletterbox_boxes(forward.copy(), p)
    np.testing.assert_allclose(back, xyxy, atol=1e-2 * max(1.0, 1 / p.scale))


@settings(max_examples=30, deadline=None)
@given(st.integers(10, 300), st.integers(10, 300), st.booleans())
def test_letterbox_matches_opencv_reference(h: int, w: int, rgb: bool) -> None:
    rng = np.random.default_rng(h * 1000 + w)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    layout = InputLayout("rgb" if rgb else "bgr", rgb, "center" if rgb else "top_left")
    out = np.empty((3, 128, 160), np.float32)
    p = letterbox_into(img, out, layout)
    # reference: resize, pad with copyMakeBorder, reorder, scale, transpose
    resized = cv2.resize(img, (p.new_w, p.new_h), interpolation=cv2.INTER_LINEAR)
    canvas = cv2.copyMakeBorder(
        resized,
        p.pad_y,
        128 - p.new_h - p.pad_y,
        p.pad_x,
        160 - p.new_w - p.pad_x,
        cv2.BORDER_CONSTANT,
        value=(114, 114, 114),
    )
    if rgb:
        canvas = canvas[:, :, ::-1]
    ref = canvas.transpose(2, 0, 1).astype(np.float32) / (255.0 if rgb else 1.0)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), min_size=3, max_size=8),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), min_size=1, max_size=30),
)
def test_points_in_polygon_matches_opencv(
    poly: list[tuple[int, int]], pts: list[tuple[int, int]]
) -> None:
    polygon = np.asarray(poly, np.float64)
    # half-pixel points never lie exactly on an integer polygon's vertices
    points = np.asarray(pts, np.float64) + 0.5
    got = points_in_polygon(points, polygon)
    contour = polygon.astype(np.float32).reshape(-1, 1, 2)
    for p, g in zip(points, got, strict=True):
        d = cv2.pointPolygonTest(contour, (float(p[0]), float(p[1])), False)
        if d != 0:  # on an edge either answer is allowed
            assert g == (d > 0), (poly, p)
