"""Kernels on Unix sockets: no TCP port for another process to take while a kernel starts."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from typing import Any

__all__ = ["use_ipc_transport"]

_IPC_DIR: str | None = None


def use_ipc_transport(km: Any) -> bool:
    """Make a kernel manager talk to its kernel over Unix sockets (POSIX only).

    Over TCP, jupyter_client finds free ports by binding and releasing them,
    and the kernel binds them a moment later. Any process on the machine can
    take one in between (another kernel starting, a page server, a client's
    ephemeral port): the kernel fails with "Address already in use" and hangs
    until the start-up timeout. Sockets named in a private folder cannot be
    taken. Call this before the kernel starts.

    Returns:
        True if the manager now uses IPC; False where it keeps TCP (Windows, or
        no writable temporary folder).
    """
    global _IPC_DIR
    if os.name != "posix":
        return False
    if _IPC_DIR is None or not os.path.isdir(_IPC_DIR):
        try:
            # Short: a socket path must fit in 104 bytes on macOS.
            _IPC_DIR = tempfile.mkdtemp(prefix="cl-kernels-")
        except OSError:  # no writable temporary folder: TCP still works
            return False
        atexit.register(shutil.rmtree, _IPC_DIR, True)
    km.transport = "ipc"
    km.ip = os.path.join(_IPC_DIR, uuid.uuid4().hex[:12])
    return True
