"""The instructor's pipeline end to end: release, collect, `make grade`, feedback, export."""

from __future__ import annotations

import csv
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.utils import is_grade

from concurrency_lab.grading.staging import fill_answers, solutions
from nbtools import ROOT, SOURCE, grade_cells, make_course, nbgrader

NOTEBOOK = "01-concurrency-basics.ipynb"
VENV = Path(sys.executable).parent.parent


def _submit(release_nb: Path, dest: Path, solved: bool) -> None:
    nb = nbformat.read(release_nb, as_version=4)
    if solved:
        fill_answers(nb, solutions(nbformat.read(SOURCE / NOTEBOOK, as_version=4)))
    dest.mkdir(parents=True)
    nbformat.write(nb, dest / NOTEBOOK)


def test_make_grade_scores_feedback_and_export(tmp_path):
    """A solved submission earns every point, an unsolved one none; feedback hides hidden tests."""
    course = make_course(tmp_path)
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy2(ROOT / name, course / name)  # keep mtimes: the venv stays "installed"
    # Grade one notebook, to keep the suite fast; the others are validated elsewhere.
    for other in (course / "source" / "day3").glob("*.ipynb"):
        if other.name != NOTEBOOK:
            other.unlink()
    done = nbgrader("generate_assignment", "day3", "--force", cwd=course)
    assert done.returncode == 0, done.stderr
    release_nb = course / "release" / "day3" / NOTEBOOK
    _submit(release_nb, course / "submitted" / "alice" / "day3", solved=True)
    _submit(release_nb, course / "submitted" / "bob" / "day3", solved=False)

    graded = subprocess.run(
        # -o: the venv is installed already; never reinstall it from this copy.
        ["make", "--no-print-directory", "-o", f"{VENV}/bin/.installed", "grade", f"VENV={VENV}"],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert graded.returncode == 0, graded.stdout + graded.stderr

    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"alice", "bob"}
    max_score = float(rows["alice"]["max_score"])
    assert max_score > 0
    assert float(rows["alice"]["score"]) == max_score
    assert float(rows["bob"]["score"]) == 0.0

    source_text = (SOURCE / NOTEBOOK).read_text()
    cells = nbformat.reads(source_text, as_version=4).cells
    # Lines that also stand outside hidden regions (a shared `t.join()`) prove nothing.
    elsewhere = {_squash(line) for cell in cells for line in _visible_lines(cell.source)}
    hidden = [
        line.strip()
        for cell in cells
        for line in _hidden_lines(cell.source)
        if len(line.strip()) > 12 and _squash(line) not in elsewhere
    ]
    assert hidden, f"{NOTEBOOK} has no hidden tests to hide"
    visible = [
        line.strip()
        for cell in grade_cells(nbformat.reads(source_text, as_version=4)).values()
        if is_grade(cell)
        for line in cell.source.split("BEGIN HIDDEN TESTS")[0].splitlines()
        if line.strip().startswith("assert")
    ]
    for student in ("alice", "bob"):
        page = (course / "feedback" / student / "day3" / NOTEBOOK.replace(".ipynb", ".html")).read_text()
        text = _visible_text(page)
        assert _squash("hidden tests are not shown in feedback") in text
        # A positive control: the visible tests are there, so the search below can find code.
        assert visible and all(_squash(line) in text for line in visible)
        leaked = [line for line in hidden if _squash(line) in text]
        assert not leaked, f"feedback for {student} shows hidden tests: {leaked[:3]}"


def _visible_lines(source: str) -> list[str]:
    hidden = set(_hidden_lines(source))
    return [line for line in source.splitlines() if line not in hidden]


def _hidden_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _visible_text(page: str) -> str:
    """The HTML's text without tags (code is split into highlighted spans), squashed."""
    return _squash(html.unescape(re.sub(r"<[^>]+>", "", page)))
