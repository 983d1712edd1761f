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
    """The quick form with `rtsp://admin:<password with @ / :>@127.0.0.1:PORT?access_token=`
    against a closed port: the engine reports the camera offline. Before, the source was named
    after the userinfo (`admin_hunter2_...`) in topics, alerts and the journal, and a password
    holding '@' or '/' was printed half-redacted."""
    from engine.alerts.zmq_publisher import default_journal

    model = make_yolox_model(tmp_path / "m.onnx")
    port = free_port()
    url = f"rtsp://admin:{PASSWORD}@127.0.0.1:{port}?access_token={TOKEN}&ch=1"
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
    want_id = f"127_0_0_1_{port}"  # no path: host and port
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
            {
                "type": "zmq",
                "endpoint": endpoint,
                "replay_endpoint": replay,
                "journal": str(tmp_path / "journal.db"),
                "heartbeat_s": 0.3,
                "curve": curve,
            },
        ],
    }
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
        wait(
            "alice has every journaled alert",
            lambda: seqs <= {r.alert["seq"] for r in list(got["alice"])},
        )
    finally:
        done.set()
        engine.terminate()
        _, err = engine.communicate(timeout=30)
        for t in threads:
            t.join(5)
    assert engine.returncode == 0, err[-3000:]
    assert "revoked" in err


WEB_PASSWORD = "correct horse battery"


def _password_file(tmp_path: Path) -> Path:
    done = subprocess.run(
        [*LOOKOUT, "console", "hash-password"],
        input=WEB_PASSWORD + "\n",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert WEB_PASSWORD not in done.stdout and done.stdout.startswith("scrypt$")
    path = tmp_path / "console.pass"
    path.write_text(done.stdout)
    return path


def _login(port: int, password: str, origin: str | None = None) -> dict[str, object]:
    from websockets.sync.client import connect

    origin = origin or f"http://127.0.0.1:{port}"
    with connect(f"ws://127.0.0.1:{port}/auth", origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"password": password}))
        return json.loads(ws.recv(10))  # type: ignore[no-any-return]


def _session(port: int, ticket: str) -> str:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/session?ticket={ticket}")
    resp = conn.getresponse()
    assert resp.status == 303 and resp.getheader("Location") == "/"
    cookie = resp.getheader("Set-Cookie") or ""
    for attr in ("HttpOnly", "SameSite=Strict", "Max-Age="):
        assert attr in cookie, cookie
    return cookie.split(";", 1)[0]


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.getheader("Location") or resp.read().decode(errors="replace")


def test_the_web_console_lets_in_only_a_logged_in_page_of_its_own(tmp_path: Path) -> None:
    """A real websocket client: no session, a forged Origin (another web page) and a forged
    Host (DNS rebinding) are refused; a wrong password counts towards the rate limit; with a
    login through /auth the same client receives the engine's alerts. Before, anyone who could
    reach the port read every alert with its snapshot."""
    import socket

    import zmq
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from engine.alerts import AlertStamper, ZmqPublisher
    from engine.config import ZmqOutputConfig
    from tests.support.alert_load import load_event

    endpoint, replay, port = (
        f"tcp://127.0.0.1:{free_port()}",
        f"tcp://127.0.0.1:{free_port()}",
        free_port(),
    )
    ctx = zmq.Context()
    stamper = AlertStamper("station")
    cfg = ZmqOutputConfig(
        endpoint=endpoint, replay_endpoint=replay, journal=tmp_path / "j.db", wait_subscribers=1
    )
    pub = ZmqPublisher(cfg, ctx, stamper.epoch, "station")
    pub.start()
    console = subprocess.Popen(
        [
            *LOOKOUT,
            "console",
            "--web",
            endpoint,
            "--replay",
            replay,
            "--port",
            str(port),
            "--password-file",
            str(_password_file(tmp_path)),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    own = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, where = _get(port, "/")
                break
            except OSError:
                assert time.monotonic() < deadline and console.poll() is None, "no console"
                time.sleep(0.2)
        assert (status, where) == (303, "/login")  # no page without a session
        status, _ = _get(port, "/", {"Host": f"evil.example:{port}"})
        assert status == 421

        def refused(
            uri: str, origin: str, cookie: str | None = None, host: str | None = None
        ) -> int:
            headers = {"Cookie": cookie} if cookie else {}
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            target = uri if host is None else uri.replace(f"127.0.0.1:{port}", host)
            try:
                with connect(
                    target,
                    origin=origin,
                    additional_headers=headers,
                    sock=sock,  # type: ignore[arg-type]
                    open_timeout=10,
                ):
                    return 0
            except InvalidStatus as exc:
                return exc.response.status_code

        ws_uri = f"ws://127.0.0.1:{port}/ws"
        assert refused(ws_uri, own) == 403  # no session
        assert refused(f"ws://127.0.0.1:{port}/auth", "http://evil.example") == 403
        assert _login(port, "wrong password")["ok"] is False
        reply = _login(port, WEB_PASSWORD)
        assert reply["ok"] is True
        cookie = _session(port, str(reply["ticket"]))
        assert _get(port, f"/session?ticket={reply['ticket']}")[1] == "/login"  # used up
        assert refused(ws_uri, "http://evil.example", cookie) == 403  # another page
        assert refused(ws_uri, "null", cookie) == 403
        evil = f"evil.example:{port}"  # DNS rebinding: the page's own name, pointed at us
        assert refused(ws_uri, f"http://{evil}", cookie, host=evil) == 421
        assert _get(port, "/", {"Cookie": cookie})[0] == 200

        with connect(
            ws_uri,
            origin=own,
            additional_headers={"Cookie": cookie},  # type: ignore[arg-type]
            open_timeout=10,
        ) as ws:
            assert pub.wait_for_subscribers()  # the console's relay subscribed
            time.sleep(0.3)
            alert = stamper.stamp(load_event(1))
            pub.send_many([alert])
            got = json.loads(ws.recv(10))
            assert got["alert"]["seq"] == alert.seq and got["alert"]["epoch"] == alert.epoch

        for _ in range(5):  # the rate limit: then even the right password waits
            _login(port, "still wrong")
        late = _login(port, WEB_PASSWORD)
        assert late["ok"] is False and "too many" in str(late["error"])
    finally:
        console.terminate()
        _, err = console.communicate(timeout=10)
        pub.close()
        ctx.term()
    assert console.returncode == 0, err
    assert WEB_PASSWORD not in err and "failed web console login" in err


def test_the_web_console_refuses_to_serve_off_loopback_without_tls(tmp_path: Path) -> None:
    """Before, `--host 0.0.0.0` served alerts and snapshots in clear to the network, silently."""
    from engine.console.auth import hash_password

    password_file = tmp_path / "console.pass"
    password_file.write_text(hash_password(WEB_PASSWORD) + "\n")
    done = subprocess.run(
        [
            *LOOKOUT,
            "console",
            "--web",
            "tcp://127.0.0.1:9",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--password-file",
            str(password_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "TLS" in done.stderr and "Traceback" not in done.stderr, done.stderr
    nopass = subprocess.run(
        [*LOOKOUT, "console", "--web", "tcp://127.0.0.1:9", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nopass.returncode != 0 and "--password-file" in nopass.stderr, nopass.stderr


def test_many_logins_sent_at_once_cannot_pass_the_rate_limit(tmp_path: Path) -> None:
    """An attacker opens 24 /auth WebSockets and sends a guess on each at the same moment.
    Before, every guess passed the limiter's check while the others' hashes were still being
    checked (off the event loop), so all 24 were tried; the limit is 5 per client."""
    import contextlib

    from websockets.sync.client import connect

    from engine.console import WebConsole
    from engine.console.auth import hash_password
    from engine.console.web import WebAccess

    console = WebConsole(
        f"tcp://127.0.0.1:{free_port()}",
        port=0,
        access=WebAccess(password_hash=hash_password(WEB_PASSWORD)),
    )
    console.start()
    port = console.port
    own = f"http://127.0.0.1:{port}"
    tries = 24
    replies: list[dict[str, object]] = []
    try:
        with contextlib.ExitStack() as stack:
            sockets = [
                stack.enter_context(
                    connect(f"ws://127.0.0.1:{port}/auth", origin=own, open_timeout=30)  # type: ignore[arg-type]
                )
                for _ in range(tries)
            ]
            for ws in sockets:  # all sent before any answer can come
                ws.send(json.dumps({"password": "a wrong guess"}))
            replies = [json.loads(ws.recv(60)) for ws in sockets]
    finally:
        console.close()
    tried = [r for r in replies if r.get("error") == "wrong password"]
    waited = [r for r in replies if "too many" in str(r.get("error"))]
    assert len(tried) == 5 and len(waited) == tries - 5, replies
