"""Test groups, and tests/nbtools.py importable from every test folder.

Each folder under tests/ is one group, and its tests get the pytest marker of
the same name (``pytest -m unit``, or ``make unit``). The groups and what they
hold are the markers registered in pyproject.toml: a folder whose name is not
a registered marker is no group.
"""

import sys
import tomllib
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))


def groups() -> set[str]:
    """The group names: the markers registered in pyproject.toml (not those plugins add)."""
    with open(TESTS.parent / "pyproject.toml", "rb") as handle:
        markers = tomllib.load(handle)["tool"]["pytest"]["ini_options"]["markers"]
    return {line.split(":", 1)[0].strip() for line in markers}


def group_of(path: Path, names: set[str]) -> str | None:
    """The group of a test file: the folder right under tests/ that holds it, if it is a group."""
    try:
        folder = Path(path).resolve().relative_to(TESTS.resolve()).parts[0]
    except (ValueError, IndexError):
        return None
    return folder if folder in names else None


# The test files that take longest, longest first (``pytest --durations=0`` on 2 cores).
# They run first, so that the two pytest-xdist workers of `make test` (--dist loadfile,
# --no-loadscope-reorder) end together on the many short files instead of one waiting
# for the other's long file at the end.
LONGEST_FIRST = [
    "e2e/test_hub.py",
    "grading/test_grader.py",
    "grading/test_dask_postgres.py",
    "e2e/test_browser.py",
    "notebooks/test_notebook_04.py",
    "grading/test_day3_corpus.py",
    "grading/test_grader_isolation.py",
    "notebooks/test_notebook_06.py",
    "notebooks/test_notebook_03.py",
    "notebooks/test_notebook_05.py",
    "notebooks/test_notebook_02.py",
    "notebooks/test_start_methods.py",
    "grading/test_canary.py",
]


def run_order(path: Path) -> int:
    """Where a test file runs: its place in LONGEST_FIRST, or after all of them."""
    try:
        return LONGEST_FIRST.index(Path(path).resolve().relative_to(TESTS.resolve()).as_posix())
    except ValueError:
        return len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    """Mark every test with its folder's group; put the longest files first."""
    names = groups()
    for item in items:
        group = group_of(item.path, names)
        if group is not None:
            item.add_marker(getattr(pytest.mark, group))
    items.sort(key=lambda item: run_order(item.path))  # stable: each file keeps its own order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can see a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
