"""The sandbox: each grading worker's set-up and clean-up, and the kernel launcher.

A grading worker (one long-lived process that grades many students: a
``--jobs`` worker or a Dask worker) calls :func:`setup_worker` once: it
becomes a child subreaper, writes the grader's kernelspec, makes a pids cgroup
and puts the limits in its environment. After each student,
:func:`kill_strays` kills every process the student's kernels left behind,
and nothing of the worker's own (:func:`student_processes` says which are
the student's).

The grader's kernelspec runs ``python -m concurrency_lab.grading.sandbox
KERNEL-ARGV...``. Before it replaces itself with the kernel, :func:`main`

* joins the pids cgroup named by ``CONCURRENCY_LAB_PIDS_CGROUP`` (when the
  worker could make one), so a fork bomb hits ``pids.max`` and the worker can
  find and kill every process the kernel ever started;
* limits the address space to ``CONCURRENCY_LAB_MEMORY_BYTES`` (RLIMIT_AS,
  per process) so a memory hog gets a ``MemoryError``;
* limits processes with RLIMIT_NPROC to ``CONCURRENCY_LAB_MAX_PROCS`` when not
  root (root ignores RLIMIT_NPROC; the cgroup covers root). RLIMIT_NPROC counts
  every process of a user, so a fork bomb in one kernel would also stop every
  other kernel of the same grader. Since Linux 5.14 the count is kept per user
  namespace, so the kernel first enters a user namespace of its own
  (:func:`enter_user_namespace`; no privilege needed where unprivileged user
  namespaces are allowed), and the cap holds its own processes only. Where it
  cannot, the cap is added to what the user already runs, as before.

The variable names are in :mod:`.settings`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import multiprocessing.util
import os
import resource
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .settings import (
    CGROUP_PREFIX,
    KERNEL_ENV,
    KERNEL_MARKER_ENV,
    KERNEL_NAME,
    MAX_PROCS_ENV,
    MEMORY_ENV,
    PIDS_CGROUP_ENV,
    USER_PROCS_ENV,
    WARM_CGROUP_ENV,
    WARM_SUFFIX,
    WORK,
    GradeSettings,
)

__all__ = [
    "apply_limits",
    "children_now",
    "enter_user_namespace",
    "kill_strays",
    "main",
    "setup_worker",
    "student_processes",
]

_WORKER: dict[str, object] = {}


# -- the kernel launcher: runs in the kernel's process, before the kernel.

CLONE_NEWUSER = 0x10000000


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def enter_user_namespace() -> bool:
    """Move this process into a new user namespace, its uid and gid mapped to themselves.

    Files, sockets and ``os.getuid()`` look the same inside; what changes is
    that RLIMIT_NPROC counts only the processes of this namespace. Call it
    while the process has one thread (before any thread starts); children
    inherit the namespace.

    Returns:
        True if the process is now in a new user namespace; False where the
        system does not allow it (not Linux, user namespaces disabled, a seccomp
        filter), and the process is unchanged.
    """
    if not sys.platform.startswith("linux"):
        return False
    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        code = ctypes.get_errno()
        if code in (errno.EPERM, errno.EINVAL, errno.ENOSPC, errno.EUSERS, errno.ENOSYS):
            return False
        raise OSError(code, os.strerror(code))
    _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
    _write("/proc/self/setgroups", "deny\n")  # required before an unprivileged gid_map
    _write("/proc/self/gid_map", f"{gid} {gid} 1\n")
    return True


def apply_limits(environ: Mapping[str, str] | None = None) -> list[str]:
    """Apply the limits the environment names to this process; say what was applied."""
    environ = os.environ if environ is None else environ
    applied = []
    # A warm kernel waits in a group of its own and joins the worker's when it is taken.
    cgroup = environ.get(WARM_CGROUP_ENV) or environ.get(PIDS_CGROUP_ENV)
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
        applied.append(f"cgroup {cgroup}")
    memory = int(environ.get(MEMORY_ENV, "0") or 0)
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        applied.append(f"address space {memory} bytes")
    procs = int(environ.get(MAX_PROCS_ENV, "0") or 0)
    if procs > 0 and os.getuid() != 0:
        if enter_user_namespace():
            applied.append(f"processes {procs} (its own user namespace)")
        else:
            procs += int(environ.get(USER_PROCS_ENV, "0") or 0)
            applied.append(f"processes {procs} (all of the user's)")
        resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
    return applied


def main(argv: list[str] | None = None) -> None:
    """Apply the limits, then exec ``argv`` (the kernel's command line)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m concurrency_lab.grading.sandbox KERNEL-COMMAND...")
    apply_limits()
    os.environ.pop(WARM_CGROUP_ENV, None)  # a warm kernel's environment is a fresh kernel's
    os.execv(argv[0], argv)


# -- the worker: set up once, clean up after each student.


def _become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so none escapes the clean-up."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def _make_pids_cgroup(max_pids: int) -> Path | None:
    """A pids cgroup (v1 or v2) for this worker's kernels, or None where we may not make one."""
    if max_pids <= 0:
        return None
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (base / "cgroup.procs").exists() or not os.access(base, os.W_OK):
            continue
        if base == Path("/sys/fs/cgroup") and "pids" not in (base / "cgroup.controllers").read_text(errors="ignore"):
            continue
        _remove_stale_cgroups(base)
        group = base / f"{CGROUP_PREFIX}{os.getpid()}"
        warm = group.with_name(group.name + WARM_SUFFIX)  # where a warm kernel waits (.warmkernel)
        try:
            for made in (group, warm):
                made.mkdir(exist_ok=True)
                (made / "pids.max").write_text(str(max_pids))
        except OSError:
            continue
        # Remove them when this worker exits normally (multiprocessing runs Finalize, not atexit).
        for made in (group, warm):
            multiprocessing.util.Finalize(None, _remove_cgroup, args=(made,), exitpriority=10)
        return group
    return None


def _remove_cgroup(group: Path) -> None:
    try:
        group.rmdir()  # only succeeds when no process is left in it
    except OSError:
        pass


def _remove_stale_cgroups(base: Path) -> None:
    """Remove empty groups left by grader workers that were killed."""
    for group in base.glob(f"{CGROUP_PREFIX}*"):
        pid = group.name[len(CGROUP_PREFIX) :].removesuffix(WARM_SUFFIX)
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_cgroup(group)


def _own_process_count() -> int:
    import psutil

    uid = os.getuid()
    return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid)


def setup_worker(settings: GradeSettings) -> None:
    """Prepare this process to grade in ``settings.root``: subreaper, kernelspec, cgroup, limits.

    Runs once per worker and course; later calls return at once.
    """
    if _WORKER.get("root") == str(settings.root):
        return
    _become_subreaper()
    work = settings.root / WORK
    spec = work / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [
            sys.executable,
            "-m",
            "concurrency_lab.grading.sandbox",
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--IPKernelApp.log_level=ERROR",
        ],
        "display_name": "Concurrency Lab grader (limited)",
        "language": "python",
        "env": {**KERNEL_ENV, KERNEL_MARKER_ENV: "1"},
    }
    tmp = spec / f"kernel.json.{os.getpid()}"
    tmp.write_text(json.dumps(kernel, indent=1))
    os.replace(tmp, spec / "kernel.json")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(work), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    group = _make_pids_cgroup(settings.max_pids)
    if group is not None:
        os.environ[PIDS_CGROUP_ENV] = str(group)
    elif settings.max_pids > 0 and os.getuid() != 0:
        os.environ[MAX_PROCS_ENV] = str(settings.max_pids)
        os.environ[USER_PROCS_ENV] = str(_own_process_count())
    if settings.memory_bytes > 0:
        os.environ[MEMORY_ENV] = str(settings.memory_bytes)
    _WORKER["root"] = str(settings.root)
    _WORKER["cgroup"] = group


def children_now() -> frozenset[tuple[int, float]]:
    """This process's children as (pid, start time): taken when a student's grading begins.

    :func:`kill_strays` spares them: a grading worker's own children (a Dask
    worker's, say) exist before the student's kernels start.
    """
    import psutil

    found = set()
    for proc in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            found.add((proc.pid, proc.create_time()))
    return frozenset(found)


def student_processes(before: frozenset[tuple[int, float]] = frozenset()) -> dict[int, Any]:
    """The processes that a student's kernels started, under this process or in its pids cgroup.

    A process is the student's when it carries the kernel marker
    (:data:`~.settings.KERNEL_MARKER_ENV` in the environment it started with:
    the kernelspec sets it and every process a kernel starts inherits it),
    descends from such a process, is in this worker's pids cgroup (only
    kernels join it), or was adopted by this worker (a child subreaper) from
    outside its session since ``before`` (:func:`children_now`): a
    double-forked process whose parent died, even one that emptied its
    environment. Kernels start in sessions of their own, so nothing a kernel
    starts is in the worker's session. Everything else under the worker, such
    as a Dask worker's own children, is not the student's.
    """
    import psutil

    me = psutil.Process()
    session = os.getsid(0)
    descendants: dict[int, psutil.Process] = {}
    parents: dict[int, int] = {}
    for proc in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            parents[proc.pid] = proc.ppid()
            descendants[proc.pid] = proc
    owned: set[int] = set()
    for pid, proc in descendants.items():
        try:
            if proc.environ().get(KERNEL_MARKER_ENV) == "1":
                owned.add(pid)
            elif parents[pid] == me.pid and (pid, proc.create_time()) not in before and os.getsid(pid) != session:
                owned.add(pid)  # adopted while this student was graded
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            continue  # gone, or a zombie: nothing left to kill
    for pid in parents:  # everything below a student's process is the student's too
        chain, cursor = [], pid
        while cursor in parents and cursor not in owned:
            chain.append(cursor)
            cursor = parents[cursor]
        if cursor in owned:
            owned.update(chain)
    found: dict[int, Any] = {pid: descendants[pid] for pid in owned}
    group = _WORKER.get("cgroup")
    groups = [group, group.with_name(group.name + WARM_SUFFIX)] if isinstance(group, Path) else []
    for each in groups:
        if not (each / "cgroup.procs").exists():
            continue
        for pid in (each / "cgroup.procs").read_text().split():
            with contextlib.suppress(psutil.NoSuchProcess):
                found.setdefault(int(pid), psutil.Process(int(pid)))
    found.pop(me.pid, None)
    return found


def kill_strays(before: frozenset[tuple[int, float]] = frozenset()) -> list[str]:
    """Kill every process a student's kernels left behind (:func:`student_processes`).

    Returns:
        The processes that were still running, as ``pid N (command)``; zombies
        (already dead, only waiting to be reaped) are reaped but not counted.
    """
    import psutil

    from .strays import describe

    victims: dict[int, str] = {}
    for _ in range(5):  # forks may race the kill: sweep until nothing is left
        found = student_processes(before)
        if not found:
            break
        for pid, proc in found.items():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    victims.setdefault(pid, describe(pid, " ".join(proc.cmdline())))
                proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        psutil.wait_procs(list(found.values()), timeout=5)  # reaps our own and adopted children
    return list(victims.values())


if __name__ == "__main__":
    main()
