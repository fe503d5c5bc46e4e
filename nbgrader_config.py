"""nbgrader configuration for Concurrency Lab (nbgrader 0.9.6).

Run nbgrader from this folder (the Makefile does): `make release`, `make grade`.
"""

from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import GetGrades

from concurrency_lab.grading import HideHiddenTests

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
ROOT = Path(__file__).resolve().parent

# The course and its folders: source/, release/, submitted/, autograded/, feedback/.
c.CourseDirectory.course_id = "concurrency-lab"
c.CourseDirectory.root = str(ROOT)
# Files a notebook writes while it runs (%%writefile modules, generated corpora)
# are not part of the assignment.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "primes_worker.py",
    "corpus",
]

# Every release notebook starts with the header: name, collaborators,
# "restart and run all before you submit".
c.IncludeHeaderFooter.header = str(ROOT / "source" / "header.ipynb")

# A cell that runs longer than this (seconds) is interrupted and scored as an error.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True

# A student who deletes a test cell gets it back at grading time.
c.OverwriteCells.add_missing_cells = True

# Feedback without hidden tests (nbgrader shows them by default: jupyter/nbgrader#917).
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
