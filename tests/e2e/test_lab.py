"""`make lab` serves JupyterLab on the start-here notebook."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from nbtools import ROOT

VENV = Path(sys.executable).parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_lab_serves_lab_and_the_start_here_notebook(tmp_path):
    """`make lab` starts a server whose /lab page and start-here notebook answer."""
    port, token = _free_port(), "concurrency-lab-test"
    args = (
        f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 "
        f"--IdentityProvider.token={token} --ServerApp.root_dir={ROOT}"
    )
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"VENV={VENV}", f"LAB_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        page = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = requests.get(f"{base}/lab?token={token}", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert page is not None, "JupyterLab did not start within 60 s"
        assert page.status_code == 200 and "JupyterLab" in page.text
        contents = requests.get(f"{base}/api/contents/notebooks/00-start-here.ipynb?token={token}", timeout=10)
        assert contents.status_code == 200
        assert contents.json()["type"] == "notebook"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
