"""Processes a student's code left running, stopped and named in the cell that left them.

The grader kills every process a kernel leaves behind; the student should
learn which ones, and from which cell. :class:`StrayReport` (a mix-in for an
nbclient executor, like :class:`~.hangdump.HangDump`) notes,
after each cell, the kernel's descendants that the cell started and that are
still running. When the kernel is about to be shut down (at the end of the
notebook, or before a restart), it kills every descendant left and adds one
line to each cell that left some, on stdout, for example::

    Clean-up: this cell left 2 processes running after it returned: pid 4242
    (python -c from multiprocessing.spawn import spawn_main; ...), pid 4243 (...).
    The grader stopped them.

multiprocessing's own helpers (the resource tracker and the fork server) are
not the student's doing and are neither reported nor counted.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from nbclient.util import run_sync
from nbformat import NotebookNode
from traitlets import Bool
from traitlets.config import LoggingConfigurable

from .hangdump import add_stdout
from .warmkernel import kernel_pid

__all__ = ["StrayReport", "describe", "is_helper", "last_pid", "wait_dead"]

HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "multiprocessing.semaphore_tracker")


def _command(proc: Any) -> str:
    try:
        return " ".join(proc.cmdline()) or proc.name()
    except Exception:  # it ended, or it may not be read
        return ""


def is_helper(proc: Any) -> bool:
    """True for multiprocessing's resource tracker and fork server."""
    command = _command(proc)
    return any(helper in command for helper in HELPERS)


def last_pid() -> int | None:
    """The PID the system gave last (Linux's /proc/loadavg), or None where it cannot be read.

    If it is the same after a cell as before, the cell started no process (nor
    thread: threads take from the same numbers), so nothing new needs looking for.
    """
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            return int(handle.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def describe(pid: int, command: str, width: int = 70) -> str:
    """``pid 4242 (python -c ...)``, the command cut to ``width`` characters."""
    if len(command) > width:
        command = command[: width - 3] + "..."
    return f"pid {pid} ({command or '?'})"


def wait_dead(procs: list[Any], timeout: float) -> list[Any]:
    """Wait until each of ``procs`` has ended or is a zombie; return those that are neither.

    A killed child of the kernel stays a zombie until the kernel reaps it, which
    it may never do while it runs (multiprocessing's fork server and resource
    tracker): ``psutil.wait_procs`` alone would wait the whole ``timeout`` for it.
    Children of this process (the ones a subreaper adopted) are reaped.
    """
    import psutil

    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        _, alive = psutil.wait_procs(alive, timeout=0.02)  # reaps this process's own children
        alive = [proc for proc in alive if _status(proc) not in (psutil.STATUS_ZOMBIE, None)]
        if time.monotonic() >= deadline:
            break
    return alive


def _status(proc: Any) -> str | None:
    """The process's status, or None once it is gone."""
    import psutil

    try:
        return proc.status()
    except psutil.Error:
        return None


class StrayReport(LoggingConfigurable):
    """Mix-in for an nbclient executor: tell each cell which processes it left running."""

    report_strays = Bool(True, help="Stop the processes a notebook left running and name them").tag(config=True)

    _stray_cells: dict[int, tuple[int, str]]

    def _kernel_pid(self) -> int | None:
        return kernel_pid(getattr(self, "km", None))

    def _kernel_process(self) -> Any:
        import psutil

        pid = self._kernel_pid()
        if not pid:
            return None
        try:
            return psutil.Process(pid)
        except psutil.Error:
            return None

    def _descendants(self) -> dict[int, Any]:
        import psutil

        kernel = self._kernel_process()
        if kernel is None:
            return {}
        try:
            return {proc.pid: proc for proc in kernel.children(recursive=True)}
        except psutil.Error:
            return {}

    async def async_execute_cell(
        self, cell: NotebookNode, cell_index: int, execution_count: int | None = None, store_history: bool = True
    ) -> NotebookNode:
        """Execute as nbclient does, and note the processes the cell left running."""
        import psutil

        if not hasattr(self, "_stray_cells"):
            self._stray_cells = {}
        before = None
        started_at = last_pid()
        if self.report_strays and cell.cell_type == "code":
            # A scan of the process table costs a few ms: what the last cell left is what this
            # one starts with (unless the kernel was replaced since), and a cell during which
            # the system gave out no PID started nothing, so it needs no scan after it either.
            kernel, seen = getattr(self, "_seen_after", (None, set()))
            before = seen if kernel is not None and kernel == self._kernel_pid() else set(self._descendants())
        try:
            return await super().async_execute_cell(  # type: ignore[misc]
                cell, cell_index, execution_count=execution_count, store_history=store_history
            )
        finally:
            if before is not None and started_at is not None and last_pid() == started_at:
                self._seen_after = (self._kernel_pid(), before)
            elif before is not None:
                after = self._descendants()
                self._seen_after = (self._kernel_pid(), set(after))
                for pid, proc in after.items():
                    try:
                        alive = proc.status() != psutil.STATUS_ZOMBIE
                    except psutil.Error:
                        continue
                    if pid not in before and pid not in self._stray_cells and alive and not is_helper(proc):
                        self._stray_cells[pid] = (cell_index, _command(proc))

    execute_cell = run_sync(async_execute_cell)

    def stop_strays(self) -> int:
        """Kill every process the kernel started and left running; report each in its cell.

        Returns:
            How many were killed (multiprocessing's helpers not counted).
        """
        import psutil

        found = self._descendants()
        strays = {pid: proc for pid, proc in found.items() if not is_helper(proc)}
        for proc in found.values():
            try:
                proc.kill()
            except psutil.Error:
                pass
        wait_dead(list(found.values()), timeout=5)
        recorded = getattr(self, "_stray_cells", {})
        by_cell: dict[int, list[str]] = {}
        for pid, proc in strays.items():
            cell_index, command = recorded.get(pid, (None, _command(proc)))
            if cell_index is not None:
                by_cell.setdefault(cell_index, []).append(describe(pid, command))
        cells = getattr(self, "nb", None).cells if getattr(self, "nb", None) is not None else []
        for cell_index, described in by_cell.items():
            if cell_index < len(cells):
                count = len(described)
                listed = ", ".join(described[:5]) + (f" and {count - 5} more" if count > 5 else "")
                add_stdout(
                    cells[cell_index],
                    f"Clean-up: this cell left {count} process{'es' if count != 1 else ''} running after it "
                    f"returned: {listed}. The grader stopped {'them' if count != 1 else 'it'}.",
                )
        self._stray_cells = {}
        self._seen_after = (None, set())
        if strays:
            self._note_strays(len(strays), sorted(by_cell))
        return len(strays)

    def _note_strays(self, count: int, cells: list[int]) -> None:
        """One line in the grader's events file (``CONCURRENCY_LAB_GRADER_EVENTS``), for its summary."""
        path = os.environ.get("CONCURRENCY_LAB_GRADER_EVENTS")
        if not path:
            return
        meta = (getattr(self, "resources", None) or {}).get("nbgrader", {})
        where = ", ".join(f"cell {index}" for index in cells) or "no cell"
        event = {
            "student": meta.get("student"),
            "notebook": meta.get("notebook"),
            "cell": cells[0] if cells else None,
            "grade_id": None,
            "reason": f"stopped {count} process(es) left running ({where})",
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    async def _async_cleanup_kernel(self) -> None:
        """Stop and report the strays while the kernel still lives, then shut it down as nbclient does."""
        if self.report_strays:
            try:
                self.stop_strays()
            except Exception as error:  # the report must never cost the student a grade
                self.log.warning("Stopping stray processes failed: %s", error)
        await super()._async_cleanup_kernel()  # type: ignore[misc]

    _cleanup_kernel = run_sync(_async_cleanup_kernel)
