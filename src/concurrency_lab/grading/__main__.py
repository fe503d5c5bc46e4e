"""``python -m concurrency_lab.grading``: the grader's command line (:mod:`.cli`)."""

import sys

from .cli import main

# The guard matters: spawned grading workers import this module again as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
