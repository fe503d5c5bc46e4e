"""Concurrency Lab: the plumbing behind the course notebooks.

The lessons themselves live in the notebooks. This package holds only what
they stand on: a local page server (:mod:`.pageserver`), timing helpers
(:mod:`.timing`), the machine line and start-method set-up (:mod:`.machine`),
worker functions that other processes can import (:mod:`.workers`), the
charts (:mod:`.charts`), and what the test cells use: timeouts
(:mod:`.probes`), shared fixtures (:mod:`.fixtures`) and hints, failures
written for the student with the measurements behind them (:mod:`.hints`).

The names below are imported when first used (``from concurrency_lab import
PageServer`` works as usual): every worker process that unpickles a function
from :mod:`.workers` or :mod:`.fixtures` imports this package first, and should
not pay for the page server's imports (asyncio, http.server) it never uses.

The instructor's side, grading a class with nbgrader, is the subpackage
:mod:`concurrency_lab.grading`; no notebook imports it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .machine import describe_machine, gil_enabled, setup
    from .pageserver import PageServer
    from .timing import Timing, measure, speedup, summarize

__all__ = [
    "PageServer",
    "Timing",
    "describe_machine",
    "gil_enabled",
    "measure",
    "setup",
    "speedup",
    "summarize",
]

#: Where each name of ``__all__`` lives.
_HOMES = {
    "PageServer": ".pageserver",
    "Timing": ".timing",
    "describe_machine": ".machine",
    "gil_enabled": ".machine",
    "measure": ".timing",
    "setup": ".machine",
    "speedup": ".timing",
    "summarize": ".timing",
}


def __getattr__(name: str) -> Any:
    """Import a name of ``__all__`` from its module when it is first used."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
