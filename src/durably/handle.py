"""Handles to started workflows, and the read-only views they return."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from durably.errors import WorkflowFailedError, WorkflowNotFoundError, WorkflowTimeoutError
from durably.storage.base import TERMINAL_STATUSES, WorkflowRecord, WorkflowStatus

if TYPE_CHECKING:
    from durably.app import App

__all__ = ["HistoryEntry", "RunInfo", "WorkflowHandle", "WorkflowInfo"]

R = TypeVar("R")


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A snapshot of one workflow. ``output``/``input`` are decoded JSON values."""

    id: str
    name: str
    status: WorkflowStatus
    input: Any
    output: Any
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    owner: str | None
    epoch: int
    queue: str
    priority: int
    parent_id: str | None
    run: int = 1
    wake_at: datetime | None = None
    """When a waiting workflow's next timer is due (None: not waiting on a timer)."""
    unserved: bool = False
    """Pending or running, but no live worker serves its name on its queue: it makes no
    progress until a worker that does starts (see ``App.list_workers``)."""

    @classmethod
    def from_record(
        cls, rec: WorkflowRecord, decode: Callable[[str], Any], *, unserved: bool = False
    ) -> WorkflowInfo:
        """Build from a store record, decoding payloads with ``decode``."""
        return cls(
            id=rec.id,
            name=rec.name,
            status=rec.status,
            input=decode(rec.input),
            output=None if rec.output is None else decode(rec.output),
            error=None if rec.error is None else json.loads(rec.error),
            created_at=datetime.fromtimestamp(rec.created_at, UTC),
            updated_at=datetime.fromtimestamp(rec.updated_at, UTC),
            started_at=_dt(rec.started_at),
            finished_at=_dt(rec.finished_at),
            owner=rec.owner,
            epoch=rec.epoch,
            queue=rec.queue,
            priority=rec.priority,
            parent_id=rec.parent_id,
            run=rec.run,
            wake_at=None if rec.wake_at is None or rec.wake_at >= 1e15 else _dt(rec.wake_at),
            unserved=unserved,
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One journal entry, with the failed attempts that preceded its outcome."""

    seq: int
    kind: str
    name: str
    status: str
    result: Any
    error: dict[str, Any] | None
    attempts: int
    started_at: datetime
    finished_at: datetime
    owner: str
    epoch: int
    failed_attempts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """An earlier run of a workflow that continued as new."""

    run: int
    status: WorkflowStatus
    input: Any
    output: Any
    started_at: datetime | None
    finished_at: datetime


class WorkflowHandle(Generic[R]):
    """A reference to one workflow by id: ask its status, wait for its result, read its history.

    Every method has an ``_async`` twin for use on an event loop; both share one implementation.
    """

    def __init__(self, app: App, workflow_id: str) -> None:
        self._app = app
        self.id = workflow_id

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id!r}>"

    # -- snapshot ------------------------------------------------------------------------------

    def _record(self) -> WorkflowRecord:
        rec = self._app.store.get_workflow(self.id)
        if rec is None:
            raise WorkflowNotFoundError(
                f"no workflow with id {self.id!r} in {self._app.database_url}; check the id "
                "(app.list_workflows() lists them)",
                workflow_id=self.id,
            )
        return rec

    def info(self) -> WorkflowInfo:
        """A snapshot of the workflow (status, input, output, error, timestamps, owner)."""
        rec = self._record()
        unserved = self._app.unserved_filter()(rec)
        return WorkflowInfo.from_record(rec, self._app.serializer.decode, unserved=unserved)

    async def info_async(self) -> WorkflowInfo:
        """Async twin of :meth:`info`."""
        return await asyncio.to_thread(self.info)

    def status(self) -> WorkflowStatus:
        """The workflow's current status."""
        return self._record().status

    async def status_async(self) -> WorkflowStatus:
        """Async twin of :meth:`status`."""
        return await asyncio.to_thread(self.status)

    def history(self) -> list[HistoryEntry]:
        """The journal, in sequence order, with every failed attempt of each step."""
        store, decode = self._app.store, self._app.serializer.decode
        self._record()
        attempts: dict[int, list[dict[str, Any]]] = {}
        for a in store.get_attempts(self.id):
            attempts.setdefault(a.seq, []).append(
                {"attempt": a.attempt, "error": json.loads(a.error), "epoch": a.epoch,
                 "started_at": _dt(a.started_at), "finished_at": _dt(a.finished_at)}
            )  # fmt: skip
        return [
            HistoryEntry(
                seq=e.seq,
                kind=e.kind,
                name=e.name,
                status=e.status,
                result=None if e.result is None else decode(e.result),
                error=None if e.error is None else json.loads(e.error),
                attempts=e.attempts,
                started_at=datetime.fromtimestamp(e.started_at, UTC),
                finished_at=datetime.fromtimestamp(e.finished_at, UTC),
                owner=e.owner,
                epoch=e.epoch,
                failed_attempts=attempts.get(e.seq, []),
            )
            for e in store.get_journal(self.id)
        ]

    async def history_async(self) -> list[HistoryEntry]:
        """Async twin of :meth:`history`."""
        return await asyncio.to_thread(self.history)

    def state(self, key: str, default: Any = None) -> Any:
        """The value the workflow last published under ``key`` with ``durably.set_state``."""
        self._record()
        encoded = self._app.store.get_state(self.id).get(key)
        return default if encoded is None else self._app.serializer.decode(encoded)

    def states(self) -> dict[str, Any]:
        """Everything the workflow published with ``durably.set_state``."""
        self._record()
        decode = self._app.serializer.decode
        return {k: decode(v) for k, v in self._app.store.get_state(self.id).items()}

    async def state_async(self, key: str, default: Any = None) -> Any:
        """Async twin of :meth:`state`."""
        return await asyncio.to_thread(self.state, key, default)

    async def states_async(self) -> dict[str, Any]:
        """Async twin of :meth:`states`."""
        return await asyncio.to_thread(self.states)

    def runs(self) -> list[RunInfo]:
        """Earlier runs of this workflow id that ended with ``durably.continue_as_new``."""
        self._record()
        decode = self._app.serializer.decode
        return [
            RunInfo(
                run=r.run,
                status=r.status,
                input=decode(r.input),
                output=None if r.output is None else decode(r.output),
                started_at=_dt(r.started_at),
                finished_at=datetime.fromtimestamp(r.finished_at, UTC),
            )
            for r in self._app.store.list_runs(self.id)
        ]

    def children(self) -> list[WorkflowInfo]:
        """The child workflows this workflow started, oldest first."""
        decode = self._app.serializer.decode
        return [WorkflowInfo.from_record(r, decode) for r in self._app.store.list_children(self.id)]

    # -- waiting -------------------------------------------------------------------------------

    def _wait(self, timeout: float | None) -> Generator[tuple[int, float], None, R]:
        """The one implementation of result(): yields (generation, seconds) to wait, returns."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while True:
            generation = self._app._finished_generation
            rec = self._record()
            if rec.status in TERMINAL_STATUSES:
                return self._outcome(rec)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                hint = "wait longer, or check that a worker serving it runs"
                if self._app.unserved_filter()(rec):
                    hint = (
                        f"no live worker serves workflow {rec.name!r} on queue {rec.queue!r}: "
                        "start one (`durably worker MODULE:APP`, app.run_worker() or `with app:`)"
                    )
                raise WorkflowTimeoutError(
                    f"workflow {self.id!r} is still {rec.status.value} after {timeout}s; {hint}",
                    workflow_id=self.id,
                )
            yield generation, delay if remaining is None else min(delay, remaining)
            delay = min(delay * 2, 0.1)

    def _outcome(self, rec: WorkflowRecord) -> R:
        if rec.status == WorkflowStatus.COMPLETED:
            wf = self._app.registry.workflows.get(rec.name)
            hint = Any if wf is None else wf.return_hint
            result: R = self._app.serializer.decode(rec.output or "null", hint)
            return result
        error = json.loads(rec.error) if rec.error else {}
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        raise WorkflowFailedError(
            f"workflow {self.id!r} ({rec.name}) ended {rec.status.value}{detail}",
            workflow_id=self.id,
            status=rec.status.value,
            error=error,
        )

    def result(self, timeout: float | None = None) -> R:
        """Wait for the workflow to end and return its result.

        Raises :class:`WorkflowFailedError` if it ended otherwise (failed, cancelled, terminated,
        needs_attention) and :class:`WorkflowTimeoutError` after ``timeout`` seconds.
        """
        plan = self._wait(timeout)
        try:
            while True:
                generation, seconds = next(plan)
                self._app._wait_finished(generation, seconds)
        except StopIteration as done:
            value: R = done.value
            return value

    async def result_async(self, timeout: float | None = None) -> R:
        """Async twin of :meth:`result`."""
        plan = self._wait(timeout)
        try:
            while True:
                _, seconds = next(plan)
                await self._app._wait_finished_async(self.id, seconds)
        except StopIteration as done:
            value: R = done.value
            return value
