"""Restart a failed per-source stage with backoff, and say so on the alert stream.

A worker is a function that runs until its source ends. When it raises an unexpected exception
(a bug, a detector that failed on one batch, a rule that broke on an odd frame), the supervisor
reports `stage.failed` (which stage, why, when it retries), waits with exponential backoff and
jitter, reports `stage.restarted` and calls it again; the source's ingest goes on meanwhile, so
a live camera is not reconnected and a recorded file goes on where it was. An `EngineError` is
not retried: it says what is wrong (a file that cannot be read), and retrying cannot fix it.
The backoff starts again once a worker has run `healthy_s` without failing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.config import SupervisorConfig
from engine.errors import EngineError
from engine.sources.backoff import Backoff
from engine.types import HealthEvent

__all__ = ["RestartPolicy", "StageFailed", "supervise"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """How failed stages are restarted: the config's `supervisor` section (its defaults live
    there), as the supervisor reads it."""

    initial_s: float
    max_s: float
    healthy_s: float  # running this long without failing resets the backoff
    max_restarts: int | None  # None: forever (a 24/7 engine keeps trying)

    @classmethod
    def of(cls, sv: SupervisorConfig) -> RestartPolicy:
        """The policy a config's `supervisor` section states."""
        return cls(sv.backoff_initial_s, sv.backoff_max_s, sv.healthy_s, sv.max_restarts)


class StageFailed(Exception):
    """A worker's exception, with the stage it happened in."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{stage}: {cause!r}")
        self.stage = stage
        self.cause = cause


def supervise(
    source_id: str,
    worker: Callable[[], None],
    stop: threading.Event,
    on_health: Callable[[HealthEvent], None],
    on_restart: Callable[[str], None],
    policy: RestartPolicy,
) -> str | None:
    """Run `worker` until it returns, restarting it when it fails.

    Args:
        source_id: whose worker it is (health events name it).
        worker: the worker; raise `StageFailed` to name the stage that failed.
        stop: set to end the run; no restart then.
        on_health: receives `stage.failed` and `stage.restarted` events.
        on_restart: called with the stage's name at each restart (metrics).
        policy: backoff and limits.

    Returns:
        None when the worker ended normally, else the error that ended it for good.
    """
    backoff = Backoff(policy.initial_s, policy.max_s)
    restarts = 0
    while True:
        started = time.monotonic()
        try:
            worker()
            return None
        except EngineError as exc:
            log.error("%s", exc)
            return str(exc)
        except StageFailed as exc:  # any failure of one source is contained
            stage, cause = exc.stage, exc.cause
        except Exception as exc:
            stage, cause = "worker", exc
        log.error("source %s: stage %s failed: %r", source_id, stage, cause, exc_info=cause)
        if stop.is_set():
            return None
        if time.monotonic() - started >= policy.healthy_s:
            backoff.reset()
        restarts += 1
        if policy.max_restarts is not None and restarts > policy.max_restarts:
            why = f"source {source_id}: stage {stage} failed {restarts} times; giving up: {cause!r}"
            attrs: dict[str, object] = {"stage": stage, "restarts": restarts - 1, "final": True}
            on_health(HealthEvent("stage.failed", source_id, time.monotonic_ns(), why, attrs))
            return why
        delay = backoff.next_delay()
        why = f"stage {stage} failed: {cause!r}; restart {restarts} in {delay:.1f} s"
        attrs = {"stage": stage, "restarts": restarts, "retry_in_s": round(delay, 2)}
        on_health(HealthEvent("stage.failed", source_id, time.monotonic_ns(), why, attrs))
        if stop.wait(delay):
            return None
        on_restart(stage)
        why = f"stage {stage} restarted (restart {restarts})"
        attrs = {"stage": stage, "restarts": restarts}
        on_health(HealthEvent("stage.restarted", source_id, time.monotonic_ns(), why, attrs))
