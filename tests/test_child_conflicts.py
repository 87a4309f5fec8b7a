"""End to end, on each backend: a child started with an id another workflow holds fails in the
parent (which catches it and goes on) instead of waiting forever, and replays the same way."""

from __future__ import annotations

from typing import Any

import pytest

import durably
from durably import WorkflowStatus
from durably.errors import WorkflowIdConflictError, WorkflowNotFoundError
from tests.test_long_lived import FAST, wait_for


def build(db: str) -> tuple[durably.App, Any, Any, Any]:
    app = durably.App(db, worker_options=FAST)

    @app.workflow()
    async def kid(n: int) -> int:
        return n

    @app.workflow()
    async def other(n: int) -> int:
        return -n

    @app.workflow()
    async def parent(child_id: str, then_wait: bool = False) -> list[Any]:
        try:
            return ["started", await durably.start_child(kid, 1, id=child_id)]
        except durably.ChildWorkflowFailed as exc:
            assert isinstance(exc.__cause__, WorkflowIdConflictError)
            outcome = [exc.status, exc.child_id, exc.__cause__.existing_name, str(exc)]
        if then_wait:
            durably.set_state("caught", outcome[0])
            outcome.append(await durably.wait_event("go"))
        return outcome

    return app, kid, other, parent


def test_a_child_id_held_by_another_workflow_fails_the_start_and_the_parent_goes_on(
    db_url: str,
) -> None:
    app, kid, other, parent = build(db_url)
    with app:
        assert app.start(kid, 5, id="top").result(timeout=10) == 5  # a top-level workflow
        assert app.start(other, 5, id="named").result(timeout=10) == -5  # another name
        first = app.start(parent, "shared", id="first")  # "shared": a child of "first"
        assert first.result(timeout=10) == ["started", 1]
        results = {
            taken: app.start(parent, taken, id=f"p-{taken}").result(timeout=10)
            for taken in ("top", "named", "shared")
        }
        again = app.start(parent, "p-again", id="p-again").result(timeout=10)  # itself
    holders = {"top": "kid", "named": "other", "shared": "kid"}
    for taken, (status, child_id, existing, message) in results.items():
        assert (status, child_id, existing) == ("not_started", taken, holders[taken])
        assert f"{taken!r}" in message and "omit id=" in message
        assert app.handle(f"p-{taken}").children() == []
    assert "a child of workflow 'first'" in results["shared"][3]
    assert again[:3] == ["not_started", "p-again", "parent"]
    for taken, name in holders.items():  # the holders were left as they were
        info = app.handle(taken).info()
        assert info.name == name and info.status is WorkflowStatus.COMPLETED
    assert app.handle("shared").info().parent_id == "first"
    (call,) = app.handle("p-top").history()
    assert (call.kind, call.status) == ("child", "failed")
    app.close()


def test_the_failed_start_replays_the_same_after_a_restart_with_the_id_free(db_url: str) -> None:
    first, kid, _, parent = build(db_url)
    with first:
        assert first.start(kid, 5, id="taken").result(timeout=10) == 5
        h = first.start(parent, "taken", True, id="p")
        wait_for(lambda: h.state("caught") == "not_started")
    first.close()
    second, *_ = build(db_url)
    second.purge("taken")  # the id is free now: a second attempt would start the child
    with second:
        second.send_event("p", "go", "later")
        status, child_id, existing, _message, event = second.handle("p").result(timeout=10)
    second.close()
    assert (status, child_id, existing, event) == ("not_started", "taken", "kid", "later")
    assert second.handle("p").children() == []
    with pytest.raises(WorkflowNotFoundError):
        second.handle("taken").info()
