"""PostgreSQL fencing under READ COMMITTED: a fenced write in flight and a takeover never both
land, and the multi-row locks of one worker's transactions never deadlock.

These drive the store's own write path (``apply_batch``) on a second connection held open, the
interleavings the chaos tests found by chance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from durably.storage.base import FinishWorkflow, JournalEntry, RecordEntry, WorkflowStatus
from durably.storage.postgres import PostgresStore
from durably.storage.postgres_ops import apply_batch

from .backends import postgres_schema, schema_url


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    with postgres_schema() as schema:
        s = PostgresStore(schema_url(schema))
        s.migrate()
        yield s
        s.close()


def _connection(store: PostgresStore) -> Any:
    import psycopg

    assert store.schema is not None
    return psycopg.connect(store._conninfo, options=f"-c search_path={store.schema}")


def _start(store: PostgresStore, wid: str) -> None:
    from durably.storage.base import WorkflowRecord

    store.create_workflow(
        WorkflowRecord(id=wid, name="wf", status=WorkflowStatus.PENDING, input="[]",
                       created_at=1.0, updated_at=1.0)
    )  # fmt: skip


def _entry(wid: str, owner: str, epoch: int, seq: int = 0) -> JournalEntry:
    return JournalEntry(wid, seq, "step", "s", "completed", "42", None, 1, owner, epoch, 1.0, 1.0)


def test_a_write_in_flight_holds_off_a_takeover(store: PostgresStore) -> None:
    _start(store, "w1")
    (a,) = store.claim("host:1:a", ["wf"], 100.0, 2.0, 10)
    conn = _connection(store)
    try:
        # A's batch is written but not committed when its lease has already expired
        assert apply_batch(conn, [RecordEntry(_entry("w1", "host:1:a", a.record.epoch))]) == [True]
        assert store.claim("host:2:b", ["wf"], 200.0, 2.0, 10) == []  # skipped, not taken
        conn.commit()
    finally:
        conn.close()
    (b,) = store.claim("host:2:b", ["wf"], 200.0, 2.0, 10)
    assert b.record.epoch == a.record.epoch + 1
    assert [(e.seq, e.owner) for e in b.journal] == [(0, "host:1:a")]  # B replays A's result


def test_a_write_after_a_takeover_is_rejected(store: PostgresStore) -> None:
    _start(store, "w1")
    (a,) = store.claim("host:1:a", ["wf"], 100.0, 2.0, 10)
    (b,) = store.claim("host:2:b", ["wf"], 200.0, 2.0, 10)
    conn = _connection(store)
    try:
        late = [RecordEntry(_entry("w1", "host:1:a", a.record.epoch)),
                FinishWorkflow("w1", "host:1:a", a.record.epoch, WorkflowStatus.COMPLETED,
                               "1", None, 201.0)]  # fmt: skip
        assert apply_batch(conn, late) == [False, False]
        conn.commit()
    finally:
        conn.close()
    assert store.get_journal("w1") == []
    rec = store.get_workflow("w1")
    assert rec is not None and (rec.owner, rec.epoch, rec.status) == (
        "host:2:b", b.record.epoch, WorkflowStatus.RUNNING,
    )  # fmt: skip


def test_lease_renewal_and_group_commits_of_one_worker_do_not_deadlock(
    store: PostgresStore,
) -> None:
    ids = [f"w{i:03d}" for i in range(60)]
    for wid in ids:
        _start(store, wid)
    claims = store.claim("host:1:a", ["wf"], 100.0, 60.0, 100)
    epochs = {c.record.id: c.record.epoch for c in claims}
    errors: list[BaseException] = []
    stop = time.monotonic() + 3.0

    def renew() -> None:
        try:
            while time.monotonic() < stop:
                assert store.renew_leases("host:1:a", 1000.0) == set(ids)
        except BaseException as exc:
            errors.append(exc)

    def commit(order: list[str], seq: int) -> None:
        # batches naming the workflows in an order opposite to the heartbeat's scan
        try:
            while time.monotonic() < stop:
                store.write([RecordEntry(_entry(w, "host:1:a", epochs[w], seq)) for w in order])
                seq += 100
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=renew),
               threading.Thread(target=commit, args=(list(reversed(ids)), 1)),
               threading.Thread(target=commit, args=(ids[::2] + ids[1::2], 2))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


def test_a_lone_entry_is_its_own_fenced_transaction(store: PostgresStore) -> None:
    """A single journal entry (a sequential workflow's step) is written in autocommit mode,
    one statement: still fenced while locking the row, so a takeover in flight (claimed, not
    yet committed) makes it wait, then refuses it; a current one lands at once."""
    _start(store, "w1")
    (a,) = store.claim("host:1:a", ["wf"], 100.0, 2.0, 10)
    assert store.write([RecordEntry(_entry("w1", "host:1:a", a.record.epoch))]) == [True]
    assert store.write([RecordEntry(_entry("w1", "host:1:a", a.record.epoch + 1, 1))]) == [False]
    conn = _connection(store)
    try:
        conn.execute(  # another worker's claim, in flight: the row is locked, epoch bumped
            "UPDATE workflows SET owner = 'host:2:b', epoch = epoch + 1 WHERE id = 'w1'"
        )
        result: list[list[bool]] = []
        writer = threading.Thread(
            target=lambda: result.append(
                store.write([RecordEntry(_entry("w1", "host:1:a", a.record.epoch, 1))])
            )
        )
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and not result  # waits for the claim's transaction
        conn.commit()
        writer.join(10)
        assert result == [[False]]
    finally:
        conn.close()
    assert [(e.seq, e.owner) for e in store.get_journal("w1")] == [(0, "host:1:a")]
