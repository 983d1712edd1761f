"""Clips around incident starts: the frames before come from the ring buffer, then the frames
after; the file is a playable MP4 and the alert names it."""

from pathlib import Path

import av
import numpy as np

from engine.config import ClipsConfig
from engine.record.clips import ClipRecorder, with_clip
from engine.rules.base import make_event
from engine.types import Frame
from tests.conftest import make_frame


def frame_at(k: int, fps: float = 15.0) -> Frame:
    f = make_frame(k / fps, seq=k, h=360, w=640)
    f.image[:, :, 1] = k % 256  # the frame number in the green channel
    return f


def test_clip_holds_pre_and_post_seconds_at_the_clip_rate(tmp_path: Path) -> None:
    rec = ClipRecorder(ClipsConfig(dir=tmp_path, pre_s=2, post_s=3, fps=5, max_width=320), "cam1")
    clip_name = None
    for k in range(150):  # 10 s at 15 fps; the incident starts at 6 s
        frame = frame_at(k)
        rec.add(frame)
        if k == 90:
            event = make_event(
                rule_id="r",
                kind="intrusion",
                phase="start",
                event_id="e1",
                frame=frame,
                severity="warning",
            )
            event = with_clip(event, rec)
            assert event.clip is not None
            clip_name = event.clip.file
    rec.close()
    assert clip_name == "cam1/e1.mp4"
    with av.open(str(tmp_path / clip_name)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert frames[0].shape == (180, 320, 3)
    # 2 s before (11 frames at 5 fps, the start included) and 3 s after
    assert 24 <= len(frames) <= 28
    greens = [int(np.median(f[:, :, 1])) for f in frames]
    assert abs(greens[0] - 60) <= 4 and abs(greens[-1] - 135) <= 4  # 4.0 s .. 9.0 s


def test_later_phases_name_the_same_clip_and_old_clips_are_pruned(tmp_path: Path) -> None:
    rec = ClipRecorder(ClipsConfig(dir=tmp_path, pre_s=0, post_s=0.2, fps=5, keep=2), "cam1")
    for k in range(40):
        frame = frame_at(k)
        rec.add(frame)
        if k % 10 == 0:
            e = make_event(
                rule_id="r",
                kind="intrusion",
                phase="start",
                event_id=f"e{k}",
                frame=frame,
                severity="warning",
            )
            with_clip(e, rec)
    rec.close()
    assert sorted(p.name for p in (tmp_path / "cam1").glob("*.mp4")) == ["e20.mp4", "e30.mp4"]
    end = make_event(
        rule_id="r",
        kind="intrusion",
        phase="end",
        event_id="e30",
        frame=frame_at(45),
        severity="warning",
    )
    clip = with_clip(end, rec).clip
    assert clip is not None and clip.file == "cam1/e30.mp4" and clip.status == "written"


def test_parts_left_by_a_run_that_died_mid_clip_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / "cam1" / "crashed.mp4.part"
    stale.parent.mkdir()
    stale.write_bytes(b"\0" * 1000)  # a clip a killed engine never finished
    rec = ClipRecorder(ClipsConfig(dir=tmp_path, pre_s=0, post_s=0.2, fps=5), "cam1")
    for k in range(20):
        frame = frame_at(k)
        rec.add(frame)
        if k == 0:
            e = make_event(
                rule_id="r",
                kind="intrusion",
                phase="start",
                event_id="e0",
                frame=frame,
                severity="warning",
            )
            with_clip(e, rec)
    rec.close()
    assert sorted(p.name for p in (tmp_path / "cam1").iterdir()) == ["e0.mp4"]
