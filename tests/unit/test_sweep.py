"""The speedup lab: the sweep's rows and CSV, the ideal line, the Amdahl fit, the charts.

Concurrency is proven by counters and process IDs (the page server's peak
in-flight count, the PIDs that ran the tasks), never by a stopwatch alone.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os

import matplotlib.pyplot as plt
import pytest

from concurrency_lab import charts, sweep
from concurrency_lab.machine import cpu_count
from concurrency_lab.workers import TaskSpan

CORES = cpu_count()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def quick_sweep():
    """One quick-mode sweep (50 ms latency, so 8 requests surely overlap), with its output."""
    config = sweep.make_config(quick=True, latency=0.05)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rows = sweep.run(config, progress=True)
    return config, rows, out.getvalue(), err.getvalue()


def _row(rows, workload, kind, workers):
    found = [r for r in rows if (r.workload, r.kind, r.workers) == (workload, kind, workers)]
    assert len(found) == 1, (workload, kind, workers)
    return found[0]


def test_full_and_quick_configs():
    """Full: threads 1-16, processes past the cores, more chunks than workers; quick is smaller."""
    full = sweep.make_config(quick=False)
    assert full.threads == (1, 2, 4, 8, 16)
    assert full.processes == tuple(range(1, 2 * CORES + 3))
    assert max(full.processes) > CORES
    assert full.prime_chunks > max(full.threads + full.processes)
    assert (full.pages, full.latency, full.repeats, full.warmup) == (16, 0.1, 5, 1)
    quick = sweep.make_config(quick=True)
    assert quick.quick and not full.quick
    assert quick.prime_limit < full.prime_limit and len(quick.threads) < len(full.threads)
    assert max(quick.processes) > CORES and quick.prime_chunks > max(quick.threads)
    assert sweep.make_config(quick=True, threads=[1, 8]).threads == (1, 8)
    with pytest.raises(ValueError):
        sweep.make_config(quick=True, workers=3)
    with pytest.raises(ValueError):
        sweep.make_config(quick=True, workloads=("sleep",))
    with pytest.raises(ValueError):
        sweep.make_config(quick=True, threads=(0,))


def test_quick_sweep_has_every_point_once(quick_sweep):
    """A row per workload for the baseline, each thread count and each process count."""
    config, rows, _, _ = quick_sweep
    expected = []
    for workload in sweep.WORKLOADS:
        expected += [(workload, "sequential", 1)]
        expected += [(workload, "threads", n) for n in config.threads]
        expected += [(workload, "processes", n) for n in config.processes]
    assert [(r.workload, r.kind, r.workers) for r in rows] == expected
    for r in rows:
        assert type(r.median_s) is float and r.median_s > 0
        assert r.repeats == config.repeats == len(r.times)
        assert r.median_s == sorted(r.times)[len(r.times) // 2]
        assert (r.cores, r.python) == (CORES, sweep.python_line())


def test_speedup_is_against_the_sequential_loop(quick_sweep):
    """speedup = sequential median / median; the baseline's own speedup is 1."""
    _, rows, _, _ = quick_sweep
    for workload in sweep.WORKLOADS:
        base = _row(rows, workload, "sequential", 1)
        assert base.speedup == 1.0 and base.ideal == 1.0
        for r in rows:
            if r.workload == workload:
                assert math.isclose(r.speedup, base.median_s / r.median_s)


def test_ideal_is_min_of_workers_and_pages_or_cores(quick_sweep):
    """Ideal: min(workers, pages) for download, min(workers, cores) for primes."""
    config, rows, _, _ = quick_sweep
    for r in rows:
        if r.kind == "sequential":
            continue
        cap = config.pages if r.workload == "download" else CORES
        assert r.ideal == min(r.workers, cap), r


def test_progress_bar_goes_to_stdout_only(quick_sweep):
    """The progress bar is on stdout; nothing reaches stderr (nbgrader scores stderr as 0)."""
    _, _, out, err = quick_sweep
    assert "sweep" in out and "100%" in out
    assert err == ""


def test_download_threads_really_overlap(quick_sweep):
    """The page server saw exactly as many requests at once as there were threads."""
    config, rows, _, _ = quick_sweep
    assert _row(rows, "download", "threads", 8).peak_in_flight == 8
    assert _row(rows, "download", "sequential", 1).peak_in_flight == 1
    for n in config.threads:
        r = _row(rows, "download", "threads", n)
        assert r.peak_in_flight == min(n, config.pages)
        assert r.pids == {os.getpid()}
        assert len(r.worker_names) == n


def test_prime_processes_are_other_processes(quick_sweep):
    """Process pools ran the primes in child processes; thread pools in this one."""
    config, rows, _, _ = quick_sweep
    for n in config.processes:
        r = _row(rows, "primes", "processes", n)
        assert os.getpid() not in r.pids
        assert 1 <= len(r.pids) <= n
        assert r.worker_names == {f"pid {pid}" for pid in r.pids}
        assert r.startup_s >= 0
    assert len(_row(rows, "primes", "processes", 2).pids) == 2
    for n in config.threads:
        assert _row(rows, "primes", "threads", n).pids == {os.getpid()}


def test_csv_has_exactly_the_columns_and_reads_back(quick_sweep, tmp_path):
    """docs/speedups.csv: the nine columns in order, one line per row, readable again."""
    _, rows, _, _ = quick_sweep
    path = sweep.write_csv(rows, tmp_path / "out" / "speedups.csv")
    with open(path, newline="") as handle:
        lines = list(csv.reader(handle))
    assert (
        tuple(lines[0])
        == sweep.COLUMNS
        == (
            "workload",
            "kind",
            "workers",
            "median_s",
            "speedup",
            "ideal",
            "repeats",
            "cores",
            "python",
        )
    )
    assert len(lines) == len(rows) + 1
    back = sweep.read_csv(path)
    assert [(r.workload, r.kind, r.workers, r.repeats) for r in back] == [
        (r.workload, r.kind, r.workers, r.repeats) for r in rows
    ]
    assert all(math.isclose(a.speedup, b.speedup, abs_tol=1e-3) for a, b in zip(back, rows))
    bad = tmp_path / "bad.csv"
    bad.write_text("workload,kind\ndownload,threads\n")
    with pytest.raises(ValueError):
        sweep.read_csv(bad)


def test_table_lists_every_row(quick_sweep):
    """The Markdown table has a header, a rule and a line per row."""
    _, rows, _, _ = quick_sweep
    lines = sweep.table(rows).splitlines()
    assert len(lines) == len(rows) + 2 and lines[0].startswith("| workload |")


def _synthetic_rows(thread_speedups, process_speedups):
    rows = []
    for workload in ("download", "primes"):
        for kind, values in (("threads", thread_speedups), ("processes", process_speedups)):
            for n, s in values.items():
                cap = 16 if workload == "download" else 2
                rows.append(sweep.Row(workload, kind, n, 1.0 / s, s, float(min(n, cap)), 5, 2, "X"))
    return rows


def test_expected_speedups_are_checked():
    """8 threads on download >= 7.2x, 2 processes on primes >= 1.8x, threads on primes <= 1.2x."""
    good = sweep.expected_speedups(_synthetic_rows({1: 1.0, 8: 7.5}, {1: 1.0, 2: 1.9}))
    assert [met for *_, met in good] == [True, True, False]  # threads on primes 7.5x: not GIL-bound
    rows = [r for r in _synthetic_rows({1: 1.0, 8: 7.0}, {1: 1.0, 2: 1.9}) if r.workload == "download"]
    rows += [r for r in _synthetic_rows({1: 1.0, 8: 1.1}, {1: 1.0, 2: 1.7}) if r.workload == "primes"]
    assert [(value, met) for _, value, _, met in sweep.expected_speedups(rows)] == [
        (7.0, False),
        (1.7, False),
        (1.1, True),
    ]
    assert all(value is None and not met for _, value, _, met in sweep.expected_speedups([]))


# -- Amdahl's law ---------------------------------------------------------------------


def test_amdahl_known_values():
    """1 / ((1 - p) + p / n): p = 0.9 on 2 workers is 1/0.55; p = 1 scales perfectly."""
    assert math.isclose(charts._amdahl(0.9, 2), 1 / 0.55)
    assert charts._amdahl(1.0, 8) == 8.0
    assert charts._amdahl(0.0, 8) == 1.0
    for bad in ((-0.1, 2), (1.1, 2), (0.5, 0.5)):
        with pytest.raises(ValueError):
            charts._amdahl(*bad)


@pytest.mark.parametrize("p", [0.0, 0.5, 0.9, 0.99, 1.0])
def test_fit_recovers_a_known_parallel_fraction(p):
    """Exact synthetic speedups give back the p they were made from."""
    workers = [1, 2, 4, 8, 16]
    speedups = [charts._amdahl(p, n) for n in workers]
    assert math.isclose(charts.fit_parallel_fraction(workers, speedups), p, abs_tol=1e-12)


def test_fit_is_least_squares_on_noisy_data():
    """Noise of +-2 % in the times moves the fitted p only a little; it stays in [0, 1]."""
    workers = [1, 2, 3, 4, 6, 8]
    noise = [1.02, 0.98, 1.01, 0.99, 1.02, 0.98]
    speedups = [charts._amdahl(0.95, n) / e for n, e in zip(workers, noise)]
    assert abs(charts.fit_parallel_fraction(workers, speedups) - 0.95) < 0.02
    assert charts.fit_parallel_fraction([1, 2, 4], [1.0, 0.8, 0.7]) == 0.0  # slower: clipped
    assert charts.fit_parallel_fraction([2, 4], [2.5, 5.0]) == 1.0  # superlinear: clipped


def test_fit_rejects_data_that_cannot_determine_p():
    """Only one-worker points, mismatched lengths or non-positive speedups are errors."""
    for workers, speedups in (([1, 1], [1.0, 1.1]), ([1, 2], [1.0]), ([2], [0.0]), ([0], [1.0])):
        with pytest.raises(ValueError):
            charts.fit_parallel_fraction(workers, speedups)


# -- charts ------------------------------------------------------------------------


def test_plot_speedups_two_panels_with_ideal_and_fits(tmp_path):
    """Download and primes panels, each with ideal, both kinds and their Amdahl fits."""
    rows = _synthetic_rows({1: 1.0, 2: 1.95, 8: 7.6}, {1: 0.98, 2: 1.9, 4: 1.85})
    path = sweep.write_csv(rows, tmp_path / "s.csv")
    with open(path, newline="") as handle:
        as_dicts = list(csv.DictReader(handle))  # CSV rows work as well as Row objects
    machine = "2 cores · CPython 3.13.1 · start method spawn · free-threaded, GIL disabled"
    fig = charts.plot_speedups(as_dicts, machine=machine)
    axes = fig.get_axes()
    assert len(axes) == 2
    assert "download" in axes[0].get_title() and "primes" in axes[1].get_title()
    assert "GIL disabled" in fig._suptitle.get_text() and "median of 5" in fig._suptitle.get_text()
    labels = [line.get_label() for line in axes[1].get_lines()]
    assert labels[:3] == ["ideal", "threads", "processes"]
    assert any(label.startswith("threads: Amdahl fit, p = ") for label in labels)
    assert any(label.startswith("processes: Amdahl fit, p = ") for label in labels)
    ideal = axes[1].get_lines()[0]
    assert list(ideal.get_ydata()) == [1.0, 2.0, 2.0, 2.0]
    one = charts.plot_speedups([r for r in rows if r.workload == "primes"], machine="m")
    assert len(one.get_axes()) == 1


def test_plot_timelines_shares_time_within_a_workload():
    """One panel per run; the sequential run's end is marked on the other prime panels."""

    def spans(worker, n, length, pid=1, offset=0.0):
        return [TaskSpan(worker, str(i), offset + i * length, offset + (i + 1) * length, pid) for i in range(n)]

    runs = {
        sweep.Run("download", "threads", 2): spans("thread_0", 2, 0.1) + spans("thread_1", 2, 0.1),
        sweep.Run("primes", "sequential"): spans("MainThread", 4, 0.1),
        sweep.Run("primes", "threads", 2): spans("thread_0", 2, 0.2) + spans("thread_1", 2, 0.2),
        sweep.Run("primes", "processes", 2): spans("pid 7", 2, 0.1, 7) + spans("pid 8", 2, 0.1, 8, 0.01),
    }
    fig = charts.plot_timelines(runs, machine="m")
    axes = fig.get_axes()
    assert len(axes) == 4
    assert axes[1].get_xlim() == axes[2].get_xlim() == axes[3].get_xlim()
    assert axes[0].get_xlim() != axes[1].get_xlim()
    marked = [any(line.get_color() == "red" for line in ax.get_lines()) for ax in axes]
    assert marked == [False, False, True, True]
    assert [t.get_text() for t in axes[3].get_yticklabels()] == ["pid 7", "pid 8"]
    assert axes[2].get_title().startswith("primes · 2 threads: ")
    colors = [tuple(ax.collections[0].get_facecolor()[0]) for ax in axes]
    assert colors[1] != colors[2] != colors[3] and colors[0] == colors[2]  # by kind: sequential, threads, processes


def test_plot_timelines_draws_a_run_named_by_a_plain_title_alone():
    """A run keyed by a plain string is drawn on its own: no shared axis, no sequential mark."""
    fig = charts.plot_timelines(
        {
            "primes · sequential": [TaskSpan("MainThread", "a", 0.0, 1.0, 1)],
            "primes · 2 threads": [TaskSpan("thread_0", "a", 0.0, 2.0, 1)],
        },
        machine="m",
    )
    axes = fig.get_axes()
    assert axes[0].get_title().startswith("primes · sequential: ")
    assert not any(line.get_color() == "red" for ax in axes for line in ax.get_lines())
    assert axes[0].get_xlim() != axes[1].get_xlim()


def test_timelines_label_threads_and_processes():
    """The timeline runs: threads in this process by name, processes by their own PIDs."""
    config = sweep.make_config(quick=True, latency=0.02, prime_limit=30_000)
    runs = sweep.timelines(config, threads=4, workers=2)
    assert [str(run) for run in runs] == [
        "download · 4 threads",
        "primes · sequential",
        "primes · 2 threads",
        "primes · 2 processes",
    ]
    Run = sweep.Run
    assert list(runs) == [
        Run("download", "threads", 4),
        Run("primes", "sequential", 1),
        Run("primes", "threads", 2),
        Run("primes", "processes", 2),
    ]
    download = runs[Run("download", "threads", 4)]
    assert len(download) == config.pages
    assert {s.pid for s in download} == {os.getpid()}
    assert {s.worker for s in download} <= {f"thread_{i}" for i in range(4)}
    assert {s.worker for s in runs[Run("primes", "sequential")]} == {"MainThread"}
    processes = runs[Run("primes", "processes", 2)]
    assert len(processes) == 8 and os.getpid() not in {s.pid for s in processes}
    assert {s.worker for s in processes} == {f"pid {s.pid}" for s in processes}
    with pytest.raises(ValueError):
        sweep.timelines(config, repeats=0)
    with pytest.raises(ValueError):
        sweep.timelines(config, workloads=("sleep",))


def test_main_writes_csv_and_both_charts(tmp_path, monkeypatch, capsys):
    """`python -m concurrency_lab.sweep --out DIR` writes the CSV, both PNGs and the start-up CSV."""
    tiny = sweep.make_config(
        quick=True,
        threads=(1, 2),
        processes=(1, 2),
        pages=4,
        latency=0.01,
        prime_limit=20_000,
        prime_chunks=4,
        repeats=1,
    )
    monkeypatch.setattr(sweep, "make_config", lambda quick=None, **kw: tiny)
    assert sweep.main(["--out", str(tmp_path), "--quick"]) == 0
    for name in ("speedups.csv", "speedups.png", "timelines.png", "pool-startup.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert len(sweep.read_csv(tmp_path / "speedups.csv")) == 2 * 5
    captured = capsys.readouterr()
    assert "| workload |" in captured.out and captured.err == ""
