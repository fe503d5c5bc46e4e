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


def pytest_collection_modifyitems(config, items):
    """Mark every test with its folder's group."""
    names = groups()
    for item in items:
        group = group_of(item.path, names)
        if group is not None:
            item.add_marker(getattr(pytest.mark, group))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can see a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
