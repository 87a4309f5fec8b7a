"""The Store contract: durability across stores, closing, errors (``is_transient``) and
pushed wake-ups (``listen``)."""

from __future__ import annotations

import threading

import pytest

from durably.storage.base import CreateWorkflow, RecordEntry, Store, WorkflowStatus

from .conftest import Opener
from .helpers import T0, entry, started, wf


def test_what_one_store_wrote_another_reads(store: Store, open_store: Opener) -> None:
    epoch = started(store, "a")
    assert store.write([RecordEntry(entry("a", 0, "o1", epoch))]) == [True]
    store.close()
    other = open_store()
    other.migrate()  # on an up-to-date schema: a no-op
    rec = other.get_workflow("a")
    assert rec is not None and rec.owner == "o1" and rec.status is WorkflowStatus.RUNNING
    assert [e.seq for e in other.get_journal("a")] == [0]
    assert other.claim("o2", ["w"], T0, 60.0, 10) == []  # the lease held across stores


def test_a_batch_with_a_failing_op_writes_nothing_and_is_not_transient(store: Store) -> None:
    """An error of the ops themselves (here a NULL input) aborts the whole batch, and is not
    transient: retrying it as is cannot succeed (the committer splits the batch instead)."""
    bad = wf("bad")
    bad.input = None  # type: ignore[assignment]
    with pytest.raises(Exception) as raised:
        store.write([CreateWorkflow(wf("good")), CreateWorkflow(bad)])
    assert not store.is_transient(raised.value)
    assert store.get_workflow("good") is None and store.get_workflow("bad") is None
    assert store.write([CreateWorkflow(wf("good"))]) == [True]  # the store is still usable


def test_a_closed_store_refuses_calls_and_says_retrying_is_useless(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(Exception) as raised:
        store.write([CreateWorkflow(wf("b"))])
    assert not store.is_transient(raised.value)
    with pytest.raises(Exception) as raised:
        store.get_workflow("a")
    assert not store.is_transient(raised.value)


def test_listen_pushes_wake_ups_committed_by_another_store(
    store: Store, open_store: Opener
) -> None:
    """``listen`` returns None (the store cannot push: workers poll), or a function that stops
    listening; while listening, work another store commits is pushed, by kind."""
    kinds: list[str] = []
    arrived = threading.Condition()

    def callback(kind: str) -> None:
        with arrived:
            kinds.append(kind)
            arrived.notify_all()

    stop = store.listen(callback)
    if stop is None:
        return  # polling only: nothing more is promised
    try:
        other = open_store()
        epoch = started(other, "a")
        other.create_workflow(wf("b"))
        other.send_event("a", "go", None, None, T0)
        other.request_cancel("a", T0)
        with arrived:  # bounded only so that a lost push fails instead of hanging
            assert arrived.wait_for(lambda: {"new", "event", "command"} <= set(kinds), 60)
        assert other.write([RecordEntry(entry("a", 0, "o1", epoch))]) == [True]
    finally:
        stop()
    assert store.get_workflow("b") is not None
