"""Feedback never shows hidden tests; a kernel that fails to start is started again."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from concurrency_lab.grading.hidehiddentests import WITHHELD, HideHiddenTests, strip_hidden_tests
from concurrency_lab.grading.resilientexecute import ResilientExecute
from concurrency_lab.grading.settings import EVENTS_ENV
from nbtools import run_notebook

CELL = '''"""visible docstring"""
assert f() == 1
    ### BEGIN HIDDEN TESTS
    assert f(2) == 4, "secret"
    ### END HIDDEN TESTS
print("after")'''


def test_strip_hidden_tests_removes_the_region_keeps_the_rest():
    """Hidden lines go; visible lines and a placeholder stay."""
    out, removed = strip_hidden_tests(CELL)
    assert removed
    assert "secret" not in out and "f(2)" not in out
    assert out.splitlines() == ['"""visible docstring"""', "assert f() == 1", "    " + WITHHELD, 'print("after")']
    assert strip_hidden_tests("x = 1") == ("x = 1", False)


@pytest.mark.parametrize(
    "bad",
    ["### BEGIN HIDDEN TESTS\nx", "### END HIDDEN TESTS", "### BEGIN HIDDEN TESTS\n### BEGIN HIDDEN TESTS"],
)
def test_strip_hidden_tests_rejects_unbalanced_markers(bad):
    """An unclosed, stray or nested marker is an error, never a silent leak."""
    with pytest.raises(ValueError):
        strip_hidden_tests(bad)


def test_preprocessor_hides_source_and_traceback():
    """The feedback preprocessor strips the source and the traceback that quotes it."""
    cell = nbformat.v4.new_code_cell(CELL)
    cell.outputs = [
        nbformat.v4.new_output("error", ename="AssertionError", evalue="secret", traceback=["line", "assert f(2) == 4"])
    ]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("BEGIN HIDDEN TESTS?")])
    nb, _ = HideHiddenTests()(nb, {})  # as an exporter calls it: enabled by default
    text = nbformat.writes(nb)
    assert "f(2)" not in text and "secret" not in text
    assert nb.cells[0].outputs[0].traceback[0].startswith("AssertionError: a hidden test failed")
    assert nb.cells[1].source == "BEGIN HIDDEN TESTS?"


def test_feedback_shows_hints_and_the_graders_errors_and_withholds_the_rest():
    """A Hint keeps its message; a plain assert, an exception and every traceback are withheld."""
    hidden = "### BEGIN HIDDEN TESTS\nassert transfer(a, b) is None, 'secret-assert'\n### END HIDDEN TESTS"

    def error(ename, evalue):
        return nbformat.v4.new_output(
            "error", ename=ename, evalue=evalue, traceback=["  File cell, line 2", "assert transfer(a, b)"]
        )

    cases = {
        "Hint": ("thread-1 holds a.lock and waits for b.lock", "A hidden test failed: thread-1 holds a.lock"),
        "AssertionError": ("secret-assert", "AssertionError: a hidden test failed (details withheld"),
        "KeyError": ("'secret-key'", "KeyError: a hidden test failed (details withheld"),
        "CellTimeoutError": ("the cell ran past 60 s and ignored the interrupt", "CellTimeoutError: the cell ran"),
        "KeyboardInterrupt": ("", "KeyboardInterrupt: the cell was interrupted at its time limit"),
    }
    cells = []
    for ename, (evalue, _) in cases.items():
        cell = nbformat.v4.new_code_cell(hidden)
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="Clean-up: this cell left 1 process"),
            error(ename, evalue),
        ]
        cells.append(cell)
    nb, _ = HideHiddenTests()(nbformat.v4.new_notebook(cells=cells), {})
    text = nbformat.writes(nb)
    assert "secret" not in text and "transfer(a, b)" not in text
    for cell, (ename, (_, shown)) in zip(nb.cells, cases.items()):
        assert cell.outputs[0].text == "Clean-up: this cell left 1 process"  # reports on stdout stay
        assert len(cell.outputs[1].traceback) == 1 and cell.outputs[1].traceback[0].startswith(shown), ename
    assert nb.cells[0].outputs[1].evalue == "thread-1 holds a.lock and waits for b.lock"


def _kernelspec(root: Path, name: str, failures: int) -> None:
    """A kernelspec whose first ``failures`` launches exit at once, like a kernel that cannot bind."""
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    launcher = root / f"{name}.py"
    launcher.write_text(
        "import os, sys\n"
        f"count = {str(root / (name + '.count'))!r}\n"
        "n = int(open(count).read()) if os.path.exists(count) else 0\n"
        "open(count, 'w').write(str(n + 1))\n"
        f"if n < {failures}:\n"
        "    sys.exit(3)\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'ipykernel_launcher', *sys.argv[1:]])\n"
    )
    argv = [sys.executable, str(launcher), "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name, "language": "python"}))


def _execute(tmp_path: Path, kernel: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport, 6 * 7)"
            )
        ]
    )
    executor = ResilientExecute(kernel_name=kernel, timeout=30, startup_timeout=30)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    return nb


def test_a_kernel_that_fails_to_start_is_started_again(tmp_path, monkeypatch):
    """A kernel that dies while starting (a port taken under it) costs a retry, not the submission."""
    _kernelspec(tmp_path, "flaky", failures=2)
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv(EVENTS_ENV, str(events))
    nb = _execute(tmp_path, "flaky")
    transport = "ipc" if os.name == "posix" else "tcp"
    assert nb.cells[0].outputs[0]["text"] == f"{transport} 42\n"
    assert (tmp_path / "flaky.count").read_text() == "3"
    reasons = [json.loads(line)["reason"] for line in events.read_text().splitlines()]
    assert len(reasons) == 2 and all("failed to start" in r for r in reasons)


def test_a_kernel_that_never_starts_fails_after_the_last_attempt(tmp_path, monkeypatch):
    """Retries are bounded: the error reaches nbgrader, which reports the submission as failed."""
    _kernelspec(tmp_path, "broken", failures=99)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="died"):
        _execute(tmp_path, "broken")
    assert (tmp_path / "broken.count").read_text() == str(ResilientExecute().kernel_start_attempts)


@pytest.mark.skipif(os.name != "posix", reason="Unix sockets")
def test_nbval_and_test_kernels_use_unix_sockets(tmp_path):
    """No kernel in the test session races other processes for a TCP port."""
    from nbval.kernel import RunningKernel

    kernel = RunningKernel("python3", cwd=str(tmp_path))
    try:
        assert kernel.km.transport == "ipc"
    finally:
        kernel.stop()
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)"
            )
        ]
    )
    nbformat.write(nb, tmp_path / "transport.ipynb")
    nb, _ = run_notebook(tmp_path / "transport.ipynb", tmp_path / "run")
    assert nb.cells[0].outputs[0]["text"] == "ipc\n"


def test_a_test_cell_zeroed_by_stderr_says_so(tmp_path, monkeypatch):
    """A passing test cell that wrote to stderr is told why it scores 0, in the cell and in the report."""
    from nbgrader.utils import determine_grade

    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(EVENTS_ENV, str(events))

    def test_cell(grade_id: str, source: str) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 1, "solution": False}
        return cell

    nb = nbformat.v4.new_notebook(
        cells=[
            test_cell("noisy", "import sys\nprint('debugging', file=sys.stderr)\nassert 1 + 1 == 2"),
            test_cell("quiet", "print('fine')\nassert 1 + 1 == 2"),
            test_cell("failing", "import sys\nprint('why', file=sys.stderr)\nassert 1 + 1 == 3"),
        ]
    )
    executor = ResilientExecute(kernel_name="python3", timeout=30, startup_timeout=30)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    noisy, quiet, failing = nb.cells
    assert noisy.outputs[0]["text"].startswith("[grader] 0 points because of output on stderr")
    assert [determine_grade(cell)[0] for cell in nb.cells] == [0, 1, 0]
    assert not any("[grader]" in out.get("text", "") for cell in (quiet, failing) for out in cell.outputs)
    reported = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["grade_id"], e["reason"]) for e in reported] == [("noisy", "0 points because of output on stderr")]


def test_an_immediate_stop_kills_and_reaps_the_kernel_without_polling(tmp_path, monkeypatch):
    """Stopping a kernel at once reaps it, with no 0.1 s poll in jupyter_client's kill"""
    import psutil
    from jupyter_client.manager import KernelManager

    polls = []
    original = KernelManager._async_wait

    async def counted(self, *args, **kwargs):
        polls.append(1)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(KernelManager, "_async_wait", counted)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nprint(os.getpid())")])
    executor = ResilientExecute(kernel_name="python3", timeout=30, startup_timeout=30, shutdown_kernel="immediate")
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert not psutil.pid_exists(int(nb.cells[0].outputs[0]["text"]))  # dead and reaped, not a zombie
    assert polls == []


def test_a_kernel_client_is_ready_without_a_fixed_wait(tmp_path, monkeypatch):
    """wait_for_ready ends once IOPub brought the kernel_info request's idle status, not after 0.2 s of silence"""
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    waits = []
    original = AsyncZMQSocketChannel.get_msg

    async def recorded(self, timeout=None):
        try:
            return await original(self, timeout=timeout)
        except Empty:
            waits.append(timeout)
            raise

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", recorded)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    executor = ResilientExecute(kernel_name="python3", timeout=30, startup_timeout=30)
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    assert waits and waits[-1] == 0  # the drain after the idle status: nothing was waited for


class _Replies:
    """An executor that answers each submit with the next preset result for that student (no grading)."""

    def __init__(self, replies):
        self.replies = replies

    def submit(self, fn, settings, student):
        from concurrent.futures import Future

        reply = self.replies[student].pop(0)
        if isinstance(reply, Exception):
            raise reply
        future = Future()
        future.set_result(reply)
        return future


def test_grade_class_survives_a_broken_pool_and_a_failed_second_grading(tmp_path):
    """A submit that raises is that student's error; a second grading that fails keeps the first scores."""
    from concurrent.futures.process import BrokenProcessPool

    from concurrency_lab.grading import grader
    from concurrency_lab.grading.settings import GradeSettings

    settings = GradeSettings(root=tmp_path)
    state = tmp_path / ".grader" / "state" / settings.assignment / "busy.json"
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    busy = grader.StudentResult("busy", "graded", 5, 6, not_judged=["01: test_cpu"])
    replies = {
        "busy": [busy, grader.StudentResult("busy", "error", notes=["nbgrader failed"])],
        "calm": [grader.StudentResult("calm", "graded", 6, 6)],
        "crashed": [BrokenProcessPool("a worker died")],
    }
    results = {r.student: r for r in grader.grade_class(settings, list(replies), _Replies(replies), progress=False)}
    assert results["crashed"].status == "error" and "a worker died" in results["crashed"].notes[0]
    assert (results["calm"].status, results["calm"].score) == ("graded", 6)
    assert (results["busy"].status, results["busy"].score) == ("graded", 5)
    assert "grading again failed (nbgrader failed): the next run grades it" in results["busy"].notes
    assert not state.exists(), "the next run must grade the student whose second grading failed"
