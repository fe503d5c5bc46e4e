"""Where grading a solved submission spends its time, notebook by notebook and cell by cell.

``python -m concurrency_lab.grading.profile`` runs each source notebook of the
assignment (the solutions and the hidden tests: what ``nbgrader autograde``
runs for a fully solved submission) in a fresh kernel, the way grading does
(``NBGRADER_EXECUTION=autograde`` and the grading kernel's
:data:`~.settings.KERNEL_ENV`, kernels on Unix sockets, all notebooks in one
working folder), and times every step with ``time.perf_counter``:

* **kernel start**: from launching the kernel to its first ``kernel_info`` reply;
* **imports**: the import statements at the top of the first code cell;
* **setup**: the rest of that cell (the start method, the machine line, flags);
* **lesson**: the other cells that are neither an answer nor a test;
* **answers**: the solution cells (``nbgrader.solution``);
* **tests**: the autograder test cells (``nbgrader.grade`` without ``solution``);
* **shutdown**: stopping the kernel.

Beside each wall time it gives the CPU time (user + system) of the kernel and
every process under it, so waiting shows as wall time without CPU time. With
``--repeats N`` each figure is the median of N runs. ``--top K`` lists the K
slowest cells with their first line.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from ..machine import describe_machine
from .settings import KERNEL_ENV
from .transport import use_ipc_transport
from .warmkernel import kernel_pid

__all__ = ["PHASES", "CellTime", "NotebookProfile", "classify", "main", "profile_notebook", "split_imports"]

PHASES = ("kernel start", "imports", "setup", "lesson", "answers", "tests", "shutdown")


@dataclass
class CellTime:
    """One timed step: a cell (``index`` >= 0) or a phase outside cells (``index`` -1)."""

    phase: str
    index: int
    wall: float
    cpu: float
    label: str = ""
    error: str = ""


@dataclass
class NotebookProfile:
    """Every timed step of one notebook's run."""

    notebook: str
    steps: list[CellTime] = field(default_factory=list)

    def by_phase(self) -> dict[str, tuple[float, float]]:
        """Wall and CPU seconds summed per phase, in :data:`PHASES` order."""
        sums: dict[str, list[float]] = {p: [0.0, 0.0] for p in PHASES}
        for step in self.steps:
            sums[step.phase][0] += step.wall
            sums[step.phase][1] += step.cpu
        return {p: (w, c) for p, (w, c) in sums.items()}

    @property
    def wall(self) -> float:
        return sum(s.wall for s in self.steps)


def classify(cell: nbformat.NotebookNode) -> str:
    """``answers``, ``tests`` or ``lesson``, from the cell's nbgrader metadata."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("solution"):
        return "answers"
    if meta.get("grade"):
        return "tests"
    return "lesson"


def split_imports(source: str) -> tuple[str, str]:
    """Split a cell into its leading import statements and the rest (both runnable on their own)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return "", source
    lines = source.splitlines(keepends=True)
    end = 0
    for statement in body:
        if not isinstance(statement, ast.Import | ast.ImportFrom):
            break
        end = statement.end_lineno or end
    return "".join(lines[:end]), "".join(lines[end:])


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process, its live descendants, and the children they reaped."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class _Client(NotebookClient):
    def create_kernel_manager(self) -> Any:
        km = super().create_kernel_manager()
        use_ipc_transport(km)
        return km


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:70]
    return ""


def profile_notebook(
    path: Path, workdir: Path, timeout: int = 60, kernel_name: str = "", shutdown: str = "graceful"
) -> NotebookProfile:
    """Run one notebook in ``workdir`` in a fresh kernel and time each step.

    ``shutdown`` is nbclient's ``shutdown_kernel``: ``graceful`` or ``immediate``.
    """
    nb = nbformat.read(path, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    cells: list[tuple[str, int, nbformat.NotebookNode]] = []
    for i in code:
        cell = nb.cells[i]
        if i == code[0] and classify(cell) == "lesson":
            imports, rest = split_imports(cell.source)
            for phase, source in (("imports", imports), ("setup", rest)):
                if source.strip():
                    cells.append((phase, i, nbformat.v4.new_code_cell(source)))
        else:
            cells.append((classify(cell), i, cell))
    client = _Client(
        nb,
        shutdown_kernel=shutdown,
        timeout=timeout,
        allow_errors=True,
        kernel_name=kernel_name or "",
        resources={"metadata": {"path": str(workdir)}},
    )
    profile = NotebookProfile(path.name)
    grading_env = {"NBGRADER_EXECUTION": "autograde", **KERNEL_ENV}  # as the grader's kernels have it
    previous = {name: os.environ.get(name) for name in grading_env}
    os.environ.update(grading_env)
    try:
        start = time.perf_counter()
        client.km = client.create_kernel_manager()
        client.start_new_kernel()
        client.start_new_kernel_client()
        pid = kernel_pid(client.km)
        profile.steps.append(CellTime("kernel start", -1, time.perf_counter() - start, _tree_cpu(pid)))
        try:
            for phase, index, cell in cells:
                cpu0, wall0 = _tree_cpu(pid), time.perf_counter()
                client.execute_cell(cell, index)
                wall, cpu = time.perf_counter() - wall0, _tree_cpu(pid) - cpu0
                errors = [o.get("ename", "") for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                profile.steps.append(CellTime(phase, index, wall, cpu, _first_line(cell.source), ",".join(errors)))
        finally:
            cpu0, wall0 = _tree_cpu(pid), time.perf_counter()
            client._cleanup_kernel()
            profile.steps.append(CellTime("shutdown", -1, time.perf_counter() - wall0, 0.0))
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return profile


def course_shutdown(root: Path) -> str:
    """How the course's nbgrader_config.py stops kernels (``Execute.shutdown_kernel``)."""
    from traitlets.config.loader import PyFileConfigLoader

    if not (root / "nbgrader_config.py").exists():
        return "graceful"
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    return config.Execute.get("shutdown_kernel", "graceful")


def profile_assignment(
    root: Path, assignment: str, timeout: int = 60, shutdown: str = "graceful"
) -> list[NotebookProfile]:
    """Profile every source notebook of ``assignment``, in one shared working folder."""
    source = root / "source" / assignment
    with tempfile.TemporaryDirectory(prefix="cl-profile-") as tmp:
        work = Path(tmp)
        for nb in sorted(source.glob("*.ipynb")):
            shutil.copy(nb, work / nb.name)
        return [
            profile_notebook(work / nb.name, work, timeout, shutdown=shutdown) for nb in sorted(source.glob("*.ipynb"))
        ]


def _median_profiles(runs: list[list[NotebookProfile]]) -> list[NotebookProfile]:
    """Step by step medians over several runs of the same notebooks."""
    merged = []
    for profiles in zip(*runs):
        steps = []
        for group in zip(*(p.steps for p in profiles)):
            first = group[0]
            steps.append(
                CellTime(
                    first.phase,
                    first.index,
                    statistics.median(s.wall for s in group),
                    statistics.median(s.cpu for s in group),
                    first.label,
                    ",".join(sorted({s.error for s in group if s.error})),
                )
            )
        merged.append(NotebookProfile(profiles[0].notebook, steps))
    return merged


def report(profiles: Iterable[NotebookProfile], top: int = 15) -> str:
    """The phase table (wall / CPU seconds per notebook) and the slowest cells."""
    profiles = list(profiles)
    lines = [f"{'notebook':<28}" + "".join(f"{p:>17}" for p in PHASES) + f"{'total':>17}"]
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for profile in profiles:
        row = f"{profile.notebook:<28}"
        for phase, (wall, cpu) in profile.by_phase().items():
            row += f"{wall:>9.2f} /{cpu:>6.2f}"
            totals[phase][0] += wall
            totals[phase][1] += cpu
        wall = profile.wall
        cpu = sum(s.cpu for s in profile.steps)
        row += f"{wall:>9.2f} /{cpu:>6.2f}"
        totals["total"][0] += wall
        totals["total"][1] += cpu
        lines.append(row)
    lines.append(
        f"{'all six' if len(profiles) == 6 else 'all':<28}"
        + "".join(f"{totals[p][0]:>9.2f} /{totals[p][1]:>6.2f}" for p in (*PHASES, "total"))
    )
    lines.append("(wall / CPU seconds; CPU counts the kernel and every process under it)")
    cells = sorted((s for p in profiles for s in p.steps if s.index >= 0), key=lambda s: s.wall, reverse=True)
    owner = {id(s): p.notebook for p in profiles for s in p.steps}
    lines.append("")
    lines.append(f"the {top} slowest cells: wall, CPU, waiting (wall - CPU when positive)")
    for s in cells[:top]:
        waiting = max(s.wall - s.cpu, 0.0)
        flag = f"  [{s.error}]" if s.error else ""
        lines.append(
            f"{s.wall:7.2f} {s.cpu:6.2f} {waiting:6.2f}  {owner[id(s)][:2]} cell {s.index:<3} "
            f"{s.phase:<8} {s.label}{flag}"
        )
    failed = [f"{owner[id(s)]} cell {s.index}: {s.error}" for s in cells if s.error]
    if failed:
        lines.append("")
        lines.append("cells with errors (a solved submission should have none): " + "; ".join(failed))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Profile the assignment and print the tables (and write them as JSON with ``--json``)."""
    parser = argparse.ArgumentParser(
        prog="python -m concurrency_lab.grading.profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="course folder (default: here)")
    parser.add_argument("--assignment", default="day3")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each notebook; medians shown")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    parser.add_argument("--top", type=int, default=15, help="how many of the slowest cells to list")
    parser.add_argument("--json", type=Path, help="also write every step as JSON here")
    parser.add_argument(
        "--shutdown",
        choices=["graceful", "immediate"],
        help="how kernels stop (default: as the course's nbgrader_config.py says)",
    )
    args = parser.parse_args(argv)
    shutdown = args.shutdown or course_shutdown(args.root.resolve())
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    runs = [
        profile_assignment(args.root.resolve(), args.assignment, args.timeout, shutdown) for _ in range(args.repeats)
    ]
    profiles = _median_profiles(runs)
    print(describe_machine())
    print(
        f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"median of {args.repeats} run(s) of each notebook of {args.assignment}, solved; "
        f"kernels stopped: {shutdown}"
    )
    print(report(profiles, args.top))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in profiles], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
