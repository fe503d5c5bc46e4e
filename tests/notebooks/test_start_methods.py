"""Every notebook that starts processes works under spawn, as on macOS and Windows.

The course's own choice on Linux, forkserver (the default from Python 3.14), is
covered by each notebook's judgement tests and by nbval. Here each such notebook
runs again with spawn forced through CONCURRENCY_LAB_START_METHOD, solutions and
hidden tests included. fork is the one start method the course never chooses
(it can deadlock in a multi-threaded kernel), so it is not run here.
"""

from __future__ import annotations

import pytest

from nbtools import SOURCE, Case, judge

USES_PROCESSES = [
    p
    for p in sorted(SOURCE.glob("*.ipynb"))
    if any(word in p.read_text() for word in ("multiprocessing", "ProcessPoolExecutor"))
]


@pytest.mark.parametrize("method", ["spawn"])
@pytest.mark.parametrize("path", USES_PROCESSES, ids=[p.name for p in USES_PROCESSES])
def test_notebook_runs_and_passes_under_start_method(tmp_path, path, method):
    """All cells run and every test cell passes with the start method forced."""
    nb, _ = judge(path, Case(f"reference solution under {method}", start_method=method), tmp_path, timeout=120)
    setup_output = "".join(out.get("text", "") for cell in nb.cells[:6] for out in cell.get("outputs", []))
    assert f"start method {method}" in setup_output, "the Setup cell did not apply the start method"
