"""The Store contract: the write ops Park, DeliverCancel and ContinueAsNew (with ``list_runs``),
and batches of every op kind holding refused ops."""

from __future__ import annotations

import pytest

from durably.storage.base import (
    FAR_FUTURE,
    ConsumeEvent,
    ContinueAsNew,
    CreateWorkflow,
    DeliverCancel,
    FinishWorkflow,
    Park,
    RecordAttempt,
    RecordEntry,
    SetState,
    StepAttempt,
    Store,
    WorkflowStatus,
    WriteOp,
)

from .helpers import T0, entry, resolved, start_child, started, waiting, wf


def test_park_releases_the_lease_until_the_timer(store: Store) -> None:
    epoch = started(store, "a", "b", "done")
    store.write([FinishWorkflow("done", "o1", epoch, WorkflowStatus.COMPLETED, "1", None, T0)])
    ops = [
        Park("a", "o1", epoch, T0 + 30, T0),
        Park("b", "o2", epoch, T0 + 30, T0),  # not the owner
        Park("b", "o1", epoch + 1, T0 + 30, T0),  # stale epoch
        Park("done", "o1", epoch, T0 + 30, T0),  # finished
    ]
    assert store.write(ops) == [True, False, False, False]
    a = store.get_workflow("a")
    assert a is not None and a.owner is None and a.lease_expires_at is None
    assert a.wake_at == T0 + 30 and a.status is WorkflowStatus.RUNNING and a.epoch == epoch
    b = store.get_workflow("b")
    assert b is not None and b.owner == "o1" and b.wake_at is None
    done = store.get_workflow("done")
    assert done is not None and done.wake_at is None
    assert store.renew_leases("o1", T0 + 60) == {"b"}
    assert store.claim("o2", ["w"], T0 + 29, 60.0, 10) == []  # not due
    (c,) = store.claim("o2", ["w"], T0 + 30, 60.0, 10)  # due: anyone may take it
    assert c.record.id == "a" and c.record.epoch == epoch + 1


def test_park_wakes_at_once_for_what_already_arrived(store: Store) -> None:
    """An unconsumed event it waits for, a finished child it waits for, or a requested
    cancellation, already there when it parks: ``wake_at`` is ``now``, no wake-up lost."""
    epoch = started(store, "ev", "other", "kid", "p", "p2", "cx")
    for wid in ("k1", "k2"):
        store.create_workflow(wf(wid, parent_id="p"))
    (k1,) = [c.record for c in store.claim("o1", ["w"], T0, 60.0, 10) if c.record.id == "k1"]
    store.write([FinishWorkflow("k1", "o1", k1.epoch, WorkflowStatus.COMPLETED, "1", None, T0)])
    store.send_event("ev", "go", None, None, T0)
    store.send_event("other", "nope", None, None, T0)
    store.request_cancel("cx", T0)
    # each of them set wake_at already; a park overwrites it, so each park decides alone
    ops = [
        Park("ev", "o1", epoch, FAR_FUTURE, T0 + 1, ["x", "go"]),
        Park("other", "o1", epoch, FAR_FUTURE, T0 + 1, ["go"]),  # an event of another name
        Park("p", "o1", epoch, T0 + 40, T0 + 1, child_ids=["k1"]),
        Park("p2", "o1", epoch, T0 + 40, T0 + 1, child_ids=["k1"]),  # not its child
        Park("cx", "o1", epoch, FAR_FUTURE, T0 + 1),
    ]
    assert store.write(ops) == [True] * 5
    wake = {wid: store.get_workflow(wid) for wid in ("ev", "other", "p", "p2", "cx")}
    assert {wid: r.wake_at for wid, r in wake.items() if r is not None} == {
        "ev": T0 + 1, "other": FAR_FUTURE, "p": T0 + 1, "p2": T0 + 40, "cx": T0 + 1,
    }  # fmt: skip
    assert {c.record.id for c in store.claim("o2", ["w"], T0 + 1, 60.0, 10)} == {"ev", "p", "cx"}


def test_a_consumed_event_does_not_wake_a_parked_workflow(store: Store) -> None:
    epoch = started(store, "a")
    store.send_event("a", "go", '"1"', None, T0)
    (ev,) = store.poll_signals(["a"], 0).events
    ops: list[WriteOp] = [
        RecordEntry(waiting("a", 0, "o1", epoch)),
        ConsumeEvent(resolved("a", 0, "o1", epoch, '"1"'), ev.id),
        RecordEntry(waiting("a", 1, "o1", epoch)),
        Park("a", "o1", epoch, FAR_FUTURE, T0 + 1, ["go"]),
    ]
    assert store.write(ops) == [True] * 4
    a = store.get_workflow("a")
    assert a is not None and a.wake_at == FAR_FUTURE and a.owner is None
    assert store.next_wake_at(["w"]) is None


def test_deliver_cancel_records_where_the_cancellation_was_raised(store: Store) -> None:
    epoch = started(store, "a", "b")
    store.request_cancel("a", T0)
    store.request_cancel("b", T0)
    ops = [
        DeliverCancel("a", "o1", epoch, "3"),
        DeliverCancel("b", "o2", epoch, "3"),  # not the owner
        DeliverCancel("b", "o1", epoch + 1, "3"),  # stale epoch
    ]
    assert store.write(ops) == [True, False, False]
    a = store.get_workflow("a")
    assert a is not None and a.cancel_key == "3" and not a.cancel_requested
    b = store.get_workflow("b")
    assert b is not None and b.cancel_key is None and b.cancel_requested
    assert store.poll_signals(["a", "b"], 0).cancel_requested == {"b"}
    # the worker that takes over sees where it was raised, and no new request
    claims = {c.record.id: c.record for c in store.claim("o2", ["w"], T0 + 61, 60.0, 10)}
    assert claims["a"].cancel_key == "3" and not claims["a"].cancel_requested
    assert claims["b"].cancel_key is None and claims["b"].cancel_requested


def test_continue_as_new_ends_the_run_and_restarts_it(store: Store) -> None:
    epoch = started(store, "a", "b")
    first = store.get_workflow("a")
    assert first is not None and first.run == 1 and store.list_runs("a") == []
    store.send_event("a", "later", '"kept"', None, T0)
    ops: list[WriteOp] = [
        RecordEntry(entry("a", 0, "o1", epoch)),
        RecordAttempt(StepAttempt("a", 1, 1, "{}", "o1", epoch, T0, T0)),
        SetState("a", "o1", epoch, "k", '"run1"', 7, T0),
        ContinueAsNew("a", "o1", epoch, '{"args":[2],"kwargs":{}}', '"out1"', T0 + 5),
        ContinueAsNew("b", "o2", epoch, "{}", None, T0),  # not the owner
        RecordEntry(entry("a", 1, "o1", epoch)),  # after the restart: the lease is gone
    ]
    assert store.write(ops) == [True, True, True, True, False, False]
    (run,) = store.list_runs("a")
    assert (run.workflow_id, run.run, run.input, run.output) == ("a", 1, first.input, '"out1"')
    assert run.status is WorkflowStatus.CONTINUED_AS_NEW and run.finished_at == T0 + 5
    assert run.started_at == first.started_at
    a = store.get_workflow("a")
    assert a is not None and a.run == 2 and a.input == '{"args":[2],"kwargs":{}}'
    assert a.status is WorkflowStatus.RUNNING and a.owner is None and a.wake_at is None
    assert a.output is None and a.started_at == T0 + 5
    assert store.get_journal("a") == [] and store.get_attempts("a") == []
    assert store.list_runs("b") == []
    (c,) = store.claim("o2", ["w"], T0 + 6, 60.0, 10)
    assert c.record.id == "a" and c.record.epoch == epoch + 1 and c.journal == []
    assert [e.payload for e in c.events] == ['"kept"']  # its unconsumed events carry over
    # the new run numbers its calls from 0: its state writes win over the old run's
    assert store.get_state("a") == {"k": '"run1"'}
    assert store.write([SetState("a", "o2", epoch + 1, "k", '"run2"', 0, T0 + 6)])
    assert store.get_state("a") == {"k": '"run2"'}
    ops = [ContinueAsNew("a", "o2", epoch + 1, '{"args":[3],"kwargs":{}}', '"out2"', T0 + 7)]
    assert store.write(ops) == [True]
    assert [(r.run, r.output) for r in store.list_runs("a")] == [(1, '"out1"'), (2, '"out2"')]
    assert store.list_runs("missing") == []


def every_kind(epoch: int, *, refused: str | None) -> list[WriteOp]:
    """One op of every kind for workflows "a".."k"; the op named ``refused`` has a stale epoch."""

    def e(kind: str) -> int:
        return epoch + 1 if kind == refused else epoch

    return [
        CreateWorkflow(wf("new", created=T0 + 1)),
        RecordEntry(entry("a", 0, "o1", e("entry"))),
        RecordAttempt(StepAttempt("b", 0, 1, "{}", "o1", e("attempt"), T0, T0)),
        SetState("c", "o1", e("state"), "k", '"v"', 0, T0),
        start_child(wf("kid", parent_id="d"), waiting("d", 0, "o1", e("child"), "child", "kid")),
        ConsumeEvent(resolved("e", 0, "o1", e("consume"), '"x"'), 0),  # event id set below
        DeliverCancel("f", "o1", e("cancel"), "0"),
        Park("g", "o1", e("park"), T0 + 50, T0),
        ContinueAsNew("h", "o1", e("continue"), "{}", None, T0),
        FinishWorkflow("i", "o1", e("finish"), WorkflowStatus.COMPLETED, '"i"', None, T0),
        RecordEntry(entry("j", 0, "o1", epoch)),
        FinishWorkflow("k", "o1", epoch, WorkflowStatus.COMPLETED, '"k"', None, T0),
    ]


KINDS = ["entry", "attempt", "state", "child", "consume", "cancel", "park", "continue", "finish"]


@pytest.mark.parametrize("refused", [None, *KINDS])
def test_a_batch_of_every_kind_with_a_refused_op_applies_the_others(
    store: Store, refused: str | None
) -> None:
    """A group commit of every op kind: one refused op (a lost lease) is refused alone; every
    other op is applied as if written alone, in the same transaction."""
    epoch = started(store, *"abcdefghijk")
    store.send_event("e", "go", '"x"', None, T0)
    (ev,) = store.poll_signals(["e"], 0).events
    store.request_cancel("f", T0)
    ops = every_kind(epoch, refused=refused)
    consume = ops[5]
    assert isinstance(consume, ConsumeEvent)
    consume.event_id = ev.id
    expected = [True] * len(ops)
    if refused is not None:
        expected[1 + KINDS.index(refused)] = False
    assert store.write(ops) == expected
    ok = dict(zip(KINDS, expected[1:10], strict=True))
    assert store.get_workflow("new") is not None
    assert len(store.get_journal("a")) == ok["entry"]
    assert len(store.get_attempts("b")) == ok["attempt"]
    assert store.get_state("c") == ({"k": '"v"'} if ok["state"] else {})
    assert [k.id for k in store.list_children("d")] == (["kid"] if ok["child"] else [])
    assert len(store.get_journal("d")) == ok["child"]
    assert len(store.poll_signals(["e"], 0).events) == (not ok["consume"])
    assert len(store.get_journal("e")) == ok["consume"]
    f = store.get_workflow("f")
    assert f is not None and f.cancel_requested is not ok["cancel"]
    g = store.get_workflow("g")
    assert g is not None and (g.wake_at == T0 + 50) is ok["park"]
    assert len(store.list_runs("h")) == ok["continue"]
    i = store.get_workflow("i")
    assert i is not None and (i.status is WorkflowStatus.COMPLETED) is ok["finish"]
    k = store.get_workflow("k")
    assert len(store.get_journal("j")) == 1 and k is not None and k.output == '"k"'


def test_a_workflow_created_owned_is_run_by_its_creator(store: Store) -> None:
    """Start-here: a worker creates a workflow already claimed (running, its owner, epoch 1,
    a lease): its fenced writes land, other workers cannot claim it until the lease expires."""
    owned = wf("here", owner="o1", epoch=1, lease_expires_at=T0 + 30, started_at=T0)
    owned.status = WorkflowStatus.RUNNING
    assert store.write([CreateWorkflow(owned), RecordEntry(entry("here", 0, "o1", 1))]) == [
        True,
        True,
    ]
    rec = store.get_workflow("here")
    assert rec is not None and (rec.status, rec.owner, rec.epoch) == (
        WorkflowStatus.RUNNING,
        "o1",
        1,
    )
    assert rec.lease_expires_at == T0 + 30 and rec.started_at == T0
    assert store.claim("o2", ["w"], T0 + 29, 60.0, 10) == []
    assert store.next_wake_at(["w"]) is None  # owned: not waiting for anyone
    (c,) = store.claim("o2", ["w"], T0 + 31, 60.0, 10)
    assert c.record.epoch == 2 and [e.seq for e in c.journal] == [0]
