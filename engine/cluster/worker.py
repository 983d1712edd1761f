"""One source's pipeline on a cluster node: ingest, detect, track, rules, and delivery of every
frame's record to the hub.

The worker registers with the hub (epoch, frame to resume from), opens its source there (a
recorded file resumes at that frame; a live camera simply goes on), and runs the same source loop
and pipeline as a single box (`engine.runtime.source_loop`, `engine.pipeline.build_pipeline`),
failed stages restarted by the same policy, with its own detector. Frames never leave the node:
only each frame's record (its number and events) goes to the hub. Records are kept until the hub
acknowledges them and re-sent if an ack does not come (at-least-once; the hub accepts each frame
once). A worker whose hub answers FENCED was replaced by a newer incarnation and stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.cluster.hub import FENCED
from engine.config import Config
from engine.detect import OnnxDetector, build_detector
from engine.pipeline import SharedWorld, SourcePipeline, build_pipeline, new_world
from engine.runtime.source_loop import Emitted, SourceLoop
from engine.runtime.supervisor import RestartPolicy
from engine.sources import FileSource, Source, build_source
from engine.types import Event, HealthEvent

__all__ = ["HubLink", "SourceWorker", "WorkerStatus"]

log = logging.getLogger(__name__)

SEND_EVERY_S = 0.2  # records go out at least this often
SEND_MAX = 50  # records per batch
ACK_TIMEOUT_S = 3.0
FLUSH_S = 30.0  # at the end, records still go out for this long
MAX_OUTBOX = 5000  # records waiting for the hub before a warning (kept: nothing is dropped)
MAX_HEALTH = 100  # health events waiting for the hub (the oldest go)
CRASH_BACKOFF_S = 2.0


class HubLink(Protocol):
    """The hub as a worker sees it (over Ray: each call waits for its answer)."""

    def register(self, source_id: str, node: str) -> tuple[int, int]: ...
    def submit(self, source_id: str, epoch: int, records: list[tuple[int, list[Event]]]) -> int: ...
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

    Two threads, started by `start`: the source loop (read, detect, track, rules) puts each
    frame's record in an outbox; the delivery thread hands the outbox to the hub every
    SEND_EVERY_S and keeps what is not acknowledged, so records go out also while the camera is
    away, and a slow hub never stalls capture. Health events take the same thread. A failed
    stage is restarted as on a single box (the config's `supervisor` policy; the incidents it
    had open end with the next record); when the policy gives up, it is handed to `on_crash`,
    which lets Ray restart the actor (on this node or another); it resumes where the hub's
    records end.

    Args:
        cfg: the deployment's config.
        source_id: which source.
        hub: the hub.
        node: this node's id (for the hub's bookkeeping and health events).
        on_crash: called when the restart policy gave up on a failed stage (the actor ends its
            process).
    """

    def __init__(
        self,
        cfg: Config,
        source_id: str,
        hub: HubLink,
        node: str,
        on_crash: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.id = source_id
        self.node = node
        self._hub = hub
        self._on_crash = on_crash
        self.epoch, self.start_frame = hub.register(source_id, node)
        self.frames = 0
        self.acked = self.start_frame - 1
        self.fenced = False
        self.error: str | None = None
        self.records_sent = 0
        self.deliver_s = 0.0
        self._outbox: list[tuple[int, list[Event]]] = []
        self._health: list[HealthEvent] = []
        self._lock = threading.Lock()
        self._src: Source | None = None
        self._carry: list[Event] = []  # events without a frame: they go with the next record
        self._last = self.acked  # the position of the last frame read
        self._crashed = False
        self._done = threading.Event()  # the frame loop ended (its last record is queued)
        self._delivered = threading.Event()  # ... and everything went to the hub
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lookout-worker-{source_id}", daemon=True
        )
        self._sender = threading.Thread(
            target=self._send_loop, name=f"lookout-send-{source_id}", daemon=True
        )

    def start(self) -> None:
        """Start the source loop and the delivery thread."""
        self._thread.start()
        self._sender.start()

    def status(self) -> WorkerStatus:
        """Where this worker stands."""
        return WorkerStatus(
            self.id,
            self.node,
            self.epoch,
            self.start_frame,
            self.frames,
            self.acked,
            self._delivered.is_set(),
            self.fenced,
            self.error,
            self.records_sent,
            self.deliver_s,
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the stream here: open incidents end, the last records are delivered."""
        self._stop.set()
        src = self._src
        if src is not None:
            src.close()  # a read waiting for an absent camera returns now
        for thread in (self._thread, self._sender):
            if thread.ident is not None:  # started
                thread.join(timeout_s)

    # --- the frame loop -------------------------------------------------------------------------

    def _on_health(self, event: HealthEvent) -> None:
        """From the capture threads: queued, never waits for the hub."""
        with self._lock:
            self._health.append(event)
            del self._health[:-MAX_HEALTH]

    def _pipeline(self, detector: OnnxDetector, world: SharedWorld) -> SourcePipeline:
        return build_pipeline(
            self.cfg,
            self.id,
            detector.detect_images,
            detector.class_names,
            world,
            on_health=self._on_health,
        )

    def _queue(self, record: tuple[int, list[Event]]) -> None:
        with self._lock:
            self._outbox.append(record)
            backlog = len(self._outbox)
        if backlog > MAX_OUTBOX and backlog % MAX_OUTBOX == 1:  # the hub has been away long
            log.warning("source %s: %d records wait for the hub", self.id, backlog)

    def _emit(self, out: Emitted) -> None:
        """A frame's record: its position in the stream (a file's frames are numbered by their
        position in it, so dropped ones leave gaps and a moved source resumes exactly there; a
        live feed's count on from where it was) and its events. Events without a frame (a
        restart ended incidents) go with the next record."""
        if self.fenced:
            return
        if out.position is None:
            self._carry += out.events
            return
        self._last = out.position
        events, self._carry = self._carry + out.events, []
        self._queue((self._last, events))
        self.frames += 1

    def _run(self) -> None:
        src: Source | None = None
        try:
            cfg = self.cfg
            scfg = next(s for s in cfg.sources if s.id == self.id)
            self._src = src = build_source(scfg, self._on_health, max(0, self.start_frame))
            detector = build_detector(cfg.detector)
            # each source's own world tracker: global ids across cameras need one place (the
            # single-box runner); on a cluster, positions and per-source ids are what go out
            world = new_world(cfg)
            loop = SourceLoop(
                src,
                lambda: self._pipeline(detector, world),
                self._emit,
                self._on_health,
                batch=cfg.detector.batch_max if detector.info.batch_dynamic else 1,
                policy=RestartPolicy.of(cfg.supervisor),
            )
            end = loop.run(self._stop)
            self.error = end.error
            self._crashed = end.error is not None and not end.source_failed
            if end.opened:  # a source that never opened had no frame and no incident
                self._end_stream(src)
        except Exception as exc:  # building the detector or the pipeline: the actor restarts
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("source %s: worker failed", self.id)
            self._on_health(
                HealthEvent(
                    "stage.failed",
                    self.id,
                    time.monotonic_ns(),
                    f"worker failed: {self.error}; the actor restarts",
                    {"stage": "worker"},
                )
            )
            self._crashed = True
        finally:
            if src is not None:
                src.close()
            self._done.set()
        self._sender.join(FLUSH_S)
        if self._crashed and self._on_crash is not None:
            time.sleep(CRASH_BACKOFF_S)  # no hot restart loop
            self._on_crash()

    def _end_stream(self, src: Source) -> None:
        """The stream's end record (after its last frame): the incidents it ended."""
        if self.fenced or self._crashed:
            return
        end = self._last + 1
        if isinstance(src, FileSource) and not self._stop.is_set():  # after its last frame
            end = max(end, self.start_frame + src.stats.decoded)
        events, self._carry = self._carry, []
        self._queue((end, events))

    # --- delivery -------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        """Hand records and health events to the hub until everything is delivered."""
        flush_deadline: float | None = None
        while not self.fenced:
            done = self._done.is_set()
            if done and flush_deadline is None:
                flush_deadline = time.monotonic() + FLUSH_S
            self._send_health()
            sent = self._deliver()
            with self._lock:
                empty = not self._outbox
            if done and empty:
                if not self._crashed:  # a crashed worker's actor restarts and goes on
                    self._finish()
                break
            if flush_deadline is not None and time.monotonic() > flush_deadline:
                log.error(
                    "source %s: %d records not delivered before the end", self.id, len(self._outbox)
                )
                break
            if not sent:
                time.sleep(0.05 if done else SEND_EVERY_S)
        self._delivered.set()

    def _finish(self) -> None:
        try:
            self._hub.finish(self.id, self.epoch)
        except Exception as exc:
            log.warning("source %s: end not acknowledged: %s", self.id, exc)

    def _send_health(self) -> None:
        with self._lock:
            events, self._health = self._health, []
        for event in events:
            try:
                self._hub.health(self.id, self.epoch, event)
            except Exception:  # the hub is away: health events are advisory
                log.warning("source %s: health event %s not delivered", self.id, event.kind)

    def _deliver(self) -> bool:
        """Send what waits (up to SEND_MAX at a time); keep what is not acknowledged. True if
        the hub took something."""
        with self._lock:
            batch = self._outbox[:SEND_MAX]
        if not batch:
            return False
        t0 = time.perf_counter()
        try:
            ack = self._hub.submit(self.id, self.epoch, batch)
        except Exception as exc:  # hub slow or away: keep everything, try again later
            log.warning("source %s: records not acknowledged yet: %s", self.id, exc)
            return False
        finally:
            self.deliver_s += time.perf_counter() - t0
            self.records_sent += len(batch)
        if ack == FENCED:
            self.fenced = True
            self._stop.set()  # replaced by a newer incarnation: its loop ends here
            return False
        self.acked = max(self.acked, ack)
        with self._lock:
            self._outbox = [r for r in self._outbox if r[0] > ack]
        return True
