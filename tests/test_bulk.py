"""Bulk operations by filter from Python (``App.bulk``): each filter kind, each action as its
single command does it, dry runs, limits and cursors, interrupted runs re-run, skipped counts,
and bad filters refused before anything is done."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

import durably
from durably import BulkFilter
from durably.errors import ConfigurationError
from durably.storage.base import WorkflowRecord, WorkflowStatus

T = 1_700_000_000.0
S = WorkflowStatus


def put(app: durably.App, wid: str, status: WorkflowStatus = S.PENDING, **kw: Any) -> None:
    """A workflow as a client left it (no worker needed: pending ones are cancelled,
    terminated and suspended at once)."""
    finished = status in (S.COMPLETED, S.FAILED, S.CANCELLED, S.TERMINATED)
    fields: dict[str, Any] = {
        "name": "w",
        "created_at": T,
        "finished_at": T + 5 if finished else None,
    }
    fields.update(kw)
    created = fields.pop("created_at")
    app.store.create_workflow(WorkflowRecord(
        id=wid, status=status, input="[]", created_at=created, updated_at=created, **fields,
    ))  # fmt: skip


def statuses(app: durably.App, *ids: str) -> list[str]:
    out = []
    for wid in ids:
        rec = app.store.get_workflow(wid)
        out.append("gone" if rec is None else rec.status.value)
    return out


@pytest.fixture
def app(db_url: str) -> Any:
    a = durably.App(db_url)
    yield a
    a.close()


def test_each_action_by_each_kind_of_filter(app: durably.App) -> None:
    put(app, "a-1", name="alpha")
    put(app, "a-2", name="alpha")
    put(app, "b-1", name="beta", version="v1")
    put(app, "b-2", name="beta", version="v2", queue="slow")
    put(app, "f-1", S.FAILED, created_at=T + 100)
    put(app, "f-2", S.FAILED, created_at=T + 200)
    put(app, "c-1", S.COMPLETED, finished_at=T + 10)
    put(app, "c-2", S.COMPLETED, finished_at=T + 20)

    r = app.bulk("cancel", BulkFilter(name="alpha"))
    assert (r.matched, r.processed, r.skipped) == (2, 2, 0)
    assert statuses(app, "a-1", "a-2") == ["cancelled", "cancelled"]
    r = app.bulk("terminate", BulkFilter(version="v1"), reason="bad release")
    assert r.processed == 1 and statuses(app, "b-1", "b-2") == ["terminated", "pending"]
    r = app.bulk("suspend", BulkFilter(queue="slow"))
    assert r.processed == 1 and statuses(app, "b-2") == ["suspended"]
    r = app.bulk("resume", BulkFilter(status="suspended", id_prefix="b-"))
    assert r.processed == 1 and statuses(app, "b-2") == ["running"]
    created = datetime.fromtimestamp(T + 150, UTC)
    r = app.bulk("retry", BulkFilter(status=S.FAILED, created_after=created))
    assert r.processed == 1 and statuses(app, "f-1", "f-2") == ["failed", "running"]
    r = app.bulk("retry", BulkFilter(created_before=T + 150, status=["failed", "completed"]))
    assert (r.processed, r.skipped) == (1, 2)  # f-1; completed c-1, c-2 cannot retry: skipped
    assert statuses(app, "f-1") == ["running"]
    r = app.bulk("purge", BulkFilter(finished_after=T + 15, finished_before=T + 30))
    assert r.processed == 1 and statuses(app, "c-1", "c-2") == ["completed", "gone"]
    # a status that no longer allows the action is skipped, not an error
    r = app.bulk("cancel", BulkFilter(name="alpha"))
    assert (r.matched, r.processed, r.skipped) == (2, 0, 2)
    r = app.bulk("purge", BulkFilter(all=True))
    assert (r.matched, r.processed, r.skipped) == (7, 4, 3)  # b-2, f-1, f-2 run again
    assert sorted(w.id for w in app.list_workflows()) == ["b-2", "f-1", "f-2"]


def test_a_dry_run_counts_and_samples_and_changes_nothing(app: durably.App) -> None:
    for n in range(15):
        put(app, f"x-{n:02d}", name="x")
    put(app, "y-1", name="y")
    r = app.bulk("cancel", BulkFilter(name="x"), dry_run=True)
    assert r.dry_run and r.matched == 15 and r.processed == 0
    assert r.sample == [f"x-{n:02d}" for n in range(10)]
    assert set(statuses(app, *(f"x-{n:02d}" for n in range(15)))) == {"pending"}
    twin = asyncio.run(app.bulk_async("cancel", BulkFilter(name="y"), dry_run=True))
    assert (twin.matched, twin.sample) == (1, ["y-1"])


def test_an_interrupted_run_can_be_run_again_and_acts_on_what_is_left(app: durably.App) -> None:
    ids = [f"w-{n:02d}" for n in range(12)]
    for wid in ids:
        put(app, wid)
    seen: list[tuple[int, int]] = []

    def crash(result: durably.BulkResult) -> None:
        seen.append((result.matched, result.processed))
        raise KeyboardInterrupt  # Ctrl-C after the first batch

    with pytest.raises(KeyboardInterrupt):
        app.bulk("cancel", BulkFilter(name="w"), batch_size=5, progress=crash)
    assert seen == [(5, 5)]
    assert statuses(app, *ids).count("cancelled") == 5  # each done whole, none half-done
    progress: list[int] = []
    r = app.bulk(
        "cancel", BulkFilter(name="w"), batch_size=5, progress=lambda x: progress.append(x.matched)
    )
    assert (r.matched, r.processed, r.skipped) == (12, 7, 5)
    assert progress == [5, 10, 12]
    assert set(statuses(app, *ids)) == {"cancelled"}


def test_a_limit_stops_with_a_cursor_to_go_on_from(app: durably.App) -> None:
    for n in range(7):
        put(app, f"p-{n}", S.COMPLETED)
    first = app.bulk("purge", BulkFilter(id_prefix="p-"), limit=3, batch_size=2)
    assert (first.processed, first.cursor) == (3, "p-2")
    rest = app.bulk("purge", BulkFilter(id_prefix="p-"), after=first.cursor)
    assert (rest.processed, rest.cursor) == (4, None)
    assert app.list_workflows() == []


def test_a_bulk_cancel_reaches_running_workflows_as_a_single_cancel_does(db_url: str) -> None:
    app = durably.App(db_url)

    @app.workflow
    def waits(n: int) -> None:
        try:
            durably.wait_event_sync("go")
        finally:
            durably.set_state("cleaned", True)  # its finally runs, as with app.cancel

    with app:
        handles = [app.start(waits, n, id=f"run-{n}") for n in range(3)]
        deadline = time.monotonic() + 30
        while any(h.status() is not S.RUNNING for h in handles):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        r = app.bulk("cancel", BulkFilter(status="running", name="waits"))
        assert r.processed == 3
        for h in handles:
            with pytest.raises(durably.WorkflowFailedError):
                h.result(timeout=30)
            assert h.status() is S.CANCELLED and h.state("cleaned") is True
    app.close()


@pytest.mark.parametrize(
    ("action", "flt", "message"),
    [
        ("cancel", BulkFilter(), "at least one filter"),
        ("cancel", BulkFilter(all=False, id_prefix=""), "id_prefix must be a non-empty"),
        ("cancel", BulkFilter(status="bogus"), "unknown status"),
        ("cancel", BulkFilter(created_after="yesterday"), "ISO-8601"),  # type: ignore[arg-type]
        ("cancel", BulkFilter(finished_before=float("nan")), "finite epoch seconds"),
        ("cancel", BulkFilter(queue="bad queue!"), "invalid queue name"),
        ("explode", BulkFilter(all=True), "unknown bulk action"),
    ],
)
def test_bad_filters_are_refused_before_anything_is_done(
    app: durably.App, action: str, flt: BulkFilter, message: str
) -> None:
    put(app, "still")
    with pytest.raises(ConfigurationError, match=message):
        app.bulk(action, flt)  # type: ignore[arg-type]
    assert statuses(app, "still") == ["pending"]


def test_filters_round_trip_through_json() -> None:
    flt = BulkFilter(status=["failed"], name="x", created_after=5.0, all=False)
    assert flt.to_json() == {"status": ["failed"], "name": "x", "created_after": 5.0}
    assert BulkFilter.from_json(flt.to_json()).selection() == flt.selection()
    iso = BulkFilter.from_json({"finished_before": "2026-01-01T00:00:00Z", "name": "x"})
    assert iso.finished_before == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    for bad, message in (
        ([], "JSON object"), ({"colour": 1}, "unknown filter field"), ({"name": 3}, "string"),
        ({"status": [1]}, "list of strings"), ({"all": "yes"}, "true or false"),
        ({"created_after": [1]}, "epoch seconds"), ({}, "at least one filter"),
    ):  # fmt: skip
        with pytest.raises(ConfigurationError, match=message):
            BulkFilter.from_json(bad)


def test_a_child_whose_parent_runs_is_neither_purged_in_bulk_nor_alone(app: durably.App) -> None:
    put(app, "parent")
    put(app, "kid", S.COMPLETED, parent_id="parent")
    r = app.bulk("purge", BulkFilter(status="completed"))
    assert (r.processed, r.skipped) == (0, 1)
    with pytest.raises(durably.WorkflowStateError, match="its parent 'parent' has not finished"):
        app.purge("kid")
    app.terminate("parent")
    assert app.bulk("purge", BulkFilter(status=["completed", "terminated"])).processed == 2
