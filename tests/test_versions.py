"""Versions and routing: an App's version is recorded on the workflows it starts, workers
register theirs, and a workflow started under a version is run only by workers of that version
(pinned) unless its workflow is ``auto_upgrade``; unversioned Apps behave as before.

(The store's version filter and commands: tests/store_contract/test_versions.py.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import durably
from durably.storage.base import VersionClaim, WorkflowStatus

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


def _app(db_url: str, version: str | None, tag: str | None = None, **wf: str) -> durably.App:
    """An App of ``version`` whose workflow ``where`` returns ``tag`` (default: the version),
    and whose ``parent`` starts ``where`` as a child."""
    app = durably.App(db_url, worker_options=FAST, version=version)
    mark = tag if tag is not None else str(version)

    @app.workflow(name="where", **wf)  # type: ignore[call-overload]
    def where() -> str:
        return mark

    @app.workflow(name="parent")
    async def parent() -> str:
        child: str = await where()
        return child

    return app


@pytest.fixture
def apps() -> Iterator[list[durably.App]]:
    made: list[durably.App] = []
    yield made
    for app in made:
        app.close()


def test_the_version_is_given_or_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DURABLY_VERSION", raising=False)
    assert durably.App("sqlite:///:memory:").version is None
    monkeypatch.setenv("DURABLY_VERSION", "env.1")
    assert durably.App("sqlite:///:memory:").version == "env.1"
    assert durably.App("sqlite:///:memory:", version="2026.12.1").version == "2026.12.1"
    monkeypatch.setenv("DURABLY_VERSION", "")
    assert durably.App("sqlite:///:memory:").version is None
    with pytest.raises(durably.ConfigurationError):
        durably.App("sqlite:///:memory:", version="")
    app = durably.App("sqlite:///:memory:")
    with pytest.raises(durably.ConfigurationError, match="auto_upgrade"):
        app.workflow(versioning="sometimes")(lambda: None)  # type: ignore[call-overload]


def test_each_workflow_records_its_version_and_children_inherit_it(
    db_url: str, apps: list[durably.App]
) -> None:
    app = _app(db_url, "2026.12.1")
    apps.append(app)
    with app:
        handle = app.start("parent")
        assert handle.result(timeout=30) == "2026.12.1"
    assert handle.info().version == "2026.12.1"
    (child,) = app.store.list_children(handle.id)
    assert child.version == "2026.12.1"
    listed = {w.id: w.version for w in app.list_workflows()}
    assert listed == {handle.id: "2026.12.1", child.id: "2026.12.1"}
    plain = _app(db_url, None)
    apps.append(plain)
    assert plain.start("where").info().version is None


def test_workers_register_their_version(db_url: str, apps: list[durably.App]) -> None:
    a, plain = _app(db_url, "A"), _app(db_url, None)
    apps += [a, plain]
    with a, plain:
        versions = sorted(str(w.version) for w in a.list_workers())
    assert versions == ["A", "None"]


def test_a_pinned_workflow_runs_only_on_workers_of_its_version(
    db_url: str, apps: list[durably.App]
) -> None:
    a, b, plain = _app(db_url, "A"), _app(db_url, "B"), _app(db_url, None, tag="any")
    apps += [a, b, plain]
    # A's first: a worker of B that claimed by age alone would take them before its own
    old = [a.start("where") for _ in range(5)]
    new = [b.start("where") for _ in range(5)]
    unversioned = [plain.start("where") for _ in range(3)]
    with b:  # only B's worker: it runs B's and the unversioned ones, never A's
        assert [h.result(timeout=30) for h in new] == ["B"] * 5
        assert [h.result(timeout=30) for h in unversioned] == ["B"] * 3
    assert {h.info().status for h in old} == {WorkflowStatus.PENDING}
    assert {h.info().epoch for h in old} == {0}
    with a:
        assert [h.result(timeout=30) for h in old] == ["A"] * 5


def test_an_unversioned_worker_runs_every_version(db_url: str, apps: list[durably.App]) -> None:
    a, b, plain = _app(db_url, "A"), _app(db_url, "B"), _app(db_url, None, tag="any")
    apps += [a, b, plain]
    handles = [a.start("where"), b.start("where")]
    with plain:
        assert [h.result(timeout=30) for h in handles] == ["any", "any"]


def test_an_auto_upgrade_workflow_runs_on_a_worker_of_another_version(
    db_url: str, apps: list[durably.App]
) -> None:
    a = _app(db_url, "A")
    b = _app(db_url, "B", versioning="auto_upgrade")
    apps += [a, b]
    old = a.start("where")
    pinned_child = a.start("parent")  # its workflow is pinned on B too
    with b:
        assert old.result(timeout=30) == "B"
    assert pinned_child.info().status is WorkflowStatus.PENDING


def test_a_pinned_workflow_no_live_worker_serves_is_unserved(
    db_url: str, apps: list[durably.App]
) -> None:
    a, b = _app(db_url, "A"), _app(db_url, "B")
    apps += [a, b]
    block = a.start("where")  # pending under A
    with b:
        b_own = b.start("parent")
        b_own.result(timeout=30)
        assert b.handle(block.id).info().unserved
        assert not b.handle(b_own.id).info().unserved
        unserved = {w.id for w in b.list_workflows() if w.unserved}
        assert unserved == {block.id}


def test_a_worker_serves_start_here_only_for_its_version(db_url: str) -> None:
    b = _app(db_url, "B")
    with b:
        worker = b._worker
        assert worker is not None
        rec = b.store.get_workflow(b.start("where").id)
        assert rec is not None and worker.serves(rec)
        rec.version = "A"
        assert not worker.serves(rec)
        rec.version = None
        assert worker.serves(rec)
    b.close()


def test_the_registry_says_what_its_worker_claims() -> None:
    app = _app("sqlite:///:memory:", None)
    assert app.registry.version_claim() is None
    app.version = "B"
    assert app.registry.version_claim() == VersionClaim("B", ())
    app.workflow(name="upgrades", versioning="auto_upgrade")(lambda: None)
    assert app.registry.version_claim() == VersionClaim("B", ("upgrades",))
