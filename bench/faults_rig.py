"""The rig of `lookout bench faults`: a real engine process, real consoles, real faults.

One `Case` is one scenario's folder, ports and processes:
- the engine runs as `python -m engine.cli.main run CONFIG` with a JSON-lines sink on a healthy
  disk beside its ZeroMQ output: that file is the ground truth of what the engine produced (the
  sink comes after the ZeroMQ output, so an alert in it was handed to the journal and the socket
  first, and it is written even when the journal fails);
- consoles are `lookout subscribe ENDPOINT --replay REPLAY --out FILE --json` processes, started
  before the engine (the engine waits for their subscriptions) or after it (`--from-start`:
  catching up from the journal);
- every config holds live cameras whose URLs carry credentials (a closed port: they never
  connect, and they keep the engine running after its files end, so the consoles can catch up
  before it is stopped with SIGTERM);
- the secret scan reads every log line, alert, journal row and metrics scrape of the case.

Also here: the TCP proxy that blackholes the replay port, and tmpfs / read-only mounts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.assets import assets_dir
from tests.support.rtsp_process import free_port

__all__ = [
    "CLIP",
    "MODEL",
    "SECRETS",
    "BlackholeProxy",
    "Case",
    "Console",
    "Leak",
    "Settings",
    "mount",
    "scan_text",
    "umount",
]

LOOKOUT = [sys.executable, "-m", "engine.cli.main"]
CLIP = "footage/intel_one-by-one-person-detection.mp4"
CLIP_SKIP = 60  # its first people walk in at frame 63
MODEL = "models/yolo11n_coco_320.onnx"
WHOLE = [[0, 0], [5000, 0], [5000, 5000], [0, 5000]]
RULE_KIND = "zone_presence"


@dataclass(frozen=True, slots=True)
class Secret:
    """A credential planted in every config; `needles` are what the scan looks for: each run
    of 4+ letters and digits, so a redaction that cuts a password at its `@` or `/` and prints
    the rest is still caught, whatever the encoding (raw, %-quoted, JSON)."""

    label: str
    text: str

    @property
    def needles(self) -> tuple[str, ...]:
        return tuple(p for p in re.findall(r"[A-Za-z0-9]+", self.text) if len(p) >= 4)


SECRETS = (
    Secret("cam1 password", "hunter2"),
    Secret("cam1 access_token", "s3cr3t-tok"),
    Secret("cam2 password (@ and /)", "n0tw@h0me/2day!"),
    Secret("cam2 apikey", "AKIAzq8kk3y"),
    Secret("cam3 password (@@)", "P@ss@W0rdXy"),
    Secret("cam3 sig", "sg7f00dbeef"),
)


def camera_urls(port: int) -> list[str]:
    """Live cameras with credentials on a closed port of 127.0.0.1 (they never connect)."""
    return [
        f"rtsp://admin:hunter2@127.0.0.1:{port}/stream?access_token=s3cr3t-tok",
        f"rtsp://ops:n0tw@h0me/2day!@127.0.0.1:{port}/live?apikey=AKIAzq8kk3y",
        f"rtsp://viewer:P%40ss%40W0rdXy@127.0.0.1:{port}/cam?channel=1&sig=sg7f00dbeef",
    ]


@dataclass(frozen=True, slots=True)
class Leak:
    """A line where a planted secret appeared: where, which line, which secret, and the line
    with the secret replaced by its label (so the report does not leak it again)."""

    place: str
    line: int
    secret: str
    excerpt: str


def scan_text(text: str, place: str, secrets: Iterable[Secret] = SECRETS) -> list[Leak]:
    """Every line of `text` holding a needle of a planted secret."""
    secrets = tuple(secrets)
    leaks = []
    for k, line in enumerate(text.splitlines(), 1):
        hits = [s for s in secrets if any(n in line for n in s.needles)]
        if not hits:
            continue
        shown = line
        for s in hits:
            for n in s.needles:
                shown = shown.replace(n, f"<{s.label}>")
        at = max(0, shown.find("<") - 80)  # around the first hit
        leaks.append(Leak(place, k, hits[0].label, shown[at : at + 200]))
    return leaks


def scan_journal(path: Path, place: str, secrets: Iterable[Secret] = SECRETS) -> list[Leak]:
    """Every journal row (topics and body) and epoch; a file SQLite cannot read is scanned as
    raw bytes instead."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT topics, body FROM alerts").fetchall()
            epochs = db.execute("SELECT epoch FROM epochs").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return scan_text(path.read_bytes().decode("latin-1"), f"{place} (raw)", secrets)
    text = "\n".join(
        [f"{t} {bytes(b).decode('utf-8', 'replace')}" for t, b in rows] + [e for (e,) in epochs]
    )
    return scan_text(text, place, secrets)


@dataclass
class Settings:
    """What every scenario shares."""

    frames: int = 80  # frames of the clip per engine run
    prefill_rows: int = 200_000  # the big journal of scenario 3
    flood_requests: int = 100  # scenario 4
    blackhole_s: float = 15.0  # scenario 2
    settle_s: float = 20.0  # how long consoles may take to catch up after the files end
    plant_leak: bool = False  # put a planted secret where it must be found (tests the scan)
    verbose: bool = True
    clip: Path | None = None  # the clip the scenarios play (`make_clip`)


def make_clip(dst: Path, count: int, skip: int = CLIP_SKIP) -> Path:
    """`count` frames of the shared clip from frame `skip` on, as H.264 at its 10 fps: people
    from the first frame, so even a short run raises alerts."""
    import av

    with av.open(str(assets_dir() / CLIP)) as src, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        for k, frame in enumerate(src.decode(video=0)):
            if k < skip:
                continue
            if k == skip:
                stream.width, stream.height = frame.width, frame.height
                stream.pix_fmt = "yuv420p"
            if k >= skip + count:
                break
            img = frame.to_ndarray(format="bgr24")
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def mount(args: list[str]) -> str | None:
    """Run mount(8); None on success, else why it failed."""
    if os.geteuid() != 0:
        return "mounting needs root"
    try:
        done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"mount failed: {exc}"
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


def umount(path: Path) -> None:
    """Lazy unmount (a process may still hold a file there)."""
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


def fill(folder: Path) -> None:
    """Write a filler file until the disk under `folder` is full."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()


@dataclass
class Console:
    """A `lookout subscribe` process and its output file."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    kinds: tuple[str, ...]
    started_after: bool
    replay: str | None = None  # the replay endpoint it uses (None: the engine's own)
    restarts: int = 0

    def wants(self, alert: dict[str, Any]) -> bool:
        """Whether this console's filter routes `alert` to it."""
        return not self.kinds or alert.get("data", {}).get("kind") in self.kinds

    def received(self) -> set[tuple[str, int]]:
        return {key(a) for a in read_jsonl(self.out)}


def key(alert: dict[str, Any]) -> tuple[str, int]:
    return str(alert.get("epoch")), int(alert.get("seq", 0))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (a torn or foreign line is skipped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            obj = json.loads(line)
            if isinstance(obj, dict) and "seq" in obj:
                out.append(obj)
    return out


@dataclass
class Case:
    """One scenario: its folder, ports, config, engine runs, consoles and what they saw."""

    name: str
    root: Path
    settings: Settings
    pub_port: int = field(default_factory=free_port)
    replay_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    camera_port: int = field(default_factory=free_port)
    consoles: list[Console] = field(default_factory=list)
    engines: list[subprocess.Popen[bytes]] = field(default_factory=list)
    exits: list[int | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    frames: int = 0  # frames per file source (0: the settings')

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.frames = self.frames or self.settings.frames
        self.journal = self.root / "journal.db"
        self.sink = self.root / "produced.jsonl"

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.pub_port}"

    @property
    def replay(self) -> str:
        return f"tcp://127.0.0.1:{self.replay_port}"

    def log(self, text: str) -> None:
        if self.settings.verbose:
            print(f"  [{self.name}] {text}", flush=True)

    # --- config ---------------------------------------------------------------------------

    def config(
        self,
        files: dict[str, Path] | None = None,
        rate: str = "max",
        loop: bool = False,
        journal: Path | None = None,
        clips: Path | None = None,
        wait_subscribers: int = 0,
    ) -> dict[str, Any]:
        """The scenario's engine config: file sources (the shared clip by default) with a
        whole-frame zone_presence rule each, the credentialed cameras, the ZeroMQ output with
        its journal and replay endpoint, the JSON-lines sink, metrics."""
        clip = self.settings.clip or assets_dir() / CLIP
        files = files if files is not None else {"clip": clip}
        sources: list[dict[str, Any]] = []
        for sid, path in files.items():
            src = {"id": sid, "type": "file", "path": str(path), "rate": rate, "loop": loop}
            if not loop:
                src["max_frames"] = self.frames
            sources.append(src)
        for k, url in enumerate(camera_urls(self.camera_port), 1):
            sources.append({"id": f"cam{k}", "type": "rtsp", "url": url, "open_timeout_s": 1.0})
        site = "hunter2" if self.settings.plant_leak else "bench"
        cfg: dict[str, Any] = {
            "site": site,
            "sources": sources,
            "detector": {"model": str(assets_dir() / MODEL), "threads": 1, "batch_max": 1},
            "zones": [{"id": f"z-{s}", "source": s, "polygon": WHOLE} for s in files],
            "rules": [
                {
                    "id": f"r-{s}",
                    "type": RULE_KIND,
                    "zone": f"z-{s}",
                    "classes": [],
                    "update_every_s": 0.1,
                    "clear_after_s": 0.5,
                }
                for s in files
            ],
            "outputs": [
                {
                    "type": "zmq",
                    "endpoint": self.endpoint,
                    "replay_endpoint": self.replay,
                    "journal": str(journal or self.journal),
                    "heartbeat_s": 1.0,
                    "wait_subscribers": wait_subscribers,
                    "wait_timeout_s": 20.0,
                },
                {"type": "jsonl", "path": str(self.sink)},
            ],
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "tracking": {"enabled": False},  # every detection counts from its first frame
        }
        if clips is not None:
            cfg["clips"] = {"dir": str(clips), "pre_s": 1.0, "post_s": 1.0, "fps": 5.0}
        return cfg

    def write(self, cfg: dict[str, Any], name: str = "config.yaml") -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    # --- processes ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {**os.environ, "LOOKOUT_STATE_DIR": str(self.root / "state")}

    def start_engine(self, config: Path) -> subprocess.Popen[bytes]:
        """`lookout run CONFIG` with its stdout and stderr in the case folder."""
        n = len(self.engines) + 1
        out = (self.root / f"engine{n}.stdout").open("wb")
        err = (self.root / f"engine{n}.stderr").open("wb")
        cmd = [*LOOKOUT, "run", str(config), "--no-reload"]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=self._env())
        out.close()
        err.close()
        self.engines.append(proc)
        return proc

    def console(
        self,
        name: str,
        kinds: tuple[str, ...] = (),
        from_start: bool = False,
        replay: str | None = None,
    ) -> Console:
        """Start a console; `from_start` for one that joins after the engine."""
        out = self.root / f"{name}.alerts.jsonl"
        proc = self._spawn_console(name, out, kinds, from_start, replay)
        c = Console(name, proc, out, kinds, from_start, replay)
        self.consoles.append(c)
        return c

    def _spawn_console(
        self, name: str, out: Path, kinds: tuple[str, ...], from_start: bool, replay: str | None
    ) -> subprocess.Popen[bytes]:
        cmd = [
            *LOOKOUT,
            "subscribe",
            self.endpoint,
            "--replay",
            replay or self.replay,
            "--out",
            str(out),
            "--json",
        ]
        for k in kinds:
            cmd += ["--kind", k]
        if from_start:
            cmd.append("--from-start")
        err = (self.root / f"{name}.stderr").open("ab")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=self._env())
        err.close()
        return proc

    def restart_console(self, c: Console, kill: bool = True) -> None:
        """Kill a console (SIGKILL) and start it again on its output file (it resumes)."""
        if kill:
            c.proc.kill()
            c.proc.wait(10)
        c.restarts += 1
        c.proc = self._spawn_console(c.name, c.out, c.kinds, False, c.replay)

    # --- waiting --------------------------------------------------------------------------

    def produced(self) -> list[dict[str, Any]]:
        return read_jsonl(self.sink)

    def wait_produced(self, n: int, engine: subprocess.Popen[bytes], timeout_s: float = 90) -> int:
        """Wait until the engine produced `n` alerts (or ended); how many it has."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and engine.poll() is None:
            have = len(self.produced())
            if have >= n:
                return have
            time.sleep(0.2)
        return len(self.produced())

    def scrape(self, tag: str) -> dict[str, float]:
        """Scrape /metrics into the case folder (scanned later); the samples by name+labels."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read().decode("utf-8", "replace")
        except OSError:
            return {}
        (self.root / f"metrics-{tag}.txt").write_text(text)
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    samples[name] = float(value)
        return samples

    def wait_files_done(
        self, engine: subprocess.Popen[bytes], sources: Iterable[str], timeout_s: float = 240
    ) -> None:
        """Wait until the file sources processed their frames: each reached `frames`, or their
        counts stood still for a while (a source that fails, a stage that crash-loops)."""
        sources = tuple(sources)
        deadline = time.monotonic() + timeout_s
        last: tuple[float, ...] | None = None
        still_since = time.monotonic()
        n = 0
        while time.monotonic() < deadline and engine.poll() is None:
            samples = self.scrape(f"run{len(self.engines)}-{n % 2}")
            n += 1
            if samples:
                now = tuple(
                    samples.get(f'lookout_frames_processed_total{{source="{s}"}}', 0.0)
                    for s in sources
                )
                if all(v >= self.frames for v in now):
                    return
                if now != last:
                    last, still_since = now, time.monotonic()
                elif time.monotonic() - still_since > (4.0 if any(now) else 8.0):
                    self.notes.append(f"frames stood at {list(map(int, now))}")
                    return
            time.sleep(0.5)

    def settle(self, expected: Callable[[Console], set[tuple[str, int]]]) -> None:
        """Wait until every console holds what it is expected to (or `settle_s` passed)."""
        deadline = time.monotonic() + self.settings.settle_s
        time.sleep(2.5)  # two heartbeats: consoles that missed the tail ask for it
        while time.monotonic() < deadline:
            if all(expected(c) <= c.received() for c in self.consoles):
                return
            time.sleep(0.5)

    def stop_engine(self, engine: subprocess.Popen[bytes]) -> int | None:
        """SIGTERM, then SIGKILL after 30 s; the exit status (None: killed by us)."""
        if engine.poll() is None:
            engine.send_signal(signal.SIGTERM)
            try:
                engine.wait(30)
            except subprocess.TimeoutExpired:
                engine.kill()
                engine.wait(10)
                self.notes.append("engine ignored SIGTERM for 30 s")
                self.exits.append(None)
                return None
        self.exits.append(engine.returncode)
        return engine.returncode

    def stop_consoles(self) -> None:
        time.sleep(1.0)  # the last alerts of a shutdown, live
        for c in self.consoles:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        for c in self.consoles:
            try:
                c.proc.wait(15)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait(5)

    def close(self) -> None:
        """Nothing of this case keeps running (also after an exception)."""
        for p in [*self.engines, *(c.proc for c in self.consoles)]:
            if p.poll() is None:
                p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(10)

    def rss(self, engine: subprocess.Popen[bytes]) -> dict[str, float]:
        """The engine's resident memory now and at its peak (MB), from /proc."""
        out = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{engine.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    out[name] = int(value.split()[0]) / 1024
        return out

    # --- what came out --------------------------------------------------------------------

    def logs(self) -> Iterator[tuple[str, str]]:
        """(place, text) of every log and alert file of the case."""
        for path in sorted(self.root.iterdir()):
            if path.is_file() and path.suffix in (".stdout", ".stderr", ".jsonl", ".txt"):
                yield path.name, path.read_bytes().decode("utf-8", "replace")

    def leaks(self) -> list[Leak]:
        """The secret scan: logs, alerts received and produced, metrics, journal rows."""
        found = [leak for place, text in self.logs() for leak in scan_text(text, place)]
        for db in sorted(self.root.rglob("*.db*")):
            if db.is_file() and not db.name.endswith(("-wal", "-shm")):
                found += scan_journal(db, db.name)
        return found

    def engine_errors(self) -> tuple[int, int]:
        """(tracebacks, ERROR/CRITICAL lines) in the engine's logs."""
        tb = errors = 0
        for path in self.root.glob("engine*.stderr"):
            text = path.read_text(errors="replace")
            tb += text.count("Traceback (most recent call last)")
            errors += sum(
                1 for line in text.splitlines() if " ERROR " in line or " CRITICAL " in line
            )
        return tb, errors


class BlackholeProxy:
    """A TCP proxy on 127.0.0.1 in front of `upstream_port`. While `blackhole` is set it
    accepts connections but moves no byte either way (requests vanish, as behind a dead link);
    when cleared, what was held flows again.

    Args:
        upstream_port: where connections go.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.blackhole = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, name="blackhole-proxy", daemon=True)
        self._accept.start()

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._pipe, args=(client,), name="proxy-conn", daemon=True)
            self._threads.append(t)
            t.start()

    def _pipe(self, client: socket.socket) -> None:
        while self.blackhole.is_set() and not self._stop.is_set():
            time.sleep(0.05)  # connected, but nothing behind it
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()
            return
        pair = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                if self.blackhole.is_set():
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select(list(pair), [], [], 0.1)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    pair[s].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        """Stop accepting and end every connection."""
        self._stop.set()
        self._listener.close()
        self._accept.join(5)
        for t in self._threads:
            t.join(5)
