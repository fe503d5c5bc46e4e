# Concurrency Lab. The two commands a newcomer needs:
#   make lab    open the course in JupyterLab
#   make test   run the whole test suite (pytest + nbval)
# Both create .venv and install requirements.txt (with constraints.txt) and the helper package first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# nbgrader runs `alembic` from PATH, and the kernels must come from the venv.
export PATH := $(abspath $(BIN)):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# JupyterLab refuses to run as root unless told it may.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
NBVAL_TIMEOUT ?= 60
JOBS ?= 2
# pytest-xdist workers for the test targets: one more than CI's 2 cores, since the tests
# mostly wait for kernels, browsers and servers (README, "Tests", has the timings).
TEST_JOBS ?= 3
# Installs into .venv with uv (pinned in requirements.txt, put there by pip first): the same
# packages as pip, several times faster (README, "Tests").
UV = $(BIN)/uv pip install --quiet --python $(PY)

.PHONY: install constraints lab test test-unprivileged unit notebook-tests grading e2e repo notebooks load-proof release grade grade-bench bench asyncio-bench clean

$(BIN)/.installed: requirements.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Concurrency Lab needs Python 3.11 or newer (nbgrader 0.9.6 does); found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$$(grep -E '^uv==' requirements.txt)"
	$(UV) --compile-bytecode --requirement requirements.txt --constraint constraints.txt
	$(UV) --no-deps --editable .
	@touch $@

install: $(BIN)/.installed

# constraints.txt pins every package that requirements.txt's pins need in turn, for each platform
# and Python from 3.11 on (uv's universal resolution), keeping the versions it already names where
# they still fit. Run after changing requirements.txt; tests/repo/test_layout.py checks that every
# locked package has a wheel for Linux, macOS (Intel and Apple silicon) and Windows on 3.11 to 3.14.
# It needs only uv (pinned in requirements.txt), not .venv, which constraints.txt may keep from installing.
constraints:
	$(PYTHON) -m pip install --quiet --upgrade --target .build/uv "$$(grep -E '^uv==' requirements.txt)"
	.build/uv/bin/uv pip compile requirements.txt --universal --python-version 3.11 --output-file constraints.txt --custom-compile-command "make constraints" --quiet

# LAB_ARGS passes extra options, e.g. LAB_ARGS="--no-browser --port=8890".
lab: install
	$(BIN)/jupyter lab $(ALLOW_ROOT) $(LAB_ARGS) notebooks/00-start-here.ipynb

# One pytest session of TEST_JOBS workers: the tests, plus nbval --nbval-lax on copies
# of the source notebooks (in .build/, because notebooks write files next to
# themselves), listing the 15 slowest; then strict nbval, with the sanitize file, on
# the executed companion notebooks (the speedup lab in its quick mode).
NBVAL_COPY = rm -rf .build/nbval && mkdir -p .build/nbval && cp -r notebooks source .build/nbval/
PYTEST = $(PY) -m pytest -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder --nbval-cell-timeout=$(NBVAL_TIMEOUT)

test: install
	$(NBVAL_COPY)
	$(PYTEST) --durations=15 --nbval-lax tests .build/nbval/source/day3
	CONCURRENCY_LAB_QUICK=1 $(PYTEST) --nbval --nbval-sanitize-with tests/sanitize.cfg .build/nbval/notebooks
	$(if $(ALLOW_ROOT),$(MAKE) --no-print-directory test-unprivileged,)

# The grading tests that only mean something for a normal user, as most instructors grade:
# root ignores RLIMIT_NPROC, so only a normal user shows that a fork bomb stays in its own
# kernel. As root (CI), .ci/as-normal-user creates the account cl-grader, copies this tree
# into its home with a venv from /usr/bin/python3, and runs them as that account.
UNPRIVILEGED_TESTS = tests/grading/test_containment.py \
	tests/grading/test_grader_isolation.py::test_a_fork_bomb_stops_at_its_cap_while_another_students_kernel_forks
test-unprivileged: install
	$(if $(ALLOW_ROOT),.ci/as-normal-user,$(PY) -m pytest -p no:cacheprovider) -q $(UNPRIVILEGED_TESTS)

# One group of tests each (a folder under tests/ and its pytest marker; see tests/conftest.py).
unit: install
	$(PYTEST) -m unit tests

notebook-tests: install
	$(PYTEST) -m notebooks tests

grading: install
	$(PYTEST) -m grading tests

e2e: install
	$(PYTEST) -m e2e tests

repo: install
	$(PYTEST) -m repo tests

# The judgement tests' right answers (tests/notebooks/conftest.py) while burner processes
# keep every core busy (tests/busy.py): a grade must not depend on the load. The last line
# says how much CPU the burners got, with the load average and the machine line.
load-proof: install
	CONCURRENCY_LAB_RIGHT_ANSWERS=1 $(PY) tests/busy.py -- $(PYTEST) tests/notebooks

# nbval alone: strict on the companion notebooks, lax on the source notebooks.
notebooks: install
	$(NBVAL_COPY)
	CONCURRENCY_LAB_QUICK=1 $(PYTEST) --nbval --nbval-sanitize-with tests/sanitize.cfg .build/nbval/notebooks
	$(PYTEST) --nbval-lax .build/nbval/source/day3

# Validates copies, because running a notebook writes files next to it.
release: install
	$(BIN)/nbgrader generate_assignment day3 --force
	rm -rf .build/release && mkdir -p .build && cp -r release/day3 .build/release
	$(BIN)/nbgrader validate --invert .build/release/*.ipynb

# Grades everything in submitted/ (only what changed; FORCE=1 for all) with
# $(JOBS) workers, then feedback and grades.csv. See python -m concurrency_lab.grading --help.
grade: install
	$(PY) -m concurrency_lab.grading --assignment day3 --jobs $(JOBS) $(if $(FORCE),--force,) $(GRADE_ARGS)

# Times 20 submissions in one run: plain sequential `nbgrader autograde`, the grader with JOBS
# workers, and the grader on a Dask cluster of JOBS workers (started here); prints the ratios.
grade-bench: install
	$(PY) -m concurrency_lab.grading.bench --students 20 --jobs $(JOBS)

# The speedup lab's sweep, full size (a few minutes): docs/speedups.csv, docs/speedups.png,
# docs/timelines.png. Run it on a quiet machine: other work on the cores disturbs the numbers.
bench: install
	$(PY) -m concurrency_lab.sweep --out docs

# Threads against asyncio on 1,000 pages at 100 ms (about a minute): docs/asyncio.csv, docs/asyncio.png.
# Run it on a quiet machine, like bench.
asyncio-bench: install
	$(PY) -m concurrency_lab.asyncio_lab --out docs

clean:
	rm -rf .build .pytest_cache gradebook.db

# ---------------------------------------------------------------------------
# A class on one machine: JupyterHub (PAM log-in, real Unix accounts) + nbgrader's exchange.
# Run these as root. See README "For instructors" and class/classctl.py.
#   make class-setup STUDENTS=alice,bob [INSTRUCTOR=instructor] [PASSWORDS=file]   accounts, exchange, venv
#                    [CLASS_PACKAGES_FROM=.venv]    the class venv's packages by hard links from a venv of
#                                                   requirements.txt on the system Python's 3.x (no download)
#   make class                                       JupyterHub on 127.0.0.1:$(CLASS_PORT) (Ctrl-C stops it)
#   make class-stop                                  stops it (data is kept; `make class` starts it again)
#   make class-release / class-collect / class-grade / class-return     the instructor's loop, in order
CLASS_ROOT ?= /opt/concurrency-lab
CLASS_PORT ?= 8000
INSTRUCTOR ?= instructor
STUDENTS ?=
CLASS_PACKAGES_FROM ?=
ASSIGNMENT ?= day3
CLASSCTL = /usr/bin/python3 class/classctl.py --root $(CLASS_ROOT)
AS_INSTRUCTOR = $(CLASSCTL) as-instructor --

.PHONY: class class-setup class-stop class-release class-collect class-grade class-return

class-setup:
	$(CLASSCTL) setup --instructor $(INSTRUCTOR) --students "$(STUDENTS)" --port $(CLASS_PORT) $(if $(PASSWORDS),--passwords $(PASSWORDS),) \
		$(if $(CLASS_PACKAGES_FROM),--packages-from $(CLASS_PACKAGES_FROM),)

# Runs the set-up first when STUDENTS is given; then JupyterHub in the foreground.
class: $(if $(STUDENTS),class-setup,)
	$(CLASSCTL) hub

class-stop:
	$(CLASSCTL) stop

# 1. Release: the student version, then into the exchange (again after a fix: students' fetched copies stay).
class-release:
	$(AS_INSTRUCTOR) nbgrader generate_assignment $(ASSIGNMENT) --force
	$(AS_INSTRUCTOR) nbgrader release_assignment $(ASSIGNMENT) --force

# 2. Collect: each student's latest submission (a newer one replaces an older one already collected).
class-collect:
	$(AS_INSTRUCTOR) nbgrader collect $(ASSIGNMENT) --update

# 3. Grade: `make grade` (the course's grader) as the instructor, in the course folder, with the class venv.
# (-o: the class venv is built by class-setup, not by make install.)
class-grade:
	$(MAKE) -o $(BIN)/.installed grade PY="$(AS_INSTRUCTOR) python"

# 4. Return: feedback without hidden tests, then into the exchange for students' Fetch Feedback.
class-return:
	$(AS_INSTRUCTOR) nbgrader generate_feedback $(ASSIGNMENT) --force
	$(AS_INSTRUCTOR) nbgrader release_feedback $(ASSIGNMENT)
