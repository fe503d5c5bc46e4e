"""The clean-up after a student kills what the student's kernel started, and nothing of the worker's own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import psutil

from concurrency_lab.grading.strays import wait_dead

# Runs in a process of its own, which becomes a child subreaper like a grading worker.
WORKER = textwrap.dedent(
    """
    import ctypes, json, os, subprocess, sys, time
    from concurrency_lab.grading.sandbox import children_now, kill_strays
    from concurrency_lab.grading.settings import KERNEL_MARKER_ENV as MARKER_ENV

    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, as the grader's workers are
    own = subprocess.Popen(["sleep", "120"])  # the worker's own child (Dask's), born before grading
    time.sleep(0.05)
    before = children_now()
    pids = sys.argv[1]
    kernel = subprocess.Popen([sys.executable, "-c", sys.argv[2], pids], env={**os.environ, MARKER_ENV: "1"},
                              start_new_session=True)  # as jupyter_client starts kernels
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (os.path.exists(pids) and len(open(pids).read().split()) == 2):
        time.sleep(0.05)
    late_own = subprocess.Popen(["sleep", "120"], env={})  # another of the worker's own, unmarked
    killed = kill_strays(before)
    print(json.dumps({"own": own.pid, "late_own": late_own.pid, "kernel": kernel.pid,
                      "students": open(pids).read().split(), "killed": killed}))
    sys.stdout.flush()
    time.sleep(120)
    """
)

# The student's kernel: a child that empties its environment, and a double-forked
# grandchild that empties it too (its parent exits, so the subreaper adopts it).
KERNEL = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen(["sleep", "120"], env={})
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            os.write(write, str(os.getpid()).encode())
            os.execve("/bin/sleep", ["sleep", "120"], {})
        os._exit(0)
    os.waitpid(middle, 0)
    orphan = os.read(read, 32).decode()
    with open(sys.argv[1] + ".tmp", "w") as handle:
        handle.write(f"{child.pid} {orphan}")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_kills_the_kernels_processes_and_spares_the_workers_own(tmp_path):
    """The kernel, its env-less child and its adopted orphan die; the worker's own children live."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path / "pids"), KERNEL],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert worker.stdout is not None
        report = json.loads(worker.stdout.readline())
        students = [report["kernel"], *map(int, report["students"])]
        assert len(report["killed"]) == 3, report
        assert [pid for pid in students if _alive(pid)] == []
        assert _alive(report["own"]) and _alive(report["late_own"]), "the worker's own processes were killed"
    finally:
        for proc in [worker, *psutil.Process(worker.pid).children(recursive=True)]:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        worker.wait(timeout=30)


# A kernel that starts a child and never reaps it, as a kernel never reaps multiprocessing's fork server.
NEVER_REAPS = (
    "import subprocess, time\nchild = subprocess.Popen(['sleep', '120'])\nprint(child.pid, flush=True)\ntime.sleep(120)"
)


def test_a_killed_child_that_its_parent_has_not_reaped_counts_as_dead():
    """wait_dead returns at once for a zombie (killed, not yet reaped) and keeps a live process."""
    parent = subprocess.Popen([sys.executable, "-c", NEVER_REAPS], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        assert wait_dead([child], timeout=0.2) == [child]  # alive: waited for, not taken for dead
        child.kill()
        started = time.monotonic()
        assert wait_dead([child], timeout=20) == []
        assert child.status() == psutil.STATUS_ZOMBIE  # so it was not waited for until it was gone
        assert time.monotonic() - started < 10
    finally:
        parent.kill()
        parent.wait(timeout=30)
