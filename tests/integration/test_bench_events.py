"""`lookout bench events` end to end on a short cut of one case: table, JSON, summary figures."""

import json
import subprocess
import sys
from pathlib import Path


def test_bench_events_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "events.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "--log-level",
            "WARNING",
            "bench",
            "events",
            "--cases",
            "crowd-gathers-scatters",
            "--seeds",
            "1",
            "--max-s",
            "4",
            "--json",
            str(out),
        ],
        cwd=tmp_path,  # a checkout runs its benchmarks from any folder
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(out.read_text())
    s = result["summary"]
    assert s["cases"] == 1 and s["fps"] > 0 and s["peak_rss_mb"] > 0
    assert set(result["per_kind"]) == {
        "dumping",
        "crowd_gathering",
        "crowd_dispersal",
        "loitering",
        "abandoned_object",
    }
    assert "min_f1" in s and "max_delay_p95_s" in s
    assert "crowd_gathering" in r.stdout  # the printed table
