"""A fork bomb graded by a normal user is contained in its own user namespace; nobody else is touched.

RLIMIT_NPROC counts all of a user's processes, and root ignores it, so these
tests mean something only for a normal user: as root they are skipped, and
``make test-unprivileged`` (run by .ci/run) runs them as one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from concurrency_lab.grading.settings import MAX_PROCS_ENV, USER_PROCS_ENV

pytestmark = pytest.mark.skipif(
    os.getuid() == 0, reason="root ignores RLIMIT_NPROC: make test-unprivileged runs this as a normal user"
)

BOMB = """
import os, sys, time
children = 0
try:
    for _ in range(2000):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError:
    pass
print(children, os.getuid(), flush=True)
time.sleep(30)
"""

NEIGHBOUR = """
import os
pids = []
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
print(len(pids), flush=True)
"""


def _user_tasks() -> int:
    """Processes and threads this user runs now (what RLIMIT_NPROC counts outside a namespace)."""
    uid = os.getuid()
    total = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        if proc.info["uids"] and proc.info["uids"].real == uid:
            total += proc.info["num_threads"] or 1
    return total


def _contained(cap: int, code: str) -> subprocess.Popen[str]:
    """``code`` run through the grader's kernel launcher, capped as the grader caps a kernel."""
    env = {**os.environ, MAX_PROCS_ENV: str(cap), USER_PROCS_ENV: str(_user_tasks())}
    return subprocess.Popen(
        [sys.executable, "-m", "concurrency_lab.grading.sandbox", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=env,
    )


def test_a_fork_bomb_hits_its_own_cap_while_the_users_other_kernels_start():
    """The bomb stops at its cap; a second contained process and plain processes of the same user still fork."""
    bomb = _contained(30, BOMB)
    try:
        assert bomb.stdout is not None
        children, uid = map(int, bomb.stdout.readline().split())
        assert uid == os.getuid(), "the namespace maps the uid to itself"
        assert children < 30, f"the bomb made {children} children past its cap of 30"
        # The bomb's children are all alive now, holding their slots.
        neighbour = _contained(30, NEIGHBOUR)
        out, err = neighbour.communicate(timeout=60)
        assert neighbour.returncode == 0 and out.strip() == "20", f"another kernel could not fork: {err[-500:]}"
        plain = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True, timeout=60)
        assert plain.stdout == "ok\n", plain.stderr[-500:]
    finally:
        os.killpg(bomb.pid, 9)
        bomb.wait(timeout=30)
        time.sleep(0.2)


def test_without_a_namespace_the_cap_is_shared_with_the_users_other_processes():
    """Why the namespace is needed: with RLIMIT_NPROC alone, one bomb leaves the user's next process no room."""
    limit = _user_tasks() + 30
    code = f"import resource; resource.setrlimit(resource.RLIMIT_NPROC, ({limit}, {limit}))\n" + BOMB
    bomb = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert bomb.stdout is not None
        bomb.stdout.readline()
        neighbour = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import resource; resource.setrlimit(resource.RLIMIT_NPROC, ({limit}, {limit}))\n" + NEIGHBOUR,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert neighbour.returncode != 0 and "Resource temporarily unavailable" in neighbour.stderr
    finally:
        os.killpg(bomb.pid, 9)
        bomb.wait(timeout=30)
