"""The Ray actors of a cluster deployment: the hub and one actor per source.

Imported only where Ray is installed (the `cluster` extra); the logic lives in `hub.py` and
`worker.py`, which need no Ray.
"""

from __future__ import annotations

import os
from typing import Any

import ray

from engine.cluster.hub import Hub
from engine.cluster.worker import ACK_TIMEOUT_S, SourceWorker
from engine.config import Config
from engine.types import Event, HealthEvent

__all__ = ["HubActor", "SourceActor"]


class _Hub:
    """The hub (journal, publisher, de-duplication) as an actor on the driver's node."""

    def __init__(self, cfg_json: str) -> None:
        self._hub = Hub(Config.model_validate_json(cfg_json))
        try:  # the actor's start is its construction: the driver waits on `ready`
            self._hub.start()
        except BaseException:
            self._hub.close()
            raise

    def ready(self) -> bool:
        return True

    def register(self, source_id: str, node: str) -> tuple[int, int]:
        return self._hub.register(source_id, node)

    def submit(self, source_id: str, epoch: int, records: list[tuple[int, list[Event]]]) -> int:
        return self._hub.submit(source_id, epoch, records)

    def health(self, source_id: str, epoch: int, event: HealthEvent) -> bool:
        return self._hub.health(source_id, epoch, event)

    def finish(self, source_id: str, epoch: int) -> None:
        self._hub.finish(source_id, epoch)

    def node_lost(self, node: str, detail: str) -> list[str]:
        return self._hub.node_lost(node, detail)

    def stranded(self, source_id: str, reach: str) -> None:
        self._hub.stranded(source_id, reach)

    def status(self) -> dict[str, Any]:
        return self._hub.status()

    def published_alerts(self) -> list[dict[str, Any]]:
        return self._hub.published_alerts()

    def close(self) -> None:
        self._hub.close()


class _RemoteHub:
    """The hub seen from a source actor: each call waits for its answer (bounded)."""

    def __init__(self, hub: Any) -> None:
        self._hub = hub

    def register(self, source_id: str, node: str) -> tuple[int, int]:
        result: tuple[int, int] = ray.get(self._hub.register.remote(source_id, node), timeout=60)
        return result

    def submit(self, source_id: str, epoch: int, records: list[tuple[int, list[Event]]]) -> int:
        ack: int = ray.get(
            self._hub.submit.remote(source_id, epoch, records), timeout=ACK_TIMEOUT_S
        )
        return ack

    def health(self, source_id: str, epoch: int, event: HealthEvent) -> bool:
        ok: bool = ray.get(self._hub.health.remote(source_id, epoch, event), timeout=ACK_TIMEOUT_S)
        return ok

    def finish(self, source_id: str, epoch: int) -> None:
        ray.get(self._hub.finish.remote(source_id, epoch), timeout=ACK_TIMEOUT_S)


class _Source:
    """One source's pipeline on whichever node Ray placed it."""

    def __init__(self, cfg_json: str, source_id: str, hub: Any) -> None:
        node = ray.get_runtime_context().get_node_id()
        # a failure retrying can fix ends this process: Ray restarts the actor (max_restarts)
        cfg = Config.model_validate_json(cfg_json)
        self._worker = SourceWorker(
            cfg, source_id, _RemoteHub(hub), node, on_crash=lambda: os._exit(1)
        )
        self._worker.start()

    def status(self) -> dict[str, Any]:
        return vars(self._worker.status())

    def stop(self) -> None:
        self._worker.stop()


_remote: Any = ray.remote  # its stubs miss the actor options (max_concurrency)
HubActor: Any = _remote(num_cpus=0, max_restarts=0, max_concurrency=16)(_Hub)
# restarts forever (a node's death moves it), retries its calls; status answers while it runs
SourceActor: Any = _remote(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=4)(
    _Source
)
