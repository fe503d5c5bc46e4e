"""Put a submission's deleted test cells and read-only cells back where they sat.

nbgrader 0.9.6 can add deleted test cells back (``OverwriteCells.add_missing_cells``),
but it places each one after the cell that precedes it in the source only if
that cell is a grade or solution cell. When it is a read-only cell (in this
course: the ``PageResult`` class before the tests of notebook 02, the helper
cells), it raises ``KeyError`` and the whole notebook scores 0
(jupyter/nbgrader#1682, #1770). It never puts back read-only cells at all, so
the tests that need them fail with ``NameError``.

:class:`RestoreCells` replaces ``OverwriteCells`` in ``Autograde.sanitize_preprocessors``.
It does everything ``OverwriteCells`` does to the cells that are there, then
puts back every missing test cell and every missing read-only cell, taken from
the gradebook (the instructor's version, hidden tests included), right after
the nearest cell before it, in the release notebook's order, that the
submission still has. Deleted answer cells are not put back: the student's
own code, wherever it is, is what gets graded.
"""

from __future__ import annotations

import json
import os
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import OverwriteCells
from traitlets import Bool

from .settings import EVENTS_ENV

__all__ = ["RestoreCells"]


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _same_text(a: NotebookNode, b: NotebookNode) -> bool:
    return a.get("cell_type") == b.get("cell_type") and a.get("source", "").strip() == b.get("source", "").strip()


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells, with deleted test and read-only cells put back in place."""

    add_missing_cells = Bool(True, help="Put deleted test cells and read-only cells back").tag(config=True)

    def _reference(self) -> list[NotebookNode]:
        """The notebook as released (else its source version): the order cells sat in."""
        coursedir = CourseDirectory(config=self.config)
        for folder in (coursedir.release_directory, coursedir.source_directory):
            path = os.path.join(coursedir.format_path(folder, ".", self.assignment_id), f"{self.notebook_id}.ipynb")
            if os.path.isfile(path):
                return nbformat.read(path, as_version=4).cells
        return []

    def add_missing_grade_cells(
        self, nb: NotebookNode, resources: dict[str, Any]
    ) -> tuple[NotebookNode, dict[str, Any]]:
        """Put back every missing grade cell and read-only cell where it sat.

        A missing cell goes right after the nearest cell before it in the
        release notebook that the submission still has: a tracked cell (by
        grade_id) or an untouched text or code cell (by its source). Without a
        release or source notebook to compare with, restored cells go at the end.
        """
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = {cell.name: cell for cell in source_nb.source_cells}
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        wanted = {gid for gid, cell in source_cells.items() if gid in grade_cells or cell.locked}
        reference = [cell for cell in self._reference() if _grade_id(cell) in source_cells or not _grade_id(cell)]
        known = {_grade_id(cell) for cell in reference}
        reference += [NotebookNode(metadata={"nbgrader": {"grade_id": gid}}) for gid in sorted(wanted - known)]
        taken_ids = {cell.get("id") for cell in nb.cells}
        restored = []
        after = -1  # index in nb.cells of the last tracked cell met so far, surviving or restored

        def find(cell: NotebookNode, start: int) -> int | None:
            gid = _grade_id(cell)
            for index in range(start, len(nb.cells)):
                other = nb.cells[index]
                if gid is not None and _grade_id(other) == gid:
                    return index
                if gid is None and _grade_id(other) is None and _same_text(other, cell):
                    return index
            return None

        for position, cell in enumerate(reference):
            gid = _grade_id(cell)
            if gid is None:
                continue
            here = find(cell, 0)
            if here is not None:
                after = here
                continue
            if gid not in wanted:
                continue
            at = after + 1
            for before in reversed(reference[:position]):
                found = find(before, after + 1 if _grade_id(before) is None else 0)
                if found is not None:
                    at = max(found + 1, after + 1)
                    break
            new = self._restored_cell(source_cells[gid], grade_cells.get(gid), gid in solution_ids)
            if new.get("id") in taken_ids:
                new["id"] = f"{new['id'][:55]}-restored"
            taken_ids.add(new.get("id"))
            nb.cells.insert(at, new)
            after = at
            restored.append(gid)
        if restored:
            self.log.warning("Put back deleted cells: %s", ", ".join(restored))
            resources.setdefault("nbgrader", {}).setdefault("restored_cells", []).extend(restored)
            self._report_restored(restored)
        return nb, resources

    def _report_restored(self, restored: list[str]) -> None:
        """One line in the grader's events file (``CONCURRENCY_LAB_GRADER_EVENTS``), for its report."""
        path = os.environ.get(EVENTS_ENV)
        if not path:
            return
        event = {
            "student": None,
            "notebook": self.notebook_id,
            "cell": None,
            "grade_id": "deleted cells",
            "reason": "put back " + ", ".join(restored),
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    def _restored_cell(self, source_cell: Any, grade_cell: Any, is_solution: bool) -> NotebookNode:
        """A cell rebuilt from the gradebook: a grade cell as nbgrader rebuilds it, or a read-only cell."""
        if grade_cell is not None:
            cell = self.missing_cell_transform(source_cell, grade_cell.max_score, is_solution=is_solution)
        else:
            cell = NotebookNode(
                {
                    "cell_type": source_cell.cell_type,
                    "metadata": {
                        "deletable": False,
                        "editable": False,
                        "nbgrader": {
                            "grade": False,
                            "grade_id": source_cell.name,
                            "locked": True,
                            "checksum": source_cell.checksum,
                            "solution": False,
                            "schema_version": 3,
                        },
                    },
                    "source": source_cell.source,
                }
            )
            if cell.cell_type == "code":
                cell["execution_count"] = None
                cell["outputs"] = []
        cell = nbformat.from_dict(cell)
        if "id" not in cell:
            cell["id"] = source_cell.name[:64]
        return cell
