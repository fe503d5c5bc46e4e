"""The nbgrader assignment: release is generated from source, in sync, and unsolved.

That the solutions in source/ pass every test is the reference case of each
notebook's judgement tests (tests/notebooks), and nbval runs each source notebook
at its full lesson sizes; neither is repeated here.
"""

from __future__ import annotations

import filecmp
import json
import subprocess

import nbformat
import pytest
from nbgrader.utils import is_grade, is_solution

from nbtools import RELEASE, ROOT, SOURCE, grade_cells, make_course, nbgrader

SOURCE_NOTEBOOKS = sorted(SOURCE.glob("*.ipynb"))
RELEASE_NOTEBOOKS = sorted(RELEASE.glob("*.ipynb"))


def _names(paths):
    return [p.name for p in paths]


def _course_files(folder):
    """Files git tracks (or would track) under ``folder``: not what running a notebook left there."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "."],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [folder / name for name in listed if (folder / name).is_file()]


def test_release_lists_the_same_notebooks_as_source():
    """Every source notebook has a release copy and nothing else is released."""
    assert _names(SOURCE_NOTEBOOKS) == _names(RELEASE_NOTEBOOKS)


def test_release_is_what_generate_assignment_makes_now(tmp_path):
    """release/day3 equals a fresh `nbgrader generate_assignment` of source/ (run `make release`)."""
    course = make_course(tmp_path)
    done = nbgrader("generate_assignment", "day3", "--force", cwd=course)
    assert done.returncode == 0, done.stdout + done.stderr
    fresh = course / "release" / "day3"
    fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(RELEASE) for p in _course_files(RELEASE))
    assert fresh_files == committed, "release/ is out of sync with source/: run `make release`"
    for rel in committed:
        if rel.suffix == ".ipynb":
            assert json.loads((fresh / rel).read_text()) == json.loads((RELEASE / rel).read_text()), (
                f"release/day3/{rel} is out of sync with source/: run `make release`"
            )
        else:
            assert filecmp.cmp(fresh / rel, RELEASE / rel, shallow=False), rel


@pytest.mark.parametrize("path", RELEASE_NOTEBOOKS, ids=_names(RELEASE_NOTEBOOKS))
def test_release_has_header_and_no_solutions_or_hidden_tests(path):
    """The release copy starts with the header and gives neither solutions nor hidden tests away."""
    text = path.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{path.name} leaks {marker}"
    nb = nbformat.read(path, as_version=4)
    assert "restart the kernel" in nb.cells[0].source.lower()
    assert "NAME" in nb.cells[1].source and "COLLABORATORS" in nb.cells[1].source
    assert all(cell.get("outputs", []) == [] for cell in nb.cells if cell.cell_type == "code")
    answers = [c for c in grade_cells(nb).values() if is_solution(c)]
    assert answers and all("raise NotImplementedError" in c.source for c in answers)


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=_names(SOURCE_NOTEBOOKS))
def test_test_cells_have_docstrings_hidden_tests_and_ten_points(path):
    """Each test cell starts with a docstring and keeps its decisive checks hidden; 10 points a notebook."""
    nb = nbformat.read(path, as_version=4)
    tests = {gid: c for gid, c in grade_cells(nb).items() if is_grade(c)}
    assert tests
    for gid, cell in tests.items():
        assert cell.source.startswith('"""'), f"{gid} should start with a docstring"
        assert "### BEGIN HIDDEN TESTS" in cell.source, f"{gid} has no hidden tests"
    assert sum(c.metadata["nbgrader"]["points"] for c in tests.values()) == 10


@pytest.mark.parametrize("path", RELEASE_NOTEBOOKS, ids=_names(RELEASE_NOTEBOOKS))
def test_release_notebook_fails_every_graded_part(tmp_path, path):
    """The unsolved release copy passes no test (`nbgrader validate --invert`)."""
    course = make_course(tmp_path)
    target = course / "release" / "day3"
    target.mkdir(parents=True)
    copy = target / path.name
    copy.write_bytes(path.read_bytes())
    done = nbgrader("validate", "--invert", str(copy), cwd=course)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success! The notebook does not pass any tests." in done.stdout, done.stdout + done.stderr


def test_header_notebook_is_the_configured_header():
    """nbgrader_config.py points at source/header.ipynb, which exists."""
    config = (ROOT / "nbgrader_config.py").read_text()
    assert '"source" / "header.ipynb"' in config
    assert (ROOT / "source" / "header.ipynb").is_file()
