"""The README's main command: `lookout demo` renders, runs and alerts, with nothing but the
package: it runs here as `pip install .` leaves it (a wheel in a fresh virtualenv), from an empty
folder, and writes into that folder only."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np
import pytest

from engine.geo.geodesy import GeoOrigin
from tests.conftest import REPO, free_port
from tests.support.wheel import Installed

pytestmark = pytest.mark.slow


class Demo(NamedTuple):
    """What one `lookout demo` printed, the alerts it logged, and the folder it wrote."""

    out: str
    alerts: list[dict[str, Any]]
    folder: Path


def _installed_files(venv: Path) -> set[Path]:
    """The virtualenv's files, less the byte-code and numba caches the interpreter writes."""
    return {p for p in venv.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def demo(installed_lookout: Installed, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    cwd = tmp_path_factory.mktemp("cwd")
    before = _installed_files(installed_lookout.venv)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = installed_lookout.run(
        "--log-level", "WARNING", "demo", "--publish", endpoint, cwd=cwd, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _installed_files(installed_lookout.venv) == before  # nothing into site-packages
    assert [p.name for p in cwd.iterdir()] == ["out"]
    folder = cwd / "out" / "demo"
    alerts = [json.loads(x) for x in (folder / "alerts.jsonl").read_text().splitlines()]
    return Demo(proc.stdout, alerts, folder)


def test_demo_completes_prints_and_records(demo: Demo) -> None:
    out, alerts, folder = demo
    assert "alerts log: out/demo/alerts.jsonl" in out, out
    assert "done: 1875 frames" in out, out
    printed = [line for line in out.splitlines() if line.startswith("#")]
    assert len(alerts) == len(printed) >= 1
    assert [a["seq"] for a in alerts] == list(range(1, len(alerts) + 1))
    for name, frames in (("drone7", 600), ("gatecam2", 675), ("pole3", 600)):
        with av.open(str(folder / f"{name}_annotated.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == frames


def _truth(demo: Demo, scenario: str) -> dict[str, Any]:
    return json.loads((demo.folder / "render" / scenario / "truth.json").read_text())


def _starts(alerts: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        a["data"] for a in alerts if a["data"]["kind"] == kind and a["data"]["phase"] == "start"
    ]


def test_demo_crowd_alerts_come_at_the_right_moments(
    demo: Demo,
) -> None:
    alerts = demo.alerts
    truth = {e["kind"]: e for e in _truth(demo, "crowd_station_gate")["events"]}
    gathering = _starts(alerts, "crowd_gathering")
    dispersal = _starts(alerts, "crowd_dispersal")
    assert len(gathering) == 1 and len(dispersal) == 1, alerts
    g, d = truth["crowd_gathering"], truth["crowd_dispersal"]
    assert g["start_s"] - 1 <= gathering[0]["stream_pts_s"] <= g["end_s"] + 2
    assert d["start_s"] - 1 <= dispersal[0]["stream_pts_s"] <= d["start_s"] + 3
    # placed on the ground: near where the crowd stood
    pos = gathering[0]["position"]
    assert pos is not None and pos["uncertainty_m"] > 0
    assert np.hypot(pos["east_m"] - g["place_m"][0], pos["north_m"] - g["place_m"][1]) < 5.0
    assert gathering[0]["attributes"]["clip"]["file"].startswith("gatecam2/")
    assert (demo.folder / "clips" / gathering[0]["attributes"]["clip"]["file"]).is_file()


def _dumping_stages(
    demo: Demo, sensor: str, scenario: str, later_pass: bool = False
) -> dict[str, dict[str, Any]]:
    """The sensor's one dumping, stage by stage, checked against the render's truth: suspected
    within 3 s of the truck's stop, confirmed with the pile among its objects and the
    before|after snapshot (during the event, or with `later_pass` when a patrolling drone sees
    the place again), vehicle left soon after it drove off, then closed; all of one event id.
    Any other incident of the sensor (another vehicle stopping) is cleared: no dumping."""
    truth = _truth(demo, scenario)
    event = truth["events"][0]
    marks = event["milestones"]
    incidents: dict[str, list[dict[str, Any]]] = {}
    for a in demo.alerts:
        d = a["data"]
        if d["kind"] == "dumping" and d["sensors"] == [sensor]:
            incidents.setdefault(d["event_id"], []).append(d)
    dumpings = [v for v in incidents.values() if any(d["stage"] == "confirmed" for d in v)]
    assert len(dumpings) == 1, incidents
    others = [v for v in incidents.values() if v is not dumpings[0]]
    assert all(v[-1]["stage"] == "cleared" for v in others), others
    mine = dumpings[0]
    order = [d["stage"] for d in mine]
    assert order[0] == "suspected" and order[-1] == "closed", order
    assert sorted(order[1:-1]) == ["confirmed", "vehicle_left"], order
    stages = {d["stage"]: d for d in mine}
    suspected, confirmed = stages["suspected"], stages["confirmed"]
    assert marks["stop_s"] <= suspected["stream_pts_s"] <= marks["stop_s"] + 3.0
    assert suspected["severity"] == "warning" and confirmed["severity"] == "critical"
    assert suspected["objects"][0]["label"] in ("truck", "car")
    latest = truth["duration_s"] if later_pass else event["end_s"] + 2
    assert event["start_s"] - 1 <= confirmed["stream_pts_s"] <= latest
    assert confirmed["snapshot"] is not None  # the before|after pair
    frame = truth["frames"][round(confirmed["stream_pts_s"] * truth["fps"])]
    piles = [o["box_xyxy"] for o in frame["objects"] if o["class"] == "debris"]
    found = [
        o["box_xyxy"] for o in confirmed["objects"] if o["label"] in ("debris", "new_static_object")
    ]
    assert any(_iou(b, p) > 0.2 for b in found for p in piles), (found, piles)
    left = stages["vehicle_left"]["attributes"]
    assert abs(left["departed_pts_s"] - marks["depart_s"]) <= 1.5
    assert left["departure_heading_deg"] is not None
    return stages


def test_demo_dumping_on_the_lot_comes_in_stages_with_the_truck_and_the_pile(
    demo: Demo,
) -> None:
    stages = _dumping_stages(demo, "pole3", "dumping_fixed")
    for d in stages.values():  # the pole camera is calibrated: every stage is placed
        assert d["position"] is not None
    printed = [line for line in demo.out.splitlines() if "demo/pole3 dumping" in line]
    assert [line.split()[4] for line in printed] == [
        "start/suspected",
        "update/confirmed",
        "update/vehicle_left",
        "end/closed",
    ], printed
    assert all(" at 31.2" in line for line in printed), printed


def test_demo_drone_dumping_comes_in_stages(demo: Demo) -> None:
    """The drone flies over while the truck stands (suspected), on while it tips, and back
    once it has gone: the pile it then finds confirms the incident. Its frames are registered
    to the ground from the KLV telemetry, so the stages are placed: the confirmation within
    3 m of the pile."""
    stages = _dumping_stages(demo, "drone7", "dumping_drone", later_pass=True)
    truth = _truth(demo, "dumping_drone")
    o = truth["origin"]
    scene = GeoOrigin(o["lat_deg"], o["lon_deg"], o["alt_m"])
    pos = stages["confirmed"]["position"]
    assert pos is not None, stages["confirmed"]
    east, north, _ = scene.to_enu(pos["lat"], pos["lon"], o["alt_m"])[0]
    px, py = truth["events"][0]["place_m"]
    assert np.hypot(east - px, north - py) < 3.0, (east, north, px, py)
    printed = [line for line in demo.out.splitlines() if "demo/drone7 dumping" in line]
    shown = [line.split()[4] for line in printed]
    assert shown[0] == "start/suspected" and shown[-1] == "end/closed", printed
    assert sorted(shown[1:-1]) == ["update/confirmed", "update/vehicle_left"], printed
    assert all(" at 31.2" in line for line in printed[:-1]), printed


def test_demo_drone_boxes_the_truck_through_its_stop(demo: Demo) -> None:
    """The drone's track log (what its annotated video boxes) against the render's truth: a
    truck track covers the dumping truck in most frames where it is visible, and in nearly all
    of those while it stands and tips."""
    truth = _truth(demo, "dumping_drone")
    event = truth["events"][0]
    truck_id = event["actors"][0]  # a dumping's actors: its truck, then its pile
    logged = [json.loads(x) for x in (demo.folder / "drone7_tracks.jsonl").read_text().splitlines()]
    boxed = {
        row["seq"]: [t["box_xyxy"] for t in row["tracks"] if t["label"] == "truck"]
        for row in logged
    }
    seen, stop_seen, stop = 0, 0, 0
    visible = 0
    for k, frame in enumerate(truth["frames"]):
        obj = next((o for o in frame["objects"] if o["actor_id"] == truck_id), None)
        if obj is None or obj["visibility"] < 0.5:
            continue
        assert obj["class"] == "truck"
        visible += 1
        hit = any(_iou(b, obj["box_xyxy"]) >= 0.5 for b in boxed.get(k, []))
        seen += hit
        if event["start_s"] <= k / truth["fps"] <= event["start_s"] + 10:
            stop += 1
            stop_seen += hit
    assert visible > 100 and stop > 50, (visible, stop)
    assert seen / visible >= 0.6, (seen, visible)
    assert stop_seen / stop >= 0.9, (stop_seen, stop)


def _iou(a: list[float], b: list[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_bench_run_scores_the_demo_footage_against_its_truth(demo: Demo, tmp_path: Path) -> None:
    """`lookout bench run --events`: the demo pipeline's own config on its rendered footage,
    scored against the simulator's truth (crowd gathering and dispersal at the gates)."""
    render = demo.folder / "render" / "crowd_station_gate"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "--log-level",
            "WARNING",
            "bench",
            "run",
            str(render / "gatecam2.mp4"),
            "--model",
            str(REPO / "models/lookout_sim_yolo11n.onnx"),
            "--rules",
            str(REPO / "pipelines/demo.yaml"),
            "--events",
            str(render / "truth.json"),
            "--passes",
            "track",
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    rows = {r["kind"]: r for r in result["events"]}
    assert set(rows) == {"crowd_gathering", "crowd_dispersal"}  # no dumping rule on this camera
    for kind in rows:
        assert rows[kind]["true_events"] == 1 and rows[kind]["tp"] == 1, rows[kind]
        assert rows[kind]["delay_p95_s"] is not None
    assert result["summary"]["events_min_f1"] == min(r["f1"] for r in rows.values())
