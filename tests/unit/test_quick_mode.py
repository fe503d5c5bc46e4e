"""Quick mode has one home, concurrency_lab.machine.quick_mode, and every notebook asks it."""

from __future__ import annotations

import re

import nbformat
import pytest

from concurrency_lab import machine
from nbtools import SOURCE


def test_quick_mode_reads_either_variable():
    """NBGRADER_EXECUTION or CONCURRENCY_LAB_QUICK, set to anything but blanks, switch quick mode on."""
    assert machine.quick_mode({}) is False
    assert machine.quick_mode({"NBGRADER_EXECUTION": "autograde"}) is True
    assert machine.quick_mode({"NBGRADER_EXECUTION": "validate"}) is True
    assert machine.quick_mode({"CONCURRENCY_LAB_QUICK": "1"}) is True
    assert machine.quick_mode({"CONCURRENCY_LAB_QUICK": "", "NBGRADER_EXECUTION": "  "}) is False
    assert machine.quick_mode({"OTHER": "1"}) is False


def test_quick_mode_reads_the_process_environment_by_default(monkeypatch):
    """Without an argument it reads os.environ."""
    for name in machine.QUICK_ENV:
        monkeypatch.delenv(name, raising=False)
    assert machine.quick_mode() is False
    monkeypatch.setenv("CONCURRENCY_LAB_QUICK", "1")
    assert machine.quick_mode() is True


NOTEBOOKS = sorted(SOURCE.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_setup_cell_has_the_same_shape(path):
    """The first code cell imports, prints the machine line, then asks the package for quick mode."""
    nb = nbformat.read(path, as_version=4)
    headings = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Setup")]
    assert len(headings) == 1, "one Setup section"
    setup = nb.cells[headings[0] + 1]
    assert setup.cell_type == "code"
    lines = setup.source.rstrip().splitlines()
    assert lines[-2:] == ["print(setup())", "QUICK = quick_mode()"], lines[-2:]
    assert "from concurrency_lab.machine import" in setup.source
    assert re.search(r"^from concurrency_lab\.machine import .*\bquick_mode\b.*\bsetup\b", setup.source, re.M)
    assert "matplotlib" not in setup.source, "quick mode draws no charts: import pyplot where a chart is drawn"
    rest = "".join(c.source for c in nb.cells if c is not setup)
    assert "NBGRADER_EXECUTION" not in rest, "quick mode is computed only by concurrency_lab.machine.quick_mode"
