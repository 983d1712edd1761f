"""A real multi-node Ray cluster on 127.0.0.1, for tests and `lookout bench cluster`.

A head (no sources: the driver and hub run there) and worker nodes with labels, each its own
raylet with one CPU and a small object store (only detections and events cross nodes). Ray's
failure detection is tightened (health checks every second, 3 missed = dead: ~3 s instead of
~15 s), as the README tells operators to do. `kill` is a power cut: SIGKILL to the node's
raylet and everything it started, at once. Importing this module sets Ray's environment for a
loopback cluster (see LOOPBACK_ENV), so import it before Ray.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import psutil

from engine.cluster.driver import RAY_ENV

__all__ = ["HEALTH", "LocalCluster"]

# loopback clusters: without this, Ray rewrites 127.0.0.1 to the host's routable address and a
# driver started later cannot reach a head bound to loopback
LOOPBACK_ENV = {**RAY_ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Ray reads these when imported: this module sets them on import (import it before ray)
os.environ.update(LOOPBACK_ENV)
HEALTH = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}
STORE = 80 * 2**20


class LocalCluster:
    """Head + labelled workers on this machine.

    Args:
        workers: per worker node, its labels (e.g. {"reach-plaza": "1"}).
    """

    def __init__(self, workers: list[dict[str, str]]) -> None:
        os.environ.update(LOOPBACK_ENV)
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "include_dashboard": False,
                "object_store_memory": STORE,
                "node_ip_address": "127.0.0.1",
                "_system_config": dict(HEALTH),
            },
        )
        self.workers = [self.add(labels) for labels in workers]
        self.cluster.wait_for_nodes()

    @property
    def address(self) -> str:
        """host:port of the head (what `lookout run --cluster` takes)."""
        address: str = self.cluster.address
        return address

    def add(self, labels: dict[str, str]) -> Any:
        """Start one more worker node with these labels."""
        return self.cluster.add_node(
            num_cpus=1, object_store_memory=STORE, node_ip_address="127.0.0.1", labels=dict(labels)
        )

    def kill(self, node: Any) -> int:
        """Cut the node's power: SIGKILL its raylet and every process under it. The count."""
        procs: list[psutil.Process] = []
        for infos in node.all_processes.values():
            for info in infos:
                try:
                    p = psutil.Process(info.process.pid)
                    procs += [p, *p.children(recursive=True)]
                except psutil.NoSuchProcess:
                    pass
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(signal.SIGKILL)
        self.cluster.remove_node(node, allow_graceful=False)
        return len(procs)

    def shutdown(self) -> None:
        """Stop every node."""
        self.cluster.shutdown()
