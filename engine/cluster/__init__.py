"""Many edge boxes as one deployment, on a Ray cluster (the optional `cluster` extra).

`run_cluster` (what `lookout run CONFIG --cluster ADDRESS` calls) places one actor per source on
a node that can reach its camera and one hub (journal, publisher) on the driver's node; see
`driver.py`. `hub.py` and `worker.py` hold the logic and need no Ray.
"""

from __future__ import annotations

from engine.cluster.driver import ClusterReport, run_cluster

__all__ = ["ClusterReport", "run_cluster"]
