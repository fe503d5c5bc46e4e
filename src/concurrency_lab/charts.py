"""The course's two charts: speedup against workers, and a task timeline.

The notebooks and ``make bench`` draw through these functions, so every
chart in the course looks the same and is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "inline")):
    # Outside a notebook (tests, make bench) draw off-screen.
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from .machine import describe_machine  # noqa: E402
from .workers import TaskSpan  # noqa: E402

__all__ = ["plot_speedup", "plot_timeline"]

Points = Sequence[tuple[float, float]]


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, new_ax = plt.subplots(figsize=size)
    return new_ax


def plot_speedup(
    series: Mapping[str, Points],
    ideal: Points,
    title: str = "Speedup",
    ax: Axes | None = None,
    machine: str | None = None,
) -> Axes:
    """Plot speedup against workers, one line per series, with the ideal line.

    Args:
        series: label (such as ``"threads"``) to ``(workers, speedup)`` points.
        ideal: ``(workers, ideal speedup)`` points, drawn dashed.
        title: the chart title; the machine line is added under it.
        ax: draw into these axes instead of a new figure.
        machine: the machine line; defaults to :func:`describe_machine`.

    Returns:
        The axes drawn on.
    """
    ax = _axes(ax, (6, 4))
    xs, ys = zip(*sorted(ideal)) if ideal else ((), ())
    ax.plot(xs, ys, "k--", linewidth=1, label="ideal")
    for label, points in series.items():
        if not points:
            continue
        wx, wy = zip(*sorted(points))
        ax.plot(wx, wy, "o-", label=label)
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup (× one worker)")
    ax.set_title(f"{title}\n{machine or describe_machine()}", fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_timeline(
    spans: Iterable[TaskSpan],
    title: str = "Timeline",
    ax: Axes | None = None,
) -> Axes:
    """Draw one row per worker and one bar per task, from its start to its end.

    Times are shown in seconds from the first task's start.

    Returns:
        The axes drawn on.
    """
    spans = list(spans)
    ax = _axes(ax, (6, 0.4 * max(2, len({s.worker for s in spans})) + 1.2))
    if not spans:
        ax.set_title(f"{title} (no tasks)", fontsize=9)
        return ax
    t0 = min(s.start for s in spans)
    workers = sorted({s.worker for s in spans}, key=lambda w: min(s.start for s in spans if s.worker == w))
    rows = {worker: i for i, worker in enumerate(workers)}
    for s in spans:
        ax.broken_barh(
            [(s.start - t0, max(s.duration, 1e-4))],
            (rows[s.worker] - 0.4, 0.8),
            edgecolor="black",
            linewidth=0.5,
        )
    ax.set_yticks(range(len(workers)), workers, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first task started")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return ax
