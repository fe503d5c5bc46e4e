"""Staging: a student's files, made gradable, without touching the originals.

Also the notebook plumbing that staging and the tests share: a cell's
``grade_id``, and :func:`fill_answers`, the one way to put answers into a
release notebook (the grading bench's solved class, the hostile corpus, the
tests' runs).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.utils import is_solution

from .settings import WORK, GradeSettings

__all__ = [
    "fill_answers",
    "fingerprint",
    "grade_id",
    "grade_ids",
    "solutions",
    "stage_submission",
]


def grade_id(cell: NotebookNode) -> str | None:
    """The cell's nbgrader ``grade_id``, or None for a cell nbgrader does not track."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def grade_ids(path: Path) -> set[str]:
    """The ``grade_id`` of every tracked cell of the notebook at ``path``.

    Raises:
        Exception: whatever nbformat raises for a file that is not a notebook.
    """
    nb = nbformat.read(path, as_version=4)
    return {gid for gid in map(grade_id, nb.cells) if gid is not None}


def solutions(nb: NotebookNode) -> dict[str, str]:
    """The source of every answer (solution) cell, by ``grade_id``: a source notebook's answers."""
    return {grade_id(cell): cell.source for cell in nb.cells if is_solution(cell) and grade_id(cell)}


def fill_answers(nb: NotebookNode, answers: Mapping[str, str], strict: bool = False) -> NotebookNode:
    """Put ``answers`` (``grade_id`` to source) into the answer cells of ``nb``, in place.

    Only solution cells change: an answer named after a test cell is ignored,
    unless ``strict``.

    Args:
        nb: a release (or source) notebook.
        answers: new sources by ``grade_id``, e.g. :func:`solutions` of the source notebook.
        strict: raise if an answer names no solution cell of ``nb``.

    Returns:
        ``nb``, for chaining.

    Raises:
        KeyError: when ``strict`` and an answer names no solution cell.
    """
    filled = set()
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers and is_solution(cell):
            cell.source = answers[gid]
            filled.add(gid)
    if strict and (unknown := set(answers) - filled):
        raise KeyError(f"no answer cell with grade_id {sorted(unknown)}")
    return nb


def fingerprint(folder: Path) -> str:
    """A SHA-256 over every file's relative path and bytes ("" if the folder is missing)."""
    digest = hashlib.sha256()
    if not folder.is_dir():
        return ""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _renamed_copy(wanted: set[str], unknown: Mapping[str, set[str]]) -> str | None:
    """The unexpected notebook that holds at least half of ``wanted`` grade_ids (the most), if any.

    A student who saved ``drill-Copy1.ipynb`` instead of ``drill.ipynb`` is graded
    on it; a notebook of some other assignment shares too few cells to count.
    """
    best = max(unknown, key=lambda name: len(unknown[name] & wanted), default=None)
    if best is not None and wanted and len(unknown[best] & wanted) * 2 >= len(wanted):
        return best
    return None


def stage_submission(settings: GradeSettings, student: str) -> list[str]:
    """Copy a submission to ``.grader/submitted/`` and make every notebook gradable.

    A notebook that is not valid JSON, or missing, scores 0 points: nbgrader
    gives a notebook that is not there 0 without running it. A submission with
    no gradable notebook at all gets the unanswered release copies instead (0
    points, and a feedback page each), since nbgrader grades nothing without a
    notebook. A renamed notebook is graded under its real name.

    Returns:
        Notes for the report: malformed, missing and renamed notebooks.
    """
    root, assignment = settings.root, settings.assignment
    source = root / "submitted" / student / assignment
    staged = root / WORK / "submitted" / student / assignment
    if staged.exists():
        shutil.rmtree(staged)
    if source.is_dir():
        shutil.copytree(source, staged)
    else:
        staged.mkdir(parents=True)
    release = root / "release" / assignment
    expected = {p.name: p for p in sorted(release.glob("*.ipynb"))}
    notes: list[str] = []
    readable: dict[str, set[str]] = {}
    for path in sorted(staged.glob("*.ipynb")):
        try:
            ids = grade_ids(path)
        except Exception as error:  # not JSON, not a notebook: grade as unanswered
            path.rename(path.with_name(path.name + ".malformed"))
            notes.append(f"{path.name} is not a valid notebook ({type(error).__name__}): 0 points")
            continue
        readable[path.name] = ids
    unknown = {name: ids for name, ids in readable.items() if name not in expected}
    missing = []
    for name, release_nb in expected.items():
        if name in readable and name not in unknown:
            continue
        best = _renamed_copy(grade_ids(release_nb), unknown)
        if best is not None:
            (staged / best).rename(staged / name)
            del unknown[best]
            notes.append(f"{best} graded as {name} (renamed)")
        elif name not in readable:
            missing.append(name)
            if not any(n.startswith(name) and n.endswith(".malformed") for n in os.listdir(staged)):
                notes.append(f"{name} is missing: 0 points")
    if len(missing) == len(expected):
        for name in missing:
            shutil.copy(expected[name], staged / name)
    return notes
