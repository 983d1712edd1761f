"""One source's loop: source -> pipeline -> emit, supervised. The only one there is.

The runner runs one per source, each in its own thread; the cluster worker runs one for the
source it was given; the benchmarks run theirs in their own thread (or step several in lockstep).
They differ only in what `emit` does with each frame's events (queue them for the publisher,
hand them to the hub as a record, score them) and in the pipeline's detect function.

What the loop does, the same for every caller:
- opens the source in the calling thread: one that cannot be opened ends alone, with one
  `source.failed` health event;
- takes the next frame and those already waiting behind it (up to `batch`) into one detector
  call, then analyses each and emits its events in order;
- a stage that raises is restarted with backoff (`engine.runtime.supervisor`): the pipeline is
  closed (its open incidents end, those events are emitted), the frames it had not reached are
  kept for the next one, and a new pipeline is made; a source that cannot be read on ends the
  loop (`source.failed`, or `source.truncated` for a file that ends early);
- at the end (the source's, or `stop`), the pipeline is closed and the events that ends are
  emitted (emit receives them without a frame); a source that cannot be read on says so
  (`source.failed`) after the incidents it opened have ended.
Lag (`source.lagging`) and resume positions are the source's own (`engine.sources.Source`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from engine.config import SupervisorConfig
from engine.errors import SourceError
from engine.pipeline import SourcePipeline, StageClock
from engine.runtime.supervisor import RestartPolicy, StageFailed, supervise
from engine.sources import Source, TruncatedFile
from engine.types import Event, Frame, HealthEvent, HealthKind, Tracks

__all__ = ["Emit", "Emitted", "LoopEnd", "LoopMetrics", "SourceLoop"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Emitted:
    """What the loop hands to `emit`: a frame's events with the frame, its tracks and its
    `position` in the stream (the source's, as read: a record number that resumes exactly);
    or events that end incidents (at a restart, a reload or the end), without a frame."""

    events: list[Event]
    frame: Frame | None = None
    tracks: Tracks | None = None
    position: int | None = None


Emit = Callable[[Emitted], None]


class LoopMetrics(StageClock, Protocol):
    """What the loop reports to the runtime's metrics."""

    def frame_in(self, source: str) -> None: ...
    def inferred(self, source: str, count: int) -> None: ...
    def restarted(self, source: str, stage: str) -> None: ...


@dataclass(frozen=True)
class LoopEnd:
    """How a source's loop ended."""

    error: str | None  # what ended it for good; None: the source's end, or stop
    source_failed: bool = False  # the source itself could not be opened or read on
    opened: bool = True  # False: the source could not even be opened (no frame, no pipeline)


class SourceLoop:
    """Drives one source's frames through its pipeline until the source ends or `stop`.

    Args:
        source: the source (not opened yet).
        make_pipeline: builds the source's pipeline (`engine.pipeline.build_pipeline`); called
            at the start and again after each restart.
        emit: receives each frame's events (`Emitted`); if it raises, the stage is restarted
            like any failed stage.
        on_health: receives the loop's health events (source and stage failures).
        batch: frames of this source that may go to the detector in one call.
        policy: how failed stages are restarted (None: the `supervisor` section's defaults).
        metrics: the runtime's metrics (None: not measured).
        between: called between batches with the pipeline (a config reload swaps its rules);
            the events it returns are emitted.
    """

    def __init__(
        self,
        source: Source,
        make_pipeline: Callable[[], SourcePipeline],
        emit: Emit,
        on_health: Callable[[HealthEvent], None],
        *,
        batch: int = 1,
        policy: RestartPolicy | None = None,
        metrics: LoopMetrics | None = None,
        between: Callable[[SourcePipeline], list[Event]] | None = None,
    ) -> None:
        self.source = source
        self.id = source.id
        self.frames = 0  # frames through the pipeline (all restarts)
        self.restarts = 0
        self.pipeline: SourcePipeline | None = None  # the current one
        self._make = make_pipeline
        self._emit = emit
        self._on_health = on_health
        self._batch = max(1, batch)
        self._policy = policy or RestartPolicy.of(SupervisorConfig())
        self._metrics = metrics
        self._between = between
        self._leftover: list[tuple[Frame, int]] = []  # (frame, position) a failed pipeline left
        self._inferences_before = 0  # of pipelines closed already

    @property
    def inferences(self) -> int:
        """Frames that went to the detector (all pipelines; motion gating skips some)."""
        current = self.pipeline.inferences if self.pipeline is not None else 0
        return self._inferences_before + current

    def run(self, stop: threading.Event) -> LoopEnd:
        """Open the source and process it, restarting failed stages, until it ends or `stop`."""
        try:
            self.source.open()  # in the caller's thread: a source that cannot ends alone
        except SourceError as exc:
            return self._source_failed(exc, opened=False)
        except Exception as exc:  # a bug in opening: this source ends alone too, and says why
            log.exception("source %s: opening failed", self.id)
            why = SourceError(f"source {self.id}: cannot open: {exc!r}")
            return self._source_failed(why, opened=False)
        failed: list[LoopEnd] = []

        def work() -> None:
            try:
                while not stop.is_set() and self.step():
                    pass
            except SourceError as exc:  # cannot be read on: the source ends, nothing retries
                self.finish()  # the incidents it opened end first, then the source says why
                failed.append(self._source_failed(exc))
                raise
            finally:
                self.finish()

        error = supervise(self.id, work, stop, self._on_health, self._restarted, self._policy)
        return failed[0] if failed else LoopEnd(error)

    def step(self) -> bool:
        """One batch through the pipeline (made first if there is none); False at the end.

        Raises:
            StageFailed: a stage raised; the frames it had not reached are kept for the next
                pipeline (the one that failed is lost).
            SourceError: the source cannot be read on.
        """
        if self.pipeline is None:
            self.pipeline = self._make()
        pipe = self.pipeline
        if self._between is not None:
            self._emit_guarded(pipe, self._between(pipe))
        taken = self._take()
        if not taken:
            return False
        frames = [f for f, _ in taken]
        done = 0
        try:
            found = pipe.detect(frames)
            for (frame, position), dets in zip(taken, found, strict=True):
                done += 1
                tracks, events = pipe.analyse(frame, dets)
                self.frames += 1
                if self._metrics is not None:  # the pipeline's time: before what emit does
                    self._metrics.stage_done(self.id, "rules", frame.capture_ns)
                    self._metrics.inferred(self.id, self.inferences)
                self._emit(Emitted(events, frame, tracks, position))
        except Exception as exc:  # also ModelError: inference may work again
            self._leftover = taken[max(done, 1) :]
            raise StageFailed(pipe.stage, exc) from exc
        return True

    def finish(self) -> None:
        """Close the current pipeline: its open incidents end and those events are emitted."""
        pipe, self.pipeline = self.pipeline, None
        if pipe is None:
            return
        self._inferences_before += pipe.inferences
        try:
            events = pipe.close()
        except Exception:
            log.exception("source %s: closing its open incidents failed", self.id)
            return
        self._emit_guarded(pipe, events)

    def _emit_guarded(self, pipe: SourcePipeline, events: list[Event]) -> None:
        """Events without a frame (incidents ended by a reload or the close)."""
        if not events:
            return
        try:
            self._emit(Emitted(events))
        except Exception as exc:
            if self.pipeline is None:  # at close: nothing left to restart
                log.exception("source %s: %d closing events not emitted", self.id, len(events))
                return
            raise StageFailed(pipe.stage, exc) from exc

    def _take(self) -> list[tuple[Frame, int]]:
        """The next frame (waiting for it) and those already waiting behind it, up to `batch`,
        each with its position: [] at the end of the source. Frames a failed pipeline left
        come first."""
        if self._leftover:
            left, self._leftover = self._leftover, []
            return left
        src = self.source
        first = src.read()
        if first is None:
            return []
        taken = [(first, src.position)]
        while len(taken) < self._batch and src.queued > 0:
            nxt = src.read()
            if nxt is None:
                break
            taken.append((nxt, src.position))
        if self._metrics is not None:
            for _ in taken:
                self._metrics.frame_in(self.id)
        return taken

    def _restarted(self, stage: str) -> None:
        self.restarts += 1
        if self._metrics is not None:
            self._metrics.restarted(self.id, stage)

    def _source_failed(self, exc: SourceError, opened: bool = True) -> LoopEnd:
        """A source that ended with an error: one health event, and the error."""
        kind: HealthKind = "source.failed"
        attrs: dict[str, object] = {"stage": "source"}
        if isinstance(exc, TruncatedFile):
            kind = "source.truncated"
            attrs.update(exc.attributes)
        self._on_health(HealthEvent(kind, self.id, time.monotonic_ns(), str(exc), attrs))
        return LoopEnd(str(exc), source_failed=True, opened=opened)
