"""The Store contract: the lifecycle commands (cancel, terminate, suspend, resume, retry, fork,
purge), each atomic and each returning the workflow after it (None if there is none)."""

from __future__ import annotations

from durably.storage.base import (
    FAR_FUTURE,
    ContinueAsNew,
    FinishWorkflow,
    JournalEntry,
    Park,
    RecordAttempt,
    RecordEntry,
    SetState,
    StepAttempt,
    Store,
    WorkflowStatus,
    WriteOp,
)

from .helpers import T0, entry, started, waiting, wf


def failed_entry(wid: str, seq: int, owner: str, epoch: int) -> JournalEntry:
    return JournalEntry(wid, seq, "step", f"s{seq}", "failed", None, '{"type": "E"}', 3, owner,
                        epoch, T0, T0)  # fmt: skip


def test_commands_on_a_missing_workflow_answer_none(store: Store) -> None:
    assert store.request_cancel("nope", T0) is None
    assert store.terminate("nope", "{}", T0) is None
    assert store.suspend("nope", T0) is None
    assert store.resume("nope", T0) is None
    assert store.retry("nope", T0) is None
    assert store.fork("nope", "copy", 0, T0) == (None, False)
    assert store.get_workflow("copy") is None
    assert store.purge("nope") is False


def test_cancel_of_a_workflow_that_never_started_is_immediate(store: Store) -> None:
    store.create_workflow(wf("a"))
    store.create_workflow(wf("kid", parent_id="a"))
    rec = store.request_cancel("a", T0 + 1)
    assert rec is not None and rec.status is WorkflowStatus.CANCELLED
    assert rec.finished_at == T0 + 1 and rec.owner is None
    kid = store.get_workflow("kid")
    assert kid is not None and kid.status is WorkflowStatus.CANCELLED  # and its descendants
    assert store.claim("o1", ["w"], T0 + 2, 60.0, 10) == []


def test_cancel_of_a_running_workflow_asks_it_and_its_descendants(store: Store) -> None:
    # a tree: top > mid > leaf, top > done (finished); "side" is unrelated
    for wid, parent in (("top", None), ("mid", "top"), ("leaf", "mid"), ("done", "top")):
        store.create_workflow(wf(wid, parent_id=parent))
    store.create_workflow(wf("side"))
    claims = store.claim("o1", ["w"], T0, 60.0, 10)
    assert len(claims) == 5
    (epoch,) = {c.record.epoch for c in claims}
    store.create_workflow(wf("late", parent_id="mid"))  # never started: cancelled at once
    store.write([
        FinishWorkflow("done", "o1", epoch, WorkflowStatus.COMPLETED, "1", None, T0),
        Park("top", "o1", epoch, FAR_FUTURE, T0),
    ])  # fmt: skip
    rec = store.request_cancel("mid", T0 + 5)
    assert rec is not None and rec.status is WorkflowStatus.RUNNING and rec.cancel_requested
    assert rec.owner == "o1"  # its worker keeps it, wakes and raises the cancellation
    assert rec.wake_at == T0 + 5
    leaf = store.get_workflow("leaf")
    assert leaf is not None and leaf.cancel_requested and leaf.status is WorkflowStatus.RUNNING
    late = store.get_workflow("late")
    assert late is not None and late.status is WorkflowStatus.CANCELLED
    top = store.get_workflow("top")
    assert top is not None and not top.cancel_requested and top.wake_at == T0 + 5  # woken
    side = store.get_workflow("side")
    assert side is not None and not side.cancel_requested
    signals = store.poll_signals(["top", "mid", "leaf", "side"], 0)
    assert signals.cancel_requested == {"mid", "leaf"}
    done = store.request_cancel("done", T0 + 6)  # finished: unchanged
    assert done is not None and done.status is WorkflowStatus.COMPLETED
    assert not done.cancel_requested


def test_terminate_stops_the_tree_and_fences_out_its_worker(store: Store) -> None:
    epoch = started(store, "p")
    store.create_workflow(wf("k", parent_id="p"))
    store.create_workflow(wf("g", parent_id="k"))
    (c,) = store.claim("o2", ["w"], T0, 60.0, 1)
    assert c.record.id in {"k", "g"}
    store.create_workflow(wf("top"))
    rec = store.terminate("k", '{"type": "Stop"}', T0 + 3)
    assert rec is not None and rec.status is WorkflowStatus.TERMINATED
    assert rec.error == '{"type": "Stop"}' and rec.finished_at == T0 + 3 and rec.owner is None
    g = store.get_workflow("g")
    assert g is not None and g.status is WorkflowStatus.TERMINATED
    p = store.get_workflow("p")
    assert p is not None and p.status is WorkflowStatus.RUNNING and p.wake_at == T0 + 3
    # the old owner's writes land nowhere, whatever epoch it held
    stale: list[WriteOp] = [
        RecordEntry(entry(c.record.id, 0, "o2", c.record.epoch)),
        FinishWorkflow(c.record.id, "o2", c.record.epoch, WorkflowStatus.COMPLETED, "1", None, T0),
    ]
    assert store.write(stale) == [False, False]
    assert store.get_journal(c.record.id) == []
    # a finished workflow is left as it is
    store.write([FinishWorkflow("p", "o1", epoch, WorkflowStatus.COMPLETED, '"ok"', None, T0)])
    again = store.terminate("p", "{}", T0 + 4)
    assert again is not None and again.status is WorkflowStatus.COMPLETED and again.error is None
    assert store.claim("o3", ["w"], T0 + 100, 60.0, 10)[0].record.id == "top"


def test_suspend_and_resume(store: Store) -> None:
    epoch = started(store, "a")
    store.create_workflow(wf("pend", created=T0 + 1))
    store.write([Park("a", "o1", epoch, T0 + 30, T0)])
    s = store.suspend("a", T0 + 1)
    assert s is not None and s.status is WorkflowStatus.SUSPENDED and s.owner is None
    assert s.epoch == epoch + 1 and s.wake_at == T0 + 30  # lease revoked, timer kept
    sp = store.suspend("pend", T0 + 1)
    assert sp is not None and sp.status is WorkflowStatus.SUSPENDED
    assert store.claim("o2", ["w"], T0 + 100, 60.0, 10) == []  # suspended: never claimed
    assert store.next_wake_at(["w"]) is None
    assert store.write([RecordEntry(entry("a", 0, "o1", epoch))]) == [False]
    again = store.suspend("a", T0 + 2)  # already suspended: unchanged
    assert again is not None and again.epoch == epoch + 1
    # an event to a suspended workflow waits in its inbox
    assert store.send_event("a", "go", None, None, T0 + 3)[1]
    r = store.resume("a", T0 + 4)
    assert r is not None and r.status is WorkflowStatus.RUNNING and r.wake_at == T0 + 3
    (c,) = store.claim("o2", ["w"], T0 + 4, 60.0, 1)
    assert c.record.id == "a" and c.record.epoch == epoch + 2 and len(c.events) == 1
    running = store.resume("a", T0 + 5)  # not suspended: unchanged
    assert running is not None and running.owner == "o2"
    rp = store.resume("pend", T0 + 5)
    assert rp is not None and rp.status is not WorkflowStatus.SUSPENDED
    assert [c.record.id for c in store.claim("o3", ["w"], T0 + 5, 60.0, 10)] == ["pend"]
    store.write([FinishWorkflow("a", "o2", epoch + 2, WorkflowStatus.FAILED, None, "{}", T0)])
    done = store.suspend("a", T0 + 6)
    assert done is not None and done.status is WorkflowStatus.FAILED


def test_retry_runs_a_failed_workflow_again_from_its_failed_step(store: Store) -> None:
    epoch = started(store, "a", "b")
    store.write([
        RecordEntry(entry("a", 0, "o1", epoch, '"kept"')),
        RecordAttempt(StepAttempt("a", 1, 1, "{}", "o1", epoch, T0, T0)),
        RecordEntry(failed_entry("a", 1, "o1", epoch)),
        FinishWorkflow("a", "o1", epoch, WorkflowStatus.FAILED, None, '{"type": "E"}', T0 + 1),
        RecordEntry(entry("b", 0, "o1", epoch)),
    ])  # fmt: skip
    rec = store.retry("a", T0 + 2)
    assert rec is not None and rec.status is WorkflowStatus.RUNNING
    assert rec.error is None and rec.output is None and rec.finished_at is None
    assert rec.owner is None and rec.epoch >= 1
    assert [(e.seq, e.result) for e in store.get_journal("a")] == [(0, '"kept"')]
    (c,) = store.claim("o2", ["w"], T0 + 2, 60.0, 10)
    assert c.record.id == "a" and c.record.epoch > epoch
    assert [(e.seq, e.status) for e in c.journal] == [(0, "completed")]
    # only failed (or needs-attention) workflows are retried
    running = store.retry("b", T0 + 3)
    assert (
        running is not None and running.owner == "o1" and running.status is WorkflowStatus.RUNNING
    )
    assert [e.seq for e in store.get_journal("b")] == [0]
    store.write([FinishWorkflow("b", "o1", epoch, WorkflowStatus.COMPLETED, '"x"', None, T0)])
    done = store.retry("b", T0 + 3)
    assert done is not None and done.status is WorkflowStatus.COMPLETED and done.output == '"x"'
    store.write([
        FinishWorkflow("a", "o2", c.record.epoch, WorkflowStatus.NEEDS_ATTENTION, None, "{}", T0),
    ])  # fmt: skip
    again = store.retry("a", T0 + 4)
    assert again is not None and again.status is WorkflowStatus.RUNNING
    assert [e.seq for e in store.get_journal("a")] == [0]  # no failed entry: the journal is kept


def test_fork_copies_the_resolved_journal_before_a_seq(store: Store) -> None:
    src = wf("src", queue="q1", priority=3, version="v2")
    src.input = '{"args":[7],"kwargs":{}}'
    store.create_workflow(src)
    (c,) = store.claim("o1", ["w"], T0, 60.0, 1)
    epoch = c.record.epoch
    store.write([
        RecordEntry(entry("src", 0, "o1", epoch, '"a"')),
        RecordEntry(entry("src", 1, "o1", epoch, '"b"')),
        RecordEntry(waiting("src", 2, "o1", epoch)),
        RecordEntry(entry("src", 3, "o1", epoch, '"d"')),
        SetState("src", "o1", epoch, "k", '"v"', 1, T0),
    ])  # fmt: skip
    rec, created = store.fork("src", "f1", 2, T0 + 9)
    assert created and rec is not None and rec.id == "f1"
    assert rec.status is WorkflowStatus.PENDING and rec.name == "w" and rec.input == src.input
    assert (rec.queue, rec.priority, rec.version) == ("q1", 3, "v2")
    assert rec.created_at == T0 + 9 and rec.owner is None and rec.parent_id is None
    assert [(e.seq, e.result) for e in store.get_journal("f1")] == [(0, '"a"'), (1, '"b"')]
    # up to the first unresolved wait, whatever from_seq says
    assert store.fork("src", "f2", 99, T0)[1]
    assert [e.seq for e in store.get_journal("f2")] == [0, 1]
    assert store.fork("src", "f3", 1, T0)[1]
    assert [e.seq for e in store.get_journal("f3")] == [0]
    assert store.fork("src", "f4", 0, T0)[1] and store.get_journal("f4") == []
    # an existing id: not created, nothing changed
    existing, created = store.fork("src", "f1", 0, T0 + 50)
    assert not created and existing is not None and existing.created_at == T0 + 9
    assert len(store.get_journal("f1")) == 2
    # the source is untouched; the fork runs on its own, replaying the copied entries
    assert [e.seq for e in store.get_journal("src")] == [0, 1, 2, 3]
    src_now = store.get_workflow("src")
    assert src_now is not None and src_now.owner == "o1"
    claims = {x.record.id: x for x in store.claim("o2", ["w"], T0 + 10, 60.0, 10)}
    assert set(claims) == {"f1", "f2", "f3", "f4"}
    assert [e.seq for e in claims["f1"].journal] == [0, 1]
    assert store.get_state("f1") == {}


def test_purge_deletes_a_finished_workflow_and_everything_it_holds(store: Store) -> None:
    epoch = started(store, "a", "b")
    store.send_event("a", "go", '"x"', "d1", T0)
    store.write([
        RecordEntry(entry("a", 0, "o1", epoch)),
        RecordAttempt(StepAttempt("a", 1, 1, "{}", "o1", epoch, T0, T0)),
        SetState("a", "o1", epoch, "k", '"v"', 0, T0),
        ContinueAsNew("a", "o1", epoch, '{"args":[2],"kwargs":{}}', '"run1"', T0 + 1),
        RecordEntry(entry("b", 0, "o1", epoch)),
    ])  # fmt: skip
    assert store.purge("b") is False  # running: nothing deleted
    assert [e.seq for e in store.get_journal("b")] == [0]
    (c,) = store.claim("o1", ["w"], T0 + 2, 60.0, 10)
    store.write([
        RecordEntry(entry("a", 0, "o1", c.record.epoch)),
        RecordAttempt(StepAttempt("a", 1, 1, "{}", "o1", c.record.epoch, T0, T0)),
        FinishWorkflow("a", "o1", c.record.epoch, WorkflowStatus.COMPLETED, "1", None, T0 + 3),
    ])  # fmt: skip
    assert store.list_runs("a") and store.get_state("a") and store.poll_signals(["a"], 0).events
    assert store.purge("a") is True
    assert store.get_workflow("a") is None
    assert store.get_journal("a") == [] and store.get_attempts("a") == []
    assert store.get_state("a") == {} and store.list_runs("a") == []
    assert store.poll_signals(["a"], 0).events == []
    assert store.purge("a") is False
    # the id is free again, with no trace of the purged workflow (its dedup keys included)
    assert store.create_workflow(wf("a"))[1]
    assert store.send_event("a", "go", '"y"', "d1", T0 + 4)[1]
    assert [e.payload for e in store.poll_signals(["a"], 0).events] == ['"y"']
    b = store.get_workflow("b")
    assert b is not None and b.status is WorkflowStatus.RUNNING


def test_a_cancel_requested_while_suspended_is_seen_once_resumed(store: Store) -> None:
    epoch = started(store, "a")
    store.write([Park("a", "o1", epoch, FAR_FUTURE, T0)])
    store.suspend("a", T0 + 1)
    rec = store.request_cancel("a", T0 + 2)
    assert rec is not None and rec.status is WorkflowStatus.SUSPENDED and rec.cancel_requested
    assert store.claim("o2", ["w"], T0 + 3, 60.0, 10) == []  # still suspended
    store.resume("a", T0 + 3)
    (c,) = store.claim("o2", ["w"], T0 + 3, 60.0, 10)
    assert c.record.id == "a" and c.record.cancel_requested
