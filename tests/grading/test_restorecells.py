"""Deleted test cells and read-only cells come back where they sat, hidden tests included."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from hostile import CORRECT
from nbgrader.api import Gradebook
from nbgrader.preprocessors import OverwriteCells
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from concurrency_lab.grading.restorecells import RestoreCells
from concurrency_lab.grading.staging import fill_answers
from nbtools import ROOT, nbgrader

DRILL = Path(__file__).resolve().parent / "grader_course" / "source" / "drill" / "drill.ipynb"


def _gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The drill (its read-only helper cell sits right before test_shout), released."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(DRILL.parents[1], root / "source")
    shutil.copy(ROOT / "source" / "header.ipynb", root / "source" / "header.ipynb")
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    done = nbgrader("generate_assignment", "drill", "--force", cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    return root


def _submission(course: Path, deleted: set[str]) -> nbformat.NotebookNode:
    nb = nbformat.read(course / "release" / "drill" / "drill.ipynb", as_version=4)
    nb.cells = [cell for cell in nb.cells if _gid(cell) not in deleted]
    return nb


def _run(preprocessor_class, course: Path, nb: nbformat.NotebookNode, **options):
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    overrides = Config()
    overrides.CourseDirectory.root = str(course)
    config.merge(overrides)
    resources = {
        "nbgrader": {
            "notebook": "drill",
            "assignment": "drill",
            "student": "someone",
            "db_url": f"sqlite:///{course / 'gradebook.db'}",
        }
    }
    return preprocessor_class(config=config, **options).preprocess(nb, resources)


def test_nbgrader_alone_fails_on_a_test_cell_after_a_read_only_cell(course):
    """The upstream behaviour RestoreCells replaces: KeyError, and the notebook scores 0."""
    with pytest.raises(KeyError, match="exclaim_helper"):
        _run(OverwriteCells, course, _submission(course, {"exclaim_helper", "test_shout"}), add_missing_cells=True)


def test_deleted_test_and_read_only_cells_come_back_in_place(course):
    """Every deleted test cell and read-only cell is back, in the release's order, with its hidden tests."""
    release = nbformat.read(course / "release" / "drill" / "drill.ipynb", as_version=4)
    deleted = {"test_square", "test_add", "exclaim_helper", "test_shout"}
    nb, resources = _run(RestoreCells, course, _submission(course, deleted))
    assert [(c.cell_type, _gid(c)) for c in nb.cells] == [(c.cell_type, _gid(c)) for c in release.cells]
    assert sorted(resources["nbgrader"]["restored_cells"]) == sorted(deleted)
    cells = {_gid(c): c for c in nb.cells if _gid(c)}
    assert "BEGIN HIDDEN TESTS" in cells["test_shout"].source and 'shout("hey")' in cells["test_shout"].source
    helper = next(c for c in release.cells if _gid(c) == "exclaim_helper")
    assert cells["exclaim_helper"].source == helper.source and cells["exclaim_helper"].metadata.nbgrader.locked
    assert cells["test_add"].metadata.nbgrader.points == 2
    nbformat.validate(nb)


def test_answer_cells_are_not_put_back_and_moved_cells_anchor_the_rest(course):
    """A deleted answer cell stays deleted; a restored test follows the nearest surviving cell before it."""
    nb = _submission(course, {"add", "test_add"})
    nb, _ = _run(RestoreCells, course, nb)
    ids = [_gid(c) for c in nb.cells if _gid(c)]
    assert "add" not in ids
    assert ids == ["square", "test_square", "test_add", "shout", "exclaim_helper", "test_shout"]


def test_plain_nbgrader_autograde_with_the_course_config_puts_them_back(course):
    """`nbgrader autograde` with nbgrader_config.py grades the submission in full, not 0 with an error."""
    folder = course / "submitted" / "someone" / "drill"
    folder.mkdir(parents=True)
    nb = fill_answers(_submission(course, {"test_square", "exclaim_helper", "test_shout"}), CORRECT)
    nbformat.write(nb, folder / "drill.ipynb")
    done = nbgrader("autograde", "drill", "--force", cwd=course)
    assert done.returncode == 0, done.stderr[-3000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission("drill", "someone")
        assert (submission.score, submission.max_score) == (6, 6)
