"""Every source notebook runs, model answers and hidden tests included, on each newer Python here.

The suite runs on .venv's Python (3.11, nbgrader's minimum); students use 3.11 to 3.14. For each
newer version found on this machine (``python3.X`` on PATH, or a pyenv build), a fresh venv gets
requirements.txt within constraints.txt, as ``make lab`` would install it, and every source notebook
is validated with that venv's ``nbgrader validate`` (what the Validate button runs) in quick mode:
every cell runs, and every test cell, hidden tests included, must pass. It fails for a locked
package that does not work on that Python (nbgrader itself, or what a notebook imports), a hidden
test that fails there, or a worker that cannot start under that version's start method.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nbtools import BIN, ROOT, SOURCE

VERSIONS = ["3.12", "3.13", "3.14"]


def _python(version: str) -> str | None:
    """An interpreter of this minor version, or None."""
    pyenv = sorted(glob.glob(str(Path.home() / ".pyenv" / "versions" / f"{version}.*" / "bin" / "python3")))
    for candidate in [shutil.which(f"python{version}"), *reversed(pyenv)]:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


@pytest.mark.parametrize("version", VERSIONS)
def test_source_notebooks_run_on_a_newer_python(version, tmp_path):
    """requirements.txt installs within constraints.txt, and every source notebook runs and passes its tests."""
    python = _python(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = [str(BIN / "uv"), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*install, "-r", str(ROOT / "requirements.txt"), "-c", str(ROOT / "constraints.txt")], check=True, timeout=600
    )
    course = tmp_path / "day3"
    shutil.copytree(SOURCE, course)
    notebooks = sorted(p.name for p in course.glob("*.ipynb"))
    env = {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "PYTHONPATH": str(ROOT / "src"),  # the course package, from this checkout
        "CONCURRENCY_LAB_QUICK": "1",
        "MPLBACKEND": "Agg",
    }
    # nbgrader validate, as the Validate button runs it: every cell, then every test cell must pass.
    done = subprocess.run(
        [str(venv / "bin" / "nbgrader"), "validate", "--Execute.timeout=120", *notebooks],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"Python {version} ({python}):\n{output[-3000:]}"
    passed = output.count("Success! Your notebook passes all the tests.")
    assert passed == len(notebooks), f"Python {version}: {passed} of {len(notebooks)} passed\n{output[-3000:]}"
