"""Pure engine tests of child starts whose id another workflow holds: the start fails in the
parent, deterministically, from the journal (a fake runtime plays the store's answer)."""

from __future__ import annotations

from typing import Any

import pytest

import durably
from durably.errors import WorkflowIdConflictError
from durably.storage.base import Park, StartChild
from tests.fakes import FakeRuntime, output, run_once

app = durably.App("sqlite:///never-opened.db")


@app.workflow()
async def kid(n: int) -> int:
    return n


@app.workflow()
async def adopter(child_id: str) -> Any:
    handle = durably.start_child(kid, 3, id=child_id)
    try:
        return await handle
    except durably.ChildWorkflowFailed as exc:
        cause = exc.__cause__
        assert isinstance(cause, WorkflowIdConflictError)
        return [exc.status, exc.child_id, cause.workflow_id, cause.existing_name, str(exc)]


@app.workflow()
def sync_adopter(child_id: str) -> Any:
    try:
        return durably.start_child(kid, 3, id=child_id).result()
    except durably.ChildWorkflowFailed as exc:
        return [exc.status, exc.child_id]


def ops(rt: FakeRuntime, kind: type) -> list[Any]:
    return [op for op in rt.written if isinstance(op, kind)]


def holding(child_id: str, name: str, parent: str | None, later: bool = False) -> Any:
    def setup(rt: FakeRuntime) -> None:
        rt.held[child_id] = (name, parent)
        rt.ack_later = later

    return setup


@pytest.mark.parametrize(
    ("name", "parent", "who"),
    [
        ("kid", None, "a top-level workflow named 'kid'"),
        ("other", None, "a top-level workflow named 'other'"),
        ("kid", "wf-9", "a child of workflow 'wf-9' named 'kid'"),
        ("other", "wf-1", "another child of this workflow named 'other'"),
    ],
)
def test_a_child_id_held_by_another_workflow_fails_the_start_in_the_parent(
    name: str, parent: str | None, who: str
) -> None:
    outcome, rt, _ = run_once(adopter, "taken", setup=holding("taken", name, parent))
    status, child_id, cause_id, existing, message = output(outcome)
    assert (status, child_id, cause_id, existing) == ("not_started", "taken", "taken", name)
    assert "'taken'" in message and who in message and "'wf-1'" in message
    assert "another id" in message and "omit id=" in message
    (start,) = ops(rt, StartChild)
    assert start.conflicted is not None and start.conflicted.status == "failed"
    assert ops(rt, Park) == []  # it did not wait for a child that is not its own


def test_the_failed_start_replays_from_the_journal_without_a_second_attempt() -> None:
    first, rt, _ = run_once(adopter, "taken", setup=holding("taken", "other", None))
    (start,) = ops(rt, StartChild)
    journal = [start.conflicted]
    # replayed after a crash, with the id free by now: the same failure, nothing started
    again, rt, _ = run_once(adopter, "taken", journal=journal, epoch=2)
    assert output(again) == output(first)
    assert ops(rt, StartChild) == [] and rt.entries() == []


def test_a_sync_workflow_catches_the_failed_start() -> None:
    outcome, _, _ = run_once(sync_adopter, "taken", setup=holding("taken", "kid", None))
    assert output(outcome) == ["not_started", "taken"]


def test_the_parent_is_not_parked_before_the_store_answered_its_child_start() -> None:
    # the store's answer comes after the parent blocked on the child (eviction threshold 0):
    # parking first would leave it waiting forever for a child that is not its own
    setup = holding("taken", "other", None, later=True)
    outcome, rt, _ = run_once(adopter, "taken", setup=setup)
    assert output(outcome)[0] == "not_started"
    assert ops(rt, Park) == []


def test_its_own_child_started_before_is_no_conflict() -> None:
    # a replay or a retried commit finds the child this parent started at that call
    outcome, rt, _ = run_once(adopter, "mine", setup=holding("mine", "kid", "wf-1", later=True))
    assert outcome.parked
    (start,) = ops(rt, StartChild)
    assert start.conflicted is None
    (park,) = ops(rt, Park)
    assert park.child_ids == ["mine"]
