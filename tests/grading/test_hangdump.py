"""A cell stopped at the executor's timeout shows where the student's threads were, and nothing of the test."""

from __future__ import annotations

import nbformat
import pytest

from concurrency_lab.grading.hangdump import DUMP_SIGNAL, HangDump
from nbtools import IpcNotebookClient

STUDENT = """import threading


def spin():
    total = 0
    while True:
        total += 1


def take_twice(lock):
    with lock:
        with lock:
            pass


waiter = threading.Thread(target=take_twice, args=(threading.Lock(),), daemon=True)
waiter.start()"""

HIDDEN_TEST = """\"\"\"spin returns\"\"\"
### BEGIN HIDDEN TESTS
_secret_input = "canary-7d1f"
spin()
### END HIDDEN TESTS"""


class Client(HangDump, IpcNotebookClient):
    """nbclient with the hang dump, on Unix sockets."""


@pytest.mark.skipif(DUMP_SIGNAL is None, reason="needs SIGUSR2")
def test_a_timed_out_cell_shows_the_students_frames_before_the_interrupt(tmp_path):
    """Both threads' student frames are shown on stdout, before KeyboardInterrupt; the hidden test is not."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(STUDENT), nbformat.v4.new_code_cell(HIDDEN_TEST)])
    client = Client(
        nb,
        timeout=4,
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    outputs = nb.cells[1].outputs
    assert [out.output_type for out in outputs] == ["stream", "error"], outputs
    assert outputs[1].ename == "KeyboardInterrupt"
    report = outputs[0].text
    assert outputs[0].name == "stdout" and report.startswith("Where each thread was in your code")
    assert "main thread:\n  in spin, line 7: total += 1" in report or "in spin, line 6: while True:" in report
    assert "thread 1:\n  in take_twice, line 13: pass" not in report  # it never got past the second with
    assert "in take_twice, line 12: with lock:" in report
    assert "canary" not in report and "_secret_input" not in report and "HIDDEN" not in report


def test_no_dump_when_the_cell_finishes_in_time(tmp_path):
    """A cell that returns gets no report."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    Client(nb, timeout=20, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert [out.text for out in nb.cells[0].outputs] == ["42\n"]


def _a_new_dump_dir() -> str:
    """In a worker: the dump folder the worker makes for itself (a forked one inherits its parent's)."""
    from concurrency_lab.grading import hangdump

    hangdump._DUMP_DIR = None
    return hangdump._dump_dir()


def test_a_grading_workers_dump_folder_goes_when_the_worker_ends():
    """The folder a worker's kernels write their dumps to is removed when that worker process ends.

    A forked worker ends with ``os._exit``, which runs no ``atexit`` handler (as pytest-xdist's
    and Dask's workers may end): only multiprocessing's finalizers.
    """
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        folder = pool.submit(_a_new_dump_dir).result()
        assert os.path.isdir(folder)
    assert not os.path.exists(folder)
