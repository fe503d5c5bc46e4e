"""Validate shows a student the same hints as the feedback, for the visible tests where they apply."""

from __future__ import annotations

import shutil

import nbformat

from concurrency_lab.grading.staging import fill_answers
from nbtools import RELEASE, ROOT, nbgrader

COUNTER_WITHOUT_A_LOCK = '''class SafeCounter:
    """Wrong: no lock, so increments from several threads overwrite each other."""

    def __init__(self):
        self._value = 0

    def increment(self, n=1):
        self._value += n

    @property
    def value(self):
        return self._value
'''

TRANSFER_IN_ARGUMENT_ORDER = '''def transfer(source, target, amount):
    """Wrong: locks in argument order, so alice->bob and bob->alice at once deadlock."""
    if amount <= 0 or source is target:
        raise ValueError("bad transfer")
    with source.lock:
        with target.lock:
            if source.balance < amount:
                raise ValueError("insufficient funds")
            source.balance -= amount
            target.balance += amount
'''


def test_validate_shows_lost_updates_and_the_lock_cycle(tmp_path):
    """Notebook 03 with a lock-free counter and a transfer that locks in argument order: Validate says why."""
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    nb = nbformat.read(RELEASE / "03-locks.ipynb", as_version=4)
    nb = fill_answers(
        nb, {"safe_counter_answer": COUNTER_WITHOUT_A_LOCK, "transfer_answer": TRANSFER_IN_ARGUMENT_ORDER}
    )
    nbformat.write(nb, tmp_path / "03-locks.ipynb")
    done = nbgrader("validate", str(tmp_path / "03-locks.ipynb"), cwd=tmp_path)
    shown = done.stdout + done.stderr
    assert "Hint: under forced thread switches, " in shown and " of 200 increments were lost by 4 threads" in shown
    # nbgrader validate cuts lines at 90 characters: the report is one thread a line.
    assert "Hint: transfers deadlocked:\n    thread-1 holds alice.lock and waits for bob.lock;\n" in shown
    assert "\n    thread-2 holds bob.lock and waits for alice.lock\n" in shown
