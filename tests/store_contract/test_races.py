"""The Store contract under races: an event, a finished child or a cancel arriving while a
workflow parks; a fenced write racing a claim; a lifecycle command during a group commit.

Each race is run in both orders from one thread (deterministic), then many times from two
threads released together by a barrier: whatever the interleaving, the invariant must hold
(no timing is asserted, nothing waits on a clock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from durably.storage.base import (
    FAR_FUTURE,
    FinishWorkflow,
    Park,
    QueueClaim,
    RecordEntry,
    SetState,
    Store,
    WorkflowStatus,
    WriteOp,
)

from .helpers import ROUNDS, T0, entry, own, race, waiting, wf


def park_waiting_for_event(wid: str, epoch: int, alone: bool = False) -> list[WriteOp]:
    """The group commit of a workflow that starts waiting for event "go" and unwinds (or,
    ``alone``, only the unwinding: its waiting entry was written before)."""
    park = Park(wid, "o1", epoch, FAR_FUTURE, T0 + 1, ["go"])
    return [park] if alone else [RecordEntry(waiting(wid, 0, "o1", epoch)), park]


def runnable_now(store: Store, ids: list[str]) -> set[str]:
    """Which of ``ids`` another worker can claim at T0 + 1 (when they parked)."""
    got: set[str] = set()
    while claims := store.claim("o9", ["w"], T0 + 1, 60.0, 500):
        got |= {c.record.id for c in claims}
    return got & set(ids)


# -- an event, a finished child, a cancellation while a workflow parks ---------------------------


@pytest.mark.parametrize("event_first", [True, False])
def test_an_event_sent_around_a_park_always_wakes_it(store: Store, event_first: bool) -> None:
    epochs = own(store, ["a"])
    if event_first:
        store.send_event("a", "go", None, None, T0 + 1)
    assert store.write(park_waiting_for_event("a", epochs["a"])) == [True, True]
    if not event_first:
        store.send_event("a", "go", None, None, T0 + 1)
    assert runnable_now(store, ["a"]) == {"a"}


def test_an_event_racing_a_park_is_never_lost(store: Store) -> None:
    ids = [f"e{i:02}" for i in range(ROUNDS)]
    epochs = own(store, ids)
    results = race(
        ROUNDS,
        lambda i: store.write(park_waiting_for_event(ids[i], epochs[ids[i]], alone=i % 2 == 1)),
        lambda i: store.send_event(ids[i], "go", '"x"', None, T0 + 1)[1],
    )
    assert all(all(parked) and sent for parked, sent in results)
    assert runnable_now(store, ids) == set(ids)


@pytest.mark.parametrize("child_first", [True, False])
def test_a_child_finishing_around_a_park_always_wakes_it(store: Store, child_first: bool) -> None:
    parent = own(store, ["p"])["p"]
    kid = own(store, ["k"], owner="o2", parent_id="p")["k"]
    finish = FinishWorkflow("k", "o2", kid, WorkflowStatus.COMPLETED, "1", None, T0 + 1)
    if child_first:
        assert store.write([finish]) == [True]
    assert store.write([Park("p", "o1", parent, FAR_FUTURE, T0 + 1, child_ids=["k"])]) == [True]
    if not child_first:
        assert store.write([finish]) == [True]
    assert runnable_now(store, ["p"]) == {"p"}


def test_a_child_finishing_while_its_parent_parks_is_never_lost(store: Store) -> None:
    parents = [f"p{i:02}" for i in range(ROUNDS)]
    kids = [f"k{i:02}" for i in range(ROUNDS)]
    pe = own(store, parents)
    ke: dict[str, int] = {}
    for p, k in zip(parents, kids, strict=True):
        ke |= own(store, [k], owner="o2", parent_id=p)

    def park(i: int) -> list[bool]:
        p, epoch = parents[i], pe[parents[i]]
        park = Park(p, "o1", epoch, FAR_FUTURE, T0 + 1, child_ids=[kids[i]])
        if i % 2:
            return store.write([park])
        return store.write([RecordEntry(waiting(p, 0, "o1", epoch, "child", kids[i])), park])

    def finish(i: int) -> list[bool]:
        k = kids[i]
        return store.write([FinishWorkflow(k, "o2", ke[k], WorkflowStatus.COMPLETED, "1", None,
                                           T0 + 1)])  # fmt: skip

    results = race(ROUNDS, park, finish)
    assert all(all(parked) and done == [True] for parked, done in results)
    assert runnable_now(store, parents) == set(parents)


@pytest.mark.parametrize("cancel_first", [True, False])
def test_a_cancel_around_a_park_always_wakes_it(store: Store, cancel_first: bool) -> None:
    epoch = own(store, ["a"])["a"]
    if cancel_first:
        store.request_cancel("a", T0 + 1)
    assert store.write([Park("a", "o1", epoch, FAR_FUTURE, T0 + 1)]) == [True]
    if not cancel_first:
        store.request_cancel("a", T0 + 1)
    (c,) = store.claim("o9", ["w"], T0 + 1, 60.0, 10)
    assert c.record.id == "a" and c.record.cancel_requested


def test_a_cancel_racing_a_park_is_never_lost(store: Store) -> None:
    ids = [f"c{i:02}" for i in range(ROUNDS)]
    epochs = own(store, ids)
    results = race(
        ROUNDS,
        lambda i: store.write(park_waiting_for_event(ids[i], epochs[ids[i]], alone=i % 2 == 1)),
        lambda i: store.request_cancel(ids[i], T0 + 1),
    )
    assert all(all(parked) for parked, _ in results)
    assert all(rec is not None and rec.cancel_requested for _, rec in results)
    assert runnable_now(store, ids) == set(ids)
    assert store.poll_signals(ids, 0).cancel_requested == set(ids)


# -- a fenced write racing a claim ---------------------------------------------------------------


def test_a_fenced_write_racing_a_takeover_lands_before_it_or_not_at_all(store: Store) -> None:
    """The old owner's lease has expired; it writes while another worker claims. Whatever the
    order: a write that was applied is in the journal the new owner loads (it committed
    before the claim), and one that was refused is nowhere."""
    ids = [f"f{i:02}" for i in range(ROUNDS)]
    for wid in ids:
        store.create_workflow(wf(wid, name=wid))
    epochs = {c.record.id: c.record.epoch for c in store.claim("o1", ids, T0, 10.0, ROUNDS)}
    assert set(epochs) == set(ids)

    def write(i: int) -> list[bool]:
        wid = ids[i]
        ops: list[WriteOp] = [RecordEntry(entry(wid, 0, "o1", epochs[wid]))]
        if i % 2:  # a group commit (several ops, locking first) as well as a lone entry
            ops += [
                RecordEntry(entry(wid, 1, "o1", epochs[wid])),
                SetState(wid, "o1", epochs[wid], "k", '"v"', 1, T0 + 11),
            ]
        return store.write(ops)

    def claim(i: int) -> list[str]:
        got = store.claim("o2", [ids[i]], T0 + 11, 60.0, 1)
        return [e.workflow_id + f"/{e.seq}" for c in got for e in c.journal] + [
            f"claimed:{c.record.id}" for c in got
        ]

    results = race(ROUNDS, write, claim)
    for i, (applied, seen) in enumerate(results):
        wid = ids[i]
        assert len(set(applied)) == 1, applied  # a batch lands whole or not at all
        journal = [e.seq for e in store.get_journal(wid)]
        if applied[0]:
            assert journal == [0, 1][: 1 + i % 2]
        else:
            assert journal == []
            assert store.get_state(wid) == {}
        if f"claimed:{wid}" in seen:  # the new owner loaded exactly what had landed
            assert [s for s in seen if not s.startswith("claimed:")] == [
                f"{wid}/{seq}" for seq in journal
            ]
            rec = store.get_workflow(wid)
            assert rec is not None and rec.owner == "o2" and rec.epoch == epochs[wid] + 1
    # whoever did not get it in its round (a claim may skip a row being written) gets it now
    rest = store.claim("o3", ids, T0 + 11, 60.0, ROUNDS)
    for c in rest:
        assert [e.seq for e in c.journal] == [e.seq for e in store.get_journal(c.record.id)]


# -- a lifecycle command during a group commit ---------------------------------------------------

COMMANDS = ["terminate", "suspend", "request_cancel"]


def group_commit(x: str, y: str, epochs: dict[str, int]) -> list[WriteOp]:
    """One group commit of two workflows: entries, state and both finishing."""
    return [
        RecordEntry(entry(x, 0, "o1", epochs[x])),
        RecordEntry(entry(y, 0, "o1", epochs[y])),
        SetState(x, "o1", epochs[x], "k", '"v"', 0, T0),
        RecordEntry(entry(x, 1, "o1", epochs[x])),
        FinishWorkflow(x, "o1", epochs[x], WorkflowStatus.COMPLETED, '"x"', None, T0 + 1),
        FinishWorkflow(y, "o1", epochs[y], WorkflowStatus.COMPLETED, '"y"', None, T0 + 1),
    ]


X_OPS = [0, 2, 3, 4]
Y_OPS = [1, 5]


def command(store: Store, name: str, wid: str) -> Any:
    if name == "terminate":
        return store.terminate(wid, '{"type": "Stop"}', T0 + 2)
    if name == "suspend":
        return store.suspend(wid, T0 + 2)
    return store.request_cancel(wid, T0 + 2)


def check_outcome(store: Store, name: str, x: str, applied: list[bool], after: Any) -> None:
    """The group commit and the command on ``x`` took effect in one order or the other."""
    x_applied = {applied[k] for k in X_OPS}
    assert len(x_applied) == 1, applied  # all of x's ops or none
    assert all(applied[k] for k in Y_OPS)  # the other workflow's ops are not affected
    rec = store.get_workflow(x)
    assert rec is not None
    if True in x_applied:  # the commit went first: the command found x finished
        assert rec.status is WorkflowStatus.COMPLETED and rec.output == '"x"'
        assert [e.seq for e in store.get_journal(x)] == [0, 1]
        assert store.get_state(x) == {"k": '"v"'}
        if name != "request_cancel":
            assert after is not None and after.status is WorkflowStatus.COMPLETED
        return
    # the command went first: it revoked the lease, so nothing of the commit landed for x
    assert name != "request_cancel", "a cancel request does not revoke the lease"
    want = WorkflowStatus.TERMINATED if name == "terminate" else WorkflowStatus.SUSPENDED
    assert rec.status is want and after is not None and after.status is want
    assert store.get_journal(x) == [] and store.get_state(x) == {}


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("command_first", [True, False])
def test_a_lifecycle_command_before_or_after_a_group_commit(
    store: Store, name: str, command_first: bool
) -> None:
    epochs = own(store, ["x", "y"])
    after = command(store, name, "x") if command_first else None
    applied = store.write(group_commit("x", "y", epochs))
    if not command_first:
        after = command(store, name, "x")
    check_outcome(store, name, "x", applied, after)


@pytest.mark.parametrize("name", COMMANDS)
def test_a_lifecycle_command_racing_a_group_commit(store: Store, name: str) -> None:
    xs = [f"x{i:02}" for i in range(ROUNDS)]
    ys = [f"y{i:02}" for i in range(ROUNDS)]
    epochs = own(store, xs + ys)
    results = race(
        ROUNDS,
        lambda i: store.write(group_commit(xs[i], ys[i], epochs)),
        lambda i: command(store, name, xs[i]),
    )
    for i, (applied, after) in enumerate(results):
        check_outcome(store, name, xs[i], applied, after)


# -- concurrent claims under a queue's global limits ---------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [{"concurrency": 3}, {"rate_limit": (4, 100.0)}, {"concurrency": 5, "rate_limit": (2, 9.0)}],
)
def test_concurrent_claims_never_admit_past_a_queue_limit(
    store: Store, limits: dict[str, Any]
) -> None:
    """Claims of two owners at once, each round on a queue of its own: the queue's global
    limits hold across both (admission is atomic), and each admitted workflow is claimed once."""
    rounds = ROUNDS // 4
    for r in range(rounds):
        for i in range(8):
            store.create_workflow(wf(f"q{r:02}-{i}", created=T0 + i, queue=f"lim{r}"))
    cap = min(limits.get("concurrency", 99), limits.get("rate_limit", (99, 0))[0])

    def claim(owner: str) -> Callable[[int], list[str]]:
        def go(r: int) -> list[str]:
            queue = [QueueClaim(f"lim{r}", **limits)]
            return [c.record.id for c in store.claim(owner, ["w"], T0 + 50, 600.0, 10, queue)]

        return go

    for r, (a, b) in enumerate(race(rounds, claim("a"), claim("b"))):
        assert len(a + b) == len(set(a + b)) == cap, (r, a, b)
        assert all(wid.startswith(f"q{r:02}-") for wid in a + b)
    assert len(store.list_workflows(statuses=[WorkflowStatus.RUNNING], limit=500)) == cap * rounds
