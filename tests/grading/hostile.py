"""Corpora of hostile and broken submissions, with expected scores.

The drill (tests/grading/grader_course/source/drill/drill.ipynb) has three parts of
2 points: square (A), add (B), shout (C); a read-only helper cell (exclaim) sits
right before the test of Part C, which uses it. Each entry of :data:`CORPUS` says
how a submission differs from a correct one and what it must score out of 6.

:data:`DAY3_CORPUS` holds wrong answers to the real Day 3 notebooks, which the
drill cannot hold (it has no concurrency). Their answers and the test cells they
fail are the per-notebook judgement tests' (tests/notebooks/test_notebook_NN.py).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from concurrency_lab.grading.staging import fill_answers, grade_id, solutions
from nbtools import Case

CORRECT = {
    "square": 'def square(x):\n    """Return x squared."""\n    return x * x',
    "add": 'def add(a, b):\n    """Return a + b."""\n    return a + b',
    "shout": (
        'def shout(text):\n    """Return text in capitals with an exclamation mark."""\n    return text.upper() + "!"'
    ),
}


@dataclass
class Hostile:
    """One submission: answer overrides, an optional notebook mutation, the expected score."""

    name: str
    expected: float
    answers: dict[str, str] = field(default_factory=dict)
    mutate: Callable[[nbformat.NotebookNode], None] | None = None
    write: Callable[[Path, nbformat.NotebookNode], None] | None = None
    note: str = ""
    shows: str = ""  # what the student's feedback must show (a diagnosis of their own run)


def _drop_cells(*dropped: str) -> Callable[[nbformat.NotebookNode], None]:
    def mutate(nb: nbformat.NotebookNode) -> None:
        nb.cells = [c for c in nb.cells if grade_id(c) not in dropped]

    return mutate


def _break_points(graded: str) -> Callable[[nbformat.NotebookNode], None]:
    """A test cell whose points metadata is no number: nbgrader's autograde raises ValueError."""

    def mutate(nb: nbformat.NotebookNode) -> None:
        for cell in nb.cells:
            if grade_id(cell) == graded:
                cell.metadata["nbgrader"]["points"] = "two"

    return mutate


def _tamper_test(tampered: str, source: str) -> Callable[[nbformat.NotebookNode], None]:
    def mutate(nb: nbformat.NotebookNode) -> None:
        for cell in nb.cells:
            if grade_id(cell) == tampered:
                cell.source = source

    return mutate


def _write_malformed(folder: Path, nb: nbformat.NotebookNode) -> None:
    text = json.dumps(nbformat.writes(nb))[:500]
    (folder / "drill.ipynb").write_text(text + "{ this is not json")


def _write_nothing(folder: Path, nb: nbformat.NotebookNode) -> None:
    (folder / "notes.txt").write_text("I forgot to upload my notebook")


def _write_renamed(folder: Path, nb: nbformat.NotebookNode) -> None:
    nbformat.write(nb, folder / "drill-Copy1.ipynb")


CORPUS = [
    Hostile("correct", 6),
    Hostile("unanswered", 0, answers={k: "# YOUR CODE HERE\nraise NotImplementedError()" for k in CORRECT}),
    Hostile(
        "infinite_loop",
        4,
        shows="in square, line ",
        answers={"square": "def square(x):\n    while True:\n        pass"},
    ),
    Hostile(
        "deadlock",
        4,
        shows="in add, line ",
        answers={
            "add": (
                "import threading\n_lock = threading.Lock()\n\ndef add(a, b):\n"
                "    with _lock:\n        with _lock:\n            return a + b"
            )
        },
    ),
    Hostile(
        "swallowed_interrupt",
        4,
        note="test_square",
        shows="in square, line ",
        answers={
            "square": (
                "import signal\n\ndef square(x):\n    signal.signal(signal.SIGINT, lambda *args: None)\n"
                "    while True:\n        time.sleep(0.05)"
            )
        },
    ),
    Hostile("os_exit", 4, note="shout", answers={"shout": CORRECT["shout"] + "\n\nimport os\nos._exit(3)"}),
    Hostile(
        "segfault",
        4,
        note="test_add",
        answers={"add": ("import ctypes\n\ndef add(a, b):\n    ctypes.string_at(0)\n    return a + b")},
    ),
    # The bomb is contained at --max-pids; the cell that hit the limit fails, then
    # every process it started is killed, so the tests after it run normally.
    Hostile(
        "fork_bomb",
        6,
        note="killed",
        shows="Clean-up: this cell started more processes",
        answers={
            "square": CORRECT["square"]
            + (
                "\n\nimport os\nfor _ in range(2000):\n    if os.fork() == 0:\n"
                "        time.sleep(120)\n        os._exit(0)"
            )
        },
    ),
    Hostile(
        "huge_output",
        6,
        answers={
            "shout": CORRECT["shout"]
            + ("\n\nimport sys\nfor _ in range(200_000):\n    sys.stdout.write('x' * 99 + '\\n')")
        },
        shows="... Output truncated ...",  # 20 MB in 200,000 lines: nbgrader's LimitOutput keeps 1000
    ),
    Hostile(
        "tampered_tests",
        4,
        answers={"square": "def square(x):\n    return x * 3"},
        mutate=_tamper_test("test_square", '"""square is fine"""\nassert True'),
    ),
    Hostile("deleted_tests", 4, answers={"add": "def add(a, b):\n    return a - b"}, mutate=_drop_cells("test_add")),
    Hostile(
        "eq_cheat",
        4,
        answers={
            "square": (
                "class Anything(int):\n    def __eq__(self, other):\n        return True\n"
                "    __hash__ = int.__hash__\n\ndef square(x):\n    return Anything(0)"
            )
        },
    ),
    # Every test cell deleted, and the read-only helper before test_shout too: nbgrader alone
    # raises KeyError and drops the notebook; they are put back where they sat, hidden tests included.
    Hostile(
        "deleted_tests_and_helper",
        6,
        note="put back",
        mutate=_drop_cells("test_square", "test_add", "exclaim_helper", "test_shout"),
    ),
    # A notebook whose autograde raises is graded as unanswered, and the report says which and why.
    Hostile("broken_metadata", 0, note="drill.ipynb: autograde failed (ValueError", mutate=_break_points("test_add")),
    Hostile("malformed_json", 0, note="not a valid notebook", write=_write_malformed),
    Hostile("missing_notebook", 0, note="missing", write=_write_nothing),
    Hostile("renamed_notebook", 6, note="renamed", write=_write_renamed),
]


def make_submission(release_nb: Path, folder: Path, entry: Hostile) -> None:
    """Write ``entry``'s submission into ``folder`` (submitted/<student>/drill)."""
    nb = fill_answers(nbformat.read(release_nb, as_version=4), {**CORRECT, **entry.answers})
    if entry.mutate:
        entry.mutate(nb)
    folder.mkdir(parents=True, exist_ok=True)
    if entry.write:
        entry.write(folder, nb)
    else:
        nbformat.write(nb, folder / "drill.ipynb")


# -- The Day 3 corpus ------------------------------------------------------------------------

DAY3 = "day3"
NOTEBOOK_TESTS = Path(__file__).resolve().parents[1] / "notebooks"


def judgement_case(notebook: str, name: str) -> Case:
    """The case called ``name`` in the judgement tests of ``notebook`` ("04-processes.ipynb").

    The module is imported the way pytest imports it (tests/notebooks on the path,
    top-level name), so a session that collects both folders loads it once.
    """
    if str(NOTEBOOK_TESTS) not in sys.path:
        sys.path.insert(0, str(NOTEBOOK_TESTS))
    module = importlib.import_module(f"test_notebook_{notebook[:2]}")
    return next(case for case in module.CASES if case.name == name)


@dataclass(frozen=True)
class NotebookSubmission:
    """A student who submits one Day 3 notebook, answered as a judgement case answers it.

    The notebook loses the points of the case's ``must_fail`` test cells, and
    nothing else; the other notebooks of the assignment are not submitted.
    """

    name: str
    notebook: str
    case: Case
    shows: str = ""  # what the student's feedback must show (the hint of their own run)
    same_every_run: bool = False  # graded twice: the same grade both times


NB04, NB05, NB06 = "04-processes.ipynb", "05-queues.ipynb", "06-pools.ipynb"

# In the order to grade them: the slowest notebooks first (04 runs about twice as long as 05),
# so that two grading workers finish together.
DAY3_CORPUS = [
    # Part B's statement: every process gets work, even for a single limit.
    NotebookSubmission(
        "one_task_per_limit",
        NB04,
        judgement_case(NB04, "a single limit sent to one process as one task"),
        shows="split the work so that every process gets some",
    ),
    # Part B's statement: do not pick a start method (fork runs a notebook-defined worker on Linux only).
    NotebookSubmission(
        "fork_picked",
        NB04,
        judgement_case(NB04, "fork picked, with a worker defined in the notebook"),
        shows="use the default start method and do not pick one",
    ),
    # A reference student per notebook proves it gets full points in the same run.
    NotebookSubmission("reference_04", NB04, judgement_case(NB04, "reference solution")),
    NotebookSubmission(
        "own_reader_threads",
        NB06,
        judgement_case(NB06, "hand-made reader threads, not a pool"),
        shows="read the files with a ThreadPoolExecutor of max_workers threads",
        same_every_run=True,
    ),
    NotebookSubmission("reference_06", NB06, judgement_case(NB06, "reference solution")),
    NotebookSubmission(
        "arrival_order",
        NB05,
        judgement_case(NB05, "results in the order they arrived"),
        shows="in the order the workers finished them, not in input order",
        same_every_run=True,
    ),
    NotebookSubmission("reference_05", NB05, judgement_case(NB05, "reference solution")),
]


def make_notebook_submission(source_nb: Path, release_nb: Path, folder: Path, entry: NotebookSubmission) -> None:
    """Write ``entry``'s one notebook into ``folder`` (submitted/<student>/day3).

    The release notebook gets the source notebook's solutions, then the case's answers.
    """
    answers = {**solutions(nbformat.read(source_nb, as_version=4)), **entry.case.answers}
    nb = fill_answers(nbformat.read(release_nb, as_version=4), answers, strict=True)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / entry.notebook)
