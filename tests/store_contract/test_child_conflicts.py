"""The Store contract: a child start whose id another workflow holds records the start's
conflict entry instead of waiting for a child that is not the parent's; the same parent's child
started again is no conflict."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from durably.storage.base import (
    FinishWorkflow,
    JournalEntry,
    RecordEntry,
    Store,
    WorkflowStatus,
)

from .helpers import ROUNDS, T0, entry, held_by, own, race, start_child, started, waiting, wf


@pytest.mark.parametrize(
    ("holder", "name", "parent"),
    [
        ("top", "w", None),  # a top-level workflow of the same name
        ("named", "other", None),  # a workflow of another name
        ("kid_of_q", "w", "q"),  # another parent's child
        ("p", "w", None),  # the parent itself
    ],
)
def test_a_child_id_held_by_another_workflow_records_the_conflict(
    store: Store, holder: str, name: str, parent: str | None
) -> None:
    epoch = started(store, "p", "q")
    if holder != "p":
        store.create_workflow(wf(holder, name=name, parent_id=parent, created=T0 - 5))
    before = store.get_workflow(holder)
    op = start_child(
        wf(holder, parent_id="p", parent_seq=0), waiting("p", 0, "o1", epoch, "child", "w")
    )
    assert store.write([op]) == [True]
    assert op.conflicted is not None
    (e,) = store.get_journal("p")
    assert (e.seq, e.kind, e.name, e.status) == (0, "child", "w", "failed")
    assert e.error == held_by(name, parent) == op.conflicted.error
    assert store.get_workflow(holder) == before  # the holder is left as it was
    assert store.list_children("p") == []
    # the failure is journaled: the same start again (a retried commit) is refused, not retried
    again = start_child(wf(holder, parent_id="p"), waiting("p", 0, "o1", epoch, "child", "w"))
    assert store.write([again]) == [False] and again.conflicted is None
    assert store.get_journal("p") == [e]


def test_the_same_parents_child_started_again_is_no_conflict(store: Store) -> None:
    epoch = started(store, "p")
    kid = wf("k", parent_id="p", parent_seq=0)
    first = start_child(kid, waiting("p", 0, "o1", epoch, "child", "w"))
    assert store.write([first]) == [True] and first.conflicted is None
    # a retried commit of the same start, and a second start of that id by the same parent
    retried = start_child(kid, waiting("p", 0, "o1", epoch, "child", "w"))
    second = start_child(
        wf("k", parent_id="p", parent_seq=1), waiting("p", 1, "o1", epoch, "child", "w")
    )
    assert store.write([retried, second]) == [True, True]
    assert retried.conflicted is None and second.conflicted is None
    assert [(e.seq, e.status) for e in store.get_journal("p")] == [(0, "waiting"), (1, "waiting")]
    (k,) = store.list_children("p")
    assert (k.id, k.parent_seq, k.status) == ("k", 0, WorkflowStatus.PENDING)
    # the same parent, another workflow name on that id: a conflict
    other = start_child(
        wf("k", name="x", parent_id="p"), waiting("p", 2, "o1", epoch, "child", "x")
    )
    assert store.write([other]) == [True] and other.conflicted is not None
    assert store.get_journal("p")[2].error == held_by("w", "p")


def test_a_conflicting_start_in_a_batch_fails_alone(store: Store) -> None:
    epoch = started(store, "p", "a", "b")
    store.create_workflow(wf("taken", name="other", created=T0 - 5))
    conflicting = start_child(
        wf("taken", parent_id="p"), waiting("p", 0, "o1", epoch, "child", "w")
    )
    fresh = start_child(
        wf("free", parent_id="p", parent_seq=1), waiting("p", 1, "o1", epoch, "child", "w")
    )
    stale = start_child(wf("stale", parent_id="b"), waiting("b", 0, "o1", epoch + 1, "child", "w"))
    ops = [
        RecordEntry(entry("a", 0, "o1", epoch)),
        conflicting,
        fresh,
        stale,  # a lost lease: refused, whatever holds its id
        FinishWorkflow("a", "o1", epoch, WorkflowStatus.COMPLETED, '"a"', None, T0),
    ]
    assert store.write(ops) == [True, True, True, False, True]
    assert conflicting.conflicted is not None and fresh.conflicted is None
    assert stale.conflicted is None
    assert [(e.seq, e.status) for e in store.get_journal("p")] == [(0, "failed"), (1, "waiting")]
    assert [c.id for c in store.list_children("p")] == ["free"]
    assert store.get_workflow("stale") is None and store.get_journal("b") == []
    a = store.get_workflow("a")
    assert a is not None and a.status is WorkflowStatus.COMPLETED


def test_two_parents_racing_to_start_one_child_id_start_it_once(store: Store) -> None:
    epochs = own(store, ["p", "q"])

    def start(parent: str) -> Callable[[int], tuple[bool, JournalEntry | None]]:
        def go(i: int) -> tuple[bool, JournalEntry | None]:
            kid = wf(f"x{i:02}", parent_id=parent, parent_seq=i)
            op = start_child(kid, waiting(parent, i, "o1", epochs[parent], "child", "w"))
            (applied,) = store.write([op])
            return applied, op.conflicted

        return go

    for i, (p, q) in enumerate(race(ROUNDS, start("p"), start("q"))):
        assert p[0] and q[0], i
        assert (p[1] is None) != (q[1] is None), i  # exactly one started it
        winner, loser = ("p", q[1]) if p[1] is None else ("q", p[1])
        assert loser is not None and loser.error == held_by("w", winner)
        rec = store.get_workflow(f"x{i:02}")
        assert rec is not None and rec.parent_id == winner
