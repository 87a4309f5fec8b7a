"""The Store contract: events, signals, published state, children and wake-up times."""

from __future__ import annotations

from durably.storage.base import (
    FAR_FUTURE,
    ConsumeEvent,
    FinishWorkflow,
    Park,
    QueueClaim,
    RecordEntry,
    SetState,
    Store,
    WorkflowStatus,
)

from .helpers import T0, entry, resolved, start_child, started, waiting, wf


def test_send_event_appends_wakes_and_dedups(store: Store) -> None:
    epoch = started(store, "a")
    assert store.write([Park("a", "o1", epoch, FAR_FUTURE, T0, ["go"])]) == [True]
    parked = store.get_workflow("a")
    assert parked is not None and parked.wake_at == FAR_FUTURE and parked.owner is None
    rec, added = store.send_event("a", "go", '"p1"', "k1", T0 + 1)
    assert added and rec is not None and rec.id == "a"
    woke = store.get_workflow("a")
    assert woke is not None and woke.wake_at == T0 + 1  # the event made it runnable
    # the same dedup key again: not added, whatever its payload
    rec, added = store.send_event("a", "go", '"other"', "k1", T0 + 2)
    assert not added and rec is not None
    # no dedup key: every send is a new event
    assert store.send_event("a", "go", '"p2"', None, T0 + 3)[1]
    assert store.send_event("a", "go", '"p3"', None, T0 + 3)[1]
    inbox = store.poll_signals(["a"], 0).events
    assert [(e.name, e.payload, e.created_at) for e in inbox] == [
        ("go", '"p1"', T0 + 1), ("go", '"p2"', T0 + 3), ("go", '"p3"', T0 + 3),
    ]  # fmt: skip
    assert inbox[0].id < inbox[1].id < inbox[2].id and {e.workflow_id for e in inbox} == {"a"}
    after = store.get_workflow("a")
    assert after is not None and after.wake_at == T0 + 1  # an earlier wake is never delayed


def test_send_event_is_refused_for_missing_and_finished_workflows(store: Store) -> None:
    assert store.send_event("nope", "go", None, None, T0) == (None, False)
    epoch = started(store, "a", "b")
    store.write([FinishWorkflow("a", "o1", epoch, WorkflowStatus.COMPLETED, "1", None, T0)])
    rec, added = store.send_event("a", "go", '"late"', None, T0 + 1)
    assert not added and rec is not None and rec.status is WorkflowStatus.COMPLETED
    assert store.terminate("b", '{"t": 1}', T0)
    assert store.send_event("b", "go", None, None, T0 + 1)[1] is False
    assert store.poll_signals(["a", "b"], 0).events == []


def test_a_pending_workflow_takes_events_before_it_starts(store: Store) -> None:
    store.create_workflow(wf("a"))
    assert store.send_event("a", "go", '"early"', None, T0)[1]
    (c,) = store.claim("o1", ["w"], T0, 60.0, 10)
    assert [(e.name, e.payload) for e in c.events] == [("go", '"early"')]


def test_poll_signals_reports_events_children_and_cancels(store: Store) -> None:
    epoch = started(store, "p", "q")
    ops = [
        start_child(
            wf(k, parent_id="p", created=T0 + 1 + i), waiting("p", i, "o1", epoch, "child", k)
        )
        for i, k in enumerate(["c1", "c2"])
    ]
    assert store.write(ops) == [True, True]
    store.send_event("p", "a", '"1"', None, T0)
    store.send_event("q", "b", '"2"', None, T0)
    store.send_event("other", "c", '"3"', None, T0)  # no such workflow: nothing added
    signals = store.poll_signals(["p", "q"], 0)
    assert [(e.workflow_id, e.name) for e in signals.events] == [("p", "a"), ("q", "b")]
    assert signals.children == {} and signals.cancel_requested == set()
    # only events after the last one seen
    assert store.poll_signals(["p", "q"], signals.events[0].id).events == signals.events[1:]
    assert store.poll_signals(["q"], 0).events == signals.events[1:]
    # finished children, oldest first, with their outcomes
    (k2,) = [c.record for c in store.claim("o2", ["w"], T0, 60.0, 10) if c.record.id == "c2"]
    store.write([FinishWorkflow("c2", "o2", k2.epoch, WorkflowStatus.FAILED, None, "{}", T0 + 3)])
    assert store.terminate("c1", '{"t": 1}', T0 + 4)
    got = store.poll_signals(["p", "q"], signals.events[-1].id)
    assert got.events == []
    assert [(c.id, c.status, c.output, c.error) for c in got.children["p"]] == [
        ("c1", WorkflowStatus.TERMINATED, None, '{"t": 1}'),
        ("c2", WorkflowStatus.FAILED, None, "{}"),
    ]
    assert set(got.children) == {"p"}
    # with when they ended (durably.wait_any orders what became ready while it was parked)
    assert [c.finished_at for c in got.children["p"]] == [T0 + 4, T0 + 3]
    store.request_cancel("q", T0 + 5)
    assert store.poll_signals(["p", "q"], 0).cancel_requested == {"q"}
    # a consumed event is no longer reported
    (ev,) = store.poll_signals(["q"], 0).events
    assert store.write([ConsumeEvent(resolved("q", 0, "o1", epoch, '"2"', name="b"), ev.id)])
    assert store.poll_signals(["q"], 0).events == []
    assert store.poll_signals([], 0) == store.poll_signals(["missing"], 0)


def test_consume_event_records_and_consumes_both_or_neither(store: Store) -> None:
    epoch = started(store, "a", "b")
    store.send_event("a", "go", '"x"', None, T0)
    store.send_event("b", "go", '"y"', None, T0)
    ev_a, ev_b = store.poll_signals(["a", "b"], 0).events
    assert store.write([RecordEntry(waiting("a", 0, "o1", epoch))]) == [True]
    ops = [
        ConsumeEvent(resolved("a", 0, "o1", epoch, '"x"'), ev_a.id),  # resolves the wait
        ConsumeEvent(resolved("a", 1, "o1", epoch, '"x"'), ev_a.id),  # consumed already
        ConsumeEvent(resolved("b", 0, "o1", epoch + 1, '"y"'), ev_b.id),  # stale epoch
        ConsumeEvent(resolved("b", 0, "o2", epoch, '"y"'), ev_b.id),  # not the owner
        ConsumeEvent(resolved("b", 0, "o1", epoch, '"y"'), ev_a.id),  # another workflow's event
    ]
    assert store.write(ops) == [True, False, False, False, False]
    assert [(e.seq, e.status, e.result) for e in store.get_journal("a")] == [
        (0, "completed", '"x"')
    ]
    assert store.get_journal("b") == []
    assert [e.id for e in store.poll_signals(["a", "b"], 0).events] == [ev_b.id]
    # the entry refused (a result recorded at its seq): the event stays unconsumed
    assert store.write([RecordEntry(entry("b", 0, "o1", epoch))]) == [True]
    assert store.write([ConsumeEvent(resolved("b", 0, "o1", epoch, '"y"'), ev_b.id)]) == [False]
    assert [e.id for e in store.poll_signals(["b"], 0).events] == [ev_b.id]
    assert [(e.seq, e.result) for e in store.get_journal("b")] == [(0, "1")]
    assert store.write([ConsumeEvent(resolved("b", 1, "o1", epoch, '"y"'), ev_b.id)]) == [True]
    assert store.poll_signals(["b"], 0).events == []
    # a claim after a takeover loads unconsumed events only
    store.send_event("b", "next", '"z"', None, T0)
    claims = {c.record.id: c for c in store.claim("o2", ["w"], T0 + 61, 60.0, 10)}
    assert [e.name for e in claims["b"].events] == ["next"] and claims["a"].events == []


def test_set_state_is_fenced_and_later_seq_wins(store: Store) -> None:
    epoch = started(store, "a", "b")
    assert store.get_state("a") == {}
    ops = [
        SetState("a", "o1", epoch, "phase", '"one"', 3, T0),
        SetState("a", "o1", epoch, "count", "1", 4, T0),
        SetState("a", "o1", epoch, "phase", '"two"', 5, T0 + 1),
        SetState("a", "o1", epoch, "phase", '"stale"', 2, T0 + 2),  # earlier seq: kept "two"
        SetState("a", "o1", epoch + 1, "phase", '"fenced"', 9, T0),  # stale epoch
        SetState("a", "o2", epoch, "count", "2", 9, T0),  # not the owner
        SetState("b", "o1", epoch, "phase", '"b"', 0, T0),
    ]
    applied = store.write(ops)
    assert applied[:3] == [True, True, True] and applied[4:] == [False, False, True]
    assert store.get_state("a") == {"count": "1", "phase": '"two"'}
    assert store.get_state("b") == {"phase": '"b"'}
    assert store.get_state("missing") == {}
    store.write([FinishWorkflow("b", "o1", epoch, WorkflowStatus.COMPLETED, "1", None, T0)])
    assert store.write([SetState("b", "o1", epoch, "phase", '"late"', 1, T0)]) == [False]
    assert store.get_state("b") == {"phase": '"b"'}  # published state outlives the workflow


def test_start_child_creates_and_records_both_or_neither(store: Store) -> None:
    epoch = started(store, "p")
    kid = waiting("p", 0, "o1", epoch, "child", "k1")
    ops = [
        start_child(wf("k1", parent_id="p", parent_seq=0, created=T0 + 1), kid),
        start_child(wf("k2", parent_id="p", created=T0 + 2), waiting("p", 1, "o2", epoch, "child")),
        start_child(wf("k3", parent_id="p", created=T0 + 3), entry("p", 0, "o1", epoch)),
    ]
    assert store.write(ops) == [True, False, False]  # k2: not the owner; k3: seq 0 is taken
    assert store.get_workflow("k2") is None and store.get_workflow("k3") is None
    (k1,) = store.list_children("p")
    assert k1.id == "k1" and k1.parent_id == "p" and k1.parent_seq == 0
    assert k1.status is WorkflowStatus.PENDING and k1.owner is None
    (e,) = store.get_journal("p")
    assert (e.seq, e.kind, e.status) == (0, "child", "waiting")
    # a child id that exists: the entry is recorded, the existing workflow left as it was
    store.create_workflow(wf("k0", name="other", created=T0 - 5))
    again = start_child(
        wf("k0", parent_id="p", created=T0 + 9), waiting("p", 1, "o1", epoch, "child")
    )
    assert store.write([again]) == [True]
    k0 = store.get_workflow("k0")
    assert k0 is not None and k0.parent_id is None and k0.name == "other"
    assert [e.seq for e in store.get_journal("p")] == [0, 1]
    # children are listed oldest first, descendants of others left out
    store.create_workflow(wf("k4", parent_id="p", created=T0 + 0.5))
    store.create_workflow(wf("g1", parent_id="k1", created=T0))
    assert [c.id for c in store.list_children("p")] == ["k4", "k1"]
    assert [c.id for c in store.list_children("k1")] == ["g1"]
    assert store.list_children("missing") == []


def test_a_finished_child_wakes_its_parent_and_is_loaded_by_the_next_claim(store: Store) -> None:
    epoch = started(store, "p")
    child = wf("k", parent_id="p", parent_seq=0)
    assert store.write([
        start_child(child, waiting("p", 0, "o1", epoch, "child", "k")),
        Park("p", "o1", epoch, FAR_FUTURE, T0, child_ids=["k"]),
    ]) == [True, True]  # fmt: skip
    assert store.claim("o1", ["w"], T0 + 1, 60.0, 10)[0].record.id == "k"
    p = store.get_workflow("p")
    assert p is not None and p.wake_at == FAR_FUTURE
    (k,) = store.list_children("p")
    store.write([FinishWorkflow("k", "o1", k.epoch, WorkflowStatus.COMPLETED, '"r"', None, T0 + 2)])
    p = store.get_workflow("p")
    assert p is not None and p.wake_at == T0 + 2
    (c,) = store.claim("o2", ["w"], T0 + 2, 60.0, 10)
    assert c.record.id == "p" and c.record.epoch == epoch + 1
    assert [(k.id, k.status, k.output) for k in c.children] == [
        ("k", WorkflowStatus.COMPLETED, '"r"')
    ]
    assert [k.finished_at for k in c.children] == [T0 + 2]
    assert [e.kind for e in c.journal] == ["child"]


def test_next_wake_at_is_the_earliest_unowned_wake(store: Store) -> None:
    assert store.next_wake_at(["w"]) is None
    store.create_workflow(wf("later", wake_at=T0 + 50))
    store.create_workflow(wf("other", name="x", wake_at=T0 + 5))
    assert store.next_wake_at(["w"]) == T0 + 50
    assert store.next_wake_at(["w", "x"]) == T0 + 5
    assert store.next_wake_at([]) is None
    store.create_workflow(wf("now"))
    assert store.next_wake_at(["w"]) == 0  # runnable now
    (c,) = store.claim("o1", ["w"], T0, 60.0, 1)
    assert c.record.id == "now" and store.next_wake_at(["w"]) == T0 + 50  # owned: left out
    # parked with no timer: only an event wakes it; with a timer: its time
    store.write([Park("now", "o1", c.record.epoch, FAR_FUTURE, T0, ["go"])])
    assert store.next_wake_at(["w"]) == T0 + 50
    store.send_event("now", "go", None, None, T0 + 1)
    assert store.next_wake_at(["w"]) == T0 + 1
    (c,) = store.claim("o1", ["w"], T0 + 1, 60.0, 1)
    store.write([Park("now", "o1", c.record.epoch, T0 + 20, T0 + 1)])
    assert store.next_wake_at(["w"]) == T0 + 20
    (c,) = store.claim("o1", ["w"], T0 + 20, 60.0, 1)
    store.write([FinishWorkflow("now", "o1", c.record.epoch, WorkflowStatus.COMPLETED, "1", None,
                                T0)])  # fmt: skip
    assert store.next_wake_at(["w"]) == T0 + 50  # finished: left out
    assert store.suspend("later", T0)
    assert store.next_wake_at(["w"]) is None  # suspended: not runnable


def test_next_wake_at_by_queue_leaves_out_pending_work_of_limited_queues(store: Store) -> None:
    store.create_workflow(wf("free", queue="fast", wake_at=T0 + 30))
    store.create_workflow(wf("limited", queue="slow", wake_at=T0 + 10))
    store.create_workflow(wf("elsewhere", queue="misc", wake_at=T0 + 1))
    fast, slow = QueueClaim("fast"), QueueClaim("slow", concurrency=1)
    assert store.next_wake_at(["w"], [fast, slow]) == T0 + 30  # "limited" waits for admission
    assert store.next_wake_at(["w"], [slow]) is None
    assert store.next_wake_at(["w"]) == T0 + 1
    # admitted (running) workflows of a limited queue count with their own time
    (c,) = store.claim("o1", ["w"], T0 + 10, 60.0, 10, [slow])
    assert c.record.id == "limited"
    store.write([Park("limited", "o1", c.record.epoch, T0 + 20, T0 + 10)])
    assert store.next_wake_at(["w"], [fast, slow]) == T0 + 20
    assert store.next_wake_at(["w"], [slow]) == T0 + 20
