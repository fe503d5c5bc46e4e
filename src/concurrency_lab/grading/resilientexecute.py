"""An nbgrader executor that survives: a dead or stuck kernel costs one cell, not the notebook.

nbgrader also scores a test cell 0 when anything in it wrote to stderr, even
if every check passed. :class:`ResilientExecute` says so in the cell (the
feedback shows it) and in the grader's report, so that a student who lost
points that way learns why.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer
from traitlets.config import LoggingConfigurable

from .hangdump import HangDump, add_stdout
from .settings import EVENTS_ENV, PIDS_CGROUP_ENV
from .staging import grade_id
from .strays import StrayReport
from .transport import use_ipc_transport
from .warmkernel import expect, kernel_key, kernel_process, kill_now, launch, pending, planned, take, wants_next

__all__ = ["QuickReadyClient", "QuickStop", "ResilientExecute", "on_notebook_start"]

STDERR_ZERO = "0 points because of output on stderr"
STDERR_NOTE = (
    f"[grader] {STDERR_ZERO}: this test cell wrote to stderr (the red output below), and nbgrader "
    "scores such a cell 0 even when every check in it passed. Remove what wrote it: a print to "
    "sys.stderr, traceback.print_exc(), logging, or a warning (in worker threads and processes too).\n"
)
REAP_CHILDREN = """
import os as _os
while True:
    try:
        if _os.waitpid(-1, _os.WNOHANG) == (0, 0):
            break
    except ChildProcessError:
        break
del _os
"""

#: Called with (the notebook's folder, its name) as each notebook begins to run.
_NOTEBOOK_STARTS: list[Callable[[str, str], None]] = []


def on_notebook_start(callback: Callable[[str, str], None] | None) -> None:
    """Call ``callback(folder, notebook)`` as each notebook begins to run (None: stop calling it).

    When it is called, nbgrader has graded, saved and written every notebook
    before this one in the assignment (it grades them in sorted order): the
    grader makes their feedback pages meanwhile (:class:`~.feedback.FeedbackAhead`).
    """
    _NOTEBOOK_STARTS.clear()
    if callback is not None:
        _NOTEBOOK_STARTS.append(callback)


def _refused_a_process(cell: NotebookNode) -> bool:
    """True if the cell failed because the system refused a new process or thread.

    Where the grader has no pids cgroup (not root), RLIMIT_NPROC is the cap,
    and this is how a cell that hit it shows.
    """
    for out in cell.get("outputs", []):
        if out.get("output_type") != "error":
            continue
        text = f"{out.get('ename', '')}: {out.get('evalue', '')}"
        if (
            out.get("ename") == "BlockingIOError"
            or "can't start new thread" in text
            or ("Resource temporarily unavailable" in text)
        ):
            return True
    return False


def _zeroed_by_stderr(cell: NotebookNode) -> bool:
    """True for a test cell without an error that nbgrader scores 0 for its stderr output."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if not meta.get("grade") or meta.get("solution"):
        return False
    return any(out.get("output_type") == "stream" and out.get("name") == "stderr" for out in cell.get("outputs", []))


class QuickReadyClient(AsyncKernelClient):
    """jupyter_client's kernel client, but ready as soon as the kernel is: no fixed 0.2 s waits.

    ``wait_for_ready`` asks for ``kernel_info`` until a reply comes and IOPub
    is connected, then drains IOPub until it stays empty for 0.2 s: every
    kernel start waits 0.2 s at least. Here IOPub counts as connected when
    the ``idle`` status of the answered request arrives (within 0.2 s, as
    before; else it asks again), and since the kernel publishes in order,
    every earlier message has arrived by then: they are drained without a wait.
    """

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.time() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply" and await self._iopub_idle(msg["parent_header"]["msg_id"]):
                    self._handle_kernel_info_reply(msg)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.time() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while True:  # what the kernel published before that idle status is here already
            try:
                await self.iopub_channel.get_msg(timeout=0)
            except Empty:
                break

    wait_for_ready = _async_wait_for_ready

    async def _iopub_idle(self, msg_id: str, within: float = 0.2) -> bool:
        """True once IOPub brings the ``idle`` status of request ``msg_id``; False after ``within`` s without."""
        end = time.monotonic() + within
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (
                msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"
                and msg["parent_header"].get("msg_id") == msg_id
            ):
                return True
        return False


class QuickStop(LoggingConfigurable):
    """Mix-in for an nbclient executor: an ``immediate`` shutdown waits for the kernel's death, not 0.1 s.

    jupyter_client kills the kernel's process group, then checks every 0.1 s
    whether it is gone: the first check comes too early, and each stop costs
    0.1 s. This kills the group and reaps the kernel at once (a few ms), then
    lets nbclient finish as usual (it finds the kernel dead). Put it after
    :class:`~.strays.StrayReport`, which must see the kernel alive to name the
    processes it left.
    """

    async def _async_cleanup_kernel(self) -> None:
        if getattr(self, "shutdown_kernel", None) == "immediate":
            kill_now(kernel_process(getattr(self, "km", None)))
        await super()._async_cleanup_kernel()  # type: ignore[misc]

    _cleanup_kernel = run_sync(_async_cleanup_kernel)


class ResilientExecute(HangDump, StrayReport, QuickStop, Execute):
    """nbgrader's Execute, but a dead or unresponsive kernel costs one cell, not the notebook.

    nbgrader 0.9.6 drops a whole submission when the kernel dies (``os._exit``,
    a segfault) or ignores the interrupt sent at the cell timeout (a cell that
    swallows ``KeyboardInterrupt``). This preprocessor instead:

    1. gives the failing cell an error output (so a test cell scores 0),
    2. restarts the kernel,
    3. re-runs the earlier cells that succeeded, so their definitions exist again,
    4. and carries on with the next cell.

    A test cell that passed its checks but wrote to stderr gets a first output
    saying that this is why it scores 0, and the grader's report names it.

    Each such event is appended as one JSON line to the file named by the
    environment variable ``CONCURRENCY_LAB_GRADER_EVENTS`` (:data:`~.settings.EVENTS_ENV`), for the report.

    What the student learns from it: a cell stopped at the timeout shows, on
    stdout, where each of its threads was in the student's code
    (:class:`~.hangdump.HangDump`), and each cell that left processes running
    names them and how many the grader stopped (:class:`~.strays.StrayReport`).

    Kernels talk over Unix sockets where there are any (see
    :func:`~.transport.use_ipc_transport`), and a kernel that fails to start is started
    again, up to ``kernel_start_attempts`` times, instead of losing the
    submission.

    The kernel of the student's next notebook (the grader says which notebooks
    a student's folder will run, :func:`~.warmkernel.expect`; plain ``nbgrader
    autograde`` runs those of the submission) starts while this one runs, and
    the next notebook takes it if it is exactly what a fresh start would give
    (``warm_kernels``; see :mod:`.warmkernel`).
    """

    max_restarts = Integer(8, help="Give up restarting after this many kernel deaths in one notebook").tag(config=True)
    kernel_start_attempts = Integer(
        3, help="Start a kernel that fails to come up again, up to this many attempts in all"
    ).tag(config=True)
    ipc_transport = Bool(
        os.name == "posix",
        help="Talk to kernels over Unix sockets rather than TCP ports (no port races); POSIX only",
    ).tag(config=True)
    warm_kernels = Bool(True, help="Start the next notebook's kernel while this one runs").tag(config=True)

    _warm_taken = False

    def create_kernel_manager(self) -> Any:
        """nbclient's kernel manager, on Unix sockets when ``ipc_transport`` is set; clients ready at once."""
        km = super().create_kernel_manager()
        km.client_factory = QuickReadyClient
        if self.ipc_transport:
            use_ipc_transport(km)
        return km

    def _launch_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """What nbclient's ``start_new_kernel`` adds: the notebook's folder as cwd, the history file."""
        kwargs = dict(kwargs)
        folder = self.resources.get("metadata", {}).get("path") or None
        if folder and "cwd" not in kwargs:
            kwargs["cwd"] = folder
        has_history = any(arg.startswith("--HistoryManager.hist_file") for arg in self.extra_arguments)
        if getattr(self.km, "ipykernel", False) and self.ipython_hist_file and not has_history:
            self.extra_arguments += [f"--HistoryManager.hist_file={self.ipython_hist_file}"]
        return kwargs

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        """Take the warm kernel if it was started exactly as this start would be; else start one."""
        self._warm_taken = False
        if self.warm_kernels and pending() is not None:
            kwargs = self._launch_kwargs(kwargs)
            if set(kwargs) <= {"cwd"}:
                km = take(kernel_key(self.km, kwargs.get("cwd"), self.extra_arguments, dict(os.environ)))
                if km is not None:
                    self.km, self._warm_taken = km, True
                    return
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    def start_new_kernel_client(self) -> Any:
        """Connect to the new kernel; if it never comes up, start a fresh one and try again.

        A warm kernel that does not come up costs no attempt: a fresh one starts.
        Once connected, the next notebook's kernel starts (:meth:`_warm_next`).
        """
        attempt = 1
        while True:
            try:
                kc = super().start_new_kernel_client()
                break
            except Exception as error:  # nbclient has already shut the failed kernel down
                if self._warm_taken:
                    self.log.warning("The warm kernel did not come up (%s); starting a new kernel", error)
                else:
                    if attempt >= self.kernel_start_attempts:
                        raise
                    self.log.warning("Kernel start %d failed (%s); starting a new kernel", attempt, error)
                    self._report_event(f"a kernel failed to start ({error}); started again")
                    attempt += 1
                self.km = self.create_kernel_manager()
                self.start_new_kernel()
        self._warm_next()
        return kc

    def _warm_next(self) -> None:
        """Start the kernel for the next notebook expected in this folder, if none waits.

        The grader says which notebooks a student's folder will run. Plain ``nbgrader autograde``
        says nothing: then they are the notebooks of the student's submission, which it grades
        in sorted order.
        """
        folder = self.resources.get("metadata", {}).get("path") or None
        notebook = self.resources.get("nbgrader", {}).get("notebook")
        if self.warm_kernels and folder and planned(folder) is None:
            expect(folder, self._submitted_notebooks())
        if not self.warm_kernels or pending() is not None or not wants_next(folder, notebook):
            return
        current = self.km
        try:
            km = self.create_kernel_manager()
        finally:
            self.km = current
        key = kernel_key(km, folder, self.extra_arguments, dict(os.environ))
        run_sync(launch)(km, key, folder, list(self.extra_arguments))

    def _submitted_notebooks(self) -> list[str]:
        """The notebooks (names without ``.ipynb``) of the submission being autograded; none if unknown."""
        from nbgrader.coursedir import CourseDirectory

        student = self.resources.get("nbgrader", {}).get("student")
        assignment = self.resources.get("nbgrader", {}).get("assignment")
        if not student or not assignment:
            return []
        coursedir = CourseDirectory(config=self.config)
        submitted = coursedir.format_path(coursedir.submitted_directory, student, assignment)
        return (
            sorted(os.path.splitext(name)[0] for name in os.listdir(submitted) if name.endswith(".ipynb"))
            if os.path.isdir(submitted)
            else []
        )

    def preprocess(
        self, nb: NotebookNode, resources: Any = None, km: Any = None
    ) -> tuple[NotebookNode, dict[str, Any]]:
        """Execute the notebook, surviving kernel deaths and ignored interrupts."""
        folder = ((resources or {}).get("metadata", {}) or {}).get("path")
        notebook = ((resources or {}).get("nbgrader", {}) or {}).get("notebook")
        if folder and notebook:
            for callback in list(_NOTEBOOK_STARTS):
                callback(folder, notebook)
        self._succeeded: list[int] = []
        self._restarts = 0
        return super().preprocess(nb, resources, km)

    def preprocess_cell(
        self, cell: NotebookNode, resources: dict[str, Any], index: int
    ) -> tuple[NotebookNode, dict[str, Any]]:
        """Run one cell; on a dead or stuck kernel, record it, restart and replay."""
        if cell.cell_type != "code":
            return cell, resources
        if self._restarts > self.max_restarts:
            self._fail(cell, "KernelRestartLimit", "not run: the kernel died too often")
            return cell, resources
        hits = self._pids_limit_hits()
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if self._pids_limit_hits() > hits or _refused_a_process(cell):
                killed = self._kill_kernel_children()
                self._seen_after = (None, set())  # the next cell scans the process table afresh
                self._report(cell, index, f"hit the process limit; {killed} processes killed", resources)
                add_stdout(
                    cell,
                    "Clean-up: this cell started more processes and threads than the grader allows, so the "
                    f"system refused the next one; the grader stopped the {killed} processes it had started.",
                )
        except (DeadKernelError, CellTimeoutError) as error:
            reason = (
                "the kernel died"
                if isinstance(error, DeadKernelError)
                else (f"the cell ran past {self.timeout} s and ignored the interrupt")
            )
            self._fail(cell, type(error).__name__, f"{reason}; the kernel was restarted")
            self._report(cell, index, reason, resources)
            self._restart_and_replay()
            return cell, self.resources
        if not any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            self._succeeded.append(index)
            if _zeroed_by_stderr(cell):
                cell.outputs.insert(0, NotebookNode(output_type="stream", name="stdout", text=STDERR_NOTE))
                self._report(cell, index, STDERR_ZERO, resources)
        return cell, resources

    @staticmethod
    def _pids_limit_hits() -> int:
        """How often the grading cgroup refused a fork (0 outside the grader)."""
        group = os.environ.get(PIDS_CGROUP_ENV)
        if not group:
            return 0
        try:
            with open(os.path.join(group, "pids.events"), encoding="ascii") as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "max":
                        return int(value)
        except OSError:
            pass
        return 0

    def _kill_kernel_children(self) -> int:
        """Kill every process the kernel started (a fork bomb's), keeping the kernel itself."""
        import psutil

        pid = self._kernel_pid()
        if not pid:
            return 0
        try:
            children = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=5)
        # Killed children stay zombies, holding the pids budget, until their
        # parent reaps them: ask the kernel to reap.
        if self.kc is not None:
            try:
                self.wait_for_reply(self.kc.execute(REAP_CHILDREN, silent=True, store_history=False))
            except Exception as error:  # the kernel is past helping: the next cell will tell
                self.log.warning("Reaping the kernel's children failed: %s", error)
        return len(children)

    @staticmethod
    def _fail(cell: NotebookNode, ename: str, evalue: str) -> None:
        cell.setdefault("outputs", []).append(
            NotebookNode(
                output_type="error",
                ename=ename,
                evalue=evalue,
                traceback=[f"{ename}: {evalue}"],
            )
        )

    def _report(self, cell: NotebookNode, index: int, reason: str, resources: dict[str, Any]) -> None:
        self._report_event(reason, resources, cell=index, grade_id=grade_id(cell))

    def _report_event(self, reason: str, resources: dict[str, Any] | None = None, **where: Any) -> None:
        path = os.environ.get(EVENTS_ENV)
        if not path:
            return
        meta = (resources or getattr(self, "resources", None) or {}).get("nbgrader", {})
        event = {
            "student": meta.get("student"),
            "notebook": meta.get("notebook"),
            "cell": where.get("cell"),
            "grade_id": where.get("grade_id"),
            "reason": reason,
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    def _restart_and_replay(self) -> None:
        self._restarts += 1
        self.log.warning("Restarting the kernel (restart %d)", self._restarts)
        try:
            self._cleanup_kernel()
        except Exception as error:  # the kernel is already gone: nothing to stop
            self.log.warning("Cleaning up the dead kernel: %s", error)
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        self.start_new_kernel_client()
        for earlier in self._succeeded:
            replay = copy.deepcopy(self.nb.cells[earlier])
            try:
                self.execute_cell(replay, earlier, store_history=False)
            except (DeadKernelError, CellTimeoutError):
                self.log.warning("Replaying cell %d failed; carrying on", earlier)
                break
