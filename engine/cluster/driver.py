"""`lookout run CONFIG --cluster ADDRESS`: one config run across the nodes of a Ray cluster.

The driver (where the command runs, usually the head node) starts the hub there (journal,
publisher: one alert stream) and one source actor per source, placed by Ray on a node that can
reach the camera (node label `reach-<group>=1` for `sources[].cluster.reach: <group>`), with
the GPU and decode capacity it asks for (`num_gpus`, custom resource `decode`). Source actors
restart forever: when a node dies, Ray starts its sources again on another node that can reach
them, and they resume from the frame the hub has last accepted. The driver watches the node
table and reports `node.lost`, and `source.stranded` for a source no live node can reach (it
waits, pending, until one joins). Frames never cross nodes: only each frame's record (number
and events) does.

Ray's own failure detection takes ~15 s by default; start the head with
`--system-config='{"health_check_period_ms": 1000, "health_check_timeout_ms": 1000,
"health_check_failure_threshold": 3}'` to notice a lost node in ~3 s (see README).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from engine.config import Config
from engine.errors import EngineError

__all__ = ["RAY_ENV", "ClusterReport", "run_cluster"]

log = logging.getLogger(__name__)

# set before Ray starts anything: no usage reports, loopback clusters stay on 127.0.0.1
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
POLL_S = 0.5


@dataclass
class ClusterReport:
    """What a cluster run did."""

    alerts: int = 0
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # the hub's view
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last incarnations
    nodes_lost: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def _ray() -> Any:
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)
    try:
        import ray
    except ImportError:
        raise EngineError("--cluster needs Ray: pip install 'lookout[cluster]'") from None
    return ray


def placement(source: Any) -> dict[str, Any]:
    """Ray actor options that put a source on a node able to run it."""
    opts: dict[str, Any] = {"num_cpus": 0}
    c = source.cluster
    if c is None:
        return opts
    if c.reach:
        opts["label_selector"] = {f"reach-{c.reach}": "1"}
    if c.gpu:
        opts["num_gpus"] = c.gpu
    if c.decode:
        opts["resources"] = {"decode": c.decode}
    return opts


def run_cluster(cfg: Config, address: str, stop: threading.Event) -> ClusterReport:
    """Run every source of `cfg` on the cluster at `address` until all end or `stop` is set.

    Raises:
        EngineError: Ray is missing, the cluster cannot be reached, or the hub cannot start.
    """
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from engine.cluster.actors import HubActor, SourceActor

    t0 = time.monotonic()
    try:
        ray.init(
            address=address, namespace="lookout", log_to_driver=False, logging_level=logging.WARNING
        )
    except Exception as exc:
        raise EngineError(f"cannot join the Ray cluster at {address}: {exc}") from None
    report = ClusterReport()
    try:
        here = ray.get_runtime_context().get_node_id()
        hub = HubActor.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False)
        ).remote(cfg.model_dump_json())
        ray.get(hub.ready.remote(), timeout=60)
        actors = {
            s.id: SourceActor.options(name=f"lookout-source-{s.id}", **placement(s)).remote(
                cfg.model_dump_json(), s.id, hub
            )
            for s in cfg.sources
        }
        log.info("cluster: hub on node %s, %d sources placed", here[:12], len(actors))
        _watch(ray, hub, cfg, stop, report)
        if stop.is_set():
            for actor in actors.values():
                try:
                    ray.get(actor.stop.remote(), timeout=15)
                except Exception:
                    log.warning("a source actor did not stop in time")
        for sid, actor in actors.items():
            try:
                report.workers[sid] = ray.get(actor.status.remote(), timeout=10)
            except Exception:
                log.warning("source %s: no status from its actor", sid)
        status = ray.get(hub.status.remote(), timeout=30)
        report.sources = status["sources"]
        report.alerts = status["published"]
        ray.get(hub.close.remote(), timeout=60)
    finally:
        ray.shutdown()
        report.elapsed_s = time.monotonic() - t0
    return report


def _watch(ray: Any, hub: Any, cfg: Config, stop: threading.Event, report: ClusterReport) -> None:
    """Until every source finished (or `stop`): report lost nodes and stranded sources."""
    alive: dict[str, dict[str, str]] = {}
    stranded: set[str] = set()
    reach = {s.id: s.cluster.reach for s in cfg.sources if s.cluster and s.cluster.reach}
    while not stop.wait(POLL_S):
        nodes = {n["NodeID"]: n for n in ray.nodes()}
        now_alive = {nid: n.get("Labels", {}) for nid, n in nodes.items() if n["Alive"]}
        for nid in set(alive) - set(now_alive):
            report.nodes_lost.append(nid)
            gone = ray.get(hub.node_lost.remote(nid, "stopped answering health checks"))
            log.warning("node %s lost; its sources: %s", nid[:12], gone)
        alive = now_alive
        status = ray.get(hub.status.remote(), timeout=30)
        sources = status["sources"]
        if all(v["finished"] for v in sources.values()):
            return
        for sid, group in reach.items():
            reachable = any(labels.get(f"reach-{group}") == "1" for labels in alive.values())
            if not reachable and sid not in stranded and not sources[sid]["finished"]:
                stranded.add(sid)
                ray.get(hub.stranded.remote(sid, group))
            elif reachable:
                stranded.discard(sid)
