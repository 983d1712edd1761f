"""The scene models rules rely on: the camera's own motion, and new static regions."""

import cv2
import numpy as np
import pytest

from engine.preprocess.scene import EgoMotion, StaticForeground


def textured(h: int = 720, w: int = 1280, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize(("vx", "vy"), [(6.0, 0.0), (-4.0, 3.0), (0.0, 0.0)])
def test_ego_motion_follows_a_sliding_view(vx: float, vy: float) -> None:
    world = textured(1000, 1800)
    ego = EgoMotion()
    for k in range(30):
        # the camera moves by (vx, vy) per frame: the picture slides the other way
        x, y = int(150 + vx * k), int(100 + vy * k)
        offset = ego.update(np.ascontiguousarray(world[y : y + 720, x : x + 1280]))
    assert offset == pytest.approx((vx * 29, vy * 29), abs=3.0)


def test_static_foreground_finds_what_was_left_not_what_passes() -> None:
    rng = np.random.default_rng(1)
    bg = textured(seed=2)
    fg = StaticForeground(warmup_s=3.0)
    found = []
    for k in range(100):
        t = k / 10
        img = np.clip(bg.astype(np.int16) + rng.normal(0, 3, bg.shape), 0, 255).astype(np.uint8)
        x = 50 + 12 * k  # a car-sized block crossing the picture
        img[500:560, x : x + 90] = (20, 20, 200)
        if t >= 3.0:  # a bag left at t = 3 s
            img[300:340, 600:640] = (230, 230, 230)
        xyxy, age = fg.update(img, t)
        found.append((t, xyxy, age))
    t, xyxy, age = found[-1]
    assert len(xyxy) == 1
    x1, y1, x2, y2 = xyxy[0]
    assert 590 <= x1 <= 606 and 594 <= x2 <= 650 and 290 <= y1 <= 306 and 334 <= y2 <= 350
    assert 5.0 <= age[0] <= 7.0
    early = [len(b) for t, b, _ in found if t < 3.0]
    assert max(early) == 0  # the moving block never counts


def test_a_region_keeps_its_age_while_someone_stands_in_front_of_it() -> None:
    rng = np.random.default_rng(1)
    bg = textured(seed=2)
    fg = StaticForeground(warmup_s=3.0)
    last = None
    for k in range(120):
        t = k / 10
        img = np.clip(bg.astype(np.int16) + rng.normal(0, 3, bg.shape), 0, 255).astype(np.uint8)
        if t >= 3.0:  # a bag left at t = 3 s
            img[300:340, 600:640] = (230, 230, 230)
        # someone stands in front of it 7-9 s: their box is excluded, the bag is not seen
        cover = np.array([[580, 250, 660, 400]], np.float32) if 7.0 <= t < 9.0 else None
        xyxy, age = fg.update(img, t, cover)
        if 7.0 <= t < 9.0:
            assert len(xyxy) == 0
        last = (xyxy, age)
    assert last is not None
    xyxy, age = last
    assert len(xyxy) == 1 and 7.0 <= age[0] <= 9.0  # counted from about 3-4 s, not from 9 s


def test_someone_who_stood_there_at_the_start_leaves_no_ghost() -> None:
    rng = np.random.default_rng(3)
    bg = (64 + textured(seed=4) // 2).astype(np.uint8)  # paving, not the busiest texture
    fg = StaticForeground()  # warms up over 10 s: they stand for less than half of it
    found = []
    for k in range(200):
        t = k / 10
        img = np.clip(bg.astype(np.int16) + rng.normal(0, 3, bg.shape), 0, 255).astype(np.uint8)
        if t < 4.5:  # someone stands there as the stream starts, then walks off
            img[200:330, 300:345] = (25, 25, 25)
        if t >= 10.0:  # later a bag is left elsewhere
            img[500:540, 800:840] = (230, 230, 230)
        xyxy, _ = fg.update(img, t)
        found.append((t, xyxy))
    # (while the scene's fast average catches up with the empty floor, for a second or two,
    # parts of the place may show; none is left after that)
    ghosts = [
        t
        for t, xyxy in found
        for b in xyxy
        if t >= 8.0 and b[0] < 400 and b[1] < 360 and b[3] > 180
    ]
    assert ghosts == []
    t, xyxy = found[-1]
    assert len(xyxy) == 1 and 790 <= xyxy[0][0] <= 806 and 494 <= xyxy[0][1] <= 506


def test_ego_motion_catches_up_with_a_pan_already_under_way() -> None:
    world = textured(1000, 2400)
    ego = EgoMotion()  # 15 px per frame from the first frame: beyond its 12 px jump limit
    for k in range(40):
        offset = ego.update(np.ascontiguousarray(world[100:820, 50 + 15 * k : 1330 + 15 * k]))
    assert offset == pytest.approx((15 * 39, 0.0), abs=20.0)
