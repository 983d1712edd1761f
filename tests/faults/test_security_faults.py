"""Attacks on what must stay private: credentials in a camera URL (finding 10), consoles whose
key was revoked (finding 11) and the web console (finding 9), all against real processes and
sockets on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.conftest import LOOKOUT, free_port, make_yolox_model

PASSWORD = "hunter2@x/y:z"
TOKEN = "t0kenS3cretValue"


def _wait_for(path: Path, needle: str, proc: subprocess.Popen[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if needle in text:
            return text
        assert proc.poll() is None, f"the engine ended early ({proc.returncode})"
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared in {path}")


def test_a_camera_password_reaches_no_id_log_alert_or_journal(tmp_path: Path) -> None:
    """The quick form with `rtsp://admin:<password with @ / :>@127.0.0.1:PORT/live?access_token=`
    against a closed port: the engine reports the camera offline. Before, the source was named
    after the userinfo (`admin_hunter2_...`) in topics, alerts and the journal, and a password
    holding '@' or '/' was printed half-redacted."""
    from engine.alerts.zmq_publisher import default_journal

    model = make_yolox_model(tmp_path / "m.onnx")
    port = free_port()
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/live?access_token={TOKEN}&ch=1"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    alerts = tmp_path / "alerts.jsonl"
    proc = subprocess.Popen(
        [
            *LOOKOUT,
            "--log-level",
            "DEBUG",
            "run",
            "--source",
            url,
            "--model",
            str(model),
            "--class-names",
            "person,car",
            "--publish",
            endpoint,
            "--jsonl",
            str(alerts),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        _wait_for(alerts, "source.offline", proc, 60)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    journal = default_journal(endpoint)
    with sqlite3.connect(journal) as db:
        rows = "\n".join(repr(r) for t in ("alerts",) for r in db.execute(f"SELECT * FROM {t}"))
    seen = {
        "stdout": out,
        "stderr": err,
        "alerts": alerts.read_text(),
        "journal": rows,
        "journal file": journal.read_bytes().decode("latin-1"),
    }
    for where, text in seen.items():
        for secret in (PASSWORD, "hunter2", TOKEN):
            assert secret not in text, f"{secret!r} in the {where}"
    first = json.loads(alerts.read_text().splitlines()[0])
    want_id = f"127_0_0_1_{port}_live"
    assert first["data"]["kind"] == "source.offline"
    assert first["subject"] == want_id, first
    assert f".{want_id}." in first.get("topic", "") or want_id in out, first
    assert "rtsp://***@127.0.0.1" in err, err[-2000:]
