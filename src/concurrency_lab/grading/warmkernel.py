"""A warm kernel: the next notebook's kernel starts while the grading worker runs this one.

Starting a kernel costs about 0.6 s of waiting per notebook. While a grading
worker runs a student's notebook, :class:`~.resilientexecute.ResilientExecute`
launches the kernel for the student's next notebook (:func:`launch`), and that
notebook takes it (:func:`take`) instead of starting one. It is exactly what a
fresh start would give, or it is not used:

* it is taken only with the same kernelspec, working folder (the student's
  folder), command-line arguments and environment (``os.environ`` as a whole:
  ``NBGRADER_EXECUTION``, the sandbox's limits, the events file) as the start
  it replaces; anything else is killed and a fresh kernel starts;
* it has run no code: no client connects to it before it is taken;
* it waits in a pids cgroup of its own (where the worker has one), so it uses
  none of the running kernel's process budget, and joins the worker's group
  when taken; the sandbox drops the variable naming the waiting group before
  the kernel starts, so the kernel's environment is a fresh kernel's;
* it is started only for a notebook that comes after the current one in the
  same folder: the grader says which notebooks a student's folder will run
  (:func:`expect`), and under plain ``nbgrader autograde`` they are the
  notebooks of the student's submission. The grader kills what is left after
  each student (:func:`discard`), before it looks for stray processes; under
  plain ``nbgrader autograde`` the next kernel start kills a kernel nobody
  took (another folder), and a worker or process that ends kills it too.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .settings import PIDS_CGROUP_ENV, WARM_CGROUP_ENV, WARM_SUFFIX

__all__ = [
    "discard",
    "expect",
    "kernel_key",
    "kernel_pid",
    "kernel_process",
    "kill_now",
    "launch",
    "pending",
    "planned",
    "take",
    "wants_next",
]

#: The notebooks each folder will run, by the folder's real path: set by the grader, or by
#: ResilientExecute from the submission under plain ``nbgrader autograde``.
_PLAN: dict[str, tuple[str, ...]] = {}
#: The one waiting kernel: {"key": ..., "km": kernel manager}.
_WARM: dict[str, Any] = {}
_FINALIZER: list[Any] = []


def _real(folder: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(folder))


def expect(folder: str | os.PathLike[str], notebooks: Iterable[str]) -> None:
    """Say that ``folder`` will run ``notebooks`` (names without ``.ipynb``), in sorted order."""
    _PLAN.clear()
    _PLAN[_real(folder)] = tuple(sorted(notebooks))


def planned(folder: str | os.PathLike[str]) -> tuple[str, ...] | None:
    """The notebooks ``folder`` will run, as said to :func:`expect`; None if nothing was said of it."""
    return _PLAN.get(_real(folder))


def wants_next(folder: str | os.PathLike[str] | None, notebook: str | None) -> bool:
    """True if a notebook is expected in ``folder`` after ``notebook``."""
    if not folder or not notebook:
        return False
    return any(name > notebook for name in _PLAN.get(_real(folder), ()))


def kernel_key(km: Any, cwd: str | None, extra_arguments: Iterable[str], env: dict[str, str]) -> tuple[Any, ...]:
    """What a kernel start depends on: kernelspec, folder, arguments, environment, transport."""
    spec = km.kernel_spec
    spec_dict = spec.to_dict() if spec is not None else None
    return (
        km.kernel_name,
        repr(spec_dict),
        _real(cwd) if cwd else None,
        tuple(extra_arguments),
        tuple(sorted(env.items())),
        km.transport,
    )


def _waiting_group() -> Path | None:
    main = os.environ.get(PIDS_CGROUP_ENV)
    if not main:
        return None
    group = Path(f"{main}{WARM_SUFFIX}")
    return group if (group / "cgroup.procs").exists() else None


async def launch(km: Any, key: tuple[Any, ...], cwd: str | None, extra_arguments: list[str]) -> bool:
    """Start ``km``'s kernel now, to be taken later with the same ``key``; False if it failed.

    Any kernel already waiting is killed first: there is at most one.
    """
    discard()
    env = dict(os.environ)
    group = _waiting_group()
    if group is not None:
        env[WARM_CGROUP_ENV] = str(group)
    kwargs: dict[str, Any] = {"extra_arguments": list(extra_arguments), "env": env}
    if cwd:
        kwargs["cwd"] = cwd
    try:
        await km.start_kernel(**kwargs)
    except Exception:  # no warm kernel then: the next notebook starts its own
        _stop(km)
        return False
    _WARM.update(key=key, km=km)
    if not _FINALIZER:  # a worker that ends (multiprocessing runs Finalize, not atexit) kills it
        _FINALIZER.append(multiprocessing.util.Finalize(None, discard, exitpriority=20))
    return True


def take(key: tuple[Any, ...]) -> Any | None:
    """The waiting kernel's manager if it was started with ``key`` and is alive, else None.

    A kernel started with another key, dead, or that cannot join the worker's
    pids cgroup is killed.
    """
    km, warm_key = _WARM.get("km"), _WARM.get("key")
    if km is None:
        return None
    if warm_key != key or kernel_pid(km) is None:
        discard()
        return None
    _WARM.clear()
    main = os.environ.get(PIDS_CGROUP_ENV)
    if main and _waiting_group() is not None:
        try:
            with open(os.path.join(main, "cgroup.procs"), "w", encoding="ascii") as handle:
                handle.write(str(kernel_pid(km)))
        except OSError:
            _stop(km)
            return None
    return km


def pending() -> int | None:
    """The PID of the waiting kernel, or None."""
    km = _WARM.get("km")
    return kernel_pid(km) if km is not None else None


def discard() -> None:
    """Kill the waiting kernel, if any, and reap it."""
    km = _WARM.get("km")
    _WARM.clear()
    if km is not None:
        _stop(km)


def kernel_process(km: Any) -> Any:
    """The ``subprocess.Popen`` of a kernel manager's kernel, or None (not started, or not a local one)."""
    return getattr(getattr(km, "provisioner", None), "process", None)


def kernel_pid(km: Any) -> int | None:
    """The PID of a kernel manager's kernel while its process runs, else None."""
    process = kernel_process(km)
    if process is None or process.poll() is not None:
        return None
    return int(process.pid)


def kill_now(process: Any) -> None:
    """Kill a kernel's process (a ``subprocess.Popen``) and its process group at once, and reap it."""
    if process is not None and process.poll() is None:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)  # kernels start in a session of their own
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(Exception):
            process.wait(timeout=5)


def _stop(km: Any) -> None:
    """Kill the kernel's process group at once and reap it; remove its files (no event loop needed)."""
    kill_now(kernel_process(km))
    for cleanup in (km.cleanup_connection_file, km.cleanup_ipc_files, km._close_control_socket):
        with contextlib.suppress(Exception):
            cleanup()
