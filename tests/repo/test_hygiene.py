"""Lint and notebook hygiene: ruff check and format, execution order, stray notebooks, links that resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pytest

from nbtools import ROOT

BIN = Path(sys.executable).parent
NAMED = re.compile(r"^(\d\d-[a-z0-9-]+|header|[a-z0-9]+-lab)\.ipynb$")
FIXTURES = ROOT / "tests" / "grading" / "grader_course"  # the grader tests' own small assignment


def _tracked(pattern: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", pattern],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(ROOT / p for p in out if (ROOT / p).exists())


NOTEBOOKS = _tracked("*.ipynb")


def test_ruff_passes_on_package_tests_and_notebooks():
    """`ruff check` is clean on the package, the tests and every notebook."""
    done = subprocess.run(
        [
            str(BIN / "ruff"),
            "check",
            "--no-cache",
            "src",
            "tests",
            "notebooks",
            "source",
            "nbgrader_config.py",
            "conftest.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_python_files_are_formatted():
    """`ruff format --check` is clean on every Python file (notebooks keep their own layout)."""
    files = [str(p.relative_to(ROOT)) for p in _tracked("*.py")]
    assert files
    done = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", "--no-cache", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_stray_or_untitled_notebooks():
    """Every notebook is named NN-topic (or is the header or a companion lab); none is Untitled."""
    assert NOTEBOOKS
    stray = [str(p.relative_to(ROOT)) for p in NOTEBOOKS if not NAMED.match(p.name) and FIXTURES not in p.parents]
    assert not stray, f"stray notebooks: {stray}"
    assert not [p for p in NOTEBOOKS if ".ipynb_checkpoints" in p.parts]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_execution_counts_are_in_order(path):
    """A notebook saved with outputs was run top to bottom once: counts 1, 2, 3, ..."""
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code" and c.execution_count]
    if counts:
        assert counts == list(range(1, len(counts) + 1)), f"{path.name}: {counts}"


def _links(text: str) -> list[str]:
    found = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    found += re.findall(r"""<img[^>]+src=["']([^"']+)["']""", text)
    return [link for link in found if not re.match(r"^(https?:|mailto:|#|data:)", link)]


DOCS = [ROOT / "README.md", *NOTEBOOKS]


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_local_link_and_image_resolves(path):
    """Relative links and images in the README and the notebooks point at files that exist."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    else:
        text = path.read_text()
    missing = []
    for link in _links(text):
        target = (path.parent / unquote(link.split("#")[0])).resolve()
        if not target.exists():
            missing.append(link)
    assert not missing, f"{path.name}: broken links {missing}"
