"""A process cap per kernel for a grader that is not root: a user namespace of its own.

RLIMIT_NPROC counts every process (every thread, on Linux) of a user, not of
one kernel. A grader that runs as a normal user and caps a kernel with it
caps all of that user's processes: a fork bomb in one student's kernel
reaches the cap, and at that moment every other kernel the grader starts
fails too ("Resource temporarily unavailable").

Since Linux 5.14 the count is kept per user *per user namespace*. A kernel
that enters a new user namespace before it sets RLIMIT_NPROC starts counting
from its own processes only, so the cap contains the bomb and nobody else is
touched. Entering one needs no privilege where unprivileged user namespaces
are allowed (most distributions; ``/proc/sys/user/max_user_namespaces`` > 0).
The uid and gid are mapped to themselves, so files, sockets and ``os.getuid()``
look the same inside.

Root does not need this: RLIMIT_NPROC does not apply to root, and the grader
uses a pids cgroup instead.

Run a command contained::

    python -m concurrency_lab.userns MAX_PROCS COMMAND...
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import sys

__all__ = ["contain_processes", "enter_user_namespace", "main"]

CLONE_NEWUSER = 0x10000000


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def enter_user_namespace() -> bool:
    """Move this process into a new user namespace, with its uid and gid mapped to themselves.

    Call it while the process has one thread (before any thread starts). Its
    children inherit the namespace.

    Returns:
        True if the process is now in a new user namespace; False where the
        system does not allow it (not Linux, user namespaces disabled, a
        seccomp filter), and the process is unchanged.
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


def contain_processes(max_procs: int) -> str:
    """Cap this process and its descendants at ``max_procs`` processes and threads in all.

    Not root: enters a new user namespace, then sets RLIMIT_NPROC, so that the
    cap counts only this process's own descendants. Without user namespaces
    it sets RLIMIT_NPROC anyway, which then counts all of the user's
    processes (the caller should add what the user already runs).

    Returns:
        What was applied, for a log: "user namespace, 64 processes",
        "64 processes (all of the user's)", or "" (root, or ``max_procs`` <= 0).
    """
    if max_procs <= 0 or os.getuid() == 0:
        return ""
    own = enter_user_namespace()
    resource.setrlimit(resource.RLIMIT_NPROC, (max_procs, max_procs))
    return f"user namespace, {max_procs} processes" if own else f"{max_procs} processes (all of the user's)"


def main(argv: list[str] | None = None) -> None:
    """``MAX_PROCS COMMAND...``: contain, then exec the command."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or not argv[0].isdigit():
        raise SystemExit("usage: python -m concurrency_lab.userns MAX_PROCS COMMAND...")
    contain_processes(int(argv[0]))
    os.execvp(argv[1], argv[1:])


if __name__ == "__main__":
    main()
