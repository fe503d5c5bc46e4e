"""The machine line, the Python version check, the start-method set-up and quick mode.

Every notebook's Setup cell calls :func:`setup`, which checks the Python
version, chooses the multiprocessing start method and returns the one-line
machine description that is printed before any timing; then it asks
:func:`quick_mode` whether to run its demos at their small sizes.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import sys
from collections.abc import Mapping

__all__ = [
    "FORKSERVER_PRELOAD",
    "MIN_PYTHON",
    "QUICK_ENV",
    "START_METHOD_ENV",
    "check_python",
    "choose_start_method",
    "cpu_count",
    "describe_machine",
    "gil_enabled",
    "quick_mode",
    "setup",
]

#: The oldest Python the course supports: nbgrader 0.9.6 needs 3.11.
MIN_PYTHON: tuple[int, int] = (3, 11)

#: Set this environment variable to ``fork``, ``spawn`` or ``forkserver`` to
#: force a start method in every notebook (the tests use it to run each
#: notebook the way macOS, Windows and Python 3.14 would).
START_METHOD_ENV = "CONCURRENCY_LAB_START_METHOD"

#: Modules the fork server imports once when it starts, so that the processes it forks
#: (pool workers, under ``forkserver``) start with them instead of importing them each
#: (about 30 ms of CPU per process). Only the course's own modules and the standard
#: library: a module that students edit (``primes_worker.py``) is imported fresh by
#: every process, so that it runs the version on disk.
FORKSERVER_PRELOAD: tuple[str, ...] = (
    "multiprocessing.pool",
    "concurrent.futures.process",
    "concurrency_lab.workers",
    "concurrency_lab.fixtures",
)

#: Either variable, set to anything but blanks, switches on quick mode. nbgrader
#: sets ``NBGRADER_EXECUTION`` while it validates or grades a notebook; set
#: ``CONCURRENCY_LAB_QUICK=1`` to get the same small sizes by hand.
QUICK_ENV: tuple[str, ...] = ("NBGRADER_EXECUTION", "CONCURRENCY_LAB_QUICK")


def check_python(version: tuple[int, ...] | None = None) -> None:
    """Raise ``RuntimeError`` with a clear message if Python is older than 3.11.

    Args:
        version: the version to check; defaults to the running interpreter's.
    """
    version = tuple(sys.version_info[:3]) if version is None else tuple(version)
    if version[:2] < MIN_PYTHON:
        found = ".".join(str(part) for part in version)
        need = ".".join(str(part) for part in MIN_PYTHON)
        raise RuntimeError(
            f"This course needs Python {need} or newer (nbgrader 0.9.6 does), "
            f"but this kernel runs Python {found}. Install a newer Python, then "
            f"run `make lab` again, or pick a newer kernel in JupyterLab."
        )


def gil_enabled() -> bool:
    """True unless this is a free-threaded build running without the GIL.

    ``sys._is_gil_enabled()`` exists from Python 3.13; older versions always
    have the GIL.
    """
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def cpu_count() -> int:
    """The number of cores this process may run on (at least 1)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        count = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return max(1, count or 1)


def choose_start_method(environ: Mapping[str, str] | None = None, platform_name: str | None = None) -> str:
    """The start method the course uses here, without changing anything.

    The environment variable ``CONCURRENCY_LAB_START_METHOD`` wins. Otherwise
    Linux uses ``forkserver`` (the default from Python 3.14, and safe in a
    multi-threaded Jupyter kernel, where ``fork`` can deadlock), and every
    other platform keeps its default (``spawn`` on macOS and Windows).

    Raises:
        ValueError: if the variable names a method this platform lacks.
    """
    environ = os.environ if environ is None else environ
    platform_name = sys.platform if platform_name is None else platform_name
    available = multiprocessing.get_all_start_methods()
    wanted = environ.get(START_METHOD_ENV, "").strip()
    if wanted:
        if wanted not in available:
            raise ValueError(f"{START_METHOD_ENV}={wanted!r}, but this platform offers only {', '.join(available)}")
        return wanted
    if platform_name.startswith("linux") and "forkserver" in available:
        return "forkserver"
    return multiprocessing.get_start_method(allow_none=True) or available[0]


def quick_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when the demos and the speedup lab should run at their small sizes.

    That is while nbgrader runs the notebook (``NBGRADER_EXECUTION``), or when
    ``CONCURRENCY_LAB_QUICK`` is set, to anything but blanks. Quick mode only
    makes demos smaller and timings shorter; the tests are the same either way.

    Args:
        environ: the environment to read; defaults to ``os.environ``.
    """
    environ = os.environ if environ is None else environ
    return any(environ.get(name, "").strip() for name in QUICK_ENV)


def describe_machine() -> str:
    """One line: cores, Python version and implementation, start method, GIL.

    Example: ``2 cores · CPython 3.11.7 · start method forkserver · GIL enabled``.
    """
    method = multiprocessing.get_start_method(allow_none=True) or choose_start_method()
    build = "GIL enabled" if gil_enabled() else "free-threaded, GIL disabled"
    return (
        f"{cpu_count()} cores · {platform.python_implementation()} "
        f"{platform.python_version()} · start method {method} · {build}"
    )


def setup() -> str:
    """Check Python, set the start method for this kernel, return the machine line.

    Also names the modules a fork server preloads (:data:`FORKSERVER_PRELOAD`).
    Safe to call more than once (re-running a Setup cell).
    """
    check_python()
    method = choose_start_method()
    if multiprocessing.get_start_method(allow_none=True) != method:
        multiprocessing.set_start_method(method, force=True)
    if "forkserver" in multiprocessing.get_all_start_methods():
        # Takes effect when the fork server starts (its first process); harmless if it never does.
        multiprocessing.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    return describe_machine()
