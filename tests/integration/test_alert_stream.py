"""The alert stream end to end: journal, replay, gap-filling console, routing, encryption."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import LOOKOUT, free_port
from tests.support.alert_load import COMMAND as LOAD


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_lines(path: Path, n: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _lines(path) < n:
        assert time.monotonic() < deadline, f"{_lines(path)} of {n} lines after {timeout_s} s"
        time.sleep(0.05)


def test_100k_alerts_survive_a_console_killed_and_restarted_mid_stream(tmp_path: Path) -> None:
    n = 100_000
    endpoint, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "console.jsonl"
    console = [*LOOKOUT, "subscribe", endpoint, "--replay", replay, "--out", str(out), "--json"]
    pub = subprocess.Popen(
        [
            *LOAD,
            "publish",
            "--endpoint",
            endpoint,
            "--replay",
            replay,
            "--journal",
            str(tmp_path / "j.db"),
            "--count",
            str(n),
            "--hold",
            "120",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = subprocess.Popen(console, stdout=subprocess.DEVNULL)
    try:
        _wait_lines(out, 20_000, 60)
        first.kill()  # SIGKILL mid-stream: maybe mid-line
        first.wait(10)
        killed_at = _lines(out)
        time.sleep(1.0)  # alerts go on without it
        second = subprocess.Popen(console, stdout=subprocess.DEVNULL)
        try:
            _wait_lines(out, n, 180)
            time.sleep(1.5)  # nothing more (no duplicates) may arrive
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(10)
    finally:
        pub.send_signal(signal.SIGTERM)
        pub.wait(30)
    assert killed_at < n, "the console was killed after the stream ended: no test"
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    seqs = [a["seq"] for a in alerts]
    assert seqs == list(range(1, n + 1))  # every alert exactly once, in order
    assert len({a["epoch"] for a in alerts}) == 1


def _publisher(tmp_path: Path, **cfg: object) -> tuple[object, object, object, str, str]:
    import zmq

    from engine.alerts import AlertStamper, ZmqPublisher
    from engine.config import ZmqOutputConfig

    endpoint, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    stamper = AlertStamper("site")
    out = ZmqOutputConfig.model_validate(
        {"endpoint": endpoint, "replay_endpoint": replay, "journal": tmp_path / "j.db", **cfg}
    )
    pub = ZmqPublisher(out, ctx, stamper.epoch, "site")
    pub.start()
    return ctx, stamper, pub, endpoint, replay


def test_only_allow_listed_consoles_receive_anything(tmp_path: Path) -> None:
    import zmq

    from engine.alerts.client import AlertClient
    from engine.alerts.security import secure_client
    from tests.support.alert_load import load_event

    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    for name in ("engine", "police", "intruder"):
        run = subprocess.run(
            [*LOOKOUT, "keys", "new", name, "--dir", str(keys)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0, run.stderr
    assert oct((keys / "engine.key_secret").stat().st_mode)[-3:] == "600"
    allowed.mkdir()
    (allowed / "police.key").write_bytes((keys / "police.key").read_bytes())
    curve = {"server_secret_key": keys / "engine.key_secret", "allowed_clients": allowed}
    ctx, stamper, pub, endpoint, replay = _publisher(tmp_path, curve=curve)

    def console(name: str) -> AlertClient:
        secure = secure_client(keys / "engine.key", keys / f"{name}.key_secret")
        return AlertClient(endpoint, replay, after=(None, 0), replay_timeout_s=2.0, secure=secure)

    police, intruder = console("police"), console("intruder")
    plain = ctx.socket(zmq.SUB)  # type: ignore[attr-defined]
    plain.setsockopt(zmq.SUBSCRIBE, b"")
    plain.connect(endpoint)
    try:
        time.sleep(1.0)  # let the handshakes (or refusals) happen
        pub.send_many([stamper.stamp(load_event(k)) for k in range(1, 51)])  # type: ignore[attr-defined]
        got = []
        while (r := police.recv(3.0)) is not None and len(got) < 50:
            got.append(r.alert["seq"])
        assert got == list(range(1, 51))
        assert intruder.recv(2.0) is None and intruder.replayed == 0
        assert not plain.poll(500)
    finally:
        for c in (police, intruder):
            c.close()
        plain.close(0)
        pub.close()  # type: ignore[attr-defined]
        ctx.term()  # type: ignore[attr-defined]


def test_malformed_replay_requests_get_errors_and_disturb_nothing(tmp_path: Path) -> None:
    import zmq
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.support.alert_load import load_event

    ctx, stamper, pub, _, replay = _publisher(tmp_path)
    pub.send_many([stamper.stamp(load_event(k)) for k in range(1, 21)])  # type: ignore[attr-defined]
    dealer = ctx.socket(zmq.DEALER)  # type: ignore[attr-defined]
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(replay)

    def ask(*frames: bytes) -> list[bytes]:
        dealer.send_multipart([b"", *frames])
        assert dealer.poll(5000), "the replay endpoint stopped answering"
        return dealer.recv_multipart()[1:]

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=10,
    )
    requests = st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"op": st.just("replay")},
            optional={
                "epoch": json_values,
                "after": json_values,
                "topics": json_values,
                "limit": json_values,
            },
        ).map(lambda v: json.dumps(v).encode()),
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(requests, min_size=1, max_size=3))
    def fuzz(frames: list[bytes]) -> None:
        reply = ask(*frames)
        header = json.loads(reply[0])
        if not header["ok"]:
            assert len(reply) == 1 and header["error"]
        else:  # a request that happens to be valid gets a well-formed page
            assert len(reply) == 1 + 3 * header["count"]

    try:
        fuzz()
        good = ask(json.dumps({"op": "replay", "epoch": stamper.epoch, "after": 15}).encode())
        header = json.loads(good[0])
        assert header["ok"] and header["count"] == 5 and not header["more"]
        assert [json.loads(good[2 + 3 * k])["seq"] for k in range(5)] == [16, 17, 18, 19, 20]
        bad = json.loads(ask(b'{"op": "replay", "after": -1}')[0])
        assert not bad["ok"] and "after" in bad["error"]
    finally:
        dealer.close(0)
        pub.close()  # type: ignore[attr-defined]
        ctx.term()  # type: ignore[attr-defined]


def test_engine_alerts_route_to_agencies_validate_and_carry_snapshots(
    tmp_path: Path, assets: object
) -> None:
    import threading

    import cv2
    import numpy as np

    from engine.alerts.client import AlertClient
    from engine.alerts.schema import validate_message
    from engine.config import parse_config
    from engine.runtime import Runner

    clip = assets("footage/intel_one-by-one-person-detection.mp4")  # type: ignore[operator]
    model = assets("models/yolo11n_coco_320.onnx")  # type: ignore[operator]
    endpoint, replay = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    cfg = parse_config(f"""
site: station
sources: [{{id: gate, type: file, path: '{clip}', rate: max, max_frames: 400}}]
detector: {{model: '{model}', threads: 1}}
zones: [{{id: walkway, source: gate, polygon: [[0, 0], [5000, 0], [5000, 5000], [0, 5000]]}}]
rules: [{{id: people, type: zone_presence, zone: walkway, classes: [person]}}]
outputs:
  - {{type: zmq, endpoint: '{endpoint}', replay_endpoint: '{replay}', wait_subscribers: 3,
      journal: '{tmp_path / "j.db"}', heartbeat_s: 0.2}}
routing:
  - {{agency: police, zones: [walkway]}}
  - {{agency: city, kinds: [dumping]}}
""")
    everything = AlertClient(endpoint, replay)
    police = AlertClient(endpoint, replay, topics=["@police."])
    city = AlertClient(endpoint, replay, topics=["@city."])
    runner = Runner(cfg)
    thread = threading.Thread(target=runner.run, args=(threading.Event(),))
    thread.start()
    got: dict[str, list] = {"all": [], "police": [], "city": []}  # type: ignore[type-arg]
    try:
        clients = (("all", everything), ("police", police), ("city", city))
        idle = 0
        while thread.is_alive() or idle < 3:  # until the run ended and nothing more comes
            idle += 1
            for name, client in clients:
                while (r := client.recv(0.2)) is not None:
                    got[name].append(r)
                    idle = 0
        thread.join(60)
    finally:
        for c in (everything, police, city):
            c.close()
    assert len(got["all"]) >= 2 and not got["city"]
    assert [r.alert["seq"] for r in got["police"]] == [r.alert["seq"] for r in got["all"]]
    assert all(r.topic.startswith("@police.zone_presence.station.gate.") for r in got["police"])
    beat = everything.heartbeat
    assert beat is not None and beat["head_seq"] >= 1
    # the heartbeat summarises the runtime: per-source figures, queues, the process
    gate = beat["sources"]["gate"]
    assert gate["frames"] > 0 and gate["dropped"] == 0 and gate["latency_ms_p50"] > 0
    assert beat["process"]["rss_mb"] > 0 and "events" in beat["queues"]
    validate_message(
        {
            "specversion": "1.0",
            "type": "lookout.engine.heartbeat",
            "source": "lookout://station/@engine",
            "time": "2026-01-01T00:00:00Z",
            "dataschema": "lookout.heartbeat/v1",
            "data": beat,
        }
    )
    for r in got["all"]:
        validate_message(r.alert)
        assert r.alert["data"]["routes"] == ["police"]
        snap = r.alert["data"]["snapshot"]
        assert snap["bytes"] == len(r.snapshot)  # type: ignore[arg-type]
        image = cv2.imdecode(np.frombuffer(r.snapshot, np.uint8), cv2.IMREAD_COLOR)  # type: ignore[arg-type]
        assert image.shape[1] == min(640, 768)
