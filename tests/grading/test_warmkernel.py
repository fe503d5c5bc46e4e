"""The next notebook's kernel starts early, and is used only where a fresh start would give the same kernel."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import psutil
import pytest

from concurrency_lab.grading import warmkernel
from concurrency_lab.grading.resilientexecute import ResilientExecute

# What a kernel tells about itself: its PID, folder, names defined, first execution count, one variable.
REPORT = (
    "import json, os\n"
    "print(json.dumps({'pid': os.getpid(), 'cwd': os.getcwd(), 'names': sorted(n for n in globals() if n[0] != '_'),"
    " 'probe': os.environ.get('CL_WARM_PROBE')}))"
)


def _run(folder: Path, notebook: str) -> dict:
    """Run a one-cell notebook called ``notebook`` in ``folder`` as autograde does; what its kernel said."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(REPORT)])
    executor = ResilientExecute(kernel_name="python3", timeout=30, startup_timeout=30)
    resources = {"metadata": {"path": str(folder)}, "nbgrader": {"notebook": notebook}}
    nb, _ = executor.preprocess(nb, resources)
    cell = nb.cells[0]
    said = json.loads(cell.outputs[0]["text"])
    said["count"] = cell.execution_count
    return said


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def folders(tmp_path):
    a, b = tmp_path / "alice", tmp_path / "bob"
    a.mkdir()
    b.mkdir()
    yield a, b
    warmkernel.expect(a, [])
    warmkernel.discard()


def test_a_warm_kernel_is_taken_only_for_its_own_folder_and_environment(folders, monkeypatch):
    """The next notebook in the same folder gets the warm kernel; another folder or environment gets a fresh one"""
    a, b = folders
    warmkernel.expect(a, ["n1", "n2", "n3", "n4", "n5"])
    first = _run(a, "n1")
    warm = warmkernel.pending()
    assert warm is not None and warm != first["pid"]
    taken = _run(a, "n2")
    assert taken["pid"] == warm  # the warm kernel ran n2 ...
    assert taken["cwd"] == str(a)
    assert (taken["names"], taken["count"]) == (first["names"], first["count"])  # ... and had run nothing before

    warm = warmkernel.pending()
    monkeypatch.setenv("CL_WARM_PROBE", "changed")  # the environment changed since it started
    fresh = _run(a, "n3")
    assert fresh["pid"] != warm and fresh["probe"] == "changed"
    assert _gone(warm)

    warm = warmkernel.pending()
    assert warm is not None  # started for n4 in alice's folder
    other = _run(b, "n4")  # a notebook in another folder never gets it
    assert other["pid"] != warm and other["cwd"] == str(b)
    assert _gone(warm) and warmkernel.pending() is None  # and bob's folder expects nothing: none started


# A grading worker as the grader sets it up (subreaper, pids cgroup, limits, the sandbox's kernelspec).
WORKER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    import nbformat
    from concurrency_lab.grading import warmkernel
    from concurrency_lab.grading.resilientexecute import ResilientExecute
    from concurrency_lab.grading.sandbox import setup_worker
    from concurrency_lab.grading.settings import KERNEL_NAME, PIDS_CGROUP_ENV, GradeSettings

    root, folder = Path(sys.argv[1]), Path(sys.argv[2])
    setup_worker(GradeSettings(root=root, max_pids=64))
    probe = (
        "import json, os\\n"
        "print(json.dumps({'pid': os.getpid(), 'env': dict(os.environ),"
        " 'cgroup': open('/proc/self/cgroup').read()}))"
    )

    def run(notebook):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
        executor = ResilientExecute(kernel_name=KERNEL_NAME, timeout=30, startup_timeout=30)
        nb, _ = executor.preprocess(nb, {"metadata": {"path": str(folder)}, "nbgrader": {"notebook": notebook}})
        return json.loads(nb.cells[0].outputs[0]["text"])

    def cgroup(pid):
        return open(f"/proc/{pid}/cgroup").read()

    warmkernel.expect(folder, ["n1", "n2", "n3"])
    fresh = run("n1")
    waiting = warmkernel.pending()
    report = {"fresh": fresh, "waiting": waiting, "waiting_cgroup": cgroup(waiting), "taken": run("n2")}
    # A warm kernel now waits for n3; the worker ends once it is up.
    client = warmkernel._WARM["km"].blocking_client()
    client.start_channels()
    client.wait_for_ready(timeout=30)
    client.stop_channels()
    report["left"] = warmkernel.pending()
    report["worker_cgroup"] = os.environ.get(PIDS_CGROUP_ENV)
    print(json.dumps(report), flush=True)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="cgroups and /proc")
def test_a_warm_kernel_is_a_fresh_kernel_of_the_grader_and_ends_with_its_worker(tmp_path):
    """The sandbox's limits and environment are a fresh kernel's; no warm kernel outlives the worker"""
    folder = tmp_path / "alice"
    folder.mkdir()
    # The worker's kernels write to its stdout too: read the report, then wait for the worker alone.
    with open(tmp_path / "stderr", "w") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(folder)], stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        line = worker.stdout.readline()
        assert worker.wait(timeout=120) == 0, (tmp_path / "stderr").read_text()[-2000:]
        # At once: ipykernel itself would notice that its parent left, but only within a second.
        left_running = not _gone(json.loads(line)["left"])
        worker.stdout.close()
    report = json.loads(line)
    fresh, taken = report["fresh"], report["taken"]
    assert taken["pid"] == report["waiting"]
    assert taken["env"] == fresh["env"]  # no variable of the warm start is left, nothing is missing
    assert taken["cgroup"] == fresh["cgroup"]  # the worker's pids cgroup, as a fresh kernel's
    if report["worker_cgroup"]:  # root: it waited in a pids cgroup of its own, not the running kernel's
        name = Path(report["worker_cgroup"]).name
        assert f"{name}-warm" in report["waiting_cgroup"] and f"{name}-warm" not in taken["cgroup"]
        assert name in taken["cgroup"]
    assert report["left"] and not left_running


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_plain_nbgrader_autograde_runs_the_next_notebook_on_a_warm_kernel(tmp_path):
    """Without the grader, nbgrader's own autograde starts notebook 2's kernel while notebook 1 runs"""
    from gradertools import course_from

    from nbtools import nbgrader

    # Times since boot, on one clock: a process's start (from /proc/self/stat) and now (/proc/uptime).
    said = (
        "import json, os, time\n"
        "born = int(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19]) / os.sysconf('SC_CLK_TCK')\n"
        "print(json.dumps({'pid': os.getpid(), 'born': born}))"
    )
    wait = "time.sleep(1.0)\nprint(json.dumps({'done': float(open('/proc/uptime').read().split()[0])}))"
    notebooks = {
        "n1.ipynb": nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(said), nbformat.v4.new_code_cell(wait)]),
        "n2.ipynb": nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(said)]),
    }
    course = course_from(tmp_path, "warm", notebooks)
    submitted = course / "submitted" / "alice" / "warm"
    submitted.mkdir(parents=True)
    for name in notebooks:
        (submitted / name).write_bytes((course / "release" / "warm" / name).read_bytes())
    done = nbgrader("autograde", "warm", "--student", "alice", cwd=course)
    assert done.returncode == 0, done.stderr[-3000:]

    def outputs(name: str) -> list[dict]:
        nb = nbformat.read(course / "autograded" / "alice" / "warm" / name, as_version=4)
        return [json.loads(cell.outputs[0]["text"]) for cell in nb.cells if cell.cell_type == "code" and cell.outputs]

    first, finished = outputs("n1.ipynb")
    (second,) = outputs("n2.ipynb")
    assert second["pid"] != first["pid"]
    # Notebook 2's kernel was up before notebook 1's last cell ended (a second of sleep before it).
    assert second["born"] < finished["done"] - 0.5, (first, finished, second)
    assert _gone(second["pid"]), "no kernel outlives autograde"
