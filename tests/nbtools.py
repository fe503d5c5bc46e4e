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
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbgrader.utils import is_grade

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
    """The environment for a grading-like kernel: NBGRADER_EXECUTION set, start method forced."""
    env = dict(os.environ)
    env["NBGRADER_EXECUTION"] = "autograde"
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
            if out.output_type == "error"
            or (out.output_type == "stream" and out.name == "stderr")
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


def assert_fails_exactly(
    results: dict[str, CellResult], tests: set[str], must_fail: set[str], case: str
) -> None:
    """The notebook has exactly ``tests``, and exactly ``must_fail`` of them failed.

    On a mismatch the message shows the output of every surprising cell.
    """
    assert set(results) == set(tests)
    failed = {gid for gid, result in results.items() if not result.passed}
    assert failed == must_fail, f"{case}: failed {sorted(failed)}, expected {sorted(must_fail)}:\n" + "\n".join(
        results[gid].output[-1500:] for gid in sorted(failed ^ must_fail)
    )
