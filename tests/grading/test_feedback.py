"""Feedback pages made while the next notebook runs are the pages nbgrader's generate_feedback makes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
from gradertools import course_from

from concurrency_lab.grading.feedback import write_feedback
from concurrency_lab.grading.grader import nbgrader_config
from concurrency_lab.grading.settings import GradeSettings
from concurrency_lab.grading.staging import fill_answers, solutions


def _source() -> nbformat.NotebookNode:
    answer = nbformat.v4.new_code_cell("def answer():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION")
    answer.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False, "grade_id": "answer"}
    test = nbformat.v4.new_code_cell("assert answer() == 42\nprint('checked <ok> & \"done\"')")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": "test", "points": 1}
    for cell in (answer, test):
        cell.metadata["nbgrader"]["schema_version"] = 3
    return nbformat.v4.new_notebook(cells=[answer, test])


def test_pages_made_ahead_are_generate_feedbacks_pages(tmp_path):
    """The first notebook's page is made before the second is graded, byte for byte as generate_feedback makes it"""
    # n2 waits (up to 20 s) for n1's page: it appears while n2 runs only if it is made ahead.
    waits = nbformat.v4.new_code_cell(
        "import pathlib, time\npage = pathlib.Path('../../../feedback/alice/tiny/n1.html')\n"
        "deadline = time.monotonic() + 20\nwhile not page.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\nprint('n1.html there while n2 runs:', page.exists())"
    )
    second = _source()
    second.cells.append(waits)
    course = course_from(tmp_path, "tiny", {"n1.ipynb": _source(), "n2.ipynb": second})
    for name in ("n1.ipynb", "n2.ipynb"):
        nb = nbformat.read(course / "release" / "tiny" / name, as_version=4)
        fill_answers(nb, solutions(_source()))
        (course / "submitted" / "alice" / "tiny").mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, course / "submitted" / "alice" / "tiny" / name)
    stale = course / "feedback" / "alice" / "tiny" / "gone.html"  # a page of an earlier run
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    done = subprocess.run(
        [sys.executable, "-m", "concurrency_lab.grading", "--assignment", "tiny", "--timeout", "30", "--jobs", "1"],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pages = course / "feedback" / "alice" / "tiny"
    assert sorted(p.name for p in pages.iterdir()) == ["n1.html", "n2.html"]
    graded = nbformat.read(course / "autograded" / "alice" / "tiny" / "n2.ipynb", as_version=4)
    assert graded.cells[-1].outputs[0].text == "n1.html there while n2 runs: True\n"
    made = {p.name: p.read_bytes() for p in pages.iterdir()}
    shutil.rmtree(pages)
    settings = GradeSettings(root=course, assignment="tiny")
    assert write_feedback(settings, "alice", nbgrader_config(settings)) == []
    assert {p.name: p.read_bytes() for p in pages.iterdir()} == made
