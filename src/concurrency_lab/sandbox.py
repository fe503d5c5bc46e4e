"""Kernel launcher for grading: apply limits, then exec the real kernel.

The grader's kernelspec runs ``python -m concurrency_lab.sandbox KERNEL-ARGV...``.
Before it replaces itself with the kernel, it

* joins the pids cgroup named by ``CONCURRENCY_LAB_PIDS_CGROUP`` (when the
  grader could make one), so a fork bomb hits ``pids.max`` and the grader can
  find and kill every process the kernel ever started;
* limits the address space to ``CONCURRENCY_LAB_MEMORY_BYTES`` (RLIMIT_AS,
  per process) so a memory hog gets a ``MemoryError``;
* limits processes with RLIMIT_NPROC to ``CONCURRENCY_LAB_MAX_PROCS`` when not
  root (root ignores RLIMIT_NPROC; the cgroup covers root).
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Mapping

__all__ = ["apply_limits", "main"]

CGROUP_ENV = "CONCURRENCY_LAB_PIDS_CGROUP"
MEMORY_ENV = "CONCURRENCY_LAB_MEMORY_BYTES"
PROCS_ENV = "CONCURRENCY_LAB_MAX_PROCS"


def apply_limits(environ: Mapping[str, str] | None = None) -> list[str]:
    """Apply the limits the environment names to this process; say what was applied."""
    environ = os.environ if environ is None else environ
    applied = []
    cgroup = environ.get(CGROUP_ENV)
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii") as handle:
            handle.write(str(os.getpid()))
        applied.append(f"cgroup {cgroup}")
    memory = int(environ.get(MEMORY_ENV, "0") or 0)
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        applied.append(f"address space {memory} bytes")
    procs = int(environ.get(PROCS_ENV, "0") or 0)
    if procs > 0 and os.getuid() != 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (procs, procs))
        applied.append(f"processes {procs}")
    return applied


def main(argv: list[str] | None = None) -> None:
    """Apply the limits, then exec ``argv`` (the kernel's command line)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m concurrency_lab.sandbox KERNEL-COMMAND...")
    apply_limits()
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
