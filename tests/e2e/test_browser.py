"""A real browser: JupyterLab in headless Chromium, as a student uses it.

Needs Debian's Chromium at /usr/bin/chromium (`.ci/run` installs it). On a
laptop without it the test skips and says how to run it; in CI (CI=true) it
must run. Screenshots of a failing run land in .build/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests
from nbgrader.utils import is_solution

from nbtools import ROOT, grade_cells

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
SHOTS = ROOT / ".build" / "screenshots"
CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook tab in front
BIN = Path(sys.executable).parent

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test, but {CHROMIUM} is missing", pytrace=False)
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install it (Debian: `sudo apt-get install chromium`) "
        "or set CHROMIUM=/path/to/chromium, then run `make test`",
        allow_module_level=True,
    )

from playwright.sync_api import Page, sync_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of the course (validating saves notebooks), news popup off."""
    course = tmp_path_factory.mktemp("course")
    for name in ("release", "source", "notebooks"):
        shutil.copytree(ROOT / name, course / name)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    settings = course / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = _free_port(), "browser-test"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "JUPYTERLAB_SETTINGS_DIR": str(course / ".jupyter" / "lab" / "user-settings"),
        "JUPYTER_RUNTIME_DIR": str(course / ".runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(course / ".workspaces"),
    }
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={course}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        cwd=course,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/status?token={token}", timeout=2).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.3)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("JupyterLab did not start within 60 s")
    yield base, token, course
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture()
def page(request):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


def _open(page: Page, base: str, token: str, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?reset&token={token}")
    page.wait_for_selector(f"{CURRENT} .jp-Cell", timeout=60_000)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=60_000,
    )


def _run_all_and_save(page: Page, timeout_s: float = 90) -> None:
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-InputPrompt')]"
        ".some(p => p.textContent.includes('*'))"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=timeout_s * 1000,
    )
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1000)


def test_release_threads_errors_only_in_answer_cells(lab, page):
    """Run all on the release 02-threads: the only errors are NotImplementedError from answer stubs."""
    base, token, course = lab
    _open(page, base, token, "release/day3/02-threads.ipynb")
    _run_all_and_save(page)
    nb = nbformat.read(course / "release" / "day3" / "02-threads.ipynb", as_version=4)
    answers = [c for c in grade_cells(nb).values() if is_solution(c)]
    first_answer = min(nb.cells.index(c) for c in answers)
    answer_prompts = {f"In[{c.execution_count}]" for c in answers if c.execution_count}
    assert len(answer_prompts) == len(answers), "run all did not reach every answer cell"
    errored = [(i, c) for i, c in enumerate(nb.cells) if any(o.output_type == "error" for o in c.get("outputs", []))]
    assert errored, "running the unsolved notebook raised nothing"
    for index, cell in errored:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert {o.ename for o in errors} == {"NotImplementedError"}, cell.source[:200]
        assert index >= first_answer, f"an error in the lesson, before the graded parts: {cell.source[:200]}"
        trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0].traceback))
        assert any(prompt in trace for prompt in answer_prompts), (
            f"NotImplementedError not raised from an answer cell: {trace[-500:]}"
        )


def test_source_processes_chart_renders_and_validates(lab, page):
    """Source 04-processes runs, its speedup chart renders as an image, and Validate passes."""
    base, token, _ = lab
    _open(page, base, token, "source/day3/04-processes.ipynb")
    _run_all_and_save(page, timeout_s=120)
    images = page.locator(f"{CURRENT} .jp-RenderedImage img")
    assert images.count() >= 1, "no chart rendered"
    width, height, src = images.first.evaluate("img => [img.naturalWidth, img.naturalHeight, img.src]")
    assert width > 100 and height > 100 and src.startswith("data:image/png"), (width, height, src[:40])
    page.locator(".validate-button").first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=120_000)
    page.wait_for_function(
        "() => { const d = document.querySelector('.jp-Dialog');"
        " return d && /Success|fail|error/i.test(d.textContent); }",
        timeout=120_000,
    )
    text = dialog.inner_text()
    assert "Success! Your notebook passes all the tests." in text, text[:1000]
