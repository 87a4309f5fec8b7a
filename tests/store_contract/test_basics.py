"""The Store contract: creation, claims, leases, fenced journal writes, lists, workers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from durably.storage.base import (
    CreateWorkflow,
    FinishWorkflow,
    JournalEntry,
    RecordAttempt,
    RecordEntry,
    StepAttempt,
    Store,
    WorkerInfo,
    WorkflowStatus,
)
from durably.storage.sqlite import SqliteStore

from .helpers import T0, entry, wf


def test_migrate_is_idempotent(store: Store) -> None:
    store.migrate()
    store.migrate()
    assert store.create_workflow(wf("a"))[1]


def test_create_is_idempotent_and_never_modifies(store: Store) -> None:
    rec, created = store.create_workflow(wf("a"))
    assert created and rec.id == "a"
    other = wf("a", name="other")
    other.input = '{"args":[1],"kwargs":{}}'
    existing, created = store.create_workflow(other)
    assert not created
    assert existing.name == "w" and existing.input == '{"args":[],"kwargs":{}}'
    got = store.get_workflow("a")
    assert got is not None and got.name == "w" and got.status is WorkflowStatus.PENDING
    assert store.get_workflow("missing") is None


def test_claim_takes_ownership_with_a_new_epoch(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.create_workflow(wf("b", name="unserved"))
    (c,) = store.claim("w1", ["w"], T0, 10.0, 10)
    assert c.record.id == "a" and c.record.owner == "w1" and c.record.epoch == 1
    assert c.record.status is WorkflowStatus.RUNNING
    assert c.record.lease_expires_at == T0 + 10.0 and c.journal == []
    # leased: nobody else gets it, not even the same owner twice
    assert store.claim("w2", ["w"], T0 + 5, 10.0, 10) == []
    assert store.claim("w1", ["w"], T0 + 5, 10.0, 10) == []


def test_expired_lease_is_taken_over_with_the_journal(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.claim("w1", ["w"], T0, 10.0, 10)
    assert store.write([RecordEntry(entry("a", 0, "w1", 1)), RecordEntry(entry("a", 1, "w1", 1))])
    (c,) = store.claim("w2", ["w"], T0 + 11, 10.0, 10)
    assert c.record.owner == "w2" and c.record.epoch == 2
    assert [e.seq for e in c.journal] == [0, 1]
    assert c.journal[0].owner == "w1" and c.journal[0].epoch == 1


def test_an_owner_never_reclaims_its_own_expired_lease(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.claim("w1", ["w"], T0, 1.0, 10)
    assert store.claim("w1", ["w"], T0 + 5, 1.0, 10) == []  # w1 renews, it does not re-claim
    assert store.renew_leases("w1", T0 + 10) == {"a"}
    (c,) = store.claim("w2", ["w"], T0 + 11, 1.0, 10)
    assert c.record.epoch == 2


def test_claim_order_limit_and_wake_at(store: Store) -> None:
    store.create_workflow(wf("old", created=T0))
    store.create_workflow(wf("new", created=T0 + 1))
    store.create_workflow(wf("urgent", created=T0 + 2, priority=5))
    store.create_workflow(wf("later", created=T0 - 1, wake_at=T0 + 100))
    first = store.claim("w1", ["w"], T0 + 3, 1000.0, 2)
    assert [c.record.id for c in first] == ["urgent", "old"]
    assert [c.record.id for c in store.claim("w1", ["w"], T0 + 3, 1000.0, 10)] == ["new"]
    assert store.claim("w1", ["w"], T0 + 3, 1000.0, 10) == []
    assert [c.record.id for c in store.claim("w1", ["w"], T0 + 100, 1000.0, 10)] == ["later"]


def test_writes_are_fenced_by_owner_and_epoch(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.claim("w1", ["w"], T0, 1.0, 10)
    assert store.write([RecordEntry(entry("a", 0, "w1", 1))]) == [True]
    store.claim("w2", ["w"], T0 + 2, 10.0, 10)  # w1's lease expired; w2 owns epoch 2
    late = [
        RecordEntry(entry("a", 1, "w1", 1)),
        RecordAttempt(StepAttempt("a", 1, 1, "{}", "w1", 1, T0, T0)),
        FinishWorkflow("a", "w1", 1, WorkflowStatus.COMPLETED, "1", None, T0),
        RecordEntry(entry("a", 1, "w2", 1)),  # right owner, wrong epoch
        RecordEntry(entry("a", 1, "w1", 2)),  # right epoch, wrong owner
    ]
    assert store.write(late) == [False] * 5
    assert [e.seq for e in store.get_journal("a")] == [0]
    assert store.get_attempts("a") == []
    rec = store.get_workflow("a")
    assert rec is not None and rec.status is WorkflowStatus.RUNNING and rec.owner == "w2"
    assert store.write([RecordEntry(entry("a", 1, "w2", 2))]) == [True]


def test_a_recorded_result_is_never_overwritten(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.claim("w1", ["w"], T0, 10.0, 10)
    assert store.write([RecordEntry(entry("a", 0, "w1", 1, result='"first"'))]) == [True]
    assert store.write([RecordEntry(entry("a", 0, "w1", 1, result='"second"'))]) == [False]
    (e,) = store.get_journal("a")
    assert e.result == '"first"'


def test_batch_applies_each_op_independently_in_order(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.create_workflow(wf("b"))
    store.claim("w1", ["w"], T0, 10.0, 10)
    ops = [
        RecordEntry(entry("a", 0, "w1", 1)),
        RecordEntry(entry("b", 0, "w9", 1)),  # not the owner
        RecordAttempt(StepAttempt("b", 1, 1, '{"type": "E"}', "w1", 1, T0, T0)),
        RecordEntry(entry("b", 1, "w1", 1)),
        FinishWorkflow("b", "w1", 1, WorkflowStatus.COMPLETED, '"done"', None, T0 + 1),
        RecordEntry(entry("b", 2, "w1", 1)),  # after finishing: rejected
    ]
    assert store.write(ops) == [True, False, True, True, True, False]
    b = store.get_workflow("b")
    assert b is not None and b.status is WorkflowStatus.COMPLETED and b.output == '"done"'
    assert b.owner is None and b.finished_at == T0 + 1
    assert [e.seq for e in store.get_journal("b")] == [1]
    (a,) = store.get_attempts("b")
    assert a.seq == 1 and a.attempt == 1


def test_finished_workflows_reports_ended_and_missing_ids_only(store: Store) -> None:
    for wid in ("a", "b", "c"):
        store.create_workflow(wf(wid))
    assert store.finished_workflows(["a", "b", "nope"]) == {"nope": None}
    store.claim("w1", ["w"], T0, 10.0, 10)
    store.write([
        FinishWorkflow("a", "w1", 1, WorkflowStatus.COMPLETED, '"ok"', None, T0 + 1),
        FinishWorkflow("c", "w1", 1, WorkflowStatus.FAILED, None, '{"type": "E"}', T0 + 1),
    ])  # fmt: skip
    found = store.finished_workflows(["a", "b", "c", "a", "gone"])
    assert set(found) == {"a", "c", "gone"} and found["gone"] is None
    a, c = found["a"], found["c"]
    assert a is not None and a.status is WorkflowStatus.COMPLETED and a.output == '"ok"'
    assert c is not None and c.status is WorkflowStatus.FAILED and c.error == '{"type": "E"}'
    assert store.finished_workflows([]) == {}


def test_renew_release_and_expire(store: Store) -> None:
    for wid in ("a", "b", "c"):
        store.create_workflow(wf(wid))
    store.claim("w1", ["w"], T0, 10.0, 10)
    assert store.renew_leases("w1", T0 + 50) == {"a", "b", "c"}
    store.write([FinishWorkflow("c", "w1", 1, WorkflowStatus.FAILED, None, "{}", T0)])
    store.release("w1", ["a"])
    assert store.renew_leases("w1", T0 + 60) == {"b"}
    assert [c.record.id for c in store.claim("w2", ["w"], T0 + 1, 10.0, 10)] == ["a"]
    assert store.expire_leases(["w1"]) == 1
    (c,) = store.claim("w3", ["w"], T0 + 1, 10.0, 10)
    assert c.record.id == "b" and c.record.epoch == 2
    assert store.renew_leases("w1", T0 + 70) == set()
    store.release("w3")
    rec = store.get_workflow("b")
    assert rec is not None and rec.owner is None and rec.status is WorkflowStatus.RUNNING


def test_list_workflows_filters_and_orders_newest_first(store: Store) -> None:
    for i in range(5):
        store.create_workflow(wf(f"w{i}", name="even" if i % 2 == 0 else "odd", created=T0 + i))
    store.claim("o", ["odd"], T0 + 10, 10.0, 1)
    assert [r.id for r in store.list_workflows()] == ["w4", "w3", "w2", "w1", "w0"]
    assert [r.id for r in store.list_workflows(name="even", limit=2)] == ["w4", "w2"]
    running = store.list_workflows(statuses=[WorkflowStatus.RUNNING])
    assert [r.id for r in running] == ["w1"]
    both = store.list_workflows(statuses=[WorkflowStatus.RUNNING, WorkflowStatus.PENDING])
    assert len(both) == 5


def test_list_workflows_time_range_id_prefix_and_keyset_pages(store: Store) -> None:
    # ids that sort differently in a linguistic collation than bytewise: "B" < "a" < "b" in C
    ids = ["ord-a", "ord-B", "ord-b", "ord-A1", "pay-1", "ord_x", "ord-Z"]
    for i, wid in enumerate(ids):
        store.create_workflow(wf(wid, created=T0 + i // 2))  # pairs share a created_at
    everything = [r.id for r in store.list_workflows()]
    assert len(everything) == len(ids)
    assert [r.id for r in store.list_workflows(created_after=T0 + 1)] == everything[:5]
    assert [r.id for r in store.list_workflows(created_before=T0 + 1)] == everything[5:]
    window = store.list_workflows(created_after=T0 + 1, created_before=T0 + 3)
    assert [r.id for r in window] == everything[1:5]
    assert {r.id for r in store.list_workflows(id_prefix="ord-")} == {
        "ord-a", "ord-B", "ord-b", "ord-A1", "ord-Z",
    }  # fmt: skip
    assert [r.id for r in store.list_workflows(id_prefix="ord-A")] == ["ord-A1"]
    assert store.list_workflows(id_prefix="%") == []  # no pattern characters
    assert store.list_workflows(id_prefix="ord-", name="other") == []
    # paging by (created_at, id) of each page's last row walks everything once, in order
    pages: list[str] = []
    cursor: tuple[float, str] | None = None
    while True:
        page = store.list_workflows(limit=2, before=cursor)
        pages += [r.id for r in page]
        if len(page) < 2:
            break
        cursor = (page[-1].created_at, page[-1].id)
    assert pages == everything
    # within one created_at, ids are ordered bytewise (descending)
    same = [r.id for r in store.list_workflows() if r.created_at == T0 + 1]
    assert same == sorted(same, reverse=True) and len(same) == 2
    prefixed = store.list_workflows(id_prefix="ord", limit=3, before=cursor)
    assert all(r.id.startswith("ord") for r in prefixed)


def test_workers_registry(store: Store) -> None:
    store.register_worker(WorkerInfo("h:1:a", "h", 1, T0, T0, ["w", "v"], ["default"]))
    store.register_worker(WorkerInfo("h:2:b", "h", 2, T0 + 1, T0 + 1, ["x"], ["default"]))
    store.heartbeat_worker("h:1:a", T0 + 5)
    workers = store.list_workers()
    assert [w.id for w in workers] == ["h:1:a", "h:2:b"]
    assert workers[0].heartbeat_at == T0 + 5 and workers[0].workflows == ["w", "v"]
    store.remove_worker("h:1:a")
    assert [w.id for w in store.list_workers()] == ["h:2:b"]


def test_concurrent_claims_never_share_a_workflow(store: Store) -> None:
    n = 200
    for i in range(n):
        store.create_workflow(wf(f"c{i}", created=T0 + i))
    claimed: dict[str, list[str]] = {}
    lock = threading.Lock()

    def worker(owner: str) -> None:
        while True:
            got = store.claim(owner, ["w"], T0 + 1000, 60.0, 7)
            if not got:
                return
            with lock:
                for c in got:
                    claimed.setdefault(c.record.id, []).append(owner)

    threads = [threading.Thread(target=worker, args=(f"o{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == n
    assert all(len(owners) == 1 for owners in claimed.values())


def test_many_entries_in_one_batch_each_fenced_and_kept_once(store: Store) -> None:
    """A batch of consecutive entries of several workflows (sent as one statement where the
    backend can): each applied or refused on its own, a waiting entry replaced in the same
    batch, a recorded result never overwritten."""
    for wid in ("a", "b", "c"):
        store.create_workflow(wf(wid))
    claims = {c.record.id: c.record.epoch for c in store.claim("o1", ["w"], T0, 60.0, 10)}
    waiting = JournalEntry("a", 1, "event", "go", "waiting", '{"deadline": null}', None, 0,
                           "o1", claims["a"], T0, T0)  # fmt: skip
    done = JournalEntry("a", 1, "event", "go", "completed", '"payload"', None, 0,
                        "o1", claims["a"], T0, T0)  # fmt: skip
    ops = [
        RecordEntry(entry("a", 0, "o1", claims["a"])),
        RecordEntry(entry("b", 0, "o1", claims["b"])),
        RecordEntry(entry("c", 0, "o1", claims["c"] + 1)),  # stale epoch: refused
        RecordEntry(waiting),
        RecordEntry(done),  # same seq as the waiting entry: replaces it
        RecordEntry(entry("b", 0, "o1", claims["b"], result="2")),  # recorded: kept
        RecordEntry(entry("b", 1, "o2", claims["b"])),  # not the owner: refused
    ]
    assert store.write(ops) == [True, True, False, True, True, False, False]
    assert [(e.seq, e.status, e.result) for e in store.get_journal("a")] == [
        (0, "completed", "1"), (1, "completed", '"payload"'),
    ]  # fmt: skip
    assert [(e.seq, e.result) for e in store.get_journal("b")] == [(0, "1")]
    assert store.get_journal("c") == []


def test_a_mixed_batch_of_many_workflows_applies_each_op_as_alone(store: Store) -> None:
    """Creations, entries and finishes of many workflows in one batch (grouped in multi-row
    statements where the backend can): each applied or refused as if written alone; a finishing
    child wakes its parent, unless the parent finishes in the same batch."""
    store.create_workflow(wf("p1"))
    store.create_workflow(wf("p2"))
    for wid, parent in (("c1", "p1"), ("c2", "p1"), ("c3", "p2")):
        store.create_workflow(wf(wid, parent_id=parent))
    epochs = {c.record.id: c.record.epoch for c in store.claim("o1", ["w"], T0, 60.0, 10)}
    assert set(epochs) == {"p1", "p2", "c1", "c2", "c3"}

    def finish(wid: str, epoch: int | None = None, owner: str = "o1") -> FinishWorkflow:
        e = epochs[wid] if epoch is None else epoch
        return FinishWorkflow(wid, owner, e, WorkflowStatus.COMPLETED, f'"{wid}"', None, T0 + 5)

    ops = [
        CreateWorkflow(wf("n1", created=T0 + 1)),
        RecordEntry(entry("c1", 0, "o1", epochs["c1"])),
        CreateWorkflow(wf("p1")),  # exists: refused, nothing changed
        finish("c1"),
        RecordEntry(entry("c2", 0, "o1", epochs["c2"] + 1)),  # stale epoch: refused
        CreateWorkflow(wf("n2", created=T0 + 2)),
        finish("c2", owner="o9"),  # not the owner: refused
        finish("c3"),
        finish("p2"),  # finishes in the same batch as its child c3
        RecordEntry(entry("p1", 0, "o1", epochs["p1"])),
    ]
    assert store.write(ops) == [True, True, False, True, False, True, False, True, True, True]
    got = {wid: store.get_workflow(wid) for wid in ("n1", "n2", "p1", "p2", "c1", "c2", "c3")}
    assert all(rec is not None for rec in got.values())
    n1, p1, p2, c1, c2, c3 = (got[k] for k in ("n1", "p1", "p2", "c1", "c2", "c3"))
    assert n1 is not None and n1.status is WorkflowStatus.PENDING and n1.created_at == T0 + 1
    assert c1 is not None and c1.status is WorkflowStatus.COMPLETED and c1.output == '"c1"'
    assert c1.owner is None and c1.finished_at == T0 + 5
    assert c2 is not None and c2.status is WorkflowStatus.RUNNING and c2.owner == "o1"
    assert c3 is not None and c3.status is WorkflowStatus.COMPLETED
    assert p2 is not None and p2.status is WorkflowStatus.COMPLETED and p2.output == '"p2"'
    assert p1 is not None and p1.status is WorkflowStatus.RUNNING and p1.wake_at == T0 + 5
    assert p1.created_at == T0  # the refused creation changed nothing
    assert [(e.seq, e.result) for e in store.get_journal("c1")] == [(0, "1")]
    assert store.get_journal("c2") == []
    assert [e.seq for e in store.get_journal("p1")] == [0]
    # a batch of different workflows only: sent sorted by kind, answered in the batch's order
    more = {c.record.id: c.record.epoch for c in store.claim("o1", ["w"], T0 + 10, 60.0, 10)}
    assert set(more) == {"n1", "n2"}
    ops = [
        FinishWorkflow("n1", "o1", more["n1"], WorkflowStatus.FAILED, None, '{"t": 1}', T0 + 9),
        CreateWorkflow(wf("n3")),
        RecordEntry(entry("n2", 0, "o1", more["n2"])),
        CreateWorkflow(wf("c1")),  # exists (completed): refused
        CreateWorkflow(wf("n4")),
        RecordEntry(entry("c2", 0, "o1", epochs["c2"])),
    ]
    assert store.write(ops) == [True, True, True, False, True, True]
    n1 = store.get_workflow("n1")
    assert n1 is not None and n1.status is WorkflowStatus.FAILED and n1.error == '{"t": 1}'
    assert {r.id for r in store.list_workflows(statuses=[WorkflowStatus.PENDING])} == {"n3", "n4"}
    assert [e.seq for e in store.get_journal("n2")] == [0]
    assert [e.seq for e in store.get_journal("c2")] == [0]


@pytest.mark.parametrize("refused", [False, True])
def test_large_batches_of_one_kind_apply_each_op_as_alone(store: Store, refused: bool) -> None:
    """Hundreds of creations, entries and finishes in single batches (multi-row statements in
    chunks where the backend can): the same rows and answers as one op at a time; with one
    refused op in each batch, only that one is refused."""
    n = 301  # more than one chunk of every size
    bad = 137 if refused else -1
    created = store.write(
        [CreateWorkflow(wf("dup" if i == bad else f"g{i:03}", created=T0 + i)) for i in range(n)]
        + [CreateWorkflow(wf("dup"))]
    )
    assert created == [True] * n + [not refused]
    parent = "g000"
    store.create_workflow(wf("kid", parent_id=parent))
    ids = [f"g{i:03}" for i in range(n) if i != bad]
    epochs: dict[str, int] = {}
    while len(epochs) < len(ids) + 1:
        claims = store.claim("o1", ["w"], T0 + 1000, 60.0, 500)
        assert claims
        epochs.update({c.record.id: c.record.epoch for c in claims})
    stale = ids[200] if refused else None
    ops = [
        RecordEntry(entry(wid, 0, "o1", epochs[wid] + (wid == stale), result=f'"{wid}"'))
        for wid in ids
    ]
    assert store.write(ops) == [wid != stale for wid in ids]
    for wid in (ids[0], ids[150], ids[-1]):
        assert [(e.seq, e.result) for e in store.get_journal(wid)] == [(0, f'"{wid}"')]
    if stale is not None:
        assert store.get_journal(stale) == []
    # finishes (the child first: its parent, still running, is woken)
    rest = [wid for wid in ids if wid != parent]
    owner = {wid: "o9" if wid == stale else "o1" for wid in rest}
    fin = [FinishWorkflow("kid", "o1", epochs["kid"], WorkflowStatus.COMPLETED, "1", None, T0 + 7)]
    fin += [
        FinishWorkflow(wid, owner[wid], epochs[wid], WorkflowStatus.COMPLETED, f'"{wid}"', None,
                       T0 + 5)
        for wid in rest
    ]  # fmt: skip
    assert store.write(fin) == [True] + [owner[wid] == "o1" for wid in rest]
    done = {r.id for r in store.list_workflows(statuses=[WorkflowStatus.COMPLETED], limit=1000)}
    assert done == {"kid", *(wid for wid in rest if owner[wid] == "o1")}
    last = store.get_workflow(rest[-1])
    assert last is not None and last.output == f'"{rest[-1]}"' and last.owner is None
    assert last.finished_at == T0 + 5
    p = store.get_workflow(parent)
    assert p is not None and p.status is WorkflowStatus.RUNNING and p.wake_at == T0 + 7


def test_sqlite_writes_a_large_batch_in_a_few_statements(tmp_path: Path) -> None:
    """A group commit of 600 ops is a handful of statements, not 600 (each statement hands
    the GIL over), and one refused op makes the batch go again op by op, in the same
    transaction."""
    store = SqliteStore(tmp_path / "g.db")
    store.migrate()
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    try:
        assert store.write([CreateWorkflow(wf(f"s{i}")) for i in range(300)]) == [True] * 300
        epochs = {c.record.id: c.record.epoch for c in store.claim("o1", ["w"], T0, 60.0, 300)}
        statements.clear()
        ops = [RecordEntry(entry(f"s{i}", 0, "o1", epochs[f"s{i}"])) for i in range(300)]
        assert store.write(ops) == [True] * 300
        assert len(statements) <= 8, statements  # BEGIN, savepoint, 256 + 32 + 8 + 4, ...
        statements.clear()
        ops = [RecordEntry(entry(f"s{i}", 1, "o1", epochs[f"s{i}"] + (i == 5))) for i in range(300)]
        assert store.write(ops) == [i != 5 for i in range(300)]
        assert any(s.startswith("ROLLBACK TO") for s in statements)
        assert len([s for s in statements if s.startswith("INSERT")]) == 4 + 300
    finally:
        store.close()


def test_large_batches_never_overwrite_a_recorded_result(store: Store) -> None:
    """Grouped entries keep the journal's exactly-once rule: a batch re-recording completed
    entries (a replayed step, a duplicate) changes none of them and is refused op by op; a
    batch completing waiting entries (events, timers) replaces each waiting one."""
    n = 40
    ids = [f"x{i:02}" for i in range(n)]
    assert store.write([CreateWorkflow(wf(wid)) for wid in ids]) == [True] * n
    epochs = {c.record.id: c.record.epoch for c in store.claim("o1", ["w"], T0, 60.0, n)}
    assert set(epochs) == set(ids)
    first = [RecordEntry(entry(wid, 0, "o1", epochs[wid], result='"first"')) for wid in ids]
    assert store.write(first) == [True] * n
    again = [RecordEntry(entry(wid, 0, "o1", epochs[wid], result='"second"')) for wid in ids]
    assert store.write(again) == [False] * n
    assert {store.get_journal(wid)[0].result for wid in ids} == {'"first"'}
    waiting = [
        RecordEntry(JournalEntry(wid, 1, "event", "go", "waiting", '{"deadline": null}', None, 0,
                                 "o1", epochs[wid], T0, T0))
        for wid in ids
    ]  # fmt: skip
    assert store.write(waiting) == [True] * n
    done = [
        RecordEntry(JournalEntry(wid, 1, "event", "go", "completed", f'"{wid}"', None, 0,
                                 "o1", epochs[wid], T0, T0 + 1))
        for wid in ids
    ]  # fmt: skip
    assert store.write(done) == [True] * n
    for wid in (ids[0], ids[-1]):
        assert [(e.seq, e.status, e.result) for e in store.get_journal(wid)] == [
            (0, "completed", '"first"'), (1, "completed", f'"{wid}"'),
        ]  # fmt: skip
    assert store.write(done) == [False] * n  # completed now: not replaced again
