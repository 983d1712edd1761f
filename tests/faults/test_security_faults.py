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


def _keys(folder: Path, *names: str) -> None:
    for name in names:
        done = subprocess.run(
            [*LOOKOUT, "keys", "new", name, "--dir", str(folder)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr


def _engine_config(tmp_path: Path, endpoint: str, replay: str, curve: dict[str, str]) -> Path:
    """A looping clip, a tiny random detector that sees objects everywhere, and a presence rule
    that sends an update every 0.2 s: a steady stream of alerts."""
    import yaml

    from tests.conftest import make_video, moving_square_frames

    clip = make_video(tmp_path / "clip.mp4", moving_square_frames(40, 64, 64), fps=10)
    model = make_yolox_model(tmp_path / "m.onnx")
    cfg = {
        "site": "s",
        "sources": [{"id": "cam", "type": "file", "path": str(clip), "loop": True}],
        "detector": {"model": str(model), "class_names": ["a", "b"], "conf": 0.05},
        "zones": [{"id": "z", "source": "cam", "polygon": [[0, 0], [64, 0], [64, 64], [0, 64]]}],
        "rules": [
            {"type": "zone_presence", "id": "p", "zone": "z", "update_every_s": 0.2},
        ],
        "outputs": [
            {"type": "zmq", "endpoint": endpoint, "replay_endpoint": replay,
             "journal": str(tmp_path / "journal.db"), "heartbeat_s": 0.3, "curve": curve},
        ],
    }  # fmt: skip
    path = tmp_path / "engine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_revoked_console_key_stops_receiving_at_the_reload(tmp_path: Path) -> None:
    """Two consoles on a CURVE stream; bob's key leaves `allowed_clients` and the engine gets
    SIGHUP: bob receives nothing more (after a short bounded window), alice every alert. Before,
    ZAP checked keys only at the handshake and bob went on receiving until a restart."""
    import signal
    import threading

    from engine.alerts.client import AlertClient, Received
    from engine.alerts.security import secure_client

    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    _keys(keys, "engine", "alice", "bob")
    allowed.mkdir()
    for name in ("alice", "bob"):
        (allowed / f"{name}.key").write_bytes((keys / f"{name}.key").read_bytes())
    endpoint, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    curve = {"server_secret_key": str(keys / "engine.key_secret"), "allowed_clients": str(allowed)}
    config = _engine_config(tmp_path, endpoint, replay, curve)
    engine = subprocess.Popen(
        [*LOOKOUT, "run", str(config), "--quiet"], stderr=subprocess.PIPE, text=True
    )
    got: dict[str, list[Received]] = {"alice": [], "bob": []}
    done = threading.Event()

    def listen(name: str) -> None:
        secure = secure_client(keys / "engine.key", keys / f"{name}.key_secret")
        client = AlertClient(endpoint, replay, after=(None, 0), replay_timeout_s=2.0, secure=secure)
        try:
            while not done.is_set():
                if (r := client.recv(0.1)) is not None:
                    got[name].append(r)
        finally:
            client.close()

    threads = [threading.Thread(target=listen, args=(n,), daemon=True) for n in got]
    for t in threads:
        t.start()

    def wait(what: str, ok: object, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not ok():  # type: ignore[operator]
            assert engine.poll() is None, f"the engine ended: {engine.stderr.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def kinds(name: str) -> list[str]:
        return [r.alert["data"].get("kind", "") for r in list(got[name])]

    try:
        wait("both consoles receive", lambda: len(got["alice"]) >= 5 and len(got["bob"]) >= 5)
        (allowed / "bob.key").unlink()
        engine.send_signal(signal.SIGHUP)
        wait("alice sees the reload", lambda: "access.reloaded" in kinds("alice"))
        reloaded = next(r for r in got["alice"] if r.alert["data"]["kind"] == "access.reloaded")
        assert reloaded.alert["data"]["attributes"]["revoked"] == 1
        assert reloaded.alert["data"]["attributes"]["allowed"] == 1
        assert "key" not in json.dumps(reloaded.alert["data"]["reason"]).replace("keys", "")
        time.sleep(1.0)  # the bounded window: what was in flight at the reload
        bob_then, alice_then = len(got["bob"]), len(got["alice"])
        wait("alice keeps receiving", lambda: len(got["alice"]) >= alice_then + 10)
        assert len(got["bob"]) == bob_then, "a revoked console still receives"
        assert "access.reloaded" not in kinds("bob")
        with sqlite3.connect(tmp_path / "journal.db") as db:
            seqs = {s for (s,) in db.execute("SELECT seq FROM alerts")}
        wait("alice has every journaled alert",
             lambda: seqs <= {r.alert["seq"] for r in list(got["alice"])})  # fmt: skip
    finally:
        done.set()
        engine.terminate()
        _, err = engine.communicate(timeout=30)
        for t in threads:
            t.join(5)
    assert engine.returncode == 0, err[-3000:]
    assert "revoked" in err
