"""Kernels that nbval starts talk over Unix sockets, not TCP ports.

Over TCP, jupyter_client picks free ports by binding and releasing them, and
the kernel binds them a moment later; in a busy test session another process
can take one in between, and the kernel hangs with "Address already in use".
:func:`concurrency_lab.grading.transport.use_ipc_transport` removes that race; this
file applies it to nbval, which builds its kernel manager itself.
"""

import nbval.kernel
from jupyter_client.manager import KernelManager

from concurrency_lab.grading.transport import use_ipc_transport


class IpcKernelManager(KernelManager):
    """A kernel manager that uses Unix sockets where the platform has them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        use_ipc_transport(self)


nbval.kernel.KernelManager = IpcKernelManager
