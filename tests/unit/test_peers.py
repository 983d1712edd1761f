"""Peer comparison helpers: detection agreement on constructed boxes; the benchmark's charts and
Markdown page from a small synthetic result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.peers import agreement, detections_of, run_ultralytics
from bench.plots import PLOT_FILES, write_markdown, write_plots

PNG = b"\x89PNG\r\n\x1a\n"


def boxes(*rows: tuple[float, ...]) -> np.ndarray:
    """[n, 6] (x1, y1, x2, y2, score, cls) from rows."""
    return np.array(rows, np.float32).reshape(-1, 6)


A = boxes((10, 10, 110, 210, 0.9, 0), (300, 50, 400, 150, 0.6, 2))


def test_identical_frames_agree_fully() -> None:
    r = agreement([A, A], [A, A])
    assert (r["matched"], r["n_a"], r["n_b"]) == (4, 4, 4)
    assert r["frac_a"] == r["frac_b"] == r["symmetric"] == 1.0
    assert r["mean_iou"] == pytest.approx(1.0)
    assert r["score_mad"] == pytest.approx(0.0)


def test_box_shifted_below_the_iou_threshold_is_unmatched() -> None:
    shifted = A.copy()
    shifted[0, [0, 2]] += 10  # 100 px wide, 10 px shift: IoU 90/110 = 0.82
    r = agreement([A], [shifted], iou=0.9)
    assert r["matched"] == 1  # only the untouched box
    assert r["frac_a"] == r["frac_b"] == 0.5
    # the same shift passes a looser threshold
    assert agreement([A], [shifted], iou=0.8)["matched"] == 2


def test_small_shift_above_the_threshold_still_matches() -> None:
    nudged = A.copy()
    nudged[:, :4] += 1.0
    assert agreement([A], [nudged], iou=0.9)["symmetric"] == 1.0


def test_same_box_other_class_is_unmatched() -> None:
    other = A.copy()
    other[1, 5] = 7
    r = agreement([A], [other])
    assert r["matched"] == 1


def test_matching_is_one_to_one() -> None:
    twice = np.concatenate([A[:1], A[:1]])
    r = agreement([A[:1]], [twice])
    assert (r["matched"], r["frac_a"], r["frac_b"]) == (1, 1.0, 0.5)
    assert r["symmetric"] == pytest.approx(2 / 3)


def test_empty_frames() -> None:
    empty = np.zeros((0, 6), np.float32)
    assert agreement([empty, []], [empty, []])["symmetric"] == 1.0  # nothing to disagree on
    r = agreement([empty], [A])
    assert (r["matched"], r["n_a"], r["n_b"]) == (0, 0, 2)
    assert (r["frac_a"], r["frac_b"], r["symmetric"]) == (1.0, 0.0, 0.0)
    assert r["mean_iou"] is None


def test_frame_counts_must_match() -> None:
    with pytest.raises(ValueError, match="frame counts differ"):
        agreement([A], [A, A])


def test_detections_of_drops_track_ids() -> None:
    video = {"detections": [[], [[1, 2, 3, 4, 0.5, 0, 17]], [[1, 2, 3, 4, 0.5, 0]]]}
    frames = detections_of(video)
    assert [f.shape for f in frames] == [(0, 6), (1, 6), (1, 6)]


def test_missing_ultralytics_interpreter_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="make ultralytics-env"):
        run_ultralytics(tmp_path / "m.onnx", 320, [], python=tmp_path / "no-python")


# --- charts and page ------------------------------------------------------------------------


def synthetic_result() -> dict[str, Any]:
    run = {
        "latency_ms": {"p50": 40.0, "p90": 55.0, "p99": 80.0},
        "cpu_pct": 180.0,
        "rss_mb": 310.0,
        "drops": 0,
    }
    return {
        "machine": {"cpus": 2, "processor": "x86_64"},
        "summary": {"lookout_fps": 61.25, "ultralytics_fps": 52.5, "limit_fps": 68.4},
        "runs": [
            {
                **run,
                "name": "lookout",
                "fps": 61.25,
                "stages_ms": {"decode": 3.0, "preprocess": 1.0, "inference": 14.0, "track": 0.5},
            },
            {
                **run,
                "name": "ultralytics predict",
                "fps": 52.5,
                "peer": True,
                "stages_ms": {"preprocess": 1.0, "inference": 15.0, "postprocess": 1.0},
            },
        ],
        "scaling": [
            {"streams": 1, "fps_per_stream": 30.0, "latency_p99_ms": 60.0, "drops": 0},
            {"streams": 4, "fps_per_stream": 14.5, "latency_p99_ms": 240.0, "drops": 12},
        ],
        "events": [{"rule": "line_crossing", "events": 12, "f1": 0.92}],
    }


def test_plots_are_png_files(tmp_path: Path) -> None:
    written = write_plots(synthetic_result(), tmp_path / "plots")
    assert [p.name for p in written] == list(PLOT_FILES.values())
    for p in written:
        assert p.read_bytes()[:8] == PNG


def test_plots_skip_missing_sections(tmp_path: Path) -> None:
    result = {"runs": [{"name": "lookout", "fps": 12.0}]}
    assert [p.name for p in write_plots(result, tmp_path)] == [PLOT_FILES["throughput"]]
    assert write_plots({}, tmp_path / "none") == []


def test_markdown_has_the_figures_and_links(tmp_path: Path) -> None:
    result = synthetic_result()
    write_plots(result, tmp_path)
    md = write_markdown(result, tmp_path / "report.md").read_text(encoding="utf-8")
    for text in (
        "## Machine",
        "cpus: 2",
        "| lookout_fps | 61.2",
        "| limit_fps | 68.4",
        "| ultralytics predict | 52.5 | 40.0 | 55.0 | 80.0 | 180.0 | 310.0 | 0 |",
        "## Stages",
        "| decode | preprocess | inference | track | postprocess | total |",
        "| 4 | 14.5 | 240.0 | 12 |",
        "| line_crossing | 12 | 0.92 |",
        "![throughput](throughput.png)",
        "![scaling](scaling.png)",
    ):
        assert text in md


def test_markdown_tolerates_a_bare_result(tmp_path: Path) -> None:
    md = write_markdown({"runs": [{"name": "a|b", "fps": None}]}, tmp_path / "r.md")
    text = md.read_text(encoding="utf-8")
    assert "| a\\|b | – |" in text
    assert "## Machine" not in text and "## Plots" not in text
