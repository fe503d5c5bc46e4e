"""Feedback without hidden tests, but with the hints written for the student.

nbgrader 0.9.6 copies hidden tests into the feedback HTML, and a failing
hidden assert shows its own source line in the traceback
(jupyter/nbgrader#917). :class:`HideHiddenTests` runs in
``GenerateFeedback.preprocessors`` and removes both.

In a cell with hidden tests, an error output keeps only what was written to
be shown:

* a :class:`~concurrency_lab.hints.Hint` (``fail_with_hint``, ``call_within``)
  keeps its message; its traceback is withheld;
* the grader's own errors (a cell past its time limit, a dead kernel) keep
  their message, which names no test;
* anything else (a plain ``assert``'s message, an exception from the test)
  becomes "a hidden test failed", with no traceback.
"""

from __future__ import annotations

from typing import Any

from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from traitlets import Bool, Unicode

from ..hints import HIDDEN_MARK, HINT_ENAME

__all__ = ["BEGIN", "END", "EXECUTOR_ERRORS", "WITHHELD", "HideHiddenTests", "strip_hidden_tests", "withhold_details"]

BEGIN = HIDDEN_MARK
END = "END HIDDEN TESTS"
WITHHELD = "# (hidden tests are not shown in feedback)"
#: Errors the executor gives a cell itself (:class:`~.resilientexecute.ResilientExecute`): their
#: messages say what happened to the kernel, never what a test checks.
EXECUTOR_ERRORS = frozenset({"CellTimeoutError", "DeadKernelError", "KernelRestartLimit"})


def strip_hidden_tests(source: str, begin: str = BEGIN, end: str = END) -> tuple[str, bool]:
    """Remove every region from a ``begin`` line to an ``end`` line.

    Returns:
        The new source and whether anything was removed.

    Raises:
        ValueError: if a region is opened and never closed, or nested.
    """
    kept: list[str] = []
    inside = removed = False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError("nested hidden-test regions")
            inside = removed = True
            kept.append(line[: len(line) - len(line.lstrip())] + WITHHELD)
        elif end in line:
            if not inside:
                raise ValueError(f"{end!r} without {begin!r}")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"{begin!r} without {end!r}")
    return "\n".join(kept), removed


class HideHiddenTests(Preprocessor):
    """Strip hidden tests, and the tracebacks that quote them, from feedback."""

    # nbconvert's preprocessors are off unless enabled; exporters skip them silently.
    enabled = Bool(True, help="Strip hidden tests (on by default)").tag(config=True)

    begin_test_delimeter = Unicode(BEGIN, help="Marks the start of hidden tests").tag(config=True)
    end_test_delimeter = Unicode(END, help="Marks the end of hidden tests").tag(config=True)

    def preprocess_cell(
        self, cell: NotebookNode, resources: dict[str, Any], index: int
    ) -> tuple[NotebookNode, dict[str, Any]]:
        """Strip the hidden regions of one cell and shorten its tracebacks."""
        if cell.cell_type != "code":
            return cell, resources
        cell.source, removed = strip_hidden_tests(cell.source, self.begin_test_delimeter, self.end_test_delimeter)
        if removed:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    withhold_details(output)
        return cell, resources


def withhold_details(output: NotebookNode) -> None:
    """Reduce the error output of a cell with hidden tests to what may be shown."""
    ename = output.get("ename", "Error")
    if ename == HINT_ENAME:
        output["traceback"] = [f"A hidden test failed: {output.get('evalue', '')}"]
    elif ename in EXECUTOR_ERRORS:
        output["traceback"] = [f"{ename}: {output.get('evalue', '')}"]
    elif ename == "KeyboardInterrupt":  # the executor's interrupt at the time limit
        output["evalue"] = "the cell was interrupted at its time limit"
        output["traceback"] = [f"{ename}: {output['evalue']}"]
    else:
        # The message may quote the hidden test too: keep only the error's name.
        output["evalue"] = "a hidden test failed"
        output["traceback"] = [f"{ename}: a hidden test failed (details withheld: they would show the test)"]
