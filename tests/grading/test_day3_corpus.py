"""Wrong answers to the real Day 3 notebooks, graded by the real grader, lose their points every run."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from gradertools import course_from, grades
from hostile import DAY3, DAY3_CORPUS, NotebookSubmission, make_notebook_submission
from nbgrader.api import Gradebook

from concurrency_lab.grading.hidehiddentests import BEGIN, END
from nbtools import SOURCE, grade_cells


def run_grader(course: Path, students: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The grader as `make grade` runs it (60 s a cell, 512 processes a kernel), on ``students`` in that order."""
    chosen = [arg for student in students for arg in ("--student", student)]
    return subprocess.run(
        [sys.executable, "-m", "concurrency_lab.grading", "--assignment", DAY3, "--jobs", "2", *chosen, *args],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def notebook_scores(course: Path) -> dict[str, tuple[float, float]]:
    """Each student's (score, max score) on the one notebook they submitted, from the gradebook."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {
            entry.name: (notebook.score, notebook.max_score)
            for entry in DAY3_CORPUS
            for notebook in [gradebook.find_submission_notebook(Path(entry.notebook).stem, DAY3, entry.name)]
        }


def points_lost(entry: NotebookSubmission) -> float:
    """The points of the test cells the entry's answer fails (its judgement case's ``must_fail``)."""
    cells = grade_cells(nbformat.read(SOURCE / entry.notebook, as_version=4))
    return sum(float(cells[gid].metadata["nbgrader"]["points"]) for gid in entry.case.must_fail)


def lines(nb: Path) -> set[str]:
    """Every line of every cell of the notebook at ``nb``, stripped."""
    return {line.strip() for cell in nbformat.read(nb, as_version=4).cells for line in cell.source.splitlines()}


def hidden_lines(source_nb: Path, *shown: Path) -> set[str]:
    """The lines only hidden tests hold: in a hidden region of the source, in none of the ``shown`` notebooks."""
    found = set()
    for cell in nbformat.read(source_nb, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if BEGIN in line or END in line:
                inside = BEGIN in line
            elif inside and len(line.strip()) >= 20 and not line.strip().startswith(('"', 'f"', "#")):
                found.add(line.strip())
    return found.difference(*map(lines, shown))


def page_lines(page: Path) -> set[str]:
    """The text of an HTML page, line by line, stripped (code is highlighted: a tag around every token)."""
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
    return {line.strip() for line in text.splitlines()}


def test_day3_wrong_answers_lose_their_points_and_the_feedback_says_why(tmp_path):
    """Each wrong answer loses exactly the points of the cells it fails, on two runs; its feedback shows the hint."""
    notebooks = sorted({entry.notebook for entry in DAY3_CORPUS})
    course = course_from(tmp_path, DAY3, {nb: nbformat.read(SOURCE / nb, as_version=4) for nb in notebooks})
    release = course / "release" / DAY3
    for entry in DAY3_CORPUS:
        assert entry.case.start_method is None, f"{entry.name}: the grader cannot force a start method"
        folder = course / "submitted" / entry.name / DAY3
        make_notebook_submission(SOURCE / entry.notebook, release / entry.notebook, folder, entry)

    first = run_grader(course, [entry.name for entry in DAY3_CORPUS])
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    scores = notebook_scores(course)
    assert grades(course) == {name: score for name, (score, _) in scores.items()}  # the others scored 0
    for entry in DAY3_CORPUS:
        # Only the submitted notebook ran: nbgrader gives the missing ones 0 without running them.
        assert [p.name for p in (course / "autograded" / entry.name / DAY3).glob("*.ipynb")] == [entry.notebook]
        lost = points_lost(entry)
        assert lost > 0 or entry.case.name == "reference solution", f"{entry.name}: a wrong answer must lose points"
        score, max_score = scores[entry.name]
        assert score == max_score - lost, f"{entry.name}: {score}/{max_score}, expected {lost:g} lost\n{first.stdout}"

    again = [entry.name for entry in DAY3_CORPUS if entry.same_every_run]
    second = run_grader(course, again, "--force")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert {name: notebook_scores(course)[name] for name in again} == {name: scores[name] for name in again}

    for entry in DAY3_CORPUS:
        page = page_lines(course / "feedback" / entry.name / DAY3 / f"{Path(entry.notebook).stem}.html")
        assert any(entry.shows in line for line in page), f"{entry.name}: the feedback should show {entry.shows!r}"
        submitted = course / "submitted" / entry.name / DAY3 / entry.notebook
        leaked = hidden_lines(SOURCE / entry.notebook, release / entry.notebook, submitted) & page
        assert leaked == set(), f"{entry.name}: the feedback shows hidden tests: {sorted(leaked)[:3]}"
