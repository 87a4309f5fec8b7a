"""The Store contract: selections by filter (select_workflow_ids, count_workflows,
expired_workflows) and the purge of many workflows (purge_workflows), which keeps a child
whose parent has not finished and is safe to run from two stores at once."""

from __future__ import annotations

import threading
from dataclasses import replace

from durably.storage.base import (
    RecordEntry,
    SetState,
    Store,
    WorkflowSelection,
    WorkflowStatus,
)

from .conftest import Opener
from .helpers import T0, entry, wf

DONE = WorkflowStatus.COMPLETED


def finished(
    store: Store, wid: str, at: float, status: WorkflowStatus = DONE, **kw: object
) -> None:
    rec = replace(wf(wid, **kw), status=status, finished_at=at, epoch=1)  # type: ignore[arg-type]
    store.create_workflow(rec)


def test_selections_by_every_criterion_page_in_id_order(store: Store) -> None:
    finished(store, "a-1", T0 + 10, name="x", queue="q1", version="v1")
    finished(store, "a-2", T0 + 20, WorkflowStatus.FAILED, name="y", version="v2")
    finished(store, "b-1", T0 + 30, WorkflowStatus.CANCELLED, name="x", created=T0 + 5)
    store.create_workflow(wf("b-2", name="x", created=T0 + 6))

    def ids(**kw: object) -> list[str]:
        sel = WorkflowSelection(**kw)  # type: ignore[arg-type]
        found = store.select_workflow_ids(sel, after=None, limit=100)
        assert store.count_workflows(sel) == len(found)
        return found

    assert ids() == ["a-1", "a-2", "b-1", "b-2"]
    assert ids(statuses=(DONE, WorkflowStatus.FAILED)) == ["a-1", "a-2"]
    assert ids(names=("x",)) == ["a-1", "b-1", "b-2"]
    assert ids(exclude_names=("x",)) == ["a-2"]
    assert ids(version="v2") == ["a-2"]
    assert ids(queue="q1") == ["a-1"]
    assert ids(id_prefix="b-") == ["b-1", "b-2"]
    assert ids(created_after=T0 + 5) == ["b-1", "b-2"]
    assert ids(created_before=T0 + 6) == ["a-1", "a-2", "b-1"]
    assert ids(finished_after=T0 + 20, finished_before=T0 + 30) == ["a-2"]
    assert ids(names=("x",), id_prefix="a") == ["a-1"]
    # keyset pages: each id once
    sel = WorkflowSelection()
    page = store.select_workflow_ids(sel, after=None, limit=3)
    assert page == ["a-1", "a-2", "b-1"]
    assert store.select_workflow_ids(sel, after=page[-1], limit=3) == ["b-2"]
    # expired: oldest finish first, keyset on (finished_at, id); unfinished never
    old = store.expired_workflows(WorkflowSelection(finished_before=T0 + 25), after=None, limit=1)
    assert old == [(T0 + 10, "a-1")]
    rest = store.expired_workflows(WorkflowSelection(), after=old[-1], limit=10)
    assert rest == [(T0 + 20, "a-2"), (T0 + 30, "b-1")]


def test_purge_workflows_deletes_finished_ones_with_their_rows_and_keeps_the_rest(
    store: Store,
) -> None:
    store.create_workflow(wf("run"))
    (c,) = store.claim("o1", ["w"], T0, 60.0, 10)
    epoch = c.record.epoch
    store.write([RecordEntry(entry("run", 0, "o1", epoch)), SetState("run", "o1", epoch, "k",
                 '"v"', 0, T0)])  # fmt: skip
    for n in range(5):
        finished(store, f"f{n}", T0)
    finished(store, "stuck", T0, WorkflowStatus.NEEDS_ATTENTION)
    assert store.purge_workflows(["f0", "f1", "run", "nope", "f1"]) == ["f0", "f1"]
    assert store.get_workflow("f0") is None
    assert store.get_journal("run") and store.get_state("run") == {"k": '"v"'}
    assert store.purge_workflows(["f0"]) == []  # gone already: nothing to do
    assert store.purge_workflows([]) == []
    # the single purge is the same path
    assert store.purge("f2") is True and store.purge("run") is False
    assert store.purge("stuck") is True  # needs_attention has ended: purgeable by hand


def test_a_child_of_an_unfinished_parent_is_kept_until_the_parent_ends(store: Store) -> None:
    store.create_workflow(wf("parent"))
    finished(store, "kid", T0, parent_id="parent")
    finished(store, "orphan", T0, parent_id="gone")  # its parent was purged: no one waits
    assert store.purge_workflows(["kid", "orphan"]) == ["orphan"]
    assert store.purge("kid") is False
    store.terminate("parent", '{"message": "x"}', T0 + 1)
    assert store.purge_workflows(["kid"]) == ["kid"]


def test_two_stores_purging_the_same_ids_at_once_delete_each_once(open_store: Opener) -> None:
    first = open_store()
    first.migrate()
    second = open_store()
    ids = [f"w{n:04d}" for n in range(400)]
    for wid in ids:
        finished(first, wid, T0)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def purge(store: Store, order: list[str]) -> None:
        try:
            got: list[str] = []
            for i in range(0, len(order), 50):
                got += store.purge_workflows(order[i : i + 50])
            results.append(got)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=purge, args=(first, ids)),
        threading.Thread(target=purge, args=(second, ids[::-1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results[0] + results[1]) == ids  # each deleted exactly once
    assert first.count_workflows(WorkflowSelection()) == 0
