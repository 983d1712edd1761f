"""One source's pipeline on a cluster node: ingest, detect, track, rules, and delivery of every
frame's record to the hub.

The worker registers with the hub (epoch, frame to resume from), opens its source there (a
recorded file resumes at that frame; a live camera simply goes on), and runs the same per-source
pipeline as a single box (`SourcePipeline`) with its own detector. Frames never leave the node:
only each frame's record (its number and events) goes to the hub. Records are kept until the hub
acknowledges them and re-sent if an ack does not come (at-least-once; the hub accepts each frame
once). A worker whose hub answers FENCED was replaced by a newer incarnation and stops.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from engine.cluster.hub import FENCED
from engine.config import Config, FileSourceConfig
from engine.detect import build_detector
from engine.fusion import WorldTracker
from engine.rules import build_rules
from engine.runtime.metrics import RuntimeMetrics
from engine.runtime.pipeline import SharedWorld, SourcePipeline
from engine.runtime.positions import build_locators
from engine.sources import FileSource, LiveSource, Source
from engine.types import Event, HealthEvent

__all__ = ["HubLink", "SourceWorker", "WorkerStatus"]

log = logging.getLogger(__name__)

SEND_EVERY_S = 0.2  # records go out at least this often
SEND_MAX = 50  # records per batch
ACK_TIMEOUT_S = 3.0


class HubLink(Protocol):
    """The hub as a worker sees it (over Ray: each call waits for its answer)."""

    def register(self, source_id: str, node: str) -> tuple[int, int]: ...
    def submit(self, source_id: str, epoch: int,
               records: list[tuple[int, list[Event]]]) -> int: ...  # fmt: skip
    def health(self, source_id: str, epoch: int, event: HealthEvent) -> bool: ...
    def finish(self, source_id: str, epoch: int) -> None: ...


@dataclass
class WorkerStatus:
    """What a worker reports."""

    source_id: str
    node: str
    epoch: int
    start_frame: int
    frames: int
    acked: int
    done: bool
    fenced: bool
    error: str | None
    records_sent: int  # records in batches handed to the hub (re-sends count again)
    deliver_s: float  # seconds spent handing records to the hub and waiting for its acks


class SourceWorker:
    """Runs one source on this node until its stream ends, it is fenced, or `stop`.

    Args:
        cfg: the deployment's config.
        source_id: which source.
        hub: the hub.
        node: this node's id (for the hub's bookkeeping and health events).
    """

    def __init__(self, cfg: Config, source_id: str, hub: HubLink, node: str) -> None:
        self.cfg = cfg
        self.id = source_id
        self.node = node
        self._hub = hub
        self.epoch, self.start_frame = hub.register(source_id, node)
        self.frames = 0
        self.acked = self.start_frame - 1
        self.fenced = False
        self.error: str | None = None
        self.records_sent = 0
        self.deliver_s = 0.0
        self._done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lookout-worker-{source_id}",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def status(self) -> WorkerStatus:
        """Where this worker stands."""
        return WorkerStatus(self.id, self.node, self.epoch, self.start_frame, self.frames,
                            self.acked, self._done.is_set(), self.fenced, self.error,
                            self.records_sent, self.deliver_s)  # fmt: skip

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the stream here: open incidents end, the last records are delivered."""
        self._stop.set()
        self._thread.join(timeout_s)

    # --- inside -------------------------------------------------------------------------------

    def _on_health(self, event: HealthEvent) -> None:
        try:
            self._hub.health(self.id, self.epoch, event)
        except Exception:  # the hub is away: health events are advisory
            log.warning("source %s: health event %s not delivered", self.id, event.kind)

    def _open(self) -> Source:
        scfg = next(s for s in self.cfg.sources if s.id == self.id)
        src: Source
        if isinstance(scfg, FileSourceConfig):
            src = FileSource(scfg, start_frame=max(0, self.start_frame))
        else:
            src = LiveSource(scfg, self._on_health)
        src.open()
        return src

    def _pipeline(self) -> SourcePipeline:
        cfg = self.cfg
        detector = build_detector(cfg.detector)
        rules = build_rules(cfg, detector.class_names).get(self.id, [])
        fu = cfg.fusion
        world = SharedWorld(WorldTracker(fu.gate_m, fu.lost_s), threading.Lock())
        scfg = next(s for s in cfg.sources if s.id == self.id)
        snapshots = any(getattr(o, "snapshots", False) for o in cfg.outputs)
        return SourcePipeline(cfg, scfg, detector.detect_images, detector.class_names, rules,
                              build_locators(cfg).get(self.id), world,
                              RuntimeMetrics([self.id]), snapshots)  # fmt: skip

    def _run(self) -> None:
        outbox: list[tuple[int, list[Event]]] = []
        src: Source | None = None
        try:
            src = self._open()
            pipe = self._pipeline()
            # a file's frames are numbered by their position in it (dropped ones leave gaps, and
            # a moved source resumes exactly there); a live feed's count from where it was
            file = src if isinstance(src, FileSource) else None
            last_send = time.monotonic()
            while not self._stop.is_set() and not self.fenced:
                frame = src.read()
                if frame is None:
                    break
                _, events = pipe.process(frame)
                number = file.position if file is not None else self.start_frame + frame.seq
                outbox.append((number, events))
                self.frames += 1
                if len(outbox) >= SEND_MAX or time.monotonic() - last_send >= SEND_EVERY_S:
                    outbox = self._deliver(outbox)
                    last_send = time.monotonic()
            if not self.fenced:
                end = (outbox[-1][0] if outbox else self.acked) + 1
                if file is not None:  # after the file's last frame, also if it was dropped
                    end = max(end, self.start_frame + file.stats.decoded)
                outbox.append((end, pipe.close()))  # the stream's end: incidents end
                self._flush(outbox)
                if not self._stop.is_set():
                    self._hub.finish(self.id, self.epoch)
        except Exception as exc:  # reported; the actor's restart policy decides what follows
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("source %s: worker failed", self.id)
        finally:
            if src is not None:
                src.close()
            self._done.set()

    def _deliver(self, outbox: list[tuple[int, list[Event]]]) -> list[tuple[int, list[Event]]]:
        """Send what waits (up to SEND_MAX at a time); keep what is not acknowledged."""
        if not outbox:
            return outbox
        batch = outbox[:SEND_MAX]
        t0 = time.perf_counter()
        try:
            ack = self._hub.submit(self.id, self.epoch, batch)
        except Exception as exc:  # hub slow or away: keep everything, try again later
            log.warning("source %s: records not acknowledged yet: %s", self.id, exc)
            return outbox
        finally:
            self.deliver_s += time.perf_counter() - t0
            self.records_sent += len(batch)
        if ack == FENCED:
            self.fenced = True
            return []
        self.acked = max(self.acked, ack)
        return [r for r in outbox if r[0] > ack]

    def _flush(self, outbox: list[tuple[int, list[Event]]], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while outbox and not self.fenced and time.monotonic() < deadline:
            before = len(outbox)
            outbox = self._deliver(outbox)
            if len(outbox) == before:
                time.sleep(0.2)
