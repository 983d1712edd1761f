"""The data-loss scenarios of `lookout bench faults`, one function each (see bench/faults.py).

Each takes a `Case` (bench/faults_rig.py) and returns its figures; `tally` turns what the
engine produced and what each console received into the row's counts. A scenario that cannot
be set up here (mount refused) raises `Skipped` with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import random
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from bench.faults_rig import (
    CLIP,
    RULE_KIND,
    BlackholeProxy,
    Case,
    Console,
    fill,
    key,
    mount,
    read_jsonl,
    umount,
)
from tests.support.assets import assets_dir

__all__ = ["SCENARIOS", "Skipped", "tally"]

Keys = set[tuple[str, int]]


class Skipped(Exception):
    """The scenario cannot run on this machine; the message says why."""


# --- shared flow --------------------------------------------------------------------------


def subscriptions(kinds: tuple[str, ...]) -> int:
    """Subscriptions a console makes (a filtered one also subscribes to health)."""
    return len(kinds) + 1 if kinds else 1


def standard(
    case: Case,
    cfg: dict[str, Any] | None = None,
    before: tuple[tuple[str, tuple[str, ...]], ...] = (("before", ()),),
    after: tuple[tuple[str, tuple[str, ...]], ...] = (("after", ()),),
    during: Callable[[Case, Any], None] | None = None,
    wait_for: tuple[str, ...] = ("clip",),
    **config: Any,
) -> None:
    """Consoles before the engine, the engine, late consoles after its first alerts, an
    optional fault while it runs, then: its files done, consoles settled, SIGTERM."""
    for name, kinds in before:
        case.console(name, kinds)
    if cfg is None:
        wait = sum(subscriptions(k) for _, k in before)
        cfg = case.config(wait_subscribers=wait, **config)
    engine = case.start_engine(case.write(cfg))
    case.wait_produced(3, engine)
    for name, kinds in after:
        case.console(name, kinds, from_start=True)
    if during is not None:
        during(case, engine)
    case.wait_files_done(engine, wait_for)
    case.scrape("end")
    case.settle(lambda c: expected_keys(case, c))
    case.stop_engine(engine)
    case.stop_consoles()


def expected_keys(case: Case, c: Console) -> Keys:
    """What the engine produced that this console's filter routes to it."""
    return {key(a) for a in case.produced() if c.wants(a)}


def rule_alerts(alerts: list[dict[str, Any]], source: str) -> int:
    return sum(
        1
        for a in alerts
        if a.get("data", {}).get("kind") == RULE_KIND and source in a["data"].get("sensors", [])
    )


def tally(
    case: Case,
    expected: Callable[[Console], Keys] | None = None,
    reference: int | None = None,
) -> dict[str, Any]:
    """The row: produced, received per console, lost.

    Args:
        case: the finished case.
        expected: what each console must hold (default: all produced its filter routes to it).
        reference: rule alerts of the clip in the fault-free run; fewer produced here are lost
            to every console (the fault stopped the engine from producing them).
    """
    produced = case.produced()
    consoles: list[dict[str, Any]] = []
    for c in case.consoles:
        want = expected(c) if expected else expected_keys(case, c)
        got = c.received()
        routed = expected_keys(case, c)
        if routed - want - got:
            case.notes.append(f"{c.name}: {len(routed - want - got)} not durable, not expected")
        consoles.append(
            {
                "console": c.name,
                "filter": list(c.kinds),
                "joined": "after" if c.started_after else "before",
                "restarts": c.restarts,
                "expected": len(want),
                "received": len(routed & got),  # all it got of what was routed to it
                "received_expected": len(want & got),
                "lost": len(want - got),
                "lost_seqs": sorted(s for _, s in want - got)[:20],
            }
        )
    missing = 0
    if reference is not None:
        missing = max(0, reference - rule_alerts(produced, "clip"))
        if missing:
            case.notes.append(f"{missing} of {reference} rule alerts never produced")
    tracebacks, errors = case.engine_errors()
    leaks = case.leaks()
    lost = sum(c["lost"] for c in consoles) + missing * len(consoles)
    return {
        "produced": len(produced),
        "rule_alerts": rule_alerts(produced, "clip"),
        "missing_rule_alerts": missing,
        "received_before": [c["received"] for c in consoles if c["joined"] == "before"],
        "received_after": [c["received"] for c in consoles if c["joined"] == "after"],
        "lost": lost,
        "consoles": consoles,
        "engine_exit": case.exits,
        "engine_tracebacks": tracebacks,
        "engine_error_lines": errors,
        "secrets_leaked": len(leaks),
        "leaks": [dataclasses.asdict(leak) for leak in leaks[:10]],
        "leak_places": sorted({leak.place for leak in leaks}),
    }


def prefill(path: Path, rows: int, body_bytes: int = 300, kind: str = "dumping") -> float:
    """An earlier epoch of `rows` small alerts of `kind` in a journal; seconds it took."""
    from engine.alerts.journal import Journal, JournalRow

    t0 = time.monotonic()
    epoch = "0ld" + "0" * 13
    journal = Journal(path)
    journal.begin_epoch(epoch)
    pad = "x" * max(0, body_bytes - 200)
    topic = f"{kind}.bench.old."
    for start in range(1, rows + 1, 20_000):
        batch = []
        for seq in range(start, min(rows, start + 19_999) + 1):
            body = {
                "specversion": "1.0",
                "epoch": epoch,
                "seq": seq,
                "type": f"lookout.{kind}",
                "data": {"kind": kind, "sensors": ["old"], "pad": pad},
            }
            batch.append(JournalRow(epoch, seq, (topic,), json.dumps(body).encode(), None))
        journal.append(batch)
    journal.close()
    return time.monotonic() - t0


def journal_keys(path: Path) -> Keys:
    """(epoch, seq) of every row a journal holds (empty when it cannot be read)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute(
                "SELECT e.epoch, a.seq FROM alerts a JOIN epochs e ON e.ord = a.ord"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return set()
    return {(str(e), int(s)) for e, s in rows}


# --- the scenarios ------------------------------------------------------------------------


def baseline(case: Case) -> dict[str, Any]:
    """No fault: the control (and the reference count of rule alerts for 7 and 8)."""
    standard(case)
    return tally(case)


def full_disk_journal(case: Case) -> dict[str, Any]:
    """1. The journal on a 1 MB tmpfs that fills up once the first alerts are journaled."""
    disk = case.root / "jdisk"
    disk.mkdir()
    why = mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)])
    if why:
        raise Skipped(f"cannot mount a tmpfs: {why}")
    journal = disk / "journal.db"
    try:
        # the disk fills up while the engine runs: the first alerts are journaled, then none
        standard(case, journal=journal, during=lambda c, e: fill(disk))
        durable = journal_keys(journal)
    finally:
        umount(disk)
    produced = {key(a) for a in case.produced()}
    case.notes.append(f"journal held {len(durable & produced)} of {len(produced)}")

    def expected(c: Console) -> Keys:
        want = expected_keys(case, c)
        # a console joining later can only replay what was journaled: the rest is not durable
        return want & durable if c.started_after else want

    return {**tally(case, expected), "not_durable": len(produced - durable)}


def replay_blackholed(case: Case) -> dict[str, Any]:
    """2. The replay port unreachable (a blackholing TCP proxy) for longer than the client's
    timeout, while a console is killed and restarted and another one joins."""
    hold = case.settings.blackhole_s
    case.frames = max(case.frames, int((hold + 12) * 10))  # native 10 fps: alerts all along
    proxy = BlackholeProxy(case.replay_port)
    try:
        before = case.console("before", replay=proxy.endpoint)
        cfg = case.config(rate="native", wait_subscribers=1)
        engine = case.start_engine(case.write(cfg))
        case.wait_produced(5, engine)
        proxy.blackhole.set()
        case.restart_console(before)
        time.sleep(1.0)
        case.console("after", from_start=True, replay=proxy.endpoint)
        time.sleep(hold)
        proxy.blackhole.clear()
        case.notes.append(f"replay blackholed {hold:.0f} s")
        case.wait_files_done(engine, ["clip"])
        case.scrape("end")
        case.settle(lambda c: expected_keys(case, c))
        case.stop_engine(engine)
        case.stop_consoles()
    finally:
        proxy.close()
    return tally(case)


def filtered_big_journal(case: Case) -> dict[str, Any]:
    """3. A topic-filtered console on a big journal beside an unfiltered one."""
    rows = case.settings.prefill_rows
    took = prefill(case.journal, rows)
    case.notes.append(f"journal prefilled with {rows} rows")
    standard(
        case,
        before=(("before", ()), ("before-filtered", (RULE_KIND,))),
        after=(("after-filtered", (RULE_KIND,)),),
    )
    return {**tally(case), "prefill_rows": rows, "prefill_s": round(took, 2)}


def replay_flood(case: Case) -> dict[str, Any]:
    """4. A peer that floods the replay endpoint with requests and never reads the replies."""
    prefill(case.journal, 20_000, body_bytes=600)
    n = case.settings.flood_requests
    figures: dict[str, float] = {}
    ctx = zmq.Context()
    flood = ctx.socket(zmq.DEALER)
    flood.setsockopt(zmq.LINGER, 0)
    flood.setsockopt(zmq.RCVHWM, 1)
    flood.setsockopt(zmq.RCVBUF, 4096)

    def attack(c: Case, engine: Any) -> None:
        figures["rss_before_mb"] = c.rss(engine).get("VmRSS", 0.0)
        flood.connect(c.replay)
        req: dict[str, Any] = {
            "op": "replay",
            "epoch": None,
            "after": 0,
            "topics": [],
            "limit": 5000,
        }
        for _ in range(n):
            flood.send_multipart([b"", json.dumps(req).encode()])
        time.sleep(5.0)  # the engine works through them while it publishes
        figures["hwm_mb"] = c.rss(engine).get("VmHWM", 0.0)

    try:
        standard(case, during=attack)
    finally:
        flood.close(0)
        ctx.term()
    peak = max(_peak(case), figures.get("hwm_mb", 0.0))
    growth = max(0.0, peak - figures.get("rss_before_mb", peak))
    case.notes.append(f"{n} floods: RSS +{growth:.0f} MB")
    return {
        **tally(case),
        "flood_requests": n,
        "rss_before_mb": figures.get("rss_before_mb"),
        "rss_peak_mb": round(peak, 1),
        "rss_growth_mb": round(growth, 1),
    }


def _peak(case: Case) -> float:
    """The peak resident memory the engine's last metrics scrape showed (MB)."""
    peak = 0.0
    for path in case.root.glob("metrics-*.txt"):
        for line in path.read_text().splitlines():
            if line.startswith("lookout_process_resident_memory_bytes"):
                peak = max(peak, float(line.rpartition(" ")[2]) / 2**20)
    return peak


def damaged_journal(case: Case) -> dict[str, Any]:
    """5. A journal with garbage in its middle pages before the engine starts."""
    prefill(case.journal, 5000, body_bytes=1500)
    size = case.journal.stat().st_size
    rng = random.Random(5)
    at = (size // 2) // 4096 * 4096
    with case.journal.open("r+b") as fh:
        fh.seek(at)
        fh.write(rng.randbytes(min(256 * 1024, size - at)))
    case.notes.append(f"{min(256, (size - at) // 1024)} KB of garbage at {at // 1024} KB")
    standard(case)
    return tally(case)


def killed_with_open_incident(case: Case) -> dict[str, Any]:
    """6. `kill -9` of the engine with an incident open, restarted on the same journal."""
    case.console("before")
    first = case.config(rate="native", loop=True, wait_subscribers=1)
    engine = case.start_engine(case.write(first, "config-run1.yaml"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and engine.poll() is None:
        rules = [a for a in case.produced() if a.get("data", {}).get("kind") == RULE_KIND]
        if len(rules) >= 4 and rules[-1]["data"].get("phase") != "end":
            break
        time.sleep(0.2)
    engine.send_signal(signal.SIGKILL)
    engine.wait(10)
    case.exits.append(engine.returncode)
    case.notes.append("killed -9 with an incident open")
    engine = case.start_engine(case.write(case.config(), "config-run2.yaml"))
    case.wait_produced(len(case.produced()) + 3, engine)
    case.console("after", from_start=True)
    case.wait_files_done(engine, ["clip"])
    case.scrape("end")
    case.settle(lambda c: expected_keys(case, c))
    case.stop_engine(engine)
    case.stop_consoles()
    seen = case.produced() + read_jsonl(case.consoles[0].out)
    phases: dict[str, set[str]] = {}
    restarted = 0
    for a in seen:
        d = a.get("data", {})
        if d.get("kind") == RULE_KIND and d.get("event_id"):
            phases.setdefault(d["event_id"], set()).add(str(d.get("phase")))
            restarted += (d.get("attributes") or {}).get("reason") == "engine_restarted"
    never = sorted(e for e, p in phases.items() if "end" not in p)
    case.notes.append(f"{len(never)} incident(s) never ended")
    return {
        **tally(case),
        "incidents": len(phases),
        "incidents_never_ended": len(never),
        "ended_engine_restarted": restarted // 2 if restarted else 0,
    }


def read_only_clips(case: Case, reference: int) -> dict[str, Any]:
    """7a. The clips folder on a read-only bind mount."""
    ro = case.root / "ro"
    ro.mkdir()
    why = mount(["--bind", str(ro), str(ro)]) or mount(["-o", "remount,ro,bind", str(ro)])
    if why:
        umount(ro)
        raise Skipped(f"cannot make a read-only mount: {why}")
    try:
        standard(case, clips=ro / "clips")
    finally:
        umount(ro)
    return _with_clips(case, ro / "clips", reference)


def full_disk_clips(case: Case, reference: int) -> dict[str, Any]:
    """7b. Clips on a tmpfs that is full from the start."""
    disk = case.root / "cdisk"
    disk.mkdir()
    why = mount(["-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)])
    if why:
        raise Skipped(f"cannot mount a tmpfs: {why}")
    try:
        (disk / "clips").mkdir()
        fill(disk)
        standard(case, clips=disk / "clips")
        result = _with_clips(case, disk / "clips", reference)
    finally:
        umount(disk)
    return result


def _with_clips(case: Case, folder: Path, reference: int) -> dict[str, Any]:
    """The row, plus alerts that name a clip file that is missing or empty."""
    bad = named = 0
    for a in case.produced():
        clip = (a.get("data", {}).get("attributes") or {}).get("clip")
        name = clip.get("file") or clip.get("path") if isinstance(clip, dict) else clip
        if not name:
            continue
        named += 1
        path = Path(str(name))
        candidates = [path] if path.is_absolute() else [folder / path, folder / "clip" / path]
        if not any(p.is_file() and p.stat().st_size > 0 for p in candidates):
            bad += 1
    case.notes.append(f"{bad} of {named} clip references missing or empty")
    return {**tally(case, reference=reference), "clip_refs": named, "bad_clip_refs": bad}


def unreadable_source(case: Case, reference: int) -> dict[str, Any]:
    """8. Two file sources, one of them garbage bytes: the good one's alerts all arrive."""
    broken = case.root / "broken.mp4"
    broken.write_bytes(random.Random(8).randbytes(200_000))
    files = {"clip": case.settings.clip or assets_dir() / CLIP, "broken": broken}
    standard(case, wait_for=("clip",), files=files)
    return tally(case, reference=reference)


SCENARIOS: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
    "0": ("baseline", baseline),
    "1": ("journal-full-disk", full_disk_journal),
    "2": ("replay-blackholed", replay_blackholed),
    "3": ("filtered-big-journal", filtered_big_journal),
    "4": ("replay-flood", replay_flood),
    "5": ("damaged-journal", damaged_journal),
    "6": ("kill-9-open-incident", killed_with_open_incident),
    "7a": ("clips-read-only", read_only_clips),
    "7b": ("clips-full-disk", full_disk_clips),
    "8": ("unreadable-source", unreadable_source),
}
"""Scenario number -> (name, function); 7a, 7b and 8 also take the baseline's rule alerts."""
