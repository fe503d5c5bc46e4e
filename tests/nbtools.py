"""Test helpers: run notebooks and nbgrader the way students and instructors do.

Everything runs on copies in a temporary folder, so a test never writes into
``source/`` or ``release/`` (notebooks write ``%%writefile`` modules and data
files next to themselves).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbgrader.utils import is_grade

from concurrency_lab.grading.settings import KERNEL_ENV
from concurrency_lab.grading.staging import fill_answers, grade_id
from concurrency_lab.grading.transport import use_ipc_transport

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "source" / "day3"
RELEASE = ROOT / "release" / "day3"
BIN = Path(sys.executable).parent


def grade_cells(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The cells with an nbgrader ``grade_id``, by that id."""
    return {grade_id(cell): cell for cell in nb.cells if grade_id(cell) is not None}


def test_cell_ids(nb: nbformat.NotebookNode) -> list[str]:
    """The grade_ids of the autograder test cells, in notebook order."""
    return [gid for gid, cell in grade_cells(nb).items() if is_grade(cell)]


class IpcNotebookClient(NotebookClient):
    """nbclient on Unix sockets: no TCP port for another test to take while the kernel starts."""

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        use_ipc_transport(km)
        return km


@dataclass
class CellResult:
    """What nbgrader would make of one test cell."""

    grade_id: str
    passed: bool
    output: str


def kernel_env(start_method: str | None = None, **extra: str) -> dict[str, str]:
    """The environment for a grading-like kernel: NBGRADER_EXECUTION and KERNEL_ENV set, start method forced."""
    env = dict(os.environ)
    env["NBGRADER_EXECUTION"] = "autograde"
    env.update(KERNEL_ENV)
    env["PYTHONWARNINGS"] = env.get("PYTHONWARNINGS", "")
    if start_method:
        env["CONCURRENCY_LAB_START_METHOD"] = start_method
    env.update(extra)
    return env


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(f"[{out.name}] {out.text}")
        elif out.output_type == "error":
            parts.append(f"[error] {out.ename}: {out.evalue}\n" + "\n".join(out.traceback))
    return "".join(parts)


def run_notebook(
    path: Path,
    workdir: Path,
    answers: dict[str, str] | None = None,
    start_method: str | None = None,
    timeout: int = 60,
    env: dict[str, str] | None = None,
) -> tuple[nbformat.NotebookNode, dict[str, CellResult]]:
    """Execute a copy of ``path`` in ``workdir`` and judge every test cell.

    Args:
        path: the notebook (source or release).
        workdir: where the kernel runs; files the notebook writes land here.
        answers: grade_id to new source, for answer cells replaced by a
            variant (a wrong answer, or another correct one); a grade_id
            that names no answer cell is a KeyError.
        start_method: force ``fork``/``spawn``/``forkserver`` in the kernel.
        timeout: seconds per cell.
        env: extra environment variables for the kernel.

    Returns:
        The executed notebook and, for each test cell, whether it passed as
        nbgrader would judge it: no error output and nothing on stderr.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    nb = fill_answers(nbformat.read(path, as_version=4), answers or {}, strict=True)
    client = IpcNotebookClient(
        nb,
        timeout=timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=kernel_env(start_method, **(env or {})))
    results = {}
    for gid in test_cell_ids(nb):
        cell = grade_cells(nb)[gid]
        bad = [
            out
            for out in cell.get("outputs", [])
            if out.output_type == "error" or (out.output_type == "stream" and out.name == "stderr")
        ]
        results[gid] = CellResult(gid, not bad, _text(cell))
    return nb, results


def errors_outside_tests(nb: nbformat.NotebookNode) -> list[str]:
    """Describe every error output in a cell that is not a test cell."""
    tests = set(test_cell_ids(nb))
    found = []
    for index, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if cell.cell_type != "code" or gid in tests:
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {index} ({gid or 'plain'}): {out.ename}: {out.evalue}")
    return found


# nbgrader validate starts its kernel over TCP (only autograde uses ResilientExecute):
# jupyter_client picks free ports, and another process can take one before the kernel
# binds it. That failure is the machine's, not the notebook's: run the command again.
PORT_RACE = "zmq.error.ZMQError: Address already in use"


def nbgrader(*args: str, cwd: Path, timeout: int = 600, attempts: int = 3) -> subprocess.CompletedProcess[str]:
    """Run the ``nbgrader`` command of this environment in ``cwd``.

    A run whose kernel lost its TCP port to another process is run again, up to
    ``attempts`` runs in all; any other outcome is returned as it is.
    """
    for _ in range(attempts):
        done = subprocess.run(
            [str(BIN / "nbgrader"), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        if PORT_RACE not in done.stdout + done.stderr:
            break
    return done


def make_course(tmp: Path) -> Path:
    """Copy the course's nbgrader inputs (config, source/) into ``tmp``; return it."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", tmp / "source")
    return tmp


def assert_fails_exactly(results: dict[str, CellResult], tests: set[str], must_fail: set[str], case: str) -> None:
    """The notebook has exactly ``tests``, and exactly ``must_fail`` of them failed.

    On a mismatch the message shows the output of every surprising cell.
    """
    assert set(results) == set(tests)
    failed = {gid for gid, result in results.items() if not result.passed}
    assert failed == must_fail, f"{case}: failed {sorted(failed)}, expected {sorted(must_fail)}:\n" + "\n".join(
        results[gid].output[-1500:] for gid in sorted(failed ^ must_fail)
    )


@dataclass(frozen=True)
class Case:
    """One way to answer a graded notebook, and the test cells its hidden tests must fail.

    Every per-notebook judgement test (``tests/test_notebook_NN.py``) lists its cases
    in this shape and judges them with :func:`judge`.

    Attributes:
        name: what the answer does, shown as the pytest id.
        answers: grade_id of an answer cell to its new source; cells not named keep
            the reference solution.
        must_fail: the grade_ids of the test cells that must fail; every other test
            cell must pass.
        start_method: force ``fork``/``spawn``/``forkserver`` in the kernel.
        breaks_check_it: the answer also makes a cell outside the test cells (its
            *Check it* cell) raise; otherwise no such cell may show an error.
    """

    name: str
    answers: Mapping[str, str] = field(default_factory=dict)
    must_fail: AbstractSet[str] = frozenset()
    start_method: str | None = None
    breaks_check_it: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "must_fail", frozenset(self.must_fail))

    def __str__(self) -> str:
        return self.name


def judge(
    notebook: Path,
    case: Case,
    workdir: Path,
    tests: Iterable[str] | None = None,
    timeout: int = 60,
    not_judged: str | None = None,
) -> tuple[nbformat.NotebookNode, dict[str, CellResult]]:
    """Run ``notebook`` with ``case``'s answers and assert exactly ``case.must_fail`` failed.

    Args:
        notebook: the source notebook.
        case: the answers, the start method, and what must fail.
        workdir: where the kernel runs.
        tests: every test cell's grade_id; default: the test cells the notebook has.
        timeout: seconds per cell.
        not_judged: what a test cell prints when the machine was too busy for it to
            judge the answer (it then passes); such a cell in ``must_fail`` may pass.

    Returns:
        The executed notebook and each test cell's result, for checks of its own.
    """
    nb, results = run_notebook(
        notebook, workdir, answers=dict(case.answers), start_method=case.start_method, timeout=timeout
    )
    must_fail = set(case.must_fail)
    if not_judged:
        must_fail -= {gid for gid in must_fail if results[gid].passed and not_judged in results[gid].output}
    assert_fails_exactly(results, set(results) if tests is None else set(tests), must_fail, case.name)
    if not case.breaks_check_it:
        assert errors_outside_tests(nb) == [], case.name
    return nb, results
