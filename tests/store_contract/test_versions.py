"""The Store contract for versions: the claim's version filter (and ``next_wake_at``'s), the
counts per version, and moving workflows to another version (fenced against their holders)."""

from __future__ import annotations

from durably.storage.base import (
    FinishWorkflow,
    QueueClaim,
    RecordEntry,
    Store,
    VersionClaim,
    WorkerInfo,
    WorkflowStatus,
)

from .helpers import T0, entry, wf


def _claimed(store: Store, owner: str, version: VersionClaim | None) -> list[str]:
    return sorted(c.record.id for c in store.claim(owner, ["w", "up"], T0, 60.0, 50, None, version))


def _seed(store: Store) -> None:
    store.create_workflow(wf("a1", version="A"))
    store.create_workflow(wf("b1", version="B"))
    store.create_workflow(wf("n1"))
    store.create_workflow(wf("up-a", name="up", version="A"))


def test_a_versioned_claim_takes_its_version_unversioned_and_its_auto_upgrade_names(
    store: Store,
) -> None:
    _seed(store)
    assert store.next_wake_at(["w", "up"], None, VersionClaim("C")) == 0  # n1 is runnable
    assert _claimed(store, "wb", VersionClaim("B", ("up",))) == ["b1", "n1", "up-a"]
    assert store.next_wake_at(["w", "up"], None, VersionClaim("B")) is None  # a1 is A's only
    assert _claimed(store, "wc", VersionClaim("C")) == []
    assert _claimed(store, "wa", VersionClaim("A")) == ["a1"]


def test_an_unversioned_claim_takes_every_version(store: Store) -> None:
    _seed(store)
    assert _claimed(store, "w0", None) == ["a1", "b1", "n1", "up-a"]


def test_the_version_filter_holds_in_queue_claims_too(store: Store) -> None:
    _seed(store)
    queues = [QueueClaim("default", concurrency=10)]
    got = store.claim("wb", ["w"], T0, 60.0, 50, queues, VersionClaim("B"))
    assert sorted(c.record.id for c in got) == ["b1", "n1"]


def test_workers_register_their_version(store: Store) -> None:
    store.register_worker(
        WorkerInfo("x", "h", 1, T0, T0, ["w", "up"], ["default"], "2026.12.1", ["up"])
    )
    store.register_worker(WorkerInfo("y", "h", 2, T0, T0, ["w"], ["default"]))
    got = {w.id: (w.version, w.auto_upgrade) for w in store.list_workers()}
    assert got == {"x": ("2026.12.1", ["up"]), "y": (None, [])}


def test_count_versions_counts_unfinished_workflows_by_status(store: Store) -> None:
    _seed(store)
    store.create_workflow(wf("a2", version="A"))
    (claim,) = store.claim("wa", ["w"], T0, 60.0, 1, None, VersionClaim("A"))
    done = FinishWorkflow(claim.record.id, "wa", 1, WorkflowStatus.COMPLETED, "1", None, T0)
    assert store.write([done]) == [True]
    P = WorkflowStatus.PENDING
    assert store.count_versions() == {"A": {P: 2}, "B": {P: 1}, None: {P: 1}}


def test_move_version_moves_unfinished_workflows_and_revokes_their_leases(store: Store) -> None:
    _seed(store)
    store.create_workflow(wf("a-done", version="A", created=T0 - 1))
    (held,) = store.claim("wa", ["w"], T0, 60.0, 1, None, VersionClaim("A"))
    assert held.record.id == "a-done"
    done = FinishWorkflow("a-done", "wa", 1, WorkflowStatus.COMPLETED, "1", None, T0)
    assert store.write([done]) == [True]
    (held,) = store.claim("wa", ["w"], T0, 60.0, 1, None, VersionClaim("A"))
    assert held.record.id == "a1"
    assert store.move_version("A", "B", T0 + 1) == ["a1", "up-a"]
    a1, finished = store.get_workflow("a1"), store.get_workflow("a-done")
    assert a1 is not None and (a1.version, a1.owner, a1.epoch) == ("B", None, 2)
    assert finished is not None and finished.version == "A"  # finished ones stay
    # the old holder's writes are refused: it lost the lease
    assert store.write([RecordEntry(entry("a1", 0, "wa", 1))]) == [False]
    assert _claimed(store, "wa2", VersionClaim("A")) == ["n1"]
    assert store.move_version("A", "B", T0 + 2) == []


def test_move_version_with_only_moves_those_whose_journal_is_as_checked(store: Store) -> None:
    for wid in ("a1", "a2", "a3"):
        store.create_workflow(wf(wid, version="A"))
    claims = store.claim("wa", ["w"], T0, 60.0, 10, None, VersionClaim("A"))
    assert len(claims) == 3
    journal = [RecordEntry(entry("a1", 0, "wa", 1)), RecordEntry(entry("a2", 0, "wa", 1))]
    assert store.write(journal) == [True, True]
    # a1 was checked with its 1 entry; a2 grew since (checked at 0); a3 is not asked for
    assert store.move_version("A", "B", T0, only={"a1": 1, "a2": 0}) == ["a1"]
    versions = {i: getattr(store.get_workflow(i), "version", None) for i in ("a1", "a2", "a3")}
    assert versions == {"a1": "B", "a2": "A", "a3": "A"}
