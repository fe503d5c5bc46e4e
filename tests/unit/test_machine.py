"""The machine line, the version check and the start-method choice."""

from __future__ import annotations

import ast
import multiprocessing
import os
import subprocess
import sys

import pytest

from concurrency_lab import machine


def test_describe_machine_names_cores_python_method_and_gil():
    """The line has the core count, implementation and version, start method and GIL state."""
    line = machine.describe_machine()
    assert f"{machine.cpu_count()} cores" in line
    assert sys.version.split()[0] in line
    assert "start method" in line
    assert ("GIL enabled" in line) == machine.gil_enabled()


def test_gil_enabled_follows_sys_is_gil_enabled(monkeypatch):
    """A free-threaded build without the GIL is reported as such."""
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    assert machine.gil_enabled() is False
    assert "GIL disabled" in machine.describe_machine()
    monkeypatch.delattr(sys, "_is_gil_enabled", raising=False)
    assert machine.gil_enabled() is True


def test_check_python_rejects_old_versions_with_a_clear_message():
    """3.10 is refused and the message says what to do; 3.11 and 3.14 pass."""
    with pytest.raises(RuntimeError, match="needs Python 3.11 or newer.*3.10.4"):
        machine.check_python((3, 10, 4))
    machine.check_python((3, 11, 0))
    machine.check_python((3, 14, 0))


def test_choose_start_method():
    """The env var wins; Linux defaults to forkserver; a bad name is an error."""
    env = machine.START_METHOD_ENV
    assert machine.choose_start_method({env: "spawn"}, "linux") == "spawn"
    assert machine.choose_start_method({}, "linux") == "forkserver"
    with pytest.raises(ValueError, match="offers only"):
        machine.choose_start_method({env: "teleport"}, "linux")


def test_setup_sets_the_start_method(monkeypatch):
    """setup() applies the chosen method and returns the machine line."""
    before = multiprocessing.get_start_method(allow_none=True)
    try:
        monkeypatch.setenv(machine.START_METHOD_ENV, "spawn")
        line = machine.setup()
        assert multiprocessing.get_start_method() == "spawn"
        assert "start method spawn" in line
    finally:
        multiprocessing.set_start_method(before, force=True)


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here")
def test_setup_makes_the_fork_server_preload_the_course_modules():
    """After setup(), a forkserver worker starts with the course's worker modules already imported."""
    probe = (
        "import multiprocessing as mp\n"
        "from concurrency_lab import machine\n"
        "machine.setup()\n"
        "with mp.get_context('forkserver').Pool(1) as pool:\n"
        "    print(pool.apply(eval, (\"sorted(__import__('sys').modules)\",)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != machine.START_METHOD_ENV}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert set(machine.FORKSERVER_PRELOAD) <= loaded, set(machine.FORKSERVER_PRELOAD) - loaded
