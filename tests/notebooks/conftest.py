"""With CONCURRENCY_LAB_RIGHT_ANSWERS set, run only the judgement cases whose answers are right.

``make load-proof`` runs those next to burner processes (``tests/busy.py``): a grade
must not depend on how busy the grading machine is, so every right answer must still
pass every test cell while both cores are busy.
"""

from __future__ import annotations

import os

from nbtools import Case


def right_answer(item) -> bool:
    """True for a judgement test of a case whose answers must pass every test cell."""
    case = getattr(getattr(item, "callspec", None), "params", {}).get("case")
    return isinstance(case, Case) and not case.must_fail


def pytest_collection_modifyitems(config, items):
    """Keep only the right answers' judgement tests when CONCURRENCY_LAB_RIGHT_ANSWERS is set."""
    if not os.environ.get("CONCURRENCY_LAB_RIGHT_ANSWERS"):
        return
    dropped = [item for item in items if not right_answer(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if right_answer(item)]
