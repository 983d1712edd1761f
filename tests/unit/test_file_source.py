"""Recorded footage: every frame with stream timestamps, loops that keep counting, clear errors."""

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from engine.config import FileSourceConfig
from engine.errors import SourceError
from engine.sources import FileSource
from tests.conftest import make_video, moving_square_frames


def read_all(src: FileSource) -> list:
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    return frames


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", moving_square_frames(20), fps=10)


def source(path: Path, **kw: object) -> FileSource:
    src = FileSource(FileSourceConfig(id="cam1", path=path, rate="max", **kw))  # type: ignore[arg-type]
    src.open()
    return src


def test_reads_every_frame_with_timestamps(clip: Path) -> None:
    src = source(clip)
    assert src.fps == pytest.approx(10.0) and src.size == (128, 96)
    frames = read_all(src)
    assert [f.seq for f in frames] == list(range(20))
    np.testing.assert_allclose([f.pts_s for f in frames], np.arange(20) / 10, atol=1e-6)
    assert frames[0].image.shape == (96, 128, 3) and frames[0].source_id == "cam1"
    # the white square is where it was drawn (lossy codec: compare roughly)
    assert frames[5].image[40, 19 + 5].mean() > 200


def test_loop_keeps_time_moving_forward(clip: Path) -> None:
    frames = read_all(source(clip, loop=True, max_frames=50))
    pts = [f.pts_s for f in frames]
    assert len(frames) == 50 and [f.seq for f in frames] == list(range(50))
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert pts[20] == pytest.approx(2.0, abs=1e-6)


def test_native_rate_is_not_faster_than_the_stream(clip: Path) -> None:
    src = FileSource(FileSourceConfig(id="cam1", path=clip, rate="native", max_frames=6))
    src.open()
    t0 = time.monotonic()
    frames = read_all(src)
    # 6 frames at 10 fps span 0.5 s of stream time; replay must not run ahead of it
    assert len(frames) == 6 and time.monotonic() - t0 >= 0.45


def test_close_interrupts_a_paced_read(clip: Path) -> None:
    src = FileSource(FileSourceConfig(id="cam1", path=clip, rate="native"))
    src.open()
    assert src.read() is not None
    src.close()
    assert src.read() is None


def test_gif_is_a_source(tmp_path: Path) -> None:
    gif = make_video(tmp_path / "a.gif", moving_square_frames(5), fps=10, codec="gif")
    assert len(read_all(source(gif))) == 5


def test_mpeg_ts_is_a_source_with_timestamps_from_zero(tmp_path: Path) -> None:
    ts = make_video(tmp_path / "a.ts", moving_square_frames(12), fps=10)
    frames = read_all(source(ts))
    assert len(frames) == 12
    # MPEG-TS starts at a non-zero PTS (1.4 s by default): frames still count from 0
    np.testing.assert_allclose([f.pts_s for f in frames], np.arange(12) / 10, atol=1e-3)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source cam1: video file not found: .*nope.mp4"):
        source(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video at all" * 100)
    with pytest.raises(SourceError, match=r"source cam1: cannot read video .*bad.mp4"):
        source(bad)


def test_truncated_file_yields_what_it_has(clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        frames = read_all(source(cut))
    except SourceError as exc:  # moov atom at the end: nothing readable, but a clear error
        assert "cut.mp4" in str(exc)
    else:
        assert len(frames) < 20
