"""The README's main command: `lookout demo` renders, runs and alerts, with nothing but the repo."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "out" / "demo"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    from tests.conftest import free_port

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli.main", "--log-level", "WARNING", "demo",
         "--publish", endpoint],
        capture_output=True, text=True, timeout=900, cwd=tmp_path_factory.mktemp("cwd"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    alerts = [json.loads(x) for x in (DEMO / "alerts.jsonl").read_text().splitlines()]
    return proc.stdout, alerts


def test_demo_completes_prints_and_records(demo: tuple[str, list[dict[str, Any]]]) -> None:
    out, alerts = demo
    assert "done: 1275 frames" in out, out
    printed = [line for line in out.splitlines() if line.startswith("#")]
    assert len(alerts) == len(printed) >= 1
    assert [a["seq"] for a in alerts] == list(range(1, len(alerts) + 1))
    for name, frames in (("drone7", 600), ("gatecam2", 675)):
        with av.open(str(DEMO / f"{name}_annotated.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == frames


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.mark.xfail(
    strict=True,
    reason="issue 4 open: the interim bundled model (held-out debris mAP50 0.40) alerts on "
    "tree canopies in oblique drone views, not on the true pile; remove this mark when a model "
    "meets the target",
)
def test_demo_debris_alerts_are_on_the_true_pile(demo: tuple[str, list[dict[str, Any]]]) -> None:
    _, alerts = demo
    truth = json.loads((DEMO / "render" / "dumping_drone" / "truth.json").read_text())
    starts = [a for a in alerts if a["data"]["rule"] == "debris-on-ground"
              and a["data"]["phase"] == "start"]  # fmt: skip
    assert starts
    for a in starts:
        frame = truth["frames"][round(a["data"]["stream_pts_s"] * truth["fps"])]
        piles = [o["box_xyxy"] for o in frame["objects"] if o["class"] == "debris"]
        box = a["data"]["objects"][0]["box_xyxy"]
        assert any(_iou(box, p) > 0.3 for p in piles), (box, piles)
