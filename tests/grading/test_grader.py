"""The grading pipeline against hostile submissions, in parallel, re-run and killed."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
from hostile import CORPUS, CORRECT, Hostile, make_submission

from concurrency_lab.grading.settings import MEMORY_ENV, WORK, GradeSettings
from concurrency_lab.grading.staging import fill_answers, fingerprint, grade_id, stage_submission
from nbtools import ROOT, nbgrader

FIXTURE = Path(__file__).parent / "grader_course"
HIDDEN = ["square(-4)", "add(20, 22)", 'shout("hey")', "should be 16"]


def _course(tmp_path: Path, entries: list[Hostile]) -> Path:
    course = tmp_path / "course"
    shutil.copytree(FIXTURE / "source", course / "source")
    shutil.copy(ROOT / "source" / "header.ipynb", course / "source" / "header.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    done = nbgrader("generate_assignment", "drill", "--force", cwd=course)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    release = course / "release" / "drill" / "drill.ipynb"
    for entry in entries:
        make_submission(release, course / "submitted" / entry.name / "drill", entry)
    return course


def _grade(course: Path, *args: str, timeout: int = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "concurrency_lab.grading",
            "--assignment",
            "drill",
            "--timeout",
            "6",
            "--max-pids",
            "64",
            *args,
        ],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _scores(course: Path) -> dict[str, float]:
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def _processes_in(folder: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cwd", "cmdline"]):
        try:
            if proc.pid != os.getpid() and proc.info["cwd"] and proc.info["cwd"].startswith(str(folder)):
                found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:80]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def test_hostile_corpus_gets_its_expected_scores(tmp_path):
    """Every hostile submission is graded (none dropped) with its expected score, in parallel."""
    course = _course(tmp_path, CORPUS)
    before = fingerprint(course / "submitted")
    done = _grade(course, "--jobs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scores = _scores(course)
    expected = {entry.name: float(entry.expected) for entry in CORPUS}
    assert scores == expected
    table = done.stdout.split("student ", 1)[1]
    for entry in CORPUS:
        row = next(line for line in table.splitlines() if line.startswith(entry.name + " "))
        assert entry.note in row, f"{entry.name}: the report should mention {entry.note!r}: {row}"
    # Nothing a student started outlives grading, and nobody's files were touched.
    time.sleep(0.5)
    assert _processes_in(course) == []
    assert fingerprint(course / "submitted") == before
    # Feedback exists for everyone, shows no hidden test, and shows each diagnosis of the student's run.
    for entry in CORPUS:
        page = (course / "feedback" / entry.name / "drill" / "drill.html").read_text()
        assert not [h for h in HIDDEN if h in page.replace("&quot;", '"')], entry.name
        assert entry.shows in page, f"{entry.name}: the feedback should show {entry.shows!r}"


QUICK = [e for e in CORPUS if e.name in {"correct", "unanswered", "renamed_notebook", "malformed_json"}]


def test_parallel_equals_sequential_and_reruns_grade_only_changes(tmp_path):
    """JOBS=2 gives the same grades as JOBS=1; a re-run grades only what changed."""
    course = _course(tmp_path, QUICK)
    first = _grade(course, "--jobs", "1")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    sequential = _scores(course)
    second = _grade(course, "--jobs", "2", "--force")
    assert second.returncode == 0, second.stderr[-2000:]
    assert _scores(course) == sequential
    assert f"grading {len(QUICK)} of {len(QUICK)}" in second.stdout

    third = _grade(course, "--jobs", "2")
    assert f"grading 0 of {len(QUICK)}" in third.stdout and third.returncode == 0
    assert _scores(course) == sequential

    folder = course / "submitted" / "unanswered" / "drill"
    shutil.rmtree(folder)
    make_submission(course / "release" / "drill" / "drill.ipynb", folder, Hostile("unanswered", 6))
    fourth = _grade(course, "--jobs", "2")
    assert f"grading 1 of {len(QUICK)}" in fourth.stdout, fourth.stdout
    assert _scores(course) == {**sequential, "unanswered": 6.0}


def test_a_killed_run_resumes_and_the_gradebook_stays_whole(tmp_path):
    """Kill the grader after its first student; the next run finishes the rest, gradebook intact."""
    entries = [Hostile(f"s{i}", 6) for i in range(5)]
    course = _course(tmp_path, entries)
    proc = subprocess.Popen(
        [sys.executable, "-m", "concurrency_lab.grading", "--assignment", "drill", "--jobs", "1"],
        cwd=course,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("[1/"):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    resumed = _grade(course, "--jobs", "2")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    todo = int(re.search(r"grading (\d+) of 5", resumed.stdout).group(1))
    assert 1 <= todo <= 4
    assert _scores(course) == {e.name: 6.0 for e in entries}
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_stage_submission_never_touches_the_original(tmp_path):
    """Staging fixes names and bad files in a copy; the submitted folder is unchanged."""
    course = _course(tmp_path, [e for e in CORPUS if e.name in {"malformed_json", "renamed_notebook"}])
    settings = GradeSettings(course, "drill")
    for name, note in (("malformed_json", "not a valid notebook"), ("renamed_notebook", "renamed")):
        original = course / "submitted" / name / "drill"
        before = fingerprint(original)
        notes = stage_submission(settings, name)
        assert any(note in n for n in notes), notes
        assert fingerprint(original) == before
        assert (course / WORK / "submitted" / name / "drill" / "drill.ipynb").is_file()


@pytest.mark.parametrize("limit_mb", [300])
def test_sandbox_limits_memory(limit_mb):
    """A process started through the sandbox gets a MemoryError past its address-space limit."""
    code = "x = bytearray(600 * 1024 * 1024)"
    done = subprocess.run(
        [sys.executable, "-m", "concurrency_lab.grading.sandbox", sys.executable, "-c", code],
        env={**os.environ, MEMORY_ENV: str(limit_mb * 1024 * 1024)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "MemoryError" in done.stderr
    assert CORRECT  # the corpus module imports cleanly


def test_zip_collect_imports_archives_then_grades(tmp_path):
    """Submissions in downloaded/<assignment>/archive/*.zip are imported and graded."""
    course = _course(tmp_path, [])
    staging = tmp_path / "zipped"
    make_submission(course / "release" / "drill" / "drill.ipynb", staging, Hostile("carol", 6))
    archive = course / "downloaded" / "drill" / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "lms-export.zip", "w") as bundle:
        bundle.write(staging / "drill.ipynb", "carol__drill.ipynb")
    done = _grade(course, "--zip-collect")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (course / "submitted" / "carol" / "drill" / "drill.ipynb").is_file()
    assert _scores(course) == {"carol": 6.0}


def _course_from(tmp_path: Path, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> Path:
    """A course whose one assignment holds ``notebooks`` (name: source notebook), released."""
    course = tmp_path / "course"
    (course / "source" / assignment).mkdir(parents=True)
    for name, nb in notebooks.items():
        nbformat.write(nb, course / "source" / assignment / name)
    shutil.copy(ROOT / "source" / "header.ipynb", course / "source" / "header.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    done = nbgrader("generate_assignment", assignment, "--force", cwd=course)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    return course


def test_a_notebook_whose_autograde_raises_costs_only_that_notebook(tmp_path):
    """The other notebook keeps its score, the student is graded, and the report names the notebook and cause."""
    drill = nbformat.read(FIXTURE / "source" / "drill" / "drill.ipynb", as_version=4)
    course = _course_from(tmp_path, "pair", {"drill.ipynb": drill, "drill2.ipynb": drill})
    folder = course / "submitted" / "someone" / "pair"
    make_submission(course / "release" / "pair" / "drill.ipynb", folder, Hostile("someone", 6))
    broken = fill_answers(nbformat.read(course / "release" / "pair" / "drill2.ipynb", as_version=4), CORRECT)
    for cell in broken.cells:
        if grade_id(cell) == "test_add":
            cell.metadata["nbgrader"]["points"] = "two"
    nbformat.write(broken, folder / "drill2.ipynb")
    done = _grade(course, "--assignment", "pair")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _scores(course) == {"someone": 6.0}
    row = next(line for line in done.stdout.splitlines() if line.startswith("someone "))
    assert "graded" in row and "6/12" in row
    assert "drill2.ipynb: autograde failed (ValueError: could not convert string to float: 'two')" in row


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
    course = _course_from(tmp_path, "drill", {"drill.ipynb": drill})
    release = course / "release" / "drill" / "drill.ipynb"
    wrong = {
        "wrong_add": {"add": "def add(a, b):\n    return a - b"},
        "wrong_square": {"square": "def square(x):\n    return 3 * x"},
        "crashing": {"add": "def add(a, b):\n    raise KeyError(a)"},
    }
    for student, answers in wrong.items():
        make_submission(release, course / "submitted" / student / "drill", Hostile(student, 4, answers=answers))
    done = _grade(course, "--jobs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _scores(course) == {student: 4.0 for student in wrong}
    assert CANARY not in done.stdout + done.stderr
    for student in wrong:
        page = (course / "feedback" / student / "drill" / "drill.html").read_text()
        assert CANARY not in page and "_secret" not in page, student
        validate = nbgrader("validate", str(course / "submitted" / student / "drill" / "drill.ipynb"), cwd=course)
        assert CANARY not in validate.stdout + validate.stderr, student
    page = (course / "feedback" / "wrong_add" / "drill" / "drill.html").read_text()
    assert "A hidden test failed: add(a, b) gave a wrong sum for two small positive numbers" in page


def test_a_fork_bomb_stops_at_its_cap_while_another_students_kernel_forks(tmp_path):
    """Two students graded at once: one forks until refused and holds its processes; the other still forks.

    The two submissions meet through files, so the second one forks exactly while the
    first holds every process it could make. The cap must hold one kernel's processes
    only: a pids cgroup per worker (root), a user namespace per kernel (a normal user).
    """
    meet = tmp_path / "meet"
    meet.mkdir()
    bomb = CORRECT["square"] + (
        "\n\nimport os, pathlib, time\nchildren = []\ntry:\n    for _ in range(2000):\n"
        "        pid = os.fork()\n        if pid == 0:\n            time.sleep(60)\n            os._exit(0)\n"
        "        children.append(pid)\nexcept OSError:\n"
        f"    pathlib.Path({str(meet / 'full')!r}).touch()\n    deadline = time.monotonic() + 60\n"
        f"    while not pathlib.Path({str(meet / 'forked')!r}).exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n    raise"
    )
    neighbour = (
        "import os, pathlib, time\n"
        f"deadline = time.monotonic() + 60\nwhile not pathlib.Path({str(meet / 'full')!r}).exists():\n"
        "    assert time.monotonic() < deadline, 'the other student never filled its cap'\n    time.sleep(0.05)\n"
        "pids = [os.fork() or os._exit(0) for _ in range(20)]\n"
        "for pid in pids:\n    os.waitpid(pid, 0)\n"
        f"pathlib.Path({str(meet / 'forked')!r}).touch()\n\n\n" + CORRECT["square"]
    )
    entries = [Hostile("bomber", 6, answers={"square": bomb}), Hostile("neighbour", 6, answers={"square": neighbour})]
    course = _course(tmp_path, entries)
    done = _grade(course, "--jobs", "2", "--timeout", "30", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (meet / "full").exists() and (meet / "forked").exists(), done.stdout[-2000:]
    assert _scores(course) == {"bomber": 6.0, "neighbour": 6.0}
    time.sleep(0.5)
    assert _processes_in(course) == []
