"""The grading pipeline against hostile submissions, in parallel, re-run and killed."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile

import pytest
from gradertools import drill_course, grades, processes_in, run_grader
from hostile import CORPUS, CORRECT, Hostile, make_submission

from concurrency_lab.grading.settings import FEEDBACK_ZIPS, MEMORY_ENV, WORK, GradeSettings
from concurrency_lab.grading.staging import fingerprint, stage_submission

HIDDEN = ["square(-4)", "add(20, 22)", 'shout("hey")', "should be 16"]


def test_hostile_corpus_gets_its_expected_scores(tmp_path):
    """Every hostile submission is graded (none dropped) with its expected score, in parallel."""
    course = drill_course(tmp_path, CORPUS)
    before = fingerprint(course / "submitted")
    done = run_grader(course, "--jobs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scores = grades(course)
    expected = {entry.name: float(entry.expected) for entry in CORPUS}
    assert scores == expected
    table = done.stdout.split("student ", 1)[1]
    for entry in CORPUS:
        row = next(line for line in table.splitlines() if line.startswith(entry.name + " "))
        assert entry.note in row, f"{entry.name}: the report should mention {entry.note!r}: {row}"
    # Nothing a student started outlives grading, and nobody's files were touched.
    time.sleep(0.5)
    assert processes_in(course) == []
    assert fingerprint(course / "submitted") == before
    # Feedback exists for everyone, shows no hidden test, and shows each diagnosis of the student's run.
    for entry in CORPUS:
        page = (course / "feedback" / entry.name / "drill" / "drill.html").read_text()
        assert not [h for h in HIDDEN if h in page.replace("&quot;", '"')], entry.name
        assert entry.shows in page, f"{entry.name}: the feedback should show {entry.shows!r}"


QUICK = [e for e in CORPUS if e.name in {"correct", "unanswered", "renamed_notebook", "malformed_json"}]


def test_parallel_equals_sequential_and_reruns_grade_only_changes(tmp_path):
    """JOBS=2 gives the same grades as JOBS=1; a re-run grades only what changed."""
    course = drill_course(tmp_path, QUICK)
    first = run_grader(course, "--jobs", "1")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    sequential = grades(course)
    second = run_grader(course, "--jobs", "2", "--force")
    assert second.returncode == 0, second.stderr[-2000:]
    assert grades(course) == sequential
    assert f"grading {len(QUICK)} of {len(QUICK)}" in second.stdout

    third = run_grader(course, "--jobs", "2")
    assert f"grading 0 of {len(QUICK)}" in third.stdout and third.returncode == 0
    assert grades(course) == sequential

    folder = course / "submitted" / "unanswered" / "drill"
    shutil.rmtree(folder)
    make_submission(course / "release" / "drill" / "drill.ipynb", folder, Hostile("unanswered", 6))
    fourth = run_grader(course, "--jobs", "2")
    assert f"grading 1 of {len(QUICK)}" in fourth.stdout, fourth.stdout
    assert grades(course) == {**sequential, "unanswered": 6.0}


def test_a_cell_a_busy_machine_could_not_judge_is_named_and_its_student_graded_again(tmp_path):
    """A test cell that printed "not judged" is named in the report, and its student is graded once more."""
    once = tmp_path / "judged-once"
    # A square that says what a timing check says when no run got enough of a core: always, or the first time only.
    say = "from concurrency_lab.fixtures import NOT_JUDGED\n    print(NOT_JUDGED)\n"
    always = f"def square(x):\n    {say}    return x * x\n"
    first_only = (
        "def square(x):\n    import pathlib\n"
        f"    if not pathlib.Path({str(once)!r}).exists():\n"
        f"        pathlib.Path({str(once)!r}).touch()\n"
        "        from concurrency_lab.fixtures import NOT_JUDGED\n        print(NOT_JUDGED)\n"
        "    return x * x\n"
    )
    entries = [
        Hostile("busy_always", 6, {"square": always}),
        Hostile("busy_once", 6, {"square": first_only}),
        Hostile("calm", 6),
    ]
    course = drill_course(tmp_path, entries)
    done = run_grader(course, "--jobs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert grades(course) == {"busy_always": 6.0, "busy_once": 6.0, "calm": 6.0}  # the cells passed
    assert "grading 2 student(s) again" in done.stdout, done.stdout
    rows = {line.split()[0]: line for line in done.stdout.split("student ", 1)[1].splitlines()[1:] if line.strip()}
    again = "graded again: not judged the first time: drill: test_square"
    assert again in rows["busy_always"] and "drill: test_square: not judged (" in rows["busy_always"]
    assert again in rows["busy_once"] and "not judged (" not in rows["busy_once"]
    assert "not judged" not in rows["calm"]
    # A later run skips them all, and still says that busy_once was graded twice.
    later = run_grader(course, "--jobs", "2")
    assert "grading 0 of 3" in later.stdout and "again" not in later.stdout.split("student ", 1)[0], later.stdout
    assert again in next(line for line in later.stdout.splitlines() if line.startswith("busy_once "))


def test_a_killed_run_resumes_and_the_gradebook_stays_whole(tmp_path):
    """Kill the grader after its first student; the next run finishes the rest, gradebook intact."""
    entries = [Hostile(f"s{i}", 6) for i in range(5)]
    course = drill_course(tmp_path, entries)
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
    resumed = run_grader(course, "--jobs", "2")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    todo = int(re.search(r"grading (\d+) of 5", resumed.stdout).group(1))
    assert 1 <= todo <= 4
    assert grades(course) == {e.name: 6.0 for e in entries}
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_stage_submission_never_touches_the_original(tmp_path):
    """Staging fixes names and bad files in a copy; the submitted folder is unchanged."""
    course = drill_course(tmp_path, [e for e in CORPUS if e.name in {"malformed_json", "renamed_notebook"}])
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
    course = drill_course(tmp_path, [])
    staging = tmp_path / "zipped"
    make_submission(course / "release" / "drill" / "drill.ipynb", staging, Hostile("carol", 6))
    archive = course / "downloaded" / "drill" / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "lms-export.zip", "w") as bundle:
        bundle.write(staging / "drill.ipynb", "carol__drill.ipynb")
    done = run_grader(course, "--zip-collect")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (course / "submitted" / "carol" / "drill" / "drill.ipynb").is_file()
    assert grades(course) == {"carol": 6.0}
    # Back to the LMS: one zip per student, holding that student's feedback pages.
    with zipfile.ZipFile(course / FEEDBACK_ZIPS / "drill" / "carol.zip") as bundle:
        assert bundle.namelist() == ["drill/drill.html"]
        page = bundle.read("drill/drill.html").decode()
    assert "6 / 6" in page.replace("\n", " ") or "6.0 / 6.0" in page, page[:2000]
    assert not [h for h in HIDDEN if h in page.replace("&quot;", '"')]
