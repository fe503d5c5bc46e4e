"""Filling a release notebook with answers: only answer cells change, by grade_id."""

from __future__ import annotations

import nbformat
import pytest

from concurrency_lab.grading.staging import fill_answers, grade_id, solutions


def _cell(source: str, gid: str | None = None, **flags: bool) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if gid is not None:
        cell.metadata["nbgrader"] = {"grade_id": gid, "solution": False, "grade": False, "locked": False, **flags}
    return cell


def _notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[
            _cell("import os"),
            _cell("raise NotImplementedError()", "square", solution=True),
            _cell("assert square(2) == 4", "test_square", grade=True, locked=True),
        ]
    )


def test_fill_answers_changes_answer_cells_only():
    """An answer replaces its solution cell; an answer named after a test cell is ignored."""
    nb = fill_answers(_notebook(), {"square": "def square(x):\n    return x * x", "test_square": "assert True"})
    assert [c.source for c in nb.cells] == ["import os", "def square(x):\n    return x * x", "assert square(2) == 4"]
    assert [grade_id(c) for c in nb.cells] == [None, "square", "test_square"]


def test_fill_answers_strict_rejects_names_of_no_answer_cell():
    """strict: a grade_id that names no answer cell is an error, never a silent no-op."""
    with pytest.raises(KeyError, match="test_square"):
        fill_answers(_notebook(), {"test_square": "assert True"}, strict=True)
    with pytest.raises(KeyError, match="cube"):
        fill_answers(_notebook(), {"cube": "def cube(x): ..."}, strict=True)


def test_solutions_reads_the_answers_a_source_notebook_holds():
    """solutions() then fill_answers() carries a source notebook's answers into a release copy."""
    source = fill_answers(_notebook(), {"square": "def square(x):\n    return x ** 2"})
    assert solutions(source) == {"square": "def square(x):\n    return x ** 2"}
    release = fill_answers(_notebook(), solutions(source))
    assert release.cells[1].source == source.cells[1].source
