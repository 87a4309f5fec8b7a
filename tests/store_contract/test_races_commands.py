"""The Store contract under races between lifecycle commands and workers: a cancel or a suspend
racing a claim, a fork racing a group commit of its source, a parent terminated while its
child's finish (which wakes the parent) commits; two sends of one dedup key, two creations of
one id. Each race runs many rounds from two threads
released together by a barrier; whatever the interleaving, the outcome is one of the orders."""

from __future__ import annotations

from collections.abc import Callable

from durably.storage.base import FinishWorkflow, RecordEntry, Store, WorkflowStatus, WriteOp

from .helpers import ROUNDS, T0, entry, own, race, wf


def test_a_cancel_racing_the_first_claim(store: Store) -> None:
    """A workflow that never started is cancelled at once; one just claimed is asked to cancel.
    Never both, never neither, and a cancelled one is never handed to a worker."""
    ids = [f"n{i:02}" for i in range(ROUNDS)]
    for wid in ids:
        store.create_workflow(wf(wid, name=wid))
    results = race(
        ROUNDS,
        lambda i: [c.record.id for c in store.claim("o1", [ids[i]], T0, 60.0, 1)],
        lambda i: store.request_cancel(ids[i], T0),
    )
    for i, (claimed, after) in enumerate(results):
        rec = store.get_workflow(ids[i])
        assert rec is not None and after is not None
        if claimed:
            assert rec.status is WorkflowStatus.RUNNING and rec.owner == "o1"
            assert rec.cancel_requested
        else:
            assert rec.status is WorkflowStatus.CANCELLED and rec.owner is None
            assert after.status is WorkflowStatus.CANCELLED
    # later (leases expired), only workflows a worker started are handed out again
    started = {ids[i] for i, (claimed, _) in enumerate(results) if claimed}
    later = store.claim("o2", ids, T0 + 100, 60.0, ROUNDS)
    assert {c.record.id for c in later} == started
    assert all(c.record.cancel_requested for c in later)


def test_a_suspend_racing_a_claim_always_wins_the_lease(store: Store) -> None:
    """Whichever commits first, the workflow ends suspended and unowned, and a worker that
    claimed it can write nothing more."""
    ids = [f"s{i:02}" for i in range(ROUNDS)]
    for wid in ids:
        store.create_workflow(wf(wid, name=wid))
    results = race(
        ROUNDS,
        lambda i: [(c.record.id, c.record.epoch) for c in store.claim("o1", [ids[i]], T0, 60.0, 1)],
        lambda i: store.suspend(ids[i], T0),
    )
    for i, (claimed, after) in enumerate(results):
        wid = ids[i]
        rec = store.get_workflow(wid)
        assert rec is not None and after is not None
        assert rec.status is WorkflowStatus.SUSPENDED and rec.owner is None
        for _, epoch in claimed:
            assert store.write([RecordEntry(entry(wid, 0, "o1", epoch))]) == [False]
        assert store.get_journal(wid) == []
    assert store.claim("o2", ids, T0 + 100, 60.0, ROUNDS) == []


def test_a_fork_racing_a_group_commit_copies_all_of_it_or_none(store: Store) -> None:
    ids = [f"f{i:02}" for i in range(ROUNDS)]
    epochs = own(store, ids)

    def commit(i: int) -> list[bool]:
        wid = ids[i]
        return store.write([RecordEntry(entry(wid, seq, "o1", epochs[wid])) for seq in range(4)])

    results = race(ROUNDS, commit, lambda i: store.fork(ids[i], f"copy-{ids[i]}", 99, T0)[1])
    for i, (applied, created) in enumerate(results):
        assert applied == [True] * 4 and created
        copied = [e.seq for e in store.get_journal(f"copy-{ids[i]}")]
        assert copied in ([], [0, 1, 2, 3])  # a batch is seen whole or not at all


def test_terminating_a_parent_while_its_child_finishes(store: Store) -> None:
    """The child's finish wakes its parent (locking it) while terminate locks the parent's tree:
    no deadlock, and the outcome is one of the two orders."""
    parents = [f"p{i:02}" for i in range(ROUNDS)]
    kids = [f"k{i:02}" for i in range(ROUNDS)]
    pe = own(store, parents)
    ke: dict[str, int] = {}
    for p, k in zip(parents, kids, strict=True):
        ke |= own(store, [k], owner="o2", parent_id=p)

    def finish(i: int) -> list[bool]:
        k = kids[i]
        ops: list[WriteOp] = [
            RecordEntry(entry(k, 0, "o2", ke[k])),
            FinishWorkflow(k, "o2", ke[k], WorkflowStatus.COMPLETED, '"k"', None, T0 + 1),
        ]
        return store.write(ops)

    results = race(ROUNDS, finish, lambda i: store.terminate(parents[i], '{"t": 1}', T0 + 2))
    for i, (applied, after) in enumerate(results):
        kid = store.get_workflow(kids[i])
        parent = store.get_workflow(parents[i])
        assert kid is not None and parent is not None and after is not None
        assert parent.status is WorkflowStatus.TERMINATED and parent.owner is None
        assert parent.epoch == pe[parents[i]] + 1
        if applied == [True, True]:  # the child finished first: terminate found it done
            assert kid.status is WorkflowStatus.COMPLETED and kid.output == '"k"'
        else:  # terminated with its parent: its worker's writes were refused
            assert applied == [False, False]
            assert kid.status is WorkflowStatus.TERMINATED and store.get_journal(kids[i]) == []


def test_concurrent_sends_of_one_dedup_key_add_one_event(store: Store) -> None:
    ids = [f"d{i:02}" for i in range(ROUNDS)]
    for wid in ids:
        store.create_workflow(wf(wid))

    def send(payload: str) -> Callable[[int], bool]:
        return lambda i: store.send_event(ids[i], "go", payload, "once", T0)[1]

    for i, (first, second) in enumerate(race(ROUNDS, send('"a"'), send('"b"'))):
        assert first != second, i  # exactly one added
        (ev,) = store.poll_signals([ids[i]], 0).events
        assert ev.payload == ('"a"' if first else '"b"')


def test_concurrent_creations_of_one_id_create_it_once(store: Store) -> None:
    def create(name: str) -> Callable[[int], tuple[str, bool]]:
        def go(i: int) -> tuple[str, bool]:
            rec, created = store.create_workflow(wf(f"c{i:02}", name=name))
            return rec.name, created

        return go

    for i, (a, b) in enumerate(race(ROUNDS, create("a"), create("b"))):
        assert a[1] != b[1], i  # exactly one created
        winner = "a" if a[1] else "b"
        assert a[0] == b[0] == winner  # both see the stored record
        rec = store.get_workflow(f"c{i:02}")
        assert rec is not None and rec.name == winner
