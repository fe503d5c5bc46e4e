"""Concurrency Lab: the plumbing behind the course notebooks.

The lessons themselves live in the notebooks. This package holds only what
they stand on: a local page server (:mod:`.pageserver`), timing helpers
(:mod:`.timing`), the machine line and start-method set-up (:mod:`.machine`),
worker functions that other processes can import (:mod:`.workers`) and the
charts (:mod:`.charts`).

The instructor's side, grading a class with nbgrader, is the subpackage
:mod:`concurrency_lab.grading`; no notebook imports it.
"""

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
