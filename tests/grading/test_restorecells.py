"""Deleted test cells and read-only cells come back where they sat, hidden tests included."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.preprocessors import OverwriteCells
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from concurrency_lab.grading.restorecells import RestoreCells
from nbtools import ROOT, nbgrader

DRILL = Path(__file__).resolve().parent / "grader_course" / "source" / "drill" / "drill.ipynb"
HELPER = "def exclaim(text):\n    return text + '!'"


def _gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """The drill, with a read-only helper cell just before test_shout, released."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copy(ROOT / "source" / "header.ipynb", root / "header.ipynb")
    (root / "nbgrader_config.py").write_text(
        (root / "nbgrader_config.py").read_text().replace('ROOT / "source" / "header.ipynb"', 'ROOT / "header.ipynb"')
    )
    nb = nbformat.read(DRILL, as_version=4)
    helper = nbformat.v4.new_code_cell(HELPER)
    helper.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": "exclaim_helper",
        "locked": True,
        "solution": False,
        "schema_version": 3,
    }
    test_shout = next(i for i, cell in enumerate(nb.cells) if _gid(cell) == "test_shout")
    nb.cells.insert(test_shout, helper)
    nb.cells[test_shout + 1].source = nb.cells[test_shout + 1].source.replace(
        'assert type(shout("a")) is str', 'assert type(shout("a")) is str and exclaim("a") == "a!"'
    )
    (root / "source" / "drill").mkdir(parents=True)
    nbformat.write(nb, root / "source" / "drill" / "drill.ipynb")
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
    assert cells["exclaim_helper"].source == HELPER and cells["exclaim_helper"].metadata.nbgrader.locked
    assert cells["test_add"].metadata.nbgrader.points == 2
    nbformat.validate(nb)


def test_answer_cells_are_not_put_back_and_moved_cells_anchor_the_rest(course):
    """A deleted answer cell stays deleted; a restored test follows the nearest surviving cell before it."""
    nb = _submission(course, {"add", "test_add"})
    nb, _ = _run(RestoreCells, course, nb)
    ids = [_gid(c) for c in nb.cells if _gid(c)]
    assert "add" not in ids
    assert ids == ["square", "test_square", "test_add", "shout", "exclaim_helper", "test_shout"]
