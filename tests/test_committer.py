"""The group committer: one bad op fails alone, transient errors are retried, order is kept."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from durably.storage.base import WriteOp
from durably.storage.committer import GroupCommitter


class Poison(Exception):
    """An error of the ops themselves (not transient)."""


class Flaky(Exception):
    """A transient error (the database unreachable)."""


class RecordingStore:
    """Just enough of a Store for the committer: ``write`` applies ops in order and records
    each committed batch; a batch holding a poisoned op fails whole, as a transaction does."""

    def __init__(self, poisoned: set[int], flaky_failures: int = 0) -> None:
        self.poisoned = poisoned
        self.flaky = flaky_failures
        self.committed: list[list[int]] = []
        self.calls = 0

    def is_transient(self, error: Exception) -> bool:
        return isinstance(error, Flaky)

    def write(self, ops: Sequence[Any]) -> list[bool]:
        self.calls += 1
        if self.flaky:
            self.flaky -= 1
            raise Flaky("connection lost")
        if any(op in self.poisoned for op in ops):
            raise Poison(f"bad op among {list(ops)}")
        self.committed.append(list(ops))
        return [True] * len(ops)


def _run(store: RecordingStore, ops: list[int]) -> dict[int, object]:
    committer = GroupCommitter(store, retries=3)  # type: ignore[arg-type]
    outcomes: dict[int, object] = {}
    done = threading.Event()
    lock = threading.Lock()

    def waiter(op: int) -> Any:
        def record(result: object) -> None:
            with lock:
                outcomes[op] = result
                if len(outcomes) == len(ops):
                    done.set()

        return record

    for op in ops:  # queued before the writer starts: they form one batch
        committer.submit(op, waiter(op))  # type: ignore[arg-type]
    committer.start()
    assert done.wait(10)
    committer.stop()
    return outcomes


def test_a_poisoned_op_fails_alone_and_the_rest_commit_in_order() -> None:
    store = RecordingStore(poisoned={13})
    ops: list[WriteOp] = list(range(40))  # type: ignore[arg-type]
    outcomes = _run(store, ops)  # type: ignore[arg-type]
    assert isinstance(outcomes[13], Poison)
    assert all(outcomes[op] is True for op in range(40) if op != 13)
    flat = [op for batch in store.committed for op in batch]
    assert flat == [op for op in range(40) if op != 13]  # submission order kept


def test_transient_errors_are_retried_whole() -> None:
    store = RecordingStore(poisoned=set(), flaky_failures=2)
    outcomes = _run(store, list(range(10)))
    assert all(outcomes[op] is True for op in range(10))
    assert store.committed == [list(range(10))]  # one batch, after two failed attempts
    assert store.calls == 3
