#!/usr/bin/env python3
"""Set up and run Concurrency Lab as a class on one machine: JupyterHub + nbgrader's exchange.

Run as root with the system Python (``/usr/bin/python3``; standard library only). The Makefile
calls it (``make class-setup``, ``make class``, ``make class-stop``, ``make class-release`` ...)::

    classctl.py --root /opt/concurrency-lab setup --instructor teacher --students alice,bob [--passwords FILE]
    classctl.py --root /opt/concurrency-lab hub            # JupyterHub in the foreground (Ctrl-C stops it)
    classctl.py --root /opt/concurrency-lab stop           # stop a running hub (and its proxy and servers)
    classctl.py --root /opt/concurrency-lab run-as USER -- nbgrader list   # a command as a class member
    classctl.py --root /opt/concurrency-lab as-instructor -- nbgrader collect day3

What ``setup`` makes under the class root (every step checks first, so a second run changes nothing):

* ``venv/``: a virtual environment of the system Python, readable by every account, with
  ``requirements.txt`` (with ``constraints.txt``) and the course package installed (not editable:
  students' kernels import it). Rebuilt when either file changes; the package is reinstalled when its source changes.
  ``--packages-from VENV`` takes the packages from a venv of the same requirements (the project's
  ``.venv``, when its Python has the system Python's minor version) by hard links instead of pip.
* Unix accounts for the instructor and each student (home folders 0700). Passwords come from
  ``--passwords`` (``user:password`` lines) or are generated and written to ``passwords.txt`` (0600).
* ``exchange/``: nbgrader's exchange root, mode 1777 (everyone may create, nobody may remove what
  another account made), with the course's folders made in advance by the instructor's account:
  ``outbound`` 0755, ``inbound`` 2733 (students can write but not list; the instructor's group),
  ``feedback`` 0711 (no listing).
* The course folder, ``~INSTRUCTOR/concurrency-lab`` (0700, the instructor's): ``source/``,
  ``nbgrader_config.py``; nbgrader makes ``release/``, ``submitted/``, ``autograded/``, ``feedback/``.
* ``etc/``: Jupyter configuration for the class (exchange root, course id, lab extensions per role,
  no news or update prompts) and ``class.json``, which the hub's configuration reads.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
SYSTEM_PYTHON = "/usr/bin/python3"
# The class venv's packages: the course's pins, and every package they need in turn.
PINS = (PROJECT / "requirements.txt", PROJECT / "constraints.txt")
COURSE_FOLDER = "concurrency-lab"  # in the instructor's home
NBGRADER_LAB = "@jupyter/nbgrader"
# Lab plugins students do not get (nbgrader's instructor tools).
STUDENT_DISABLED_LAB = [
    f"{NBGRADER_LAB}:formgrader",
    f"{NBGRADER_LAB}:create-assignment",
    f"{NBGRADER_LAB}:course-list",
]
STUDENT_DISABLED_SERVER = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]
# JupyterLab's prompts that a class does not want: the news pop-up, update checks, the extension manager.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
}


def log(message: str) -> None:
    print(f"classctl: {message}", flush=True)


class Changes:
    """Counts what a setup run changed, so a second run can say it changed nothing."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def note(self, what: str) -> None:
        self.made.append(what)
        log(what)


def sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()


def tree_hash(folder: Path, patterns: tuple[str, ...] = ("*.py",)) -> bytes:
    files = sorted(p for pattern in patterns for p in folder.rglob(pattern) if "__pycache__" not in p.parts)
    return b"".join(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes() for p in files)


# --------------------------------------------------------------------------
# Small idempotent file-system steps.


def ensure_dir(path: Path, mode: int, uid: int, gid: int, changes: Changes) -> None:
    if not path.is_dir():
        path.mkdir(parents=True)
        changes.note(f"created {path}")
    st = path.stat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        changes.note(f"owner of {path} set")
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        changes.note(f"mode of {path} set to {mode:o}")


def ensure_file(path: Path, text: str, changes: Changes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.chmod(tmp, mode)
        os.chown(tmp, uid, gid)
        tmp.replace(path)
        changes.note(f"wrote {path}")
    st = path.stat()
    if st.st_mode & 0o7777 != mode or (st.st_uid, st.st_gid) != (uid, gid):
        os.chmod(path, mode)
        os.chown(path, uid, gid)
        changes.note(f"mode/owner of {path} set")


# --------------------------------------------------------------------------
# The class: where everything lives.


class Class:
    """The class's paths and members, saved in ``etc/class.json`` by ``setup``."""

    def __init__(
        self, root: Path, instructor: str = "", students: list[str] | None = None, port: int = 8000, course_id: str = ""
    ) -> None:
        self.root = root
        self.instructor = instructor
        self.students = students or []
        self.port = port
        self.course_id = course_id

    venv = property(lambda self: self.root / "venv")
    exchange = property(lambda self: self.root / "exchange")
    etc = property(lambda self: self.root / "etc")
    lib = property(lambda self: self.root / "lib")
    hub_dir = property(lambda self: self.root / "hub")
    settings = property(lambda self: self.root / "etc" / "class.json")

    @property
    def course(self) -> Path:
        return Path(pwd.getpwnam(self.instructor).pw_dir) / COURSE_FOLDER

    def save(self, changes: Changes) -> None:
        data = {
            "instructor": self.instructor,
            "students": self.students,
            "port": self.port,
            "course_id": self.course_id,
        }
        ensure_file(self.settings, json.dumps(data, indent=2) + "\n", changes)

    @classmethod
    def load(cls, root: Path) -> Class:
        path = root / "etc" / "class.json"
        if not path.exists():
            sys.exit(f"classctl: no class set up in {root}: run `make class-setup STUDENTS=...` first")
        data = json.loads(path.read_text())
        return cls(root, data["instructor"], data["students"], data["port"], data["course_id"])

    def role(self, user: str) -> str:
        if user == self.instructor:
            return "instructor"
        if user in self.students:
            return "student"
        raise SystemExit(f"classctl: {user} is not in this class")

    def user_env(self, user: str) -> dict[str, str]:
        """The environment of a class member's Jupyter server and nbgrader commands."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "JUPYTER_CONFIG_PATH": f"{self.etc / self.role(user)}:{self.etc / 'jupyter'}",
            "LANG": "C.UTF-8",
            "PYTHONNOUSERSITE": "1",
        }


# --------------------------------------------------------------------------
# setup


def course_id_of(project: Path) -> str:
    """The course id from the project's nbgrader_config.py (its one home)."""
    found = re.search(r'course_id\s*=\s*["\']([^"\']+)["\']', (project / "nbgrader_config.py").read_text())
    if not found:
        sys.exit("classctl: nbgrader_config.py sets no CourseDirectory.course_id")
    return found.group(1)


def python_minor(python: Path | str) -> str:
    """``3.11`` for a Python 3.11 interpreter."""
    return subprocess.run(
        [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def missing_pins(site: Path) -> list[str]:
    """The pins of requirements.txt and constraints.txt that are not installed in ``site``.

    A line of constraints.txt with an environment marker (``; sys_platform == 'win32'``) is for
    some platforms only and is not checked.
    """
    from importlib.metadata import distributions

    installed = {
        re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version for dist in distributions(path=[str(site)])
    }
    missing = []
    for line in (line for path in PINS for line in path.read_text().splitlines()):
        pin = line.split("#", 1)[0].strip()
        if "==" in pin and ";" not in pin:
            name, version = (part.strip() for part in pin.split("==", 1))
            if installed.get(re.sub(r"[-_.]+", "-", name).lower()) != version:
                missing.append(pin)
    return missing


def link_packages(source: Path, venv: Path) -> None:
    """Fill ``venv`` with the packages of ``source``, a venv of this project's requirements, by hard links.

    Both must be venvs of the same Python minor version (the packages' compiled parts are built
    for it). Files are hard-linked where ``source`` is on the same file system, else copied; the
    scripts in ``bin/`` are rewritten to start ``venv``'s Python. The course package itself is
    left out: :func:`build_venv` installs it (not editable) right after.
    """
    minor = python_minor(source / "bin" / "python")
    if minor != python_minor(SYSTEM_PYTHON):
        sys.exit(f"classctl: {source} is a Python {minor} venv, {SYSTEM_PYTHON} is not: build the class venv with pip")
    site = Path("lib") / f"python{minor}" / "site-packages"
    missing = missing_pins(source / site)
    if missing:
        sys.exit(f"classctl: {source} lacks {', '.join(missing[:5])}: run `make install` first")
    for part in (site, Path("share"), Path("etc")):
        if (source / part).is_dir():
            (venv / part).mkdir(parents=True, exist_ok=True)
            linked = subprocess.run(["cp", "-al", f"{source / part}/.", str(venv / part)], capture_output=True)
            if linked.returncode != 0:
                subprocess.run(["cp", "-a", f"{source / part}/.", str(venv / part)], check=True)
    for leftover in [*(venv / site).glob("__editable__*concurrency_lab*"), *(venv / site).glob("concurrency_lab-*")]:
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    for script in sorted((source / "bin").iterdir()):
        target = venv / "bin" / script.name
        if target.exists() or not script.is_file():
            continue
        with open(script, "rb") as handle:
            first = handle.readline()
            if not (first.startswith(b"#!") and b"python" in first):
                continue
            target.write_bytes(f"#!{venv / 'bin' / 'python'}\n".encode() + handle.read())
        target.chmod(0o755)


def build_venv(klass: Class, changes: Changes, packages_from: Path | None = None) -> None:
    """The class venv: ``requirements.txt`` installed with pip (or linked from ``packages_from``), then the package."""
    venv, py = klass.venv, klass.venv / "bin" / "python"
    want = sha256(*(path.read_bytes() for path in PINS))
    stamp = venv / ".requirements.sha256"
    if not (py.exists() and stamp.exists() and stamp.read_text() == want):
        if venv.exists():
            shutil.rmtree(venv)
        if packages_from:
            log(f"building {venv} from {SYSTEM_PYTHON} with the packages of {packages_from}")
            subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
            link_packages(packages_from.resolve(), venv)
        else:
            log(f"building {venv} from {SYSTEM_PYTHON} (a few minutes the first time)")
            subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True)
            pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, "--requirement", str(PINS[0]), "--constraint", str(PINS[1])], check=True)
        stamp.write_text(want)
        changes.note(f"built {venv}")
    package = sha256(tree_hash(PROJECT / "src"), (PROJECT / "pyproject.toml").read_bytes())
    stamp = venv / ".package.sha256"
    if not (stamp.exists() and stamp.read_text() == package):
        # Not editable: the class must not depend on this checkout staying where it is (or readable).
        build = klass.root / ".build-package"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        shutil.copy(PROJECT / "pyproject.toml", build)
        shutil.copytree(PROJECT / "src", build / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
        pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(build)], check=True)
        shutil.rmtree(build)
        stamp.write_text(package)
        changes.note("installed the course package into the class venv")
    # The nbgrader exchange classes of the class (see class/exchange.py), importable by every account.
    ensure_dir(klass.lib, 0o755, 0, 0, changes)
    ensure_file(klass.lib / "concurrency_lab_exchange.py", (HERE / "exchange.py").read_text(), changes)
    site = next((klass.venv / "lib").glob("python3*/site-packages"))
    ensure_file(site / "concurrency_lab_class.pth", f"{klass.lib}\n", changes)
    # JupyterLab's settings defaults for everyone who runs this venv: no news, no update prompts.
    overrides = klass.venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    ensure_file(overrides, json.dumps(LAB_OVERRIDES, indent=2) + "\n", changes)


def ensure_account(name: str, changes: Changes) -> pwd.struct_passwd:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name], check=True)
        changes.note(f"created account {name}")
        entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    ensure_dir(home, 0o700, entry.pw_uid, entry.pw_gid, changes)
    return entry


def read_passwords(path: Path | None) -> dict[str, str]:
    found = {}
    if path and path.exists():
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                user, _, password = line.partition(":")
                found[user.strip()] = password
    return found


def ensure_passwords(klass: Class, given: Path | None, changes: Changes) -> None:
    """Set each member's password: from --passwords when given (again only if it changed), else once,
    generated into passwords.txt (0600) for the instructor to hand out."""
    members = [klass.instructor, *klass.students]
    applied_file = klass.hub_dir / "passwords.applied"  # "user sha256(user:password)" lines
    applied = dict(line.split() for line in applied_file.read_text().splitlines()) if applied_file.exists() else {}
    wanted = {m: p for m, p in read_passwords(given).items() if m in members}
    generated_file = klass.root / "passwords.txt"
    generated = read_passwords(generated_file)
    new = {m: secrets.token_urlsafe(9) for m in members if m not in wanted and m not in applied}
    if new:
        generated.update(new)
        ensure_file(generated_file, "".join(f"{u}:{p}\n" for u, p in sorted(generated.items())), changes, mode=0o600)
        log(f"generated passwords for {', '.join(sorted(new))}: see {generated_file}")
        wanted.update(new)
    todo = {m: p for m, p in wanted.items() if applied.get(m) != sha256(f"{m}:{p}".encode())}
    if todo:
        subprocess.run(["chpasswd"], input="".join(f"{m}:{p}\n" for m, p in todo.items()).encode(), check=True)
        applied.update({m: sha256(f"{m}:{p}".encode()) for m, p in todo.items()})
        ensure_file(applied_file, "".join(f"{m} {h}\n" for m, h in sorted(applied.items())), changes, mode=0o600)
        changes.note(f"set passwords of {', '.join(todo)}")


def ensure_exchange(klass: Class, teacher: pwd.struct_passwd, changes: Changes) -> None:
    """nbgrader's exchange: a world-writable root with the sticky bit, the course's folders the instructor's."""
    ensure_dir(klass.exchange, 0o1777, 0, 0, changes)
    course = klass.exchange / klass.course_id
    uid, gid = teacher.pw_uid, teacher.pw_gid
    ensure_dir(course, 0o755, uid, gid, changes)
    ensure_dir(course / "outbound", 0o755, uid, gid, changes)
    # Students write submissions here but cannot list it; new entries get the instructor's group.
    ensure_dir(course / "inbound", 0o2733, uid, gid, changes)
    ensure_dir(course / "feedback", 0o711, uid, gid, changes)


def ensure_course(klass: Class, teacher: pwd.struct_passwd, changes: Changes) -> None:
    """The instructor's course folder: the project's source/ (copied once) and its nbgrader config."""
    uid, gid = teacher.pw_uid, teacher.pw_gid
    course = klass.course
    ensure_dir(course, 0o700, uid, gid, changes)
    ensure_file(course / "nbgrader_config.py", (PROJECT / "nbgrader_config.py").read_text(), changes, uid=uid, gid=gid)
    if not (course / "source").exists():
        # Copied once: afterwards source/ is the instructor's to edit.
        shutil.copytree(
            PROJECT / "source", course / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
        )
        for path in [course / "source", *(course / "source").rglob("*")]:
            os.chown(path, uid, gid)
        changes.note(f"copied source/ into {course}")


def ensure_config(klass: Class, changes: Changes) -> None:
    """Jupyter configuration per role: read through JUPYTER_CONFIG_PATH (see Class.user_env)."""
    common, student, instructor = klass.etc / "jupyter", klass.etc / "student", klass.etc / "instructor"
    for folder in (klass.etc, common, student, instructor, student / "labconfig"):
        ensure_dir(folder, 0o755, 0, 0, changes)
    template = (HERE / "nbgrader_config.py").read_text()
    ensure_file(
        common / "nbgrader_config.py",
        template.replace("@EXCHANGE@", str(klass.exchange)).replace("@COURSE_ID@", klass.course_id),
        changes,
    )
    ensure_file(
        common / "jupyter_server_config.json",
        json.dumps(
            {
                "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
            },
            indent=2,
        )
        + "\n",
        changes,
    )
    ensure_file(
        student / "labconfig" / "page_config.json",
        json.dumps({"disabledExtensions": {name: True for name in STUDENT_DISABLED_LAB}}, indent=2) + "\n",
        changes,
    )
    ensure_file(
        student / "jupyter_server_config.json",
        json.dumps({"ServerApp": {"jpserver_extensions": {name: False for name in STUDENT_DISABLED_SERVER}}}, indent=2)
        + "\n",
        changes,
    )
    ensure_file(
        instructor / "nbgrader_config.py",
        "# The instructor's course folder (formgrader and nbgrader commands find it here).\n"
        f"c = get_config()  # noqa: F821\nc.CourseDirectory.root = {str(klass.course)!r}\n",
        changes,
    )


def ensure_proxy(changes: Changes) -> None:
    """configurable-http-proxy from package-lock.json, into class/node_modules."""
    lock = (HERE / "package-lock.json").read_bytes()
    stamp = HERE / "node_modules" / ".lock.sha256"
    if not (stamp.exists() and stamp.read_text() == sha256(lock)):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)
        stamp.write_text(sha256(lock))
        changes.note("installed configurable-http-proxy (npm ci)")


def setup(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        sys.exit("classctl: setup makes Unix accounts: run it as root")
    students = [s.strip() for s in args.students.split(",") if s.strip()]
    if not students:
        sys.exit("classctl: name the students, e.g. make class-setup STUDENTS=alice,bob")
    for name in [args.instructor, *students]:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", name):
            sys.exit(f"classctl: {name!r} is not a valid account name")
    changes = Changes()
    klass = Class(args.root, args.instructor, students, args.port, course_id_of(PROJECT))
    ensure_dir(klass.root, 0o755, 0, 0, changes)
    ensure_dir(klass.hub_dir, 0o700, 0, 0, changes)
    ensure_proxy(changes)
    build_venv(klass, changes, args.packages_from)
    teacher = ensure_account(klass.instructor, changes)
    for student in students:
        ensure_account(student, changes)
    ensure_passwords(klass, args.passwords, changes)
    ensure_exchange(klass, teacher, changes)
    ensure_course(klass, teacher, changes)
    ensure_config(klass, changes)
    klass.save(changes)
    log(f"{len(changes.made)} change(s)" if changes.made else "already set up: nothing changed")
    return 0


# --------------------------------------------------------------------------
# hub, stop, run-as


def hub(args: argparse.Namespace) -> int:
    klass = Class.load(args.root)
    env = {**os.environ, "CLASS_ROOT": str(klass.root), "PATH": f"{klass.venv / 'bin'}:/usr/bin:/bin"}
    os.chdir(klass.hub_dir)
    log(f"JupyterHub on http://127.0.0.1:{klass.port}/ (Ctrl-C or `make class-stop` stops it)")
    os.execve(str(klass.venv / "bin" / "jupyterhub"), ["jupyterhub", "-f", str(HERE / "jupyterhub_config.py")], env)


def stop(args: argparse.Namespace) -> int:
    pid_file = args.root / "hub" / "jupyterhub.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        log("no hub running")
        return 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log(f"hub {pid} stopped")
            return 0
        time.sleep(0.2)
    sys.exit(f"classctl: hub {pid} did not stop within 30 s")


def run_as(args: argparse.Namespace) -> int:
    """Run a command as a class member, in the class environment (in the course folder for the instructor)."""
    klass = Class.load(args.root)
    user = klass.instructor if args.command_name == "as-instructor" else args.user
    entry = pwd.getpwnam(user)
    cwd = klass.course if user == klass.instructor else Path(entry.pw_dir)
    env = {
        **klass.user_env(user),
        "HOME": entry.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": entry.pw_shell,
        **dict(kv.split("=", 1) for kv in args.env),
    }
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        sys.exit("classctl: no command given")
    os.chdir(cwd)
    if os.geteuid() == entry.pw_uid:
        os.environ.clear()
        os.environ.update(env)
        os.execvp(command[0], command)
    os.execvp("runuser", ["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *command])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classctl.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("CLASS_ROOT", "/opt/concurrency-lab")))
    sub = parser.add_subparsers(dest="command_name", required=True)
    p = sub.add_parser("setup", help="accounts, exchange, course folder, venv, proxy (idempotent)")
    p.add_argument("--instructor", default="instructor")
    p.add_argument("--students", required=True, help="comma-separated account names")
    p.add_argument("--passwords", type=Path, help="user:password lines (others get generated passwords)")
    p.add_argument("--port", type=int, default=8000, help="the hub's port on 127.0.0.1 (+1, +2 are used too)")
    p.add_argument(
        "--packages-from",
        type=Path,
        help="build the class venv from this venv's packages (hard links, no download): a venv of "
        "requirements.txt on the system Python's minor version, such as the project's .venv",
    )
    p.set_defaults(func=setup)
    sub.add_parser("hub", help="run JupyterHub in the foreground").set_defaults(func=hub)
    sub.add_parser("stop", help="stop the running hub").set_defaults(func=stop)
    for name in ("run-as", "as-instructor"):
        p = sub.add_parser(name, help="run a command as a class member")
        if name == "run-as":
            p.add_argument("user")
        p.add_argument("--env", action="append", default=[], help="NAME=VALUE to add")
        p.add_argument("command", nargs=argparse.REMAINDER)
        p.set_defaults(func=run_as)
    args = parser.parse_args(argv)
    args.root = args.root.resolve()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
