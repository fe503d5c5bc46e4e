"""The repository layout a newcomer and CI rely on."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import distributions
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from concurrency_lab.grading.settings import RUNTIME_FILES
from nbtools import ROOT


def test_nbgrader_folders_exist_and_their_contents_are_ignored():
    """submitted/, autograded/, feedback/ are kept (with .gitkeep) but a student's files are ignored."""
    for folder in ("submitted", "autograded", "feedback"):
        assert (ROOT / folder / ".gitkeep").is_file()
        probe = f"{folder}/alice/day3/01-concurrency-basics.ipynb"
        ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT)
        assert ignored.returncode == 0, f"{probe} is not ignored"
    for path in ("gradebook.db", ".venv/bin/python", ".grader/state/x.json"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0, path


def test_files_the_notebooks_write_are_ignored_by_nbgrader_and_git():
    """Each file in RUNTIME_FILES (their one list) is in CourseDirectory.ignore, and .gitignore covers it."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert set(RUNTIME_FILES) <= set(config.CourseDirectory.ignore)
    for folder in ("source/day3", "release/day3", "notebooks"):
        for name in RUNTIME_FILES:
            path = f"{folder}/{name}"
            ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
            assert ignored.returncode == 0, f"{path} is not in .gitignore"


def test_every_requirement_is_pinned_and_explained():
    """Each requirement is `name==version` and has a comment line right above it."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    reqs = [(i, line) for i, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    assert len(reqs) >= 6
    for i, line in reqs:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.]*", line.strip()), line
        assert lines[i - 1].startswith("# "), f"{line} has no comment saying why"
    names = {line.split("==")[0].lower() for _, line in reqs}
    assert {"jupyterlab", "nbgrader", "nbval", "pytest", "requests", "matplotlib"} <= names


def _pins(path: Path) -> dict[str, str]:
    """``{name: version}`` for the pins of a requirements file that apply here (markers evaluated)."""
    pins = {}
    for line in path.read_text().splitlines():
        pin, _, marker = line.split("#", 1)[0].partition(";")
        if "==" in pin and (not marker.strip() or Marker(marker.strip()).evaluate()):
            name, version = (part.strip() for part in pin.split("==", 1))
            pins[canonicalize_name(name)] = version
    return pins


def test_constraints_pin_every_installed_package_at_the_versions_of_requirements():
    """constraints.txt names every package in this venv at its installed version, and agrees with requirements.txt."""
    locked = _pins(ROOT / "constraints.txt")
    for name, version in _pins(ROOT / "requirements.txt").items():
        assert locked.get(name) == version, (
            f"requirements.txt pins {name}=={version}, constraints.txt {locked.get(name)}"
        )
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})  # not setuptools' _vendor
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions(path=site)}
    installed.pop("concurrency-lab", None)
    installed.pop("pip", None)  # the venv's installer, not a dependency
    wrong = {name: (version, locked.get(name)) for name, version in installed.items() if locked.get(name) != version}
    assert not wrong, f"installed (version, locked version), not as constraints.txt says: {wrong}"


# Where students install the course: Linux, macOS (Intel and Apple silicon) and Windows, on every
# Python the course supports. A locked package without a wheel there would need a compiler.
PLATFORMS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "x86_64-apple-darwin", "aarch64-apple-darwin"]
PLATFORMS += ["x86_64-pc-windows-msvc"]
PYTHONS = ["3.11", "3.12", "3.13", "3.14"]


def test_every_locked_package_has_a_wheel_for_each_platform_and_python():
    """uv resolves requirements.txt within constraints.txt from wheels alone for every platform and Python."""
    uv = Path(sys.executable).parent / "uv"

    def resolve(target: tuple[str, str], offline: bool) -> str:
        python, platform = target
        done = subprocess.run(
            [str(uv), "pip", "compile", "requirements.txt", "--constraint", "constraints.txt", "--only-binary", ":all:"]
            + ["--python-version", python, "--python-platform", platform, "--no-header", "--quiet"]
            + (["--offline"] if offline else []),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return "" if done.returncode == 0 else f"Python {python} on {platform}: {done.stderr.strip()[-600:]}"

    # The first target asks the registry (about 10 s); the others use what it left in uv's cache
    # (half a second each), and ask the registry only when the cache lacks something.
    targets = [(python, platform) for python in PYTHONS for platform in PLATFORMS]
    failures = [resolve(targets[0], offline=False)]
    with ThreadPoolExecutor(4) as pool:
        failures += pool.map(lambda t: resolve(t, offline=True) and resolve(t, offline=False), targets[1:])
    failures = [failure for failure in failures if failure]
    assert not failures, "\n".join(failures)


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    """README shows `make lab` and `make test`; .ci/run installs Chromium and PostgreSQL, then ends in `make test`."""
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    run = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line.strip() for line in run if line.strip() and not line.startswith("#")]
    assert commands[-1] == "make test"
    assert sum("make" in c for c in commands) == 1
    assert any(c.startswith("DEBIAN_FRONTEND=noninteractive apt-get install") for c in commands)
    for package in ("chromium", "postgresql", "python3-venv"):
        assert any(f"need+=({package})" in c for c in commands), f".ci/run does not install {package}"


def test_make_targets_exist():
    """The Makefile offers the targets the README documents."""
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab", "test", "release", "grade"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "--nbval-cell-timeout" in makefile
    assert "--allow-root" in makefile


def test_each_test_group_has_a_folder_and_a_make_target():
    """Every marker in pyproject.toml names a folder under tests/ and a make target that runs it with $(PYTEST)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tests_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # `import conftest` may find tests/notebooks/conftest.py
    groups = module.groups

    makefile = (ROOT / "Makefile").read_text()
    assert {"unit", "notebooks", "grading", "e2e", "repo"} <= groups()
    for group in groups():
        recipes = re.findall(rf"^([a-z0-9-]+): install\n\t\$\(PYTEST\) -m {group} tests$", makefile, re.M)
        assert len(recipes) == 1, f"no make target runs the {group} tests"
    for group in groups():
        assert list((ROOT / "tests" / group).glob("test_*.py")), f"tests/{group}/ has no tests"


def test_start_here_links_every_topic_notebook():
    """The start-here notebook links all six release notebooks, and each link resolves."""
    text = (ROOT / "notebooks" / "00-start-here.ipynb").read_text()
    links = re.findall(r"\]\((\.\./release/day3/[^)]+\.ipynb)\)", text)
    assert len(set(links)) == 6
    for link in set(links):
        assert (ROOT / "notebooks" / link).resolve().is_file(), link


def test_nbgrader_config_loads_and_sets_what_the_course_needs():
    """nbgrader only logs a broken config file and carries on, so load it here and check it."""
    from traitlets.config.loader import PyFileConfigLoader
    from traitlets.utils.importstring import import_item

    from concurrency_lab.grading.hidehiddentests import HideHiddenTests
    from concurrency_lab.grading.resilientexecute import ResilientExecute
    from concurrency_lab.grading.restorecells import RestoreCells
    from concurrency_lab.grading.settings import AUTOGRADE_PREPROCESSORS, SANITIZE_PREPROCESSORS

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.CourseDirectory.course_id == "concurrency-lab"
    assert config.Execute.timeout > 0
    assert config.OverwriteCells.add_missing_cells is True
    assert config.IncludeHeaderFooter.header.endswith("header.ipynb")
    assert HideHiddenTests in config.GenerateFeedback.preprocessors
    assert config.Autograde.autograde_preprocessors == list(AUTOGRADE_PREPROCESSORS)
    preprocessors = [import_item(name) for name in AUTOGRADE_PREPROCESSORS]  # each name imports
    assert preprocessors[0] is ResilientExecute
    assert config.Autograde.sanitize_preprocessors == list(SANITIZE_PREPROCESSORS)
    assert RestoreCells in [import_item(name) for name in SANITIZE_PREPROCESSORS]


def test_the_longest_test_files_named_for_the_run_order_exist(request):
    """Each file in tests/conftest.py's LONGEST_FIRST exists: a renamed file would silently run last."""
    conftest = next(
        plugin
        for plugin in request.config.pluginmanager.get_plugins()
        if getattr(plugin, "__file__", None) == str(ROOT / "tests" / "conftest.py")
    )
    assert conftest.LONGEST_FIRST
    missing = [name for name in conftest.LONGEST_FIRST if not (ROOT / "tests" / name).is_file()]
    assert missing == [], f"not in tests/: {missing}"
