"""Records and small steps shared by the contract tests."""

from __future__ import annotations

from typing import Any

from durably.storage.base import JournalEntry, Store, WorkflowRecord, WorkflowStatus

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


def started(store: Store, *ids: str, owner: str = "o1", now: float = T0, **kw: Any) -> int:
    """Create workflows ``ids`` and claim them all for ``owner``; their (common) epoch."""
    for wid in ids:
        store.create_workflow(wf(wid, **kw))
    claims = store.claim(owner, ["w"], now, 60.0, len(ids) + 10)
    assert sorted(c.record.id for c in claims) == sorted(ids)
    (epoch,) = {c.record.epoch for c in claims}
    return epoch
