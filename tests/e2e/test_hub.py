"""The class on one machine, end to end: JupyterHub + PAM + real Unix accounts + nbgrader's exchange.

One hub for the whole module (`make class`, started by a fixture), 22 real accounts (prefix ``cl-``,
removed at the end), a class root of its own (/opt/concurrency-lab-test). Security checks run as
the students themselves (runuser). Needs root on Linux; in CI (CI=true) it must run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from hubclass import (
    BROWSER_STUDENT,
    CLASS_ROOT,
    CROWD,
    EXCHANGE,
    INSTRUCTOR,
    MEMBERS,
    PASSWORDS,
    ROOT,
    VENV_PY,
    Hub,
    as_user,
    classctl,
    course,
    free_port_block,
    home,
    login,
    make,
    open_lab,
    page_config,
    passwords_file,
    ports_freed,
    remove_accounts,
)

if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("runuser"):
    if os.environ.get("CI"):
        pytest.fail("CI must run the class-server tests as root on Linux", pytrace=False)
    pytest.skip("the class-server tests make Unix accounts: run them as root on Linux", allow_module_level=True)

pytestmark = pytest.mark.timeout(600)
SHOTS = ROOT / ".build" / "screenshots"


def _tree_state(folder: Path) -> dict[str, tuple]:
    """Every path under folder with its owner, group, mode, size and mtime."""
    state = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        st = path.lstat()
        state[str(path)] = (st.st_uid, st.st_gid, st.st_mode, st.st_size, st.st_mtime_ns)
    return state


def _accounts_state() -> list[str]:
    lines = []
    for database in ("/etc/passwd", "/etc/group", "/etc/shadow"):
        lines += [line for line in Path(database).read_text().splitlines() if line.split(":")[0] in MEMBERS]
    return lines


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _inbound(user: str) -> list[Path]:
    return sorted(EXCHANGE.joinpath("inbound").glob(f"{user}+day3+*"))


def _clear_class() -> None:
    """The test accounts and the test class's data go; its venv stays (rebuilt only when requirements change)."""
    remove_accounts()
    for name in ("exchange", "etc", "hub", "lib", "passwords.txt"):
        target = CLASS_ROOT / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A fresh class (accounts, exchange, course) with day3 released, and the hub running."""
    started = time.perf_counter()
    # One run at a time on a machine: the accounts and the class root are shared.
    lock = open(f"{CLASS_ROOT}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    _clear_class()
    folder = tmp_path_factory.mktemp("class")
    port = free_port_block()
    make(
        "class-setup",
        f"STUDENTS={','.join([BROWSER_STUDENT, *CROWD])}",
        f"PASSWORDS={passwords_file(folder)}",
        f"CLASS_PORT={port}",
        # The class venv from .venv's packages by hard links (same requirements, no download).
        f"CLASS_PACKAGES_FROM={ROOT / '.venv'}",
        timeout=900,
    )
    make("class-release")
    server = Hub(port, folder / "hub.log")
    server.start()
    print(f"class set up, released and hub started in {time.perf_counter() - started:.1f} s")
    yield server
    subprocess.run(classctl("stop"), capture_output=True, check=False)
    server.kill()
    if not os.environ.get("CL_KEEP"):
        _clear_class()
    lock.close()


def test_setup_a_second_time_changes_nothing(hub):
    """Accounts, passwords, exchange, course folder and configuration are untouched by a second set-up."""
    before = (
        _accounts_state(),
        _tree_state(CLASS_ROOT / "exchange"),
        _tree_state(course()),
        _tree_state(CLASS_ROOT / "etc"),
        _tree_state(home(BROWSER_STUDENT)),
    )
    done = make("class-setup", f"STUDENTS={','.join([BROWSER_STUDENT, *CROWD])}", f"CLASS_PORT={hub.port}")
    after = (
        _accounts_state(),
        _tree_state(CLASS_ROOT / "exchange"),
        _tree_state(course()),
        _tree_state(CLASS_ROOT / "etc"),
        _tree_state(home(BROWSER_STUDENT)),
    )
    assert "nothing changed" in done.stdout, done.stdout
    assert after == before
    assert len(_accounts_state()) == 3 * len(MEMBERS)


def test_pam_login_and_lab_extensions_per_role(hub):
    """PAM refuses a wrong password; students get the Assignment List without Formgrader; the instructor both."""
    with pytest.raises(PermissionError):
        login(hub, BROWSER_STUDENT, PASSWORDS[BROWSER_STUDENT] + "x")
    student = login(hub, BROWSER_STUDENT, PASSWORDS[BROWSER_STUDENT])
    config = page_config(open_lab(hub, student, BROWSER_STUDENT))
    assert "@jupyter/nbgrader" in {e["name"] for e in config["federated_extensions"]}
    disabled = set(config["disabledExtensions"])
    assert "@jupyter/nbgrader:formgrader" in disabled and "@jupyter/nbgrader:assignment-list" not in disabled
    assert not config.get("newsUrl"), "the news pop-up would fetch news"
    base = f"{hub.base}/user/{BROWSER_STUDENT}"
    assert student.get(f"{base}/assignments?course_id=concurrency-lab", timeout=60).json()["success"]
    assert student.get(f"{base}/formgrader", timeout=60).status_code == 404
    notification = student.get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification", timeout=60)
    defaults = {k: v.get("default") for k, v in notification.json()["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults

    teacher = login(hub, INSTRUCTOR, PASSWORDS[INSTRUCTOR])
    config = page_config(open_lab(hub, teacher, INSTRUCTOR))
    assert not {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:assignment-list"} & set(config["disabledExtensions"])
    reply = teacher.get(f"{hub.base}/user/{INSTRUCTOR}/formgrader", timeout=60)
    assert reply.status_code == 200 and "formgrader" in reply.text.lower(), reply.text[:500]


def test_twenty_students_submit_in_the_same_second_and_collect_gets_the_latest(hub):
    """20 accounts submit twice, each round at the same moment; collect takes every student's second one."""
    sys.path.insert(0, str(ROOT / "class"))
    from classctl import Class

    klass = Class.load(CLASS_ROOT)
    envs = {user: {**klass.user_env(user), "HOME": str(home(user)), "USER": user, "LOGNAME": user} for user in CROWD}
    # The class venv's Python (the students' own), as root: it forks one child per student, who becomes them.
    done = subprocess.run(
        [str(VENV_PY), str(Path(__file__).parent / "crowd.py"), "2", json.dumps(envs)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    spreads = []
    for round_no in (1, 2):
        stamps = []
        for user in CROWD:
            submissions = _inbound(user)
            assert len(submissions) == 2, (user, submissions)
            assert all(p.stat().st_uid == pwd.getpwnam(user).pw_uid for p in submissions), user
            times = sorted((p / "timestamp.txt").read_text() for p in submissions)
            stamps.append(datetime.strptime(times[round_no - 1].removesuffix(" UTC"), "%Y-%m-%d %H:%M:%S.%f"))
        spreads.append((max(stamps) - min(stamps)).total_seconds())
    print(f"submission spreads: {[f'{s:.3f} s' for s in spreads]}")
    assert all(spread < 1.0 for spread in spreads), spreads

    make("class-collect")
    submitted = course() / "submitted"
    for user in CROWD:
        folder = submitted / user / "day3"
        nb = nbformat.read(folder / "02-threads.ipynb", as_version=4)
        assert f"# submission 2 by {user}" in "".join(c.source for c in nb.cells), user
        newest = max((p / "timestamp.txt").read_text() for p in _inbound(user))
        assert (folder / "timestamp.txt").read_text() == newest
        assert len(list(folder.glob("*.ipynb"))) == 6


@pytest.fixture()
def browser(request):
    chromium = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {chromium} is missing", pytrace=False)
        pytest.skip(f"no Chromium at {chromium} (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    shots: list[tuple[str, bytes]] = []
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = instance.new_page(viewport={"width": 1400, "height": 1000})

        def shot(step: str) -> None:
            shots.append((step, page.screenshot(full_page=True)))

        yield page, shot
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            shot("failure")
            SHOTS.mkdir(parents=True, exist_ok=True)
            for k, (step, png) in enumerate(shots):
                (SHOTS / f"{request.node.name}-{k:02d}-{step}.png").write_bytes(png)
        instance.close()


def _solution(source: str) -> str:
    """The answer as a student would type it: the source cell without nbgrader's solution markers."""
    return "\n".join(
        line for line in source.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    )


def test_browser_fetch_validate_submit_and_read_feedback(hub, browser):
    """A student logs in, fetches day3, answers Part A of 02-threads, validates, submits, reads feedback."""
    page, shot = browser
    user = BROWSER_STUDENT
    source = nbformat.read(ROOT / "source" / "day3" / "02-threads.ipynb", as_version=4)
    answer_cell = next(
        c for c in source.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "download_pages_answer"
    )
    hidden = [
        m.group(1).strip()
        for c in source.cells
        for m in re.finditer(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", c.source, re.S)
    ]
    assert hidden, "02-threads has no hidden tests to look for"

    # 1. Log in on the hub's PAM log-in page, open the Assignment List, fetch day3, open 02-threads.
    page.goto(f"{hub.base}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORDS[user])
    shot("login")
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=90_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    page.wait_for_timeout(1500)
    assert page.locator(".jp-Notification-Toast").count() == 0 or "news" not in page.inner_text("body").lower()
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
    released = page.locator("#released_assignments_list .list_item", has_text="day3")
    released.wait_for(timeout=60_000)
    shot("assignment-list")
    released.get_by_role("button", name="Fetch").click()
    fetched = page.locator("#fetched_assignments_list .list_item", has_text="day3").first
    fetched.wait_for(timeout=60_000)
    fetched_notebooks = sorted((home(user) / "day3").glob("*.ipynb"))
    assert [p.name for p in fetched_notebooks] == sorted(p.name for p in (ROOT / "release" / "day3").glob("*.ipynb"))
    for notebook in fetched_notebooks:  # each one a valid notebook, as JupyterLab opens it
        nbformat.validate(nbformat.read(notebook, as_version=4))
    fetched.locator(".assignment-notebooks-link").click()
    page.locator("#fetched_assignments_list a", has_text="02-threads").click()
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    shot("opened-02-threads")

    # 2. Write the answer into the answer cell, save, validate, submit.
    editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", has_text="def download_pages").locator(
        ".cm-content"
    )
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(_solution(answer_cell.source))
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    saved = nbformat.read(home(user) / "day3" / "02-threads.ipynb", as_version=4)
    assert any("threading.Thread(target=work" in c.source for c in saved.cells), "the answer was not saved"
    page.locator(".validate-button").first.click()
    dialog = page.locator(".jp-Dialog")
    page.wait_for_function(
        "() => { const d = document.querySelector('.jp-Dialog');"
        " return d && /Success|fail|error/i.test(d.textContent); }",
        timeout=180_000,
    )
    shot("validated")
    text = dialog.inner_text()
    dialog.get_by_role("button").last.click()
    # Part A is answered; the other graded parts of the notebook are the release stubs only in 02-threads.
    assert "NotImplementedError" not in text and ("Success" in text or "download_pages" not in text), text[:1500]
    page.locator(".lm-TabBar-tab", has_text="Assignments").click()
    submit = page.locator("#fetched_assignments_list .list_item", has_text="day3").first.get_by_role(
        "button", name="Submit"
    )
    submit.click()
    page.locator("#submitted_assignments_list .list_item", has_text="day3").first.wait_for(timeout=60_000)
    shot("submitted")
    assert len(_inbound(user)) == 1

    # 3. The instructor collects, grades and returns feedback.
    make("class-collect")
    graded = make("class-grade", f"GRADE_ARGS=--student {user}", timeout=600)
    assert re.search(rf"{user}\s+graded\s+\d", graded.stdout), graded.stdout[-2000:]
    make("class-return")

    # 4. The student fetches the feedback; the page shows Part A's score and no hidden test.
    page.locator("#refresh_assignments_list").click()
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Fetch Feedback").first.click()
    page.locator("#submitted_assignments_list a", has_text="view feedback").first.wait_for(timeout=60_000)
    shot("feedback-fetched")
    html = sorted((home(user) / "day3" / "feedback").glob("*/02-threads.html"))
    assert html, "no feedback fetched"
    stamp = html[-1].parent.name
    page.goto(f"{hub.base}/user/{user}/files/day3/feedback/{stamp}/02-threads.html")
    page.wait_for_selector("text=Part A", timeout=30_000)
    shot("feedback-page")
    body = page.inner_text("body")
    assert re.search(r"Score:\s*10(\.0)?\s*/\s*10", body), body[:2000]
    for test in hidden:
        assert test.splitlines()[0] not in page.content(), f"hidden test shown: {test[:200]}"


def test_a_student_cannot_read_or_change_what_is_not_theirs(hub):
    """As another student (runuser): no listing, no reading submissions/feedback/course, no changing the release."""
    intruder = CROWD[1]
    victim_submission = _inbound(BROWSER_STUDENT)[-1]
    victim_feedback = sorted(EXCHANGE.joinpath("feedback").glob("*.html"))
    assert victim_feedback, "no released feedback to attack"
    release = EXCHANGE / "outbound" / "day3" / "02-threads.ipynb"
    attempts = {
        "list inbound": f"ls {EXCHANGE}/inbound",
        "read a submission": f"cat '{victim_submission}/02-threads.ipynb'",
        "read a submission's secret": f"cat '{victim_submission}/submission_secret.txt'",
        "list a submission": f"ls '{victim_submission}'",
        "delete a submission": f"rm -rf '{victim_submission}'",
        "list feedback": f"ls {EXCHANGE}/feedback",
        "read feedback": f"cat '{victim_feedback[0]}'",
        "change the release": f"echo x >> '{release}'",
        "add to the release": f"touch '{release.parent}/extra.ipynb'",
        "remove the release": f"rm -f '{release}'",
        "rename the course in the exchange": f"mv '{EXCHANGE}' '{EXCHANGE}.x'",
        "read source/": f"cat '{course()}/source/day3/02-threads.ipynb'",
        "list autograded/": f"ls '{course()}/autograded'",
        "read the gradebook": f"cat '{course()}/gradebook.db'",
        "read a home folder": f"ls '{home(BROWSER_STUDENT)}'",
    }
    allowed = []
    for what, script in attempts.items():
        done = as_user(intruder, script)
        refused = re.search(r"Permission denied|Operation not permitted", done.stderr + done.stdout)
        if done.returncode == 0 or not refused:
            allowed.append(f"{what}: rc={done.returncode} {done.stderr.strip()[:200]}")
    assert not allowed, "a student could:\n" + "\n".join(allowed)
    # The same reads work for their owners (so the refusals above are about permissions, not paths).
    assert as_user(BROWSER_STUDENT, f"cat '{victim_feedback[0]}' >/dev/null").returncode == 0 or any(
        as_user(BROWSER_STUDENT, f"cat '{f}' >/dev/null").returncode == 0 for f in victim_feedback
    )
    assert (
        as_user(
            INSTRUCTOR, f"cat '{victim_submission}/02-threads.ipynb' '{course()}/gradebook.db' >/dev/null"
        ).returncode
        == 0
    )
    assert release.exists() and victim_submission.exists()


def test_submitting_in_another_students_name_is_not_collected(hub):
    """A submission named after cl-alice but made by another account is ignored by collect."""
    intruder = CROWD[2]
    before = _digest(course() / "submitted" / BROWSER_STUDENT)
    done = as_user(intruder, f"nbgrader submit day3 --student {BROWSER_STUDENT} 2>&1")
    assert done.returncode == 0, done.stdout[-1500:]
    make("class-collect")
    assert _digest(course() / "submitted" / BROWSER_STUDENT) == before


def test_second_release_and_collect_keep_fetched_and_graded_work(hub):
    """Releasing and collecting again change neither students' fetched copies nor what was graded."""
    fetched = {user: _digest(home(user) / "day3") for user in (BROWSER_STUDENT, CROWD[0])}
    graded = _digest(course() / "autograded")
    submitted = _tree_state(course() / "submitted")
    score_before = make("class-grade", f"GRADE_ARGS=--student {BROWSER_STUDENT} --no-feedback").stdout
    make("class-release")
    make("class-collect")
    refetch = as_user(CROWD[0], "nbgrader fetch_assignment day3 2>&1")
    regrade = make("class-grade", f"GRADE_ARGS=--student {BROWSER_STUDENT} --no-feedback").stdout
    assert {user: _digest(home(user) / "day3") for user in fetched} == fetched, refetch.stdout[-800:]
    assert _digest(course() / "autograded") == graded
    assert _tree_state(course() / "submitted") == submitted
    assert "grading 0 of 1" in regrade and "0 of 1" in score_before, regrade
    assert re.search(rf"{BROWSER_STUDENT}\s+skipped\s+10/", regrade), regrade


def test_hub_restart_keeps_logins_and_submissions(hub):
    """`make class-stop`, then `make class`: the logged-in student stays logged in; submissions are kept."""
    session = login(hub, CROWD[0], PASSWORDS[CROWD[0]])
    open_lab(hub, session, CROWD[0])
    inbound = sorted(p.name for p in (EXCHANGE / "inbound").iterdir())
    make("class-stop")
    assert hub.wait_exit() == 0
    assert ports_freed(hub.port), "a port is still held after the stop"
    hub.start()
    assert sorted(p.name for p in (EXCHANGE / "inbound").iterdir()) == inbound
    reply = session.get(f"{hub.base}/hub/home", timeout=30)
    assert reply.ok and "/hub/login" not in reply.url, reply.url
    open_lab(hub, session, CROWD[0])
    # The student's Assignment List (through the restarted hub) still shows both submissions.
    listed = session.get(f"{hub.base}/user/{CROWD[0]}/assignments?course_id=concurrency-lab", timeout=60)
    assert listed.ok and listed.json()["success"], listed.text[:1000]
    for submission in _inbound(CROWD[0]):
        assert submission.name.split("+")[2] in listed.text, (submission.name, listed.text[:2000])


def test_ctrl_c_stops_the_hub_and_every_server(hub):
    """Ctrl-C in the terminal of `make class` stops the hub, its proxy and the students' servers."""
    assert hub.proc is not None and hub.proc.poll() is None
    users = [INSTRUCTOR, BROWSER_STUDENT, CROWD[0]]
    os.killpg(hub.proc.pid, signal.SIGINT)
    hub.wait_exit()
    assert ports_freed(hub.port)
    for user in users:
        assert subprocess.run(["pgrep", "-u", user, "-f", "jupyterhub-singleuser"]).returncode == 1, user
