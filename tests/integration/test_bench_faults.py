"""`lookout bench faults`: the secret scan and the blackholing proxy on their own, then the suite
end to end on its smallest settings (scenarios 0, 5 and 8) with a secret planted on purpose."""

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.faults_rig import SECRETS, BlackholeProxy, camera_urls, scan_journal, scan_text
from engine.alerts.journal import Journal, JournalRow

REPO = Path(__file__).resolve().parents[2]


def test_the_scan_finds_each_planted_secret_however_it_is_cut_or_encoded() -> None:
    urls = camera_urls(9)
    assert len(scan_text("\n".join(urls), "urls")) == len(urls)
    # a redaction that stops at the password's first '@' still prints the rest of it
    assert scan_text("cannot connect to rtsp://ops:***@h0me/2day!@127.0.0.1:9/live", "log")
    assert scan_text('{"url": "rtsp://ops:n0tw%40h0me%2F2day%21@host/"}', "alert")
    assert scan_text("GET /cam?channel=1&sig=sg7f00dbeef", "log")
    clean = "rtsp://***@127.0.0.1:9/live?apikey=*** Connection refused\nadmin ops viewer"
    assert scan_text(clean, "log") == []
    leak = scan_text("x access_token=s3cr3t-tok y", "log")[0]
    assert leak.line == 1 and "s3cr3t" not in leak.excerpt  # the report does not leak it again
    assert all(s.needles for s in SECRETS)


def test_the_scan_reads_journal_rows_and_damaged_files(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    journal = Journal(db)
    journal.begin_epoch("e1")
    journal.append(
        [
            JournalRow("e1", 1, ("a.site.cam1.",), b'{"reason": "no leak here"}', None),
            JournalRow("e1", 2, ("a.site.cam1.",), b'{"reason": "rtsp://admin:hunter2@x"}', None),
        ]
    )
    journal.close()
    leaks = scan_journal(db, "journal.db")
    assert [(x.place, x.secret) for x in leaks] == [("journal.db", "cam1 password")]
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not sqlite at all\n" * 100 + b"P@ss@W0rdXy\n")
    assert [x.place for x in scan_journal(damaged, "damaged.db")] == ["damaged.db (raw)"]


def test_the_proxy_holds_bytes_while_blackholed_and_delivers_them_after() -> None:
    upstream = socket.create_server(("127.0.0.1", 0))

    def echo() -> None:
        conn, _ = upstream.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    proxy = BlackholeProxy(upstream.getsockname()[1])
    try:
        proxy.blackhole.set()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
            c.sendall(b"ping")
            c.settimeout(1.0)
            with pytest.raises(TimeoutError):
                c.recv(16)  # no answer while the link is dead
            proxy.blackhole.clear()
            c.settimeout(10.0)
            assert c.recv(16) == b"ping"
    finally:
        proxy.close()
        upstream.close()


@pytest.mark.assets
def test_bench_faults_runs_the_smallest_scenarios_and_reports(
    assets: Callable[..., Path], tmp_path: Path
) -> None:
    assets("models/yolo11n_coco_320.onnx", "footage/intel_one-by-one-person-detection.mp4")
    out = tmp_path / "faults.json"
    cmd = [sys.executable, "-m", "engine.cli.main", "--log-level", "WARNING", "bench", "faults"]
    cmd += ["--quick", "--scenarios", "5,8", "--plant-leak", "--json", str(out)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text())
    s = result["summary"]
    rows = {x["number"]: x for x in result["scenarios"]}
    assert set(rows) == {"0", "5", "8"}  # the baseline always runs: the control
    ran = [x for x in rows.values() if x["status"] == "ran"]
    assert s["scenarios_run"] == len(ran) and not s["errors"]
    assert isinstance(s["alerts_lost"], int) and s["alerts_lost"] == sum(x["lost"] for x in ran)
    assert rows["0"]["status"] == "ran" and rows["0"]["rule_alerts"] > 0
    for x in ran:
        assert x["produced"] >= 1 and len(x["received_before"]) == len(x["received_after"]) == 1
        for c in x["consoles"]:
            assert c["received_expected"] + c["lost"] == c["expected"] <= x["produced"]
    # the site was named after a planted password: the scan must find it in alerts and journal
    assert s["secrets_leaked"] >= 1
    places = {p for x in ran for p in x["leak_places"]}
    assert "produced.jsonl" in places and "journal.db" in places
    assert any(p.endswith(".alerts.jsonl") for p in places)  # what a console received
    assert "hunter2" not in out.read_text()  # ... and the report does not repeat it
    assert "unreadable-source" in r.stdout and "summary: alerts_lost=" in r.stdout
