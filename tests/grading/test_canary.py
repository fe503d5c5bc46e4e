"""A canary string that only hidden tests hold reaches no feedback page, no Validate output, no grader output."""

from __future__ import annotations

import nbformat
from gradertools import FIXTURE, course_from, grades, run_grader
from hostile import Hostile, make_submission

from concurrency_lab.grading.staging import grade_id
from nbtools import nbgrader

CANARY = "canary-0f3c9e7a"
CANARY_TESTS = {
    "test_add": (
        '"""add(a, b) returns the sum as an int"""\nassert type(add(1, 2)) is int\n### BEGIN HIDDEN TESTS\n'
        f"# {CANARY}\nfrom concurrency_lab.hints import fail_with_hint\n\n_secret = {CANARY!r}\n"
        "if add(2, 3) != 5:\n    fail_with_hint('add(a, b) gave a wrong sum for two small positive numbers')\n"
        f"assert add(20, 22) == 42, {CANARY!r}\n### END HIDDEN TESTS"
    ),
    "test_square": (
        '"""square(x) returns x * x as an int"""\nassert square(3) == 9\n### BEGIN HIDDEN TESTS\n'
        f"assert square(-4) == 16, {CANARY!r} + ' square'\n### END HIDDEN TESTS"
    ),
}


def test_a_canary_in_hidden_tests_reaches_no_feedback_validate_or_summary(tmp_path):
    """A string only hidden tests hold is in no feedback page, no Validate output, no grader output; a hint is shown."""
    drill = nbformat.read(FIXTURE / "source" / "drill" / "drill.ipynb", as_version=4)
    for cell in drill.cells:
        if grade_id(cell) in CANARY_TESTS:
            cell.source = CANARY_TESTS[grade_id(cell)]
    course = course_from(tmp_path, "drill", {"drill.ipynb": drill})
    release = course / "release" / "drill" / "drill.ipynb"
    wrong = {
        "wrong_add": {"add": "def add(a, b):\n    return a - b"},
        "wrong_square": {"square": "def square(x):\n    return 3 * x"},
        "crashing": {"add": "def add(a, b):\n    raise KeyError(a)"},
    }
    for student, answers in wrong.items():
        make_submission(release, course / "submitted" / student / "drill", Hostile(student, 4, answers=answers))
    done = run_grader(course, "--jobs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert grades(course) == {student: 4.0 for student in wrong}
    assert CANARY not in done.stdout + done.stderr
    for student in wrong:
        page = (course / "feedback" / student / "drill" / "drill.html").read_text()
        assert CANARY not in page and "_secret" not in page, student
        validate = nbgrader("validate", str(course / "submitted" / student / "drill" / "drill.ipynb"), cwd=course)
        assert CANARY not in validate.stdout + validate.stderr, student
    page = (course / "feedback" / "wrong_add" / "drill" / "drill.html").read_text()
    assert "A hidden test failed: add(a, b) gave a wrong sum for two small positive numbers" in page
