"""Where a timed-out cell's threads were, shown to the student instead of a bare ``KeyboardInterrupt``.

When a cell runs past the executor's timeout, nbclient interrupts the kernel
and the student sees only ``KeyboardInterrupt``, or nothing at all if the
code swallows the interrupt. :class:`HangDump` (a mix-in for an nbclient
executor, such as nbgrader's ``Execute``) arms ``faulthandler`` in each kernel
it starts, on ``SIGUSR2``; at a timeout, before the interrupt, it sends that
signal, reads the dump of every thread, keeps only the student's frames
(cells without hidden tests, and modules in the notebook's folder) and puts
them in the cell's output, on stdout.

``faulthandler`` writes from its C signal handler, so the dump comes even
from a thread that spins holding the GIL or blocks in a lock.
"""

from __future__ import annotations

import asyncio
import multiprocessing.util
import os
import shutil
import signal
import tempfile
from typing import Any

from nbclient.util import run_sync
from nbformat import NotebookNode
from traitlets import Bool, Float
from traitlets.config import LoggingConfigurable

from ..hints import HIDDEN_MARK, format_thread_dump, is_cell_file

__all__ = ["HangDump", "cell_file_hash"]

DUMP_SIGNAL = signal.SIGUSR2 if hasattr(signal, "SIGUSR2") else None
ARM = """
import faulthandler as _faulthandler, os as _os, signal as _signal
_faulthandler._concurrency_lab_dump = open({path!r}, "w")
_faulthandler.register(_signal.SIGUSR2, file=_faulthandler._concurrency_lab_dump, all_threads=True, chain=False)
del _faulthandler, _os, _signal
"""
_DUMP_DIR: str | None = None


def cell_file_hash(source: str) -> str:
    """The number ipykernel names a cell's file after (``ipykernel_<pid>/<number>.py``)."""
    from ipykernel.compiler import get_tmp_hash_seed, murmur2_x86

    return str(murmur2_x86(source, get_tmp_hash_seed()))


def _dump_dir() -> str:
    global _DUMP_DIR
    if _DUMP_DIR is None or not os.path.isdir(_DUMP_DIR):
        _DUMP_DIR = tempfile.mkdtemp(prefix="cl-dumps-")
        # Not atexit: a grading worker is a multiprocessing child, which ends with os._exit and
        # runs only multiprocessing's finalizers (so does a main process, at its exit).
        multiprocessing.util.Finalize(None, shutil.rmtree, args=(_DUMP_DIR, True), exitpriority=0)
    return _DUMP_DIR


class HangDump(LoggingConfigurable):
    """Mix-in for an nbclient executor: a timed-out cell's output shows where its threads were."""

    hang_dump = Bool(DUMP_SIGNAL is not None, help="At a cell timeout, show where the student's threads were").tag(
        config=True
    )
    hang_dump_wait = Float(2.0, help="Seconds to wait for the kernel to write its dump").tag(config=True)

    _dump_path: str | None = None
    _dump_pid: int | None = None
    _hang_report: str = ""

    async def async_start_new_kernel_client(self) -> Any:
        """Start the client as nbclient does, then arm the kernel's dump."""
        kc = await super().async_start_new_kernel_client()  # type: ignore[misc]
        await self._arm_hang_dump()
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _arm_hang_dump(self) -> None:
        self._dump_path = self._dump_pid = None
        if not self.hang_dump:
            return
        fd, path = tempfile.mkstemp(prefix="dump-", suffix=".txt", dir=_dump_dir())
        os.close(fd)
        try:
            reply = await self.async_wait_for_reply(  # type: ignore[attr-defined]
                self.kc.execute(  # type: ignore[attr-defined]
                    ARM.format(path=path),
                    silent=True,
                    store_history=False,
                    user_expressions={"pid": "__import__('os').getpid()"},
                )
            )
            content = (reply or {}).get("content", {})
            pid = int(content["user_expressions"]["pid"]["data"]["text/plain"])
        except Exception as error:  # no dump for this kernel; the timeout still works
            self.log.warning("Could not arm the hang dump: %s", error)  # type: ignore[attr-defined]
            return
        if content.get("status") == "ok":
            self._dump_path, self._dump_pid = path, pid

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> Any:
        """Take the dump, then interrupt (or fail) as nbclient does."""
        self._hang_report = await self._take_hang_report()
        return await super()._async_handle_timeout(timeout, cell)  # type: ignore[misc]

    async def _take_hang_report(self) -> str:
        path, pid = self._dump_path, self._dump_pid
        if not (path and pid and DUMP_SIGNAL is not None):
            return ""
        start = os.path.getsize(path)
        try:
            os.kill(pid, DUMP_SIGNAL)
        except OSError:
            return ""
        size, stable = start, 0
        for _ in range(int(self.hang_dump_wait / 0.05)):
            await asyncio.sleep(0.05)
            now = os.path.getsize(path)
            stable = stable + 1 if now == size and now > start else 0
            size = now
            if stable >= 2:
                break
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(start)
            dump = handle.read()
        return self.student_view(dump)

    def student_view(self, dump: str) -> str:
        """The dump, with only the frames a student may see (see :func:`format_thread_dump`)."""
        cells = {}
        for cell in self.nb.cells:  # type: ignore[attr-defined]
            if cell.cell_type == "code":
                cells[cell_file_hash(cell.source)] = cell.source
        folder = os.path.abspath(
            ((self.resources or {}).get("metadata", {}) or {}).get("path") or os.getcwd()  # type: ignore[attr-defined]
        )

        def source(filename: str, lineno: int) -> str | None:
            if is_cell_file(filename):
                text = cells.get(os.path.splitext(os.path.basename(filename))[0])
            elif filename.endswith(".py") and os.path.dirname(os.path.abspath(filename)) == folder:
                try:
                    with open(filename, encoding="utf-8") as handle:
                        text = handle.read()
                except OSError:
                    return None
            else:
                return None
            if text is None or HIDDEN_MARK in text:
                return None
            lines = text.splitlines()
            return lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""

        return format_thread_dump(dump, source)

    async def async_execute_cell(
        self, cell: NotebookNode, cell_index: int, execution_count: int | None = None, store_history: bool = True
    ) -> NotebookNode:
        """Execute as nbclient does; after a timeout, the report goes in the cell's output, before the error."""
        self._hang_report = ""
        try:
            return await super().async_execute_cell(  # type: ignore[misc]
                cell, cell_index, execution_count=execution_count, store_history=store_history
            )
        finally:
            if self._hang_report:
                add_stdout(cell, self._hang_report)
                self._hang_report = ""

    execute_cell = run_sync(async_execute_cell)


def add_stdout(cell: NotebookNode, text: str) -> None:
    """Put ``text`` in the cell's output on stdout, before its first error output."""
    outputs = cell.setdefault("outputs", [])
    stream = NotebookNode(output_type="stream", name="stdout", text=text.rstrip("\n") + "\n")
    errors = [i for i, out in enumerate(outputs) if out.get("output_type") == "error"]
    outputs.insert(errors[0] if errors else len(outputs), stream)
