"""Benchmarks, run as `lookout bench SUITE --json OUT`.

Each suite is a module with `add_arguments(parser)` and `run(args) -> dict`; the dict's `summary`
holds the headline figures, and `table` the rows printed for people.
"""

from __future__ import annotations

SUITES: dict[str, str] = {
    "coco": "bench.coco",
    "sim-model": "bench.sim_model",
    "ingest": "bench.ingest",
    "preprocess": "bench.preprocess",
    "track": "bench.track",
    "alerts": "bench.alerts",
    "gpu-check": "bench.gpu_check",
    "events": "bench.events",
    "fusion": "bench.fusion",
    "streams": "bench.streams",
    "soak": "bench.soak",
    "run": "bench.footage",
    "cluster": "bench.cluster",
    "faults": "bench.faults",
}
