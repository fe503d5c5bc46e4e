"""Processes a cell leaves running are stopped when the notebook ends, and named in that cell's output."""

from __future__ import annotations

import re

import nbformat
import psutil

from concurrency_lab.grading.strays import StrayReport
from nbtools import IpcNotebookClient

LEAVES_TWO = """import multiprocessing, subprocess, time
worker = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(120,))
worker.start()
shell = subprocess.Popen(["sleep", "120"])
print(worker.pid, shell.pid)"""

CLEAN = """import multiprocessing, time
done = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
done.start()
done.join()
print("joined")"""


class Client(StrayReport, IpcNotebookClient):
    """nbclient with the clean-up report, on Unix sockets."""


def test_the_cell_that_left_processes_running_names_them_and_they_are_stopped(tmp_path):
    """Two strays of the first cell are reported there, and killed; the clean cell gets no report."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LEAVES_TWO), nbformat.v4.new_code_cell(CLEAN)])
    Client(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    pids = [int(pid) for pid in nb.cells[0].outputs[0].text.split()]
    report = nb.cells[0].outputs[-1].text
    assert report.startswith("Clean-up: this cell left 2 processes running after it returned: pid ")
    assert set(map(int, re.findall(r"pid (\d+)", report))) == set(pids)
    assert "sleep 120" in report and report.rstrip().endswith("The grader stopped them.")
    assert [out.text for out in nb.cells[1].outputs] == ["joined\n"]
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


class CountingClient(Client):
    """Counts the scans of the process table."""

    scans = 0

    def _descendants(self):
        CountingClient.scans += 1
        return super()._descendants()


def test_quiet_cells_cost_no_scan_and_a_later_stray_is_still_named_in_its_cell(tmp_path):
    """Cells that start nothing are not scanned after; the cell after them that leaves processes is named."""
    quiet = nbformat.v4.new_code_cell("total = sum(range(10))")
    cells = [quiet, nbformat.v4.new_code_cell(LEAVES_TWO), nbformat.v4.new_code_cell(quiet.source)]
    nb = nbformat.v4.new_notebook(cells=cells)
    CountingClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[1].outputs[-1].text.startswith("Clean-up: this cell left 2 processes running")
    assert not [out for out in nb.cells[0].outputs + nb.cells[2].outputs if "Clean-up" in out.get("text", "")]
    # One scan before the first cell, one after the cell that started processes, one at the clean-up;
    # a quiet cell is scanned after only when some other process on the machine took a PID while it
    # ran (so up to two more on a busy machine). Scanning before and after every cell would take 7.
    assert CountingClient.scans <= 5, CountingClient.scans
