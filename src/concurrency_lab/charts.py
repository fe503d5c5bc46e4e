"""The course's two charts: speedup against workers, and a task timeline.

The notebooks and ``make bench`` draw through these functions, so every
chart in the course looks the same and is written once.

:func:`plot_speedup` and :func:`plot_timeline` draw one chart into one set of
axes. :func:`plot_speedups` and :func:`plot_timelines` build the speedup lab's
figures from them: one panel per workload, with the ideal line and an Amdahl
fit (:func:`fit_parallel_fraction`), and one Gantt chart per run.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .machine import describe_machine
from .workers import TaskSpan

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "fit_parallel_fraction",
    "plot_speedup",
    "plot_speedups",
    "plot_timeline",
    "plot_timelines",
    "pyplot",
]

Points = Sequence[tuple[float, float]]


@functools.cache
def pyplot() -> Any:
    """``matplotlib.pyplot``, imported by the first chart drawn, not by ``import charts``.

    A notebook that imports the charts but draws nothing (quick mode) does not
    pay for matplotlib (about half a second). Outside a notebook (tests,
    ``make bench``) charts are drawn off-screen: the first call chooses the Agg
    backend there.
    """
    import matplotlib

    if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "inline")):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, new_ax = pyplot().subplots(figsize=size)
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


# -- Amdahl's law -------------------------------------------------------------------


def _amdahl(parallel_fraction: float, workers: float) -> float:
    """Amdahl's law: the speedup when ``parallel_fraction`` of the work runs on ``workers``.

    Private, because notebook 01 asks students to write it.

    ``1 / ((1 - p) + p / n)``; for example ``_amdahl(0.9, 2)`` is about 1.82.

    Raises:
        ValueError: if ``parallel_fraction`` is outside [0, 1] or ``workers`` < 1.
    """
    if not 0.0 <= parallel_fraction <= 1.0:
        raise ValueError(f"parallel_fraction must be in [0, 1], got {parallel_fraction}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return 1.0 / ((1.0 - parallel_fraction) + parallel_fraction / workers)


def fit_parallel_fraction(workers: Sequence[float], speedups: Sequence[float]) -> float:
    """The parallel fraction ``p`` that best explains measured speedups, by least squares.

    Amdahl's law says the run time, relative to one worker, is
    ``1 / S = 1 - p * (1 - 1 / n)``: a straight line in ``x = 1 - 1 / n``. The
    least-squares slope through (0, 1) is ``p = sum(x * (1 - 1/S)) / sum(x * x)``,
    clipped to [0, 1]. Pass as ``workers`` the number that can usefully run at
    once (the ideal speedup: ``min(workers, cores)`` for CPU work), so that
    oversubscribed points do not count as more processors.

    Args:
        workers: worker counts (>= 1), one per measurement.
        speedups: measured speedups (> 0), in the same order.

    Raises:
        ValueError: if the lengths differ, a value is out of range, or no
            point has more than one worker (then ``p`` is undetermined).
    """
    ns = [float(n) for n in workers]
    ss = [float(s) for s in speedups]
    if len(ns) != len(ss):
        raise ValueError(f"{len(ns)} worker counts but {len(ss)} speedups")
    if any(n < 1 for n in ns) or any(s <= 0 for s in ss):
        raise ValueError("workers must be >= 1 and speedups > 0")
    xs = [1.0 - 1.0 / n for n in ns]
    denominator = sum(x * x for x in xs)
    if denominator == 0:
        raise ValueError("need a measurement with more than one worker to fit p")
    p = sum(x * (1.0 - 1.0 / s) for x, s in zip(xs, ss)) / denominator
    return min(1.0, max(0.0, p))


# -- the speedup lab's figures ----------------------------------------------------

#: Panel titles for the workloads of :mod:`concurrency_lab.sweep`.
WORKLOAD_TITLES: dict[str, str] = {
    "download": "download: I/O-bound, threads wait on the server",
    "primes": "primes: CPU-bound pure Python",
}
_COLORS = {"threads": "C0", "processes": "C1", "sequential": "0.45"}


def _get(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, Mapping) else getattr(row, key)


def plot_speedups(
    rows: Iterable[Any],
    machine: str | None = None,
    titles: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per workload: threads and processes, the ideal line, Amdahl fits.

    Args:
        rows: :class:`~concurrency_lab.sweep.Row` objects, or mappings with the
            CSV columns (``csv.DictReader`` rows work: values are converted).
            ``sequential`` rows are the baseline and are not drawn.
        machine: the machine line for the title; defaults to
            :func:`describe_machine` (it says whether the GIL is enabled).
        titles: panel titles by workload; defaults to :data:`WORKLOAD_TITLES`.

    Returns:
        The figure (in a notebook it is shown when the cell ends).
    """
    titles = {**WORKLOAD_TITLES, **(titles or {})}
    records = [
        {
            "workload": str(_get(r, "workload")),
            "kind": str(_get(r, "kind")),
            "workers": int(_get(r, "workers")),
            "speedup": float(_get(r, "speedup")),
            "ideal": float(_get(r, "ideal")),
            "repeats": int(_get(r, "repeats")),
            "cores": int(_get(r, "cores")),
        }
        for r in rows
    ]
    records = [r for r in records if r["kind"] != "sequential"]
    workloads = list(dict.fromkeys(r["workload"] for r in records)) or ["(no data)"]
    machine = machine or describe_machine()
    plt = pyplot()
    from matplotlib.ticker import FixedLocator, NullLocator

    fig, axes = plt.subplots(1, len(workloads), figsize=(5.8 * len(workloads), 4.6), squeeze=False)
    for ax, workload in zip(axes[0], workloads):
        mine = [r for r in records if r["workload"] == workload]
        kinds = list(dict.fromkeys(r["kind"] for r in mine))
        series = {k: [(r["workers"], r["speedup"]) for r in mine if r["kind"] == k] for k in kinds}
        ideal = sorted({(r["workers"], r["ideal"]) for r in mine})
        plot_speedup(series, ideal, ax=ax, machine=machine)
        by_label = {line.get_label(): line for line in ax.get_lines()}
        for kind in kinds:
            points = sorted((r["workers"], r["ideal"], r["speedup"]) for r in mine if r["kind"] == kind)
            color = _COLORS.get(kind) or by_label[kind].get_color()
            by_label[kind].set_color(color)
            try:
                p = fit_parallel_fraction([i for _, i, _ in points], [s for _, _, s in points])
            except ValueError:
                continue
            ax.plot(
                [n for n, _, _ in points],
                [_amdahl(p, i) for _, i, _ in points],
                ":",
                color=color,
                linewidth=1.5,
                label=f"{kind}: Amdahl fit, p = {p:.3f}",
            )
            below = kind == "processes"
            for n, _, s in points:
                ax.annotate(
                    f"{s:.1f}",
                    (n, s),
                    textcoords="offset points",
                    xytext=(0, -11 if below else 5),
                    ha="center",
                    fontsize=7,
                    color=color,
                )
        cores = {r["cores"] for r in mine}
        if workload == "primes" and len(cores) == 1:
            (n_cores,) = cores
            ax.axvline(n_cores, color="0.6", linewidth=0.8)
            ax.annotate(
                f"{n_cores} cores", (n_cores, 0), xytext=(3, 3), textcoords="offset points", fontsize=7, color="0.4"
            )
        counts = sorted({r["workers"] for r in mine})
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(counts))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(n) for n in counts])
        ax.set_xlabel("workers (threads or processes)")
        ax.set_ylabel("speedup (× a plain sequential loop)")
        top = max([r["speedup"] for r in mine] + [r["ideal"] for r in mine] + [1.0])
        ax.set_ylim(0, top * 1.12)
        ax.set_title(titles.get(workload, workload), fontsize=10)
        ax.legend(fontsize=7, loc="best")
    repeats = sorted({r["repeats"] for r in records})
    runs = "/".join(map(str, repeats)) or "?"
    fig.suptitle(
        f"Speedup against workers: median of {runs} runs per point, warm pools\n{machine}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _run_length(spans: Sequence[TaskSpan]) -> float:
    return max(s.end for s in spans) - min(s.start for s in spans) if spans else 0.0


def plot_timelines(
    runs: Mapping[Any, Sequence[TaskSpan]],
    machine: str | None = None,
) -> Figure:
    """One Gantt chart per run, stacked: a row per worker, a bar per task.

    Each run is keyed by a :class:`concurrency_lab.sweep.Run` (anything with
    ``workload``, ``kind`` and ``workers``; ``str(key)`` is the panel title).
    Runs of the same workload share a time axis, and bars are coloured by
    kind. If one of them is sequential, a red line on the others marks when it
    ended: CPU-bound threads under the GIL end no earlier; processes on two
    cores end about halfway. A plain string key is a title only: that run is
    drawn on its own.

    Args:
        runs: run to the spans of one run (``TaskSpan`` from ``workers.timed_*``).
        machine: the machine line for the title; defaults to :func:`describe_machine`.

    Returns:
        The figure.
    """
    keys: list[Any] = list(runs) or ["(no runs)"]
    heights = [len({s.worker for s in runs.get(k, [])}) + 1.6 for k in keys]
    fig, axes = pyplot().subplots(
        len(keys),
        1,
        figsize=(8.5, 0.32 * sum(heights) + 1.4),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    groups: dict[Hashable, list[Any]] = {}
    for key in keys:
        groups.setdefault(getattr(key, "workload", key), []).append(key)
    for ax, key in zip(axes[:, 0], keys):
        spans = list(runs.get(key, []))
        length = _run_length(spans)
        took = f"{length:.2f} s" if length >= 1 else f"{length * 1000:.0f} ms"
        plot_timeline(spans, title=f"{key}: {took} from first start to last end", ax=ax)
        for bars in ax.collections:
            bars.set_facecolor(_COLORS.get(getattr(key, "kind", ""), "C2"))
        group = groups[getattr(key, "workload", key)]
        longest = max(_run_length(list(runs.get(k, []))) for k in group)
        ax.set_xlim(0, max(longest, 1e-3) * 1.04)
        sequential = next((k for k in group if getattr(k, "kind", None) == "sequential"), None)
        if sequential is not None and key != sequential:
            end = _run_length(list(runs[sequential]))
            ax.axvline(end, color="red", linestyle="--", linewidth=1)
            ax.annotate(
                "sequential run ends",
                (end, 1),
                xycoords=("data", "axes fraction"),
                xytext=(-3, -9),
                textcoords="offset points",
                ha="right",
                fontsize=7,
                color="red",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
            )
        if ax is not axes[-1, 0]:
            ax.set_xlabel("")
    axes[-1, 0].set_xlabel("seconds since the run's first task started")
    fig.suptitle(
        f"One run of each workload: a row per worker, a bar per task (start to end)\n{machine or describe_machine()}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
