"""Many students submitting at the same moment, each as their own Unix account.

Run as root with the class venv's Python: ``python crowd.py ROUNDS ENV_JSON``, where ENV_JSON maps
each student to the environment of their Jupyter server (classctl's user_env plus HOME, USER).
nbgrader is imported once; then one child per student is forked and becomes that student
(initgroups, setgid, setuid, like runuser) in their home folder. Each child fetches day3, and for
each round marks the answer cell of 02-threads with the round, reports ready, waits for the go
that the parent gives everyone at once, and runs ``nbgrader submit day3`` (its entry point).
The parent exits 1 if any child fails; the test checks the exchange itself.
"""

import json
import os
import pwd
import sys

import nbformat
from nbgrader.apps.nbgraderapp import NbGraderApp


def nbgrader(*argv: str) -> None:
    NbGraderApp.launch_instance(argv=list(argv))
    NbGraderApp.instance().reset()


def student(user: str, env: dict[str, str], rounds: int, ready_w: int, go_r: int) -> None:
    entry = pwd.getpwnam(user)
    os.initgroups(user, entry.pw_gid)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(entry.pw_dir)
    nbgrader("fetch_assignment", "day3")
    for round_no in range(1, rounds + 1):
        path = "day3/02-threads.ipynb"
        nb = nbformat.read(path, as_version=4)
        answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "download_pages_answer")
        answer.source += f"\n# submission {round_no} by {user}\n"
        nbformat.write(nb, path)
        os.write(ready_w, b"r")
        if os.read(go_r, 1) != b"g":
            os._exit(3)
        nbgrader("submit", "day3")
        os.write(ready_w, b"s")


def main() -> int:
    rounds, envs = int(sys.argv[1]), json.loads(sys.argv[2])
    children = {}
    for user, env in envs.items():
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                student(user, env, rounds, ready_w, go_r)
            except BaseException as error:
                print(f"{user}: {error!r}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        children[user] = (pid, ready_r, go_w)
    failed = False
    for _ in range(rounds):
        for user, (_, ready_r, _) in children.items():
            if os.read(ready_r, 1) != b"r":
                print(f"{user} never got ready", file=sys.stderr)
                failed = True
        if failed:
            break
        for _, _, go_w in children.values():  # everyone is ready: all go at once
            os.write(go_w, b"g")
        for user, (_, ready_r, _) in children.items():
            if os.read(ready_r, 1) != b"s":
                print(f"{user} did not submit", file=sys.stderr)
                failed = True
    for _, _, go_w in children.values():
        os.close(go_w)
    for user, (pid, _, _) in children.items():
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"{user} exited {os.waitstatus_to_exitcode(status)}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
