"""The sandbox: each grading worker's set-up and clean-up, and the kernel launcher.

A grading worker (one long-lived process that grades many students) calls
:func:`setup_worker` once: it becomes a child subreaper, writes the grader's
kernelspec, makes a pids cgroup and puts the limits in its environment. After
each student, :func:`kill_strays` kills every process the kernel left behind.

The grader's kernelspec runs ``python -m concurrency_lab.grading.sandbox
KERNEL-ARGV...``. Before it replaces itself with the kernel, :func:`main`

* joins the pids cgroup named by ``CONCURRENCY_LAB_PIDS_CGROUP`` (when the
  worker could make one), so a fork bomb hits ``pids.max`` and the worker can
  find and kill every process the kernel ever started;
* limits the address space to ``CONCURRENCY_LAB_MEMORY_BYTES`` (RLIMIT_AS,
  per process) so a memory hog gets a ``MemoryError``;
* limits processes with RLIMIT_NPROC to ``CONCURRENCY_LAB_MAX_PROCS`` when not
  root (root ignores RLIMIT_NPROC; the cgroup covers root).

The variable names are in :mod:`.settings`.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing.util
import os
import resource
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from .settings import CGROUP_PREFIX, KERNEL_NAME, MAX_PROCS_ENV, MEMORY_ENV, PIDS_CGROUP_ENV, WORK, GradeSettings

__all__ = ["apply_limits", "kill_strays", "main", "setup_worker"]

_WORKER: dict[str, object] = {}


# -- the kernel launcher: runs in the kernel's process, before the kernel.


def apply_limits(environ: Mapping[str, str] | None = None) -> list[str]:
    """Apply the limits the environment names to this process; say what was applied."""
    environ = os.environ if environ is None else environ
    applied = []
    cgroup = environ.get(PIDS_CGROUP_ENV)
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
        resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
        applied.append(f"processes {procs}")
    return applied


def main(argv: list[str] | None = None) -> None:
    """Apply the limits, then exec ``argv`` (the kernel's command line)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m concurrency_lab.grading.sandbox KERNEL-COMMAND...")
    apply_limits()
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
        try:
            group.mkdir(exist_ok=True)
            (group / "pids.max").write_text(str(max_pids))
        except OSError:
            continue
        # Remove it when this worker exits normally (multiprocessing runs Finalize, not atexit).
        multiprocessing.util.Finalize(None, _remove_cgroup, args=(group,), exitpriority=10)
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
        pid = group.name[len(CGROUP_PREFIX) :]
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
        os.environ[MAX_PROCS_ENV] = str(_own_process_count() + settings.max_pids)
    if settings.memory_bytes > 0:
        os.environ[MEMORY_ENV] = str(settings.memory_bytes)
    _WORKER["root"] = str(settings.root)
    _WORKER["cgroup"] = group


def kill_strays() -> int:
    """Kill every descendant of this process and everything in its pids cgroup; return the count."""
    import psutil

    victims: dict[int, psutil.Process] = {}
    for _ in range(5):  # forks may race the kill: sweep until nothing is left
        found = {p.pid: p for p in psutil.Process().children(recursive=True)}
        group = _WORKER.get("cgroup")
        if isinstance(group, Path) and (group / "cgroup.procs").exists():
            for pid in (group / "cgroup.procs").read_text().split():
                try:
                    found.setdefault(int(pid), psutil.Process(int(pid)))
                except psutil.NoSuchProcess:
                    pass
        found.pop(os.getpid(), None)
        if not found:
            break
        for proc in found.values():
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(list(found.values()), timeout=5)
        victims.update(found)
    return len(victims)


if __name__ == "__main__":
    main()
