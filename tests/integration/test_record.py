"""The runner's frame hook and the annotated video it feeds."""

import threading
from pathlib import Path

import av
import numpy as np

from engine.config import parse_config
from engine.record import AnnotatedVideo, annotate
from engine.runtime import Runner
from engine.types import Event, Frame, Tracks
from tests.conftest import make_tracks, make_video, make_yolox_model, moving_square_frames


def test_annotate_draws_boxes_zones_and_banners() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    out = annotate(
        img, make_tracks([[20, 20, 60, 80]]), [[(100, 10), (190, 10), (150, 90)]], ["ALERT test"]
    )
    assert out is not img and img.sum() == 0
    assert out[20:80, 20].any()  # box edge
    assert out[10, 120].any()  # zone edge
    assert out[15, 20:60].any()  # banner


def test_runner_feeds_every_frame_with_tracks_and_events_to_the_recorder(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", moving_square_frames(25, 96, 128))
    model = make_yolox_model(tmp_path / "tiny.onnx")
    cfg = parse_config(
        f"sources: [{{id: c, type: file, path: '{clip}', rate: max}}]\n"
        f"detector: {{model: '{model}', class_names: [a, b], conf: 0.0}}\n"
        "zones: [{id: z, source: c, polygon: [[0, 0], [128, 0], [128, 96], [0, 96]]}]\n"
        "rules: [{id: r, type: zone_presence, zone: z}]\n"
    )
    video = AnnotatedVideo(tmp_path / "out.mp4", 10.0, [[(0, 0), (128, 0), (128, 96)]])
    seen: list[tuple[int, int, int]] = []

    def hook(frame: Frame, tracks: Tracks, events: list[Event]) -> None:
        seen.append((frame.seq, len(tracks), len(events)))
        video.add(frame, tracks, events)

    report = Runner(cfg).run(threading.Event(), on_frame=hook)
    video.close()
    assert report.errors == {} and [s[0] for s in seen] == list(range(25))
    assert sum(s[2] for s in seen) >= 1  # conf 0: the rule starts an incident on frame 0
    with av.open(str(tmp_path / "out.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 25 and (frames[0].width, frames[0].height) == (128, 96)
