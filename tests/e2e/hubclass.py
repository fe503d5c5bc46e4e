"""Helpers for the class-server tests: the make targets, commands as class members, hub log-ins.

Everything goes through the real pieces: `make class-*` (as root), `classctl.py run-as` (runuser
to the member's Unix account), JupyterHub's PAM log-in page over HTTP.
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
# A class root of its own, so a test run never touches a real class in /opt/concurrency-lab.
CLASS_ROOT = Path(os.environ.get("CL_TEST_CLASS_ROOT", "/opt/concurrency-lab-test"))
COURSE_ID = "concurrency-lab"
INSTRUCTOR = "cl-teacher"
BROWSER_STUDENT = "cl-alice"
CROWD = [f"cl-s{k:02d}" for k in range(1, 21)]  # the 20 who submit in the same second
MEMBERS = [INSTRUCTOR, BROWSER_STUDENT, *CROWD]
PASSWORDS = {name: f"pw-{name}-{k}7q" for k, name in enumerate(MEMBERS)}
EXCHANGE = CLASS_ROOT / "exchange" / COURSE_ID
VENV_PY = CLASS_ROOT / "venv" / "bin" / "python"


def course() -> Path:
    return Path(pwd.getpwnam(INSTRUCTOR).pw_dir) / "concurrency-lab"


def home(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def free_port_block(size: int = 3) -> int:
    """A port p with p .. p+size-1 free on 127.0.0.1 (the hub uses p, p+1, p+2)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + size < 65535 and all(port_is_free(base + k) for k in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (connections closing in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def make(target: str, *extra: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """`make <target>` for the test class, as root, from the project folder."""
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", target, f"CLASS_ROOT={CLASS_ROOT}", f"INSTRUCTOR={INSTRUCTOR}", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"make {target} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def classctl(*args: str, **kwargs) -> list[str]:
    return ["/usr/bin/python3", str(ROOT / "class" / "classctl.py"), "--root", str(CLASS_ROOT), *args]


def as_user(user: str, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """A shell script run as the Unix account `user` (runuser), in the class environment."""
    return subprocess.run(
        classctl("run-as", user, "--", "sh", "-c", script), capture_output=True, text=True, timeout=timeout
    )


def ports_freed(port: int, count: int = 3, timeout: float = 15) -> bool:
    """Whether port .. port+count-1 are all free within timeout seconds (the proxy exits after the hub)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(port_is_free(port + k) for k in range(count)):
            return True
        time.sleep(0.2)
    return False


def remove_accounts() -> None:
    for name in MEMBERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)
        subprocess.run(["groupdel", name], capture_output=True, check=False)


def passwords_file(folder: Path) -> Path:
    path = folder / "passwords"
    path.write_text("".join(f"{u}:{p}\n" for u, p in PASSWORDS.items()))
    path.chmod(0o600)
    return path


class Hub:
    """`make class` in the background (its own process group), like an instructor's terminal."""

    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                ["make", "-s", "class", f"CLASS_ROOT={CLASS_ROOT}"],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"make class exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.base}/hub/login", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the hub did not answer within 90 s:\n{self.log.read_text()[-3000:]}")

    def wait_exit(self, timeout: float = 40) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def login(hub: Hub, user: str, password: str) -> requests.Session:
    """Log in through the hub's PAM log-in form; raises if the hub refuses."""
    session = requests.Session()
    session.get(f"{hub.base}/hub/login", timeout=30)
    reply = session.post(
        f"{hub.base}/hub/login",
        data={"username": user, "password": password, "_xsrf": session.cookies.get("_xsrf", "")},
        timeout=60,
    )
    if reply.status_code != 200 or "/hub/login" in reply.url:
        raise PermissionError(f"log-in of {user} refused: {reply.status_code} {reply.url}")
    return session


def open_lab(hub: Hub, session: requests.Session, user: str, timeout: float = 90) -> str:
    """Start (if needed) and load the member's JupyterLab page; its HTML."""
    session.get(f"{hub.base}/hub/spawn", timeout=60)  # the hub starts a stopped server only when asked
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = session.get(f"{hub.base}/user/{user}/lab", timeout=60)
        if reply.url.startswith(f"{hub.base}/user/{user}/lab") and reply.ok:
            return reply.text
        time.sleep(1)
    raise AssertionError(f"{user}'s JupyterLab did not start within {timeout} s")


def page_config(html: str) -> dict:
    import json

    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no jupyter-config-data in the lab page"
    return json.loads(found.group(1))
