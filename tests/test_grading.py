"""Feedback never shows hidden tests."""

from __future__ import annotations

import nbformat
import pytest

from concurrency_lab.grading import WITHHELD, HideHiddenTests, strip_hidden_tests

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
        nbformat.v4.new_output(
            "error", ename="AssertionError", evalue="secret", traceback=["line", "assert f(2) == 4"]
        )
    ]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("BEGIN HIDDEN TESTS?")])
    nb, _ = HideHiddenTests()(nb, {})  # as an exporter calls it: enabled by default
    text = nbformat.writes(nb)
    assert "f(2)" not in text and "secret" not in text
    assert nb.cells[0].outputs[0].traceback[0].startswith("AssertionError: a hidden test failed")
    assert nb.cells[1].source == "BEGIN HIDDEN TESTS?"
