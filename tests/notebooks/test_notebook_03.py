"""Notebook 03 (locks): the hidden tests accept right answers and reject wrong ones.

Each case runs the source notebook once, as nbgrader's autograder would, with
the answer cells replaced by the variants below (one variant per part, since
the parts are independent). The stress tests use the notebook's read-only
run_interleaved, which forces a thread switch before every bytecode of notebook
code, so lost updates and deadlocks show on every run; a deadlock is detected
with a join timeout and never hangs the test.
"""

from __future__ import annotations

import nbformat
import pytest

from nbtools import SOURCE, Case, grade_cells, judge

NOTEBOOK = SOURCE / "03-locks.ipynb"
COUNTER = "safe_counter_answer"
TRANSFER = "transfer_answer"
COUNTER_TESTS = {"test_counter_basics", "test_counter_no_lost_updates"}
TRANSFER_TESTS = {
    "test_transfer_moves_money",
    "test_transfer_rejects_bad_input",
    "test_transfer_no_deadlock",
    "test_transfer_never_overdraws",
}

# -- other correct answers ------------------------------------------------------------------

COUNTER_ACQUIRE_RELEASE = """
class SafeCounter:
    def __init__(self):
        self.count = 0
        self.guard = threading.Lock()

    def increment(self, n=1):
        self.guard.acquire()
        try:
            current = self.count
            self.count = current + n
        finally:
            self.guard.release()

    @property
    def value(self):
        return self.count  # reading one int is atomic
"""

COUNTER_RLOCK_CELL = """
class SafeCounter:
    def __init__(self):
        self._cell = [0]
        self._lock = threading.RLock()

    def increment(self, n=1):
        with self._lock:
            for _ in range(n):
                self._cell[0] = self._cell[0] + 1

    @property
    def value(self):
        with self._lock:
            return int(self._cell[0])
"""

TRANSFER_BY_ID = """
def transfer(source, target, amount):
    if source is target or not amount > 0:
        raise ValueError("bad transfer")
    locks = sorted([source.lock, target.lock], key=id)
    locks[0].acquire()
    locks[1].acquire()
    try:
        if amount > source.balance:
            raise ValueError("insufficient funds")
        source.balance = source.balance - amount
        target.balance = target.balance + amount
    finally:
        locks[1].release()
        locks[0].release()
"""

TRANSFER_TRY_LOCK = '''
import random


def transfer(source, target, amount):
    """Take the first lock, try the second without waiting; on failure back off and retry."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    if source is target:
        raise ValueError("same account")
    pause = 0.0005
    while True:
        source.lock.acquire()
        if target.lock.acquire(blocking=False):
            break
        source.lock.release()
        time.sleep(random.uniform(0, pause))
        pause = min(2 * pause, 0.05)
    try:
        if source.balance < amount:
            raise ValueError("insufficient funds")
        source.balance -= amount
        target.balance += amount
    finally:
        target.lock.release()
        source.lock.release()
'''

# -- wrong answers --------------------------------------------------------------------------

COUNTER_NO_LOCK = '''
class SafeCounter:
    """Wrong: no lock, so concurrent increments overwrite each other."""

    def __init__(self):
        self._value = 0

    def increment(self, n=1):
        self._value += n

    @property
    def value(self):
        return self._value
'''

COUNTER_SHARED = '''
class SafeCounter:
    """Wrong: the count lives on the class, so every counter shares it."""

    _lock = threading.Lock()
    _total = 0

    def increment(self, n=1):
        with SafeCounter._lock:
            SafeCounter._total += n

    @property
    def value(self):
        return SafeCounter._total
'''

TRANSFER_ARGUMENT_ORDER = '''
def transfer(source, target, amount):
    """Wrong: locks in argument order, so a->b and b->a at once deadlock."""
    if amount <= 0 or source is target:
        raise ValueError("bad transfer")
    with source.lock:
        with target.lock:
            if source.balance < amount:
                raise ValueError("insufficient funds")
            source.balance -= amount
            target.balance += amount
'''

TRANSFER_CHECK_THEN_LOCK = '''
def transfer(source, target, amount):
    """Wrong: checks the balance before taking the locks, so two withdrawals can both pass."""
    if amount <= 0 or source is target:
        raise ValueError("bad transfer")
    if source.balance < amount:
        raise ValueError("insufficient funds")
    first, second = sorted((source, target), key=lambda account: account.number)
    with first.lock, second.lock:
        source.balance -= amount
        target.balance += amount
'''

TRANSFER_LEAKS_LOCKS = '''
def transfer(source, target, amount):
    """Wrong: a failed transfer returns with both locks still held."""
    first, second = sorted((source, target), key=lambda account: account.number)
    first.lock.acquire()
    if second is not first:
        second.lock.acquire()
    if amount <= 0 or source is target or source.balance < amount:
        raise ValueError("bad transfer")
    source.balance -= amount
    target.balance += amount
    second.lock.release()
    first.lock.release()
'''

TRANSFER_ONE_BANK_LOCK = '''
BANK = threading.Lock()


def transfer(source, target, amount):
    """Wrong: one lock for all accounts; it never deadlocks, but holds neither account's lock."""
    if amount <= 0 or source is target:
        raise ValueError("bad transfer")
    with BANK:
        if source.balance < amount:
            raise ValueError("insufficient funds")
        source.balance -= amount
        target.balance += amount
'''

ALL = COUNTER_TESTS | TRANSFER_TESTS
CASES = [
    Case("reference solution"),
    Case(
        "acquire/release counter, transfer ordered by id",
        {COUNTER: COUNTER_ACQUIRE_RELEASE, TRANSFER: TRANSFER_BY_ID},
    ),
    Case(
        "RLock counter, try-lock transfer with back-off",
        {COUNTER: COUNTER_RLOCK_CELL, TRANSFER: TRANSFER_TRY_LOCK},
    ),
    Case(
        "counter without a lock, transfer locking in argument order",
        {COUNTER: COUNTER_NO_LOCK, TRANSFER: TRANSFER_ARGUMENT_ORDER},
        must_fail={"test_counter_no_lost_updates", "test_transfer_no_deadlock"},
    ),
    Case(
        "shared class counter, transfer checking before locking",
        {COUNTER: COUNTER_SHARED, TRANSFER: TRANSFER_CHECK_THEN_LOCK},
        must_fail={"test_counter_basics", "test_counter_no_lost_updates", "test_transfer_never_overdraws"},
    ),
    Case(
        "transfer that keeps its locks on failure",
        {TRANSFER: TRANSFER_LEAKS_LOCKS},
        must_fail={"test_transfer_rejects_bad_input", "test_transfer_never_overdraws"},
    ),
    Case(
        "one lock for all accounts",
        {TRANSFER: TRANSFER_ONE_BANK_LOCK},
        must_fail={"test_transfer_moves_money"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hidden_tests_judge_answers(case, tmp_path):
    """Right answers pass every test cell; each wrong answer fails exactly the cells meant to catch it."""
    judge(NOTEBOOK, case, tmp_path, ALL)


def test_helper_cells_are_locked():
    """The interleaving helper and the Account class are read-only."""
    cells = grade_cells(nbformat.read(NOTEBOOK, as_version=4))
    for gid in ("run_interleaved_helper", "account_class"):
        assert cells[gid].metadata["nbgrader"]["locked"], gid
