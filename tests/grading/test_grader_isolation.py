"""One student's broken notebook or fork bomb costs that student only: a notebook, a kernel, no neighbour."""

from __future__ import annotations

import time

import nbformat
from gradertools import FIXTURE, course_from, drill_course, grades, processes_in, run_grader
from hostile import CORRECT, Hostile, make_submission

from concurrency_lab.grading.staging import fill_answers, grade_id


def test_a_notebook_whose_autograde_raises_costs_only_that_notebook(tmp_path):
    """The other notebook keeps its score, the student is graded, and the report names the notebook and cause."""
    drill = nbformat.read(FIXTURE / "source" / "drill" / "drill.ipynb", as_version=4)
    course = course_from(tmp_path, "pair", {"drill.ipynb": drill, "drill2.ipynb": drill})
    folder = course / "submitted" / "someone" / "pair"
    make_submission(course / "release" / "pair" / "drill.ipynb", folder, Hostile("someone", 6))
    broken = fill_answers(nbformat.read(course / "release" / "pair" / "drill2.ipynb", as_version=4), CORRECT)
    for cell in broken.cells:
        if grade_id(cell) == "test_add":
            cell.metadata["nbgrader"]["points"] = "two"
    nbformat.write(broken, folder / "drill2.ipynb")
    done = run_grader(course, "--assignment", "pair")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert grades(course) == {"someone": 6.0}
    row = next(line for line in done.stdout.splitlines() if line.startswith("someone "))
    assert "graded" in row and "6/12" in row
    assert "drill2.ipynb: autograde failed (ValueError: could not convert string to float: 'two')" in row


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
    course = drill_course(tmp_path, entries)
    done = run_grader(course, "--jobs", "2", "--timeout", "30", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (meet / "full").exists() and (meet / "forked").exists(), done.stdout[-2000:]
    assert grades(course) == {"bomber": 6.0, "neighbour": 6.0}
    time.sleep(0.5)
    assert processes_in(course) == []
