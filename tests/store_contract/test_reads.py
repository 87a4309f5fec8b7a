"""The Store contract: what reads return whole and what lists cut to previews, and orders
that must not depend on the database's collation."""

from __future__ import annotations

from durably.storage.base import PREVIEW_CHARS, FinishWorkflow, Store, WorkerInfo, WorkflowStatus

from .helpers import T0, started, wf


def test_lists_carry_previews_and_get_workflow_the_whole_payloads(store: Store) -> None:
    long_in = '"' + "é" * 3 * PREVIEW_CHARS + '"'  # characters, not bytes, are counted
    long_out = '"' + "x" * 5 * PREVIEW_CHARS + '"'
    exact = "y" * PREVIEW_CHARS
    a = wf("a", name="other")
    a.input = long_in
    store.create_workflow(a)
    b = wf("b", name="other", created=T0 + 1)
    b.input = exact
    store.create_workflow(b)
    epoch = started(store, "c")
    err = "{" + "e" * 2 * PREVIEW_CHARS + "}"
    store.write([FinishWorkflow("c", "o1", epoch, WorkflowStatus.FAILED, long_out, err, T0)])
    listed = {r.id: r for r in store.list_workflows()}
    assert listed["a"].input == long_in[: PREVIEW_CHARS + 1]  # one more: the value was cut
    assert listed["b"].input == exact  # not cut
    assert listed["c"].output == long_out[: PREVIEW_CHARS + 1]
    assert listed["c"].error == err[: PREVIEW_CHARS + 1]
    whole_a, whole_c = store.get_workflow("a"), store.get_workflow("c")
    assert whole_a is not None and whole_a.input == long_in
    assert whole_c is not None and whole_c.output == long_out and whole_c.error == err
    found = store.finished_workflows(["c"])["c"]
    assert found is not None and found.output == long_out  # a result is read whole


def test_children_of_one_instant_are_ordered_by_id_bytewise(store: Store) -> None:
    for kid in ("b", "B", "a", "A1"):
        store.create_workflow(wf(kid, parent_id="p"))
    assert [c.id for c in store.list_children("p")] == ["A1", "B", "a", "b"]


def test_register_worker_replaces_a_registration(store: Store) -> None:
    store.register_worker(WorkerInfo("h:1:a", "h", 1, T0, T0, ["w"], ["default"]))
    store.register_worker(WorkerInfo("h:1:a", "h2", 7, T0 + 1, T0 + 2, ["v", "x"], ["gpu"]))
    (info,) = store.list_workers()
    assert (info.hostname, info.pid, info.started_at, info.heartbeat_at) == (
        "h2",
        7,
        T0 + 1,
        T0 + 2,
    )
    assert info.workflows == ["v", "x"] and info.queues == ["gpu"]
    store.heartbeat_worker("gone", T0)  # an unknown worker: nothing registered
    store.remove_worker("gone")
    assert [w.id for w in store.list_workers()] == ["h:1:a"]
