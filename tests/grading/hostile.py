"""A corpus of hostile and broken submissions to the drill assignment, with expected scores.

The drill (tests/grading/grader_course/source/drill/drill.ipynb) has three parts of
2 points: square (A), add (B), shout (C); a read-only helper cell (exclaim) sits
right before the test of Part C, which uses it. Each entry below says how a
submission differs from a correct one and what it must score out of 6.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from concurrency_lab.grading.staging import fill_answers, grade_id

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
            + ("\n\nimport sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000 + '\\n')")
        },
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
