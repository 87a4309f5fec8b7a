"""Records and small steps shared by the contract tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from durably.storage.base import (
    JournalEntry,
    StartChild,
    Store,
    WorkflowRecord,
    WorkflowStatus,
)

T0 = 1_000_000.0


def wf(
    wid: str, name: str = "w", *, created: float = T0, priority: int = 0, **kw: Any
) -> WorkflowRecord:
    """A pending workflow record."""
    return WorkflowRecord(
        id=wid, name=name, status=WorkflowStatus.PENDING, input='{"args":[],"kwargs":{}}',
        created_at=created, updated_at=created, priority=priority, **kw,
    )  # fmt: skip


def entry(wid: str, seq: int, owner: str, epoch: int, result: str = "1") -> JournalEntry:
    """A completed step entry."""
    return JournalEntry(wid, seq, "step", f"s{seq}", "completed", result, None, 1, owner, epoch,
                        T0, T0)  # fmt: skip


def waiting(
    wid: str, seq: int, owner: str, epoch: int, kind: str = "event", name: str = "go"
) -> JournalEntry:
    """A waiting (unresolved) event or child entry."""
    return JournalEntry(wid, seq, kind, name, "waiting", '{"deadline": null}', None, 0, owner,
                        epoch, T0, T0)  # fmt: skip


def resolved(
    wid: str, seq: int, owner: str, epoch: int, result: str, kind: str = "event", name: str = "go"
) -> JournalEntry:
    """A completed event (or child) entry: what a resolved wait records."""
    return JournalEntry(wid, seq, kind, name, "completed", result, None, 0, owner, epoch, T0, T0)


def start_child(child: WorkflowRecord, waits: JournalEntry) -> StartChild:
    """The op that starts ``child`` and records ``waits``; a conflict records the failed child
    entry :func:`held_by` describes."""

    def conflict(name: str, parent: str | None) -> JournalEntry:
        w = waits
        error = held_by(name, parent)
        return JournalEntry(w.workflow_id, w.seq, w.kind, w.name, "failed", None, error, 0,
                            w.owner, w.epoch, T0, T0)  # fmt: skip

    return StartChild(child, waits, conflict)


def held_by(name: str, parent: str | None) -> str:
    """The error a conflicting child start records (see :func:`start_child`)."""
    return json.dumps({"existing_name": name, "existing_parent": parent})


def started(store: Store, *ids: str, owner: str = "o1", now: float = T0, **kw: Any) -> int:
    """Create workflows ``ids`` and claim them all for ``owner``; their (common) epoch."""
    for wid in ids:
        store.create_workflow(wf(wid, **kw))
    claims = store.claim(owner, ["w"], now, 60.0, len(ids) + 10)
    assert sorted(c.record.id for c in claims) == sorted(ids)
    (epoch,) = {c.record.epoch for c in claims}
    return epoch


ROUNDS = 40


def race(rounds: int, first: Callable[[int], Any], second: Callable[[int], Any]) -> list[Any]:
    """Run ``first(i)`` and ``second(i)`` at once, from two threads released together by a
    barrier, for each round i; per round, the pair of their results."""
    barrier = threading.Barrier(2)
    results: list[list[Any]] = [[None, None] for _ in range(rounds)]
    errors: list[BaseException] = []

    def loop(side: int, fn: Callable[[int], Any]) -> None:
        for i in range(rounds):
            try:
                barrier.wait()
                results[i][side] = fn(i)
            except threading.BrokenBarrierError:
                return
            except BaseException as exc:
                errors.append(exc)
                barrier.abort()
                return

    threads = [threading.Thread(target=loop, args=(k, fn)) for k, fn in ((0, first), (1, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [tuple(r) for r in results]


def own(store: Store, ids: list[str], owner: str = "o1", **kw: Any) -> dict[str, int]:
    """Create workflows ``ids`` and claim them for ``owner``: id -> epoch."""
    for wid in ids:
        store.create_workflow(wf(wid, **kw))
    epochs: dict[str, int] = {}
    while len(epochs) < len(ids):
        claims = store.claim(owner, ["w"], T0, 60.0, 500)
        assert claims
        epochs.update({c.record.id: c.record.epoch for c in claims})
    return epochs
