"""The charts draw what they are given: lines, ideal, bars per worker."""

from __future__ import annotations

import subprocess
import sys

from concurrency_lab.charts import plot_speedup, plot_timeline
from concurrency_lab.workers import TaskSpan


def test_plot_speedup_draws_each_series_and_the_ideal():
    """One line per series plus a dashed ideal, with the machine line in the title."""
    ax = plot_speedup(
        {"threads": [(1, 1.0), (2, 1.1)], "processes": [(2, 1.9), (1, 1.0)]},
        ideal=[(1, 1), (2, 2)],
        title="Primes",
        machine="2 cores · test",
    )
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["ideal", "threads", "processes"]
    assert list(ax.get_lines()[2].get_xdata()) == [1, 2]
    assert "2 cores · test" in ax.get_title()


def test_plot_timeline_one_row_per_worker():
    """Bars land on their worker's row, times relative to the first start."""
    spans = [
        TaskSpan("pid 1", "a", 10.0, 11.0, 1),
        TaskSpan("pid 2", "b", 10.5, 11.5, 2),
        TaskSpan("pid 1", "c", 11.0, 12.0, 1),
    ]
    ax = plot_timeline(spans, title="t")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pid 1", "pid 2"]
    bars = ax.collections
    assert len(bars) == 3
    assert bars[0].get_paths()[0].get_extents().x0 == 0.0
    assert plot_timeline([], title="empty").get_title() == "empty (no tasks)"


def test_importing_the_charts_does_not_import_pyplot():
    """A kernel that imports the charts but draws none (quick mode) does not pay for matplotlib.pyplot."""
    probe = "import sys, concurrency_lab.charts; print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stdout
