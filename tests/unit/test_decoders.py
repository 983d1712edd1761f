"""Output decoders on hand-made tensors whose right answer is known."""

import numpy as np

from engine.detect.decoders import (
    decode_ultralytics,
    decode_ultralytics_end2end,
    decode_yolox,
    yolox_grid,
    yolox_num_anchors,
)


def test_ultralytics_layout_picks_best_class_and_converts_boxes() -> None:
    pred = np.zeros((4 + 3, 5), np.float32)  # [4+nc, N]
    pred[:4, 2] = [100, 50, 20, 10]  # cx, cy, w, h
    pred[4:, 2] = [0.1, 0.8, 0.3]
    pred[4:, 4] = [0.2, 0.0, 0.0]  # below conf
    xyxy, score, cls = decode_ultralytics(pred, conf=0.25)
    assert xyxy.tolist() == [[90, 45, 110, 55]] and cls.tolist() == [1]
    assert score.tolist() == [np.float32(0.8)]


def test_end2end_layout() -> None:
    pred = np.array([[1, 2, 3, 4, 0.9, 7], [0, 0, 1, 1, 0.1, 2]], np.float32)
    xyxy, _score, cls = decode_ultralytics_end2end(pred, conf=0.5)
    assert xyxy.tolist() == [[1, 2, 3, 4]] and cls.tolist() == [7]


def test_yolox_grid_decode() -> None:
    assert yolox_num_anchors(416, 416) == 3549
    grid, stride = yolox_grid(64, 64)  # 8x8 + 4x4 + 2x2 cells
    assert len(grid) == 84 and stride[0, 0] == 8 and stride[-1, 0] == 32
    pred = np.zeros((84, 5 + 2), np.float32)
    k = 8 * 2 + 3  # stride-8 cell at x=3, y=2
    pred[k, :4] = [0.5, 0.5, np.log(2.0), np.log(4.0)]
    pred[k, 4] = 0.9  # objectness
    pred[k, 5:] = [0.1, 0.5]
    xyxy, score, cls = decode_yolox(pred, grid, stride, conf=0.1)
    # centre ((3 + .5) * 8, (2 + .5) * 8) = (28, 20); size (16, 32)
    np.testing.assert_allclose(xyxy, [[20, 4, 36, 36]], atol=1e-4)
    assert cls.tolist() == [1] and score[0] == np.float32(0.45)
