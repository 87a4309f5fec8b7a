"""What a :class:`WorkflowHandle` of an :class:`App` reads: the App's store, decoded in process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from durably.errors import WorkflowFailedError
from durably.handle import HistoryEntry, RunInfo, WorkflowInfo
from durably.storage.base import Ended, WorkflowRecord, WorkflowStatus

if TYPE_CHECKING:
    from durably.app.results import Results
    from durably.codec import Codec
    from durably.definitions import Registry
    from durably.storage.base import Store

__all__ = ["HandleApp", "LocalHandleSource"]


class HandleApp(Protocol):
    """What :class:`LocalHandleSource` reads of its App (:class:`durably.App` is one)."""

    @property
    def store(self) -> Store:
        """The store, opened and migrated on first use."""

    @property
    def codec(self) -> Codec:
        """Encodes and decodes payloads with the App's serializer."""

    @property
    def registry(self) -> Registry:
        """The workflows registered with the App (for their result types)."""

    def unserved_filter(self) -> Callable[[WorkflowRecord], bool]:
        """Whether a workflow record is one no live worker serves."""


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


class LocalHandleSource:
    """The :class:`durably.handle.HandleSource` of an App: reads its store and decodes with its
    serializer; ``result`` waits through the App's :class:`durably.app.results.Results`."""

    __slots__ = ("_app", "_record", "_results")

    def __init__(self, app: HandleApp, results: Results) -> None:
        self._app = app
        self._results = results
        self._record = results.record

    def info(self, workflow_id: str) -> WorkflowInfo:
        """A snapshot of the workflow, with whether a live worker serves it."""
        rec = self._record(workflow_id)
        unserved = self._app.unserved_filter()(rec)
        return WorkflowInfo.from_codec(rec, self._app.codec, unserved=unserved)

    def status(self, workflow_id: str) -> WorkflowStatus:
        """The workflow's current status."""
        return self._record(workflow_id).status

    def history(self, workflow_id: str) -> list[HistoryEntry]:
        """The journal in sequence order, each entry with its failed attempts."""
        store, codec = self._app.store, self._app.codec
        self._record(workflow_id)
        attempts: dict[int, list[dict[str, Any]]] = {}
        for a in store.get_attempts(workflow_id):
            attempts.setdefault(a.seq, []).append(
                {"attempt": a.attempt, "error": codec.view_error(a.error), "epoch": a.epoch,
                 "started_at": _dt(a.started_at), "finished_at": _dt(a.finished_at)}
            )  # fmt: skip
        return [
            HistoryEntry(
                seq=e.seq,
                kind=e.kind,
                name=e.name,
                status=e.status,
                result=None if e.result is None else codec.view(e.result),
                error=None if e.error is None else codec.view_error(e.error),
                attempts=e.attempts,
                started_at=datetime.fromtimestamp(e.started_at, UTC),
                finished_at=datetime.fromtimestamp(e.finished_at, UTC),
                owner=e.owner,
                epoch=e.epoch,
                failed_attempts=attempts.get(e.seq, []),
            )
            for e in store.get_journal(workflow_id)
        ]

    def state(self, workflow_id: str, key: str, default: Any) -> Any:
        """The value published under ``key`` (decoded), else ``default``."""
        self._record(workflow_id)
        encoded = self._app.store.get_state(workflow_id).get(key)
        return (
            default if encoded is None else self._app.codec.decode(encoded, what=f"state {key!r}")
        )

    def states(self, workflow_id: str) -> dict[str, Any]:
        """Every published value, decoded."""
        self._record(workflow_id)
        view = self._app.codec.view
        return {k: view(v) for k, v in self._app.store.get_state(workflow_id).items()}

    def runs(self, workflow_id: str) -> list[RunInfo]:
        """Earlier runs that ended with ``continue_as_new``."""
        self._record(workflow_id)
        codec = self._app.codec
        return [
            RunInfo(
                run=r.run,
                status=r.status,
                input=codec.view_input(r.input),
                output=None if r.output is None else codec.view(r.output),
                started_at=_dt(r.started_at),
                finished_at=datetime.fromtimestamp(r.finished_at, UTC),
            )
            for r in self._app.store.list_runs(workflow_id)
        ]

    def children(self, workflow_id: str) -> list[WorkflowInfo]:
        """Child workflows, oldest first (empty for an unknown id)."""
        codec = self._app.codec
        return [
            WorkflowInfo.from_codec(r, codec) for r in self._app.store.list_children(workflow_id)
        ]

    # -- waiting -----------------------------------------------------------------------------------

    def _outcome(self, rec: WorkflowRecord | Ended) -> Any:
        if rec.status == WorkflowStatus.COMPLETED:
            wf = self._app.registry.workflows.get(rec.name)
            hint = Any if wf is None else wf.return_hint
            what = f"result of workflow {rec.id!r}"
            return self._app.codec.decode(rec.output or "null", hint, what=what)
        error = self._app.codec.view_error(rec.error) if rec.error else {}
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        raise WorkflowFailedError(
            f"workflow {rec.id!r} ({rec.name}) ended {rec.status.value}{detail}",
            workflow_id=rec.id,
            status=rec.status.value,
            error=error,
        )

    def result(self, workflow_id: str, timeout: float | None) -> Any:
        """Wait (woken by the worker here, else polling the store) and return the outcome."""
        return self._outcome(self._results.wait(workflow_id, timeout))

    async def result_async(self, workflow_id: str, timeout: float | None) -> Any:
        """Async twin of :meth:`result`: joins the loop's poller, which reads every workflow
        awaited on this loop in one query per poll (and is woken by the worker here)."""
        return self._outcome(await self._results.wait_async(workflow_id, timeout))
