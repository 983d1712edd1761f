"""Pictures and a Markdown page of a pipeline benchmark result (Lookout and its peers).

The result is a dict (every section but `runs` optional):
    {"title": str, "machine": {...}, "summary": {figure: value},
     "runs": [{"name", "fps", "latency_ms": {"p50", "p90", "p99"}, "stages_ms": {stage: ms},
               "cpu_pct", "rss_mb", "drops", "peer": bool}],
     "scaling": [{"streams", "fps_per_stream", "latency_p99_ms", "drops"}],
     "events": [{column: value}]}
A `summary["limit_fps"]` (onnxruntime alone) is drawn as a line on the throughput chart.

matplotlib is imported only by `write_plots` and draws on its own figures (no pyplot state).

Example:
    >>> pngs = write_plots(result, Path("out"))  # doctest: +SKIP
    >>> write_markdown(result, Path("out/report.md"), pngs)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PLOT_FILES", "write_markdown", "write_plots"]

PLOT_FILES = {
    "throughput": "throughput.png",
    "latency": "latency.png",
    "stages": "stages.png",
    "scaling": "scaling.png",
}
_LOOKOUT, _PEER = "#1f77b4", "#ff7f0e"
_PERCENTILES = ("p50", "p90", "p99")
_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": "small"}


# --- plots ----------------------------------------------------------------------------------


def _figure(n_rows: int = 1) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(7.0, max(2.5, 1.0 + 0.45 * n_rows)), layout="constrained")


def _num(v: Any) -> float:
    """A figure to plot: None (not measured) as NaN, a gap in the line."""
    return float("nan") if v is None else float(v)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, format="png")
    return path


def _throughput(runs: Sequence[Mapping[str, Any]], limit: float | None, path: Path) -> Path:
    """Horizontal bars of frames/s per run, peers in another colour, the ORT limit as a line."""
    fig = _figure(len(runs))
    ax = fig.add_subplot()
    names = [str(r["name"]) for r in runs]
    fps = [float(r.get("fps") or 0.0) for r in runs]
    colours = [_PEER if r.get("peer") else _LOOKOUT for r in runs]
    bars = ax.barh(names, fps, color=colours)
    ax.bar_label(bars, fmt="%.1f", padding=3)
    if limit:
        ax.axvline(limit, color="grey", linestyle="--", label=f"onnxruntime alone {limit:.1f}")
        ax.legend(**_OUTSIDE)
    ax.invert_yaxis()  # first run on top, as in the tables
    ax.set_xlabel("frames/s")
    ax.set_title("Throughput")
    return _save(fig, path)


def _latency(runs: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Grouped bars of latency percentiles per run."""
    fig = _figure(len(runs))
    ax = fig.add_subplot()
    height = 0.8 / len(_PERCENTILES)
    for k, pct in enumerate(_PERCENTILES):
        ys = [i + (k - 1) * height for i in range(len(runs))]
        ax.barh(ys, [float(r["latency_ms"].get(pct) or 0.0) for r in runs], height, label=pct)
    ax.set_yticks(range(len(runs)), [str(r["name"]) for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("latency, ms (capture to result)")
    ax.set_title("Latency percentiles")
    ax.legend(**_OUTSIDE)
    return _save(fig, path)


def _stage_names(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Stages in order of first appearance across runs."""
    seen: dict[str, None] = {}
    for r in runs:
        seen.update(dict.fromkeys(r["stages_ms"]))
    return list(seen)


def _stages(runs: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Stacked horizontal bars: ms per frame spent in each stage, per run."""
    fig = _figure(len(runs))
    ax = fig.add_subplot()
    names = [str(r["name"]) for r in runs]
    left = [0.0] * len(runs)
    for stage in _stage_names(runs):
        ms = [float(r["stages_ms"].get(stage) or 0.0) for r in runs]
        ax.barh(names, ms, left=left, label=stage)
        left = [a + b for a, b in zip(left, ms, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("ms per frame")
    ax.set_title("Where the time goes")
    ax.legend(**_OUTSIDE)
    return _save(fig, path)


def _scaling(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Frames/s per stream (left axis) and p99 latency (right axis) against stream count;
    points with dropped frames are ringed in red."""
    fig = _figure(4)
    ax = fig.add_subplot()
    rows = sorted(rows, key=lambda r: r["streams"])
    n = [r["streams"] for r in rows]
    ax.plot(n, [_num(r.get("fps_per_stream")) for r in rows], "o-", color=_LOOKOUT)
    ax.set_xticks(n)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("streams")
    ax.set_ylabel("frames/s per stream", color=_LOOKOUT)
    dropped = [r for r in rows if r.get("drops")]
    if dropped:
        xs = [r["streams"] for r in dropped]
        ys = [_num(r.get("fps_per_stream")) for r in dropped]
        ax.scatter(xs, ys, s=150, facecolors="none", edgecolors="red", label="frames dropped")
        ax.legend(loc="lower left")
    if any(r.get("latency_p99_ms") is not None for r in rows):
        right = ax.twinx()
        right.plot(n, [_num(r.get("latency_p99_ms")) for r in rows], "s--", color=_PEER)
        right.set_ylim(bottom=0)
        right.set_ylabel("p99 latency, ms", color=_PEER)
    ax.set_title("Scaling with streams")
    return _save(fig, path)


def write_plots(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Draw the charts the result has data for into `out_dir` (created); their paths.

    Throughput per run always (when there are runs); latency percentiles, stage breakdown and
    the scaling curve only where runs carry `latency_ms` / `stages_ms`, or `scaling` is present.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = list(result.get("runs") or [])
    written: list[Path] = []
    if runs:
        limit = (result.get("summary") or {}).get("limit_fps")
        written.append(_throughput(runs, limit, out_dir / PLOT_FILES["throughput"]))
    timed = [r for r in runs if r.get("latency_ms")]
    if timed:
        written.append(_latency(timed, out_dir / PLOT_FILES["latency"]))
    staged = [r for r in runs if r.get("stages_ms")]
    if staged:
        written.append(_stages(staged, out_dir / PLOT_FILES["stages"]))
    if result.get("scaling"):
        written.append(_scaling(result["scaling"], out_dir / PLOT_FILES["scaling"]))
    return written


# --- Markdown -------------------------------------------------------------------------------


def _cell(v: Any) -> str:
    """A value as a table cell: floats to a sensible precision, nested values as JSON."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    if isinstance(v, Mapping | list | tuple):
        v = json.dumps(v, default=str)
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _machine_section(machine: Mapping[str, Any]) -> list[str]:
    return ["## Machine", "", *(f"- {k}: {_cell(v)}" for k, v in machine.items()), ""]


def _summary_section(summary: Mapping[str, Any]) -> list[str]:
    return ["## Summary", "", *_table(["figure", "value"], list(summary.items()))]


def _runs_section(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    header = ["run", "frames/s", "p50 ms", "p90 ms", "p99 ms", "CPU %", "RSS MB", "drops"]
    rows = [
        [
            r["name"],
            r.get("fps"),
            *((r.get("latency_ms") or {}).get(p) for p in _PERCENTILES),
            r.get("cpu_pct"),
            r.get("rss_mb"),
            r.get("drops"),
        ]
        for r in runs
    ]
    return ["## Runs", "", *_table(header, rows)]


def _stages_section(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    staged = [r for r in runs if r.get("stages_ms")]
    if not staged:
        return []
    stages = _stage_names(staged)
    rows = [
        [
            r["name"],
            *(r["stages_ms"].get(s) for s in stages),
            sum(float(v or 0.0) for v in r["stages_ms"].values()),
        ]
        for r in staged
    ]
    return ["## Stages (ms per frame)", "", *_table(["run", *stages, "total"], rows)]


def _scaling_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header = ["streams", "frames/s per stream", "p99 ms", "drops"]
    body = [
        [r["streams"], r.get("fps_per_stream"), r.get("latency_p99_ms"), r.get("drops")]
        for r in sorted(rows, key=lambda r: r["streams"])
    ]
    return ["## Scaling", "", *_table(header, body)]


def _events_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    return ["## Events", "", *_table(list(cols), [[r.get(c) for c in cols] for r in rows])]


def _plots_section(md: Path, plots: Sequence[Path]) -> list[str]:
    if not plots:
        return []
    links = [f"![{p.stem}]({Path(os.path.relpath(p, md.parent)).as_posix()})" for p in plots]
    return ["## Plots", "", *(f"{link}\n" for link in links)]


def write_markdown(
    result: Mapping[str, Any], path: Path, plots: Sequence[Path] | None = None
) -> Path:
    """Write the result as a Markdown page: machine, summary, runs, stages, scaling, events
    (each only when present) and links to the charts.

    Args:
        result: the benchmark result (see the module docstring).
        path: the .md file to write (its folder is created).
        plots: the charts to link; by default those of `PLOT_FILES` present beside `path`.

    Returns:
        `path`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if plots is None:
        found = (path.parent / name for name in PLOT_FILES.values())
        plots = [p for p in found if p.exists()]
    lines = [f"# {result.get('title', 'Pipeline benchmark')}", ""]
    if result.get("machine"):
        lines += _machine_section(result["machine"])
    if result.get("summary"):
        lines += _summary_section(result["summary"])
    runs = list(result.get("runs") or [])
    if runs:
        lines += _runs_section(runs) + _stages_section(runs)
    if result.get("scaling"):
        lines += _scaling_section(result["scaling"])
    if result.get("events"):
        lines += _events_section(result["events"])
    lines += _plots_section(path, plots)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
