"""The hub of a cluster deployment: the one place where events become alerts.

Source workers on any node send it *records*, one per frame: the frame's number and the events
it caused (usually none). Records of a source are accepted in order, exactly once: a record
whose number is below the next expected one is a duplicate (a re-send after a lost ack); numbers
may skip (frames dropped while the engine was behind) because a worker sends its records in
order, one batch at a time, and re-sends from its oldest unacknowledged one. Each worker
incarnation registers first and gets an epoch
(a fencing token) and the frame to resume from; records of an older incarnation (a worker on a
node being cut off) are refused. So every frame's events are published once, whichever node
processed it, and the alert stream (journaled, sequenced, replayable: the outlet) has no gap.

When a source comes back on another node, the incidents it had open are ended (`reason:
source_moved`): the new worker's rules start from a clean state, and a console must not be
left with an incident that never ends. This class is plain Python; `engine/cluster/actors.py`
makes it a Ray actor.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import zmq

from engine.alerts.outlet import AlertOutlet
from engine.config import Config
from engine.types import Alert, Event, HealthEvent, HealthKind

__all__ = ["FENCED", "Hub", "SourceState"]

log = logging.getLogger(__name__)

FENCED = -2  # the answer to a record batch of an outdated incarnation


@dataclass
class SourceState:
    """What the hub knows of one source."""

    epoch: int = 0
    next_seq: int = 0  # frame numbers below it were accepted (or dropped before)
    frames: int = 0  # records accepted
    node: str | None = None
    last_seen_s: float = 0.0
    duplicates: int = 0  # records received again (re-sent after a lost ack), dropped
    fenced: int = 0  # record batches refused: sent by an outdated incarnation
    moves: int = 0
    finished: bool = False
    open: dict[str, Event] = field(default_factory=dict)  # event id: latest phase


class Hub:
    """Accepts records from source workers and publishes their events.

    Args:
        cfg: the deployment's config (outputs, site, routing, fusion).

    Raises:
        PublishError: an output cannot be opened.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._context = zmq.Context()
        self._lock = threading.Lock()
        self.sources = {s.id: SourceState() for s in cfg.sources}
        self.published = 0
        # (seq, kind, source, event id, phase) of the latest alerts, for reports and tests
        self.alerts: deque[dict[str, Any]] = deque(maxlen=100_000)
        # no incident merging across nodes: each node's monotonic clock is its own (merging needs
        # one time base; on a cluster every sensor's incidents go out as they are)
        self._outlet = AlertOutlet(cfg, self._context, merge=False)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def start(self) -> None:
        """Bind the outputs and start the heartbeat thread (once), before workers call in.

        Raises:
            PublishError: an output cannot be bound.
        """
        if self._beat is not None:
            return
        self._outlet.start()
        self._beat = threading.Thread(target=self._heartbeat, name="lookout-hub-beat", daemon=True)
        self._beat.start()

    # --- called by source workers -------------------------------------------------------------

    def register(self, source_id: str, node: str) -> tuple[int, int]:
        """A worker incarnation starts: its epoch and the frame number to resume from."""
        with self._lock:
            st = self.sources[source_id]
            st.epoch += 1
            now = time.monotonic()
            events: list[Event | HealthEvent] = []
            if st.node is not None:
                moved = st.node != node
                st.moves += moved
                events += self._end_open(st, "source_moved" if moved else "source_restarted")
                kind: HealthKind = "source.moved" if moved else "stage.restarted"
                where = f"node {st.node[:12]} -> {node[:12]}" if moved else f"node {node[:12]}"
                silent = round(now - st.last_seen_s, 2)
                why = (
                    f"source {source_id} resumed on {where} at frame {st.next_seq} after {silent} s"
                )
                attrs = {
                    "from_node": st.node,
                    "to_node": node,
                    "resume_frame": st.next_seq,
                    "silent_s": silent,
                }
                events.append(HealthEvent(kind, source_id, time.monotonic_ns(), why, attrs))
            st.node, st.last_seen_s = node, now
            if events:
                self._publish(events)
            return st.epoch, st.next_seq

    def submit(self, source_id: str, epoch: int, records: list[tuple[int, list[Event]]]) -> int:
        """Records (frame number, its events) in order; the last frame number accepted so far
        (cumulative ack), or FENCED if this incarnation is outdated."""
        with self._lock:
            st = self.sources[source_id]
            if epoch != st.epoch:
                st.fenced += 1
                return FENCED
            st.last_seen_s = time.monotonic()
            accepted: list[Event | HealthEvent] = []
            next_seq, frames, duplicates = st.next_seq, 0, 0
            for seq, events in records:
                if seq < next_seq:
                    duplicates += 1
                    continue
                next_seq = seq + 1
                frames += 1
                accepted += events
            if accepted:  # published (journaled) before acknowledged: a failure is re-sent
                self._publish(accepted)
            st.next_seq, st.frames, st.duplicates = (
                next_seq,
                st.frames + frames,
                st.duplicates + duplicates,
            )
            for e in accepted:
                if isinstance(e, Event) and e.phase == "end":
                    st.open.pop(e.event_id, None)
                elif isinstance(e, Event):
                    st.open[e.event_id] = e
            return st.next_seq - 1

    def health(self, source_id: str, epoch: int, event: HealthEvent) -> bool:
        """A health event of a source (its connection, its worker); False if outdated."""
        with self._lock:
            if epoch != self.sources[source_id].epoch:
                return False
            self._publish([event])
            return True

    def finish(self, source_id: str, epoch: int) -> None:
        """The source's stream ended (a recorded file); its worker is done."""
        with self._lock:
            st = self.sources[source_id]
            if epoch == st.epoch:
                st.finished = True

    # --- called by the driver -----------------------------------------------------------------

    def node_lost(self, node: str, detail: str) -> list[str]:
        """A node died: say so, with the sources that ran there (they come back elsewhere, or
        are stranded if no live node can reach their camera). Returns those sources."""
        with self._lock:
            there = [sid for sid, st in self.sources.items() if st.node == node and not st.finished]
            self._publish(
                [
                    HealthEvent(
                        "node.lost",
                        "@engine",
                        time.monotonic_ns(),
                        f"node {node[:12]} lost ({detail}); "
                        f"its sources: {', '.join(there) or 'none'}",
                        {"node": node, "sources": there},
                    )
                ]
            )
            return there

    def stranded(self, source_id: str, reach: str) -> None:
        """No live node can reach this source's camera: it waits until one joins."""
        with self._lock:
            self._publish(
                [
                    HealthEvent(
                        "source.stranded",
                        source_id,
                        time.monotonic_ns(),
                        f"no live node can reach camera group {reach!r}; {source_id} waits for one",
                        {"reach": reach},
                    )
                ]
            )

    def status(self) -> dict[str, Any]:
        """Per source: node, epoch, next frame, records, finished, duplicates, fenced, moves,
        incidents open; alerts published."""
        with self._lock:
            return {
                "published": self.published,
                "sources": {
                    sid: {
                        "node": st.node,
                        "epoch": st.epoch,
                        "next_seq": st.next_seq,
                        "frames": st.frames,
                        "finished": st.finished,
                        "duplicates": st.duplicates,
                        "fenced": st.fenced,
                        "moves": st.moves,
                        "open": len(st.open),
                    }
                    for sid, st in self.sources.items()
                },
            }

    def published_alerts(self) -> list[dict[str, Any]]:
        """Every alert published so far (seq, kind, source, event id, phase)."""
        with self._lock:
            return list(self.alerts)

    def close(self) -> None:
        """End open incidents, flush the outlet (journal, sockets), stop the heartbeat."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join(5)
        with self._lock:
            ending: list[Event | HealthEvent] = []
            for st in self.sources.values():
                ending += self._end_open(st, "engine_stopped")
            if ending:
                self._publish(ending)
            self._outlet.close()
        self._context.term()

    # --- inside -------------------------------------------------------------------------------

    def _end_open(self, st: SourceState, reason: str) -> list[Event | HealthEvent]:
        ends: list[Event | HealthEvent] = [
            dataclasses.replace(
                e,
                phase="end",
                stage="closed" if e.stage else None,
                snapshot=None,
                attributes={**e.attributes, "reason": reason},
            )
            for e in st.open.values()
        ]
        st.open.clear()
        return ends

    def _publish(self, batch: list[Event | HealthEvent]) -> list[Alert]:
        alerts = self._outlet.publish(batch)
        self.published += len(alerts)
        for a in alerts:
            e = a.event
            phase = e.phase if isinstance(e, Event) else None
            event_id = e.event_id if isinstance(e, Event) else None
            self.alerts.append(
                {
                    "seq": a.seq,
                    "kind": e.kind,
                    "source": e.source_id,
                    "event_id": event_id,
                    "phase": phase,
                }
            )
        return alerts

    def _heartbeat(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                self._outlet.tick(lambda: {"sources": self._beat_stats()})

    def _beat_stats(self) -> dict[str, Any]:
        return {
            sid: {"node": st.node, "frames": st.next_seq, "moves": st.moves}
            for sid, st in self.sources.items()
        }
