"""Real parts for the cluster tests: a PostgreSQL server and a Dask cluster, each in its own processes.

* :func:`postgres_server` runs Debian's PostgreSQL server (``initdb``, then
  ``pg_ctl``) in a private temporary folder, as an unprivileged account when
  we are root, listening only on a Unix socket in that folder (no TCP port to
  collide with another test or with a system server).
* :func:`dask_cluster` (from :mod:`concurrency_lab.grading.cluster`, which
  ``make grade-bench`` uses too) starts ``dask scheduler`` and ``dask worker``
  processes on 127.0.0.1, the way a cluster runs, and can kill one worker for good.

Both are context managers that stop everything they started, even when the
test fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from concurrency_lab.grading.cluster import DaskCluster, dask_cluster

__all__ = ["DaskCluster", "Postgres", "dask_cluster", "postgres_bindir", "postgres_server"]

INSTALL_HINT = "install Debian's PostgreSQL server: apt-get install postgresql (.ci/run does)"


def postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when the server is not installed.

    ``pg_config --bindir`` names it when the server's version matches libpq's;
    otherwise the newest ``/usr/lib/postgresql/<version>/bin`` (Debian's layout).
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _account() -> str | None:
    """The unprivileged account the server runs as (None: ourselves, when not root)."""
    if os.getuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged account (postgres or nobody) to run PostgreSQL as")


def _as(account: str | None, argv: list[str]) -> list[str]:
    return argv if account is None else ["runuser", "-u", account, "--", *argv]


@dataclass
class Postgres:
    """A running PostgreSQL server: its folder, its socket folder, its superuser."""

    folder: Path
    bindir: Path
    account: str | None
    user: str = "grader"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg2, over the Unix socket)."""
        return f"postgresql+psycopg2://{self.user}@/{database}?host={self.socket_dir}"

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        import psycopg2

        connection = psycopg2.connect(dbname="postgres", user=self.user, host=str(self.socket_dir))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def query(self, database: str, sql: str) -> list[tuple]:
        """Run one SQL statement and return its rows."""
        import psycopg2

        connection = psycopg2.connect(dbname=database, user=self.user, host=str(self.socket_dir))
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            connection.close()


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    """Start a PostgreSQL server in a temporary folder; stop it and remove the folder afterwards."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError(f"PostgreSQL's initdb was not found: {INSTALL_HINT}")
    account = _account()
    # Short, under /tmp: the socket path must fit in 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="cl-pg-"))
    server = Postgres(folder, bindir, account)
    (folder / "socket").mkdir()
    if account is not None:
        entry = pwd.getpwnam(account)
        for path in (folder, folder / "socket"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    data, log = folder / "data", folder / "server.log"
    started = False
    try:
        subprocess.run(
            _as(
                account,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    server.user,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            ),
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
        options = (
            f"-k {server.socket_dir} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            _as(
                account,
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
            ),
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
        started = True
        yield server
    except subprocess.CalledProcessError as error:
        details = log.read_text() if log.exists() else ""
        raise RuntimeError(f"{error.cmd[-1]} failed:\n{error.stdout}{error.stderr}{details}") from error
    finally:
        if started:
            subprocess.run(
                _as(account, [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
