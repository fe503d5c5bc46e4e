"""nbgrader configuration for Concurrency Lab (nbgrader 0.9.6).

Run nbgrader from this folder (the Makefile does): `make release`, `make grade`.
"""

from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import GetGrades

from concurrency_lab.grading.hidehiddentests import HideHiddenTests
from concurrency_lab.grading.settings import (
    AUTOGRADE_PREPROCESSORS,
    RUNTIME_FILES,
    SANITIZE_PREPROCESSORS,
    GradeSettings,
)

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
ROOT = Path(__file__).resolve().parent

# The course and its folders: source/, release/, submitted/, autograded/, feedback/.
c.CourseDirectory.course_id = "concurrency-lab"
c.CourseDirectory.root = str(ROOT)
# Files a notebook writes while it runs (%%writefile modules, generated corpora)
# are not part of the assignment.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", *RUNTIME_FILES]

# Every release notebook starts with the header: name, collaborators,
# "restart and run all before you submit".
c.IncludeHeaderFooter.header = str(ROOT / "source" / "header.ipynb")

# A cell that runs longer than this (seconds) is interrupted and scored as an error.
c.Execute.timeout = GradeSettings.timeout
c.Execute.interrupt_on_timeout = True
# When a notebook is done, stop its kernel at once (SIGKILL to its process group): every
# output is saved by then. The graceful default asks the kernel to exit and waits; a kernel
# that started a multiprocessing fork server does not exit until jupyter_client sends SIGTERM
# after shutdown_wait_time / 2 = 2.5 s: 2.6 s per notebook instead of 0.1 s.
c.Execute.shutdown_kernel = "immediate"

# A kernel that dies (os._exit, a segfault) or ignores the timeout's interrupt
# costs the student that cell, not the whole submission: restart, replay, go on.
c.Autograde.autograde_preprocessors = list(AUTOGRADE_PREPROCESSORS)
# At most this many lines of output per cell are kept (a student who prints 200,000 lines gets a readable page).
c.LimitOutput.max_lines = 1000

# A student who deletes a test cell gets it back at grading time, where it sat, and so does
# a deleted read-only cell (RestoreCells; nbgrader's own OverwriteCells raises KeyError for a
# test cell after a read-only cell, and the notebook scores 0).
c.Autograde.sanitize_preprocessors = list(SANITIZE_PREPROCESSORS)
c.OverwriteCells.add_missing_cells = True

# Feedback without hidden tests (nbgrader shows them by default: jupyter/nbgrader#917).
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]

# `nbgrader zip_collect` (and `python -m concurrency_lab.grading --zip-collect`):
# files in downloaded/<assignment>/archive/*.zip are named <student>__<notebook>.ipynb.
c.FileNameCollectorPlugin.named_regexp = r".*/(?P<student_id>[A-Za-z0-9._-]+?)__(?P<file_id>[^/]+\.ipynb)$"
