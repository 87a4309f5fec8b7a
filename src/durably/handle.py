"""Handles to started workflows, and the read-only views they return."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from durably import limits
from durably.errors import ConfigurationError
from durably.ids import validate_workflow_id
from durably.storage.base import PREVIEW_CHARS, WorkflowRecord, WorkflowStatus

if TYPE_CHECKING:
    from durably.codec import Codec

__all__ = [
    "HandleSource",
    "HistoryEntry",
    "RunInfo",
    "WorkflowHandle",
    "WorkflowInfo",
    "page_position",
    "preview",
    "status_filter",
]

R = TypeVar("R")


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def preview(text: str | None) -> str | None:
    """The start of a stored payload (its encoded text) for lists: at most ``PREVIEW_CHARS``
    characters, the last one ``…`` when the value was cut; None for no value."""
    if text is None or len(text) <= PREVIEW_CHARS:
        return text
    return text[: PREVIEW_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class WorkflowInfo:
    """A snapshot of one workflow. ``output``/``input`` are decoded JSON values.

    A workflow listed (``list_workflows``, ``iter_workflows``, ``GET /v1/workflows``, ``durably
    ls``) is a *summary*: ``summary`` is True, ``input``, ``output`` and ``error`` are None
    whatever the workflow holds, and ``input_preview``, ``output_preview``, ``error_preview``
    show the start of each. ``app.handle(id).info()`` (or ``client.handle(id).info()``) reads
    the full values."""

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
    created_at_epoch: float | None = None
    """The creation time exactly as stored, in epoch seconds (``created_at`` is it rounded to
    the microsecond). ``list_workflows(before=info)`` pages on from it; None only on an info
    built by hand or sent by a server older than this field."""
    summary: bool = False
    """True on a listed workflow: ``input``, ``output`` and ``error`` were not read (None);
    only the previews were."""
    input_preview: str | None = None
    """The start of the stored input (its encoded JSON text), at most ``PREVIEW_CHARS``
    characters ending in ``…`` when cut."""
    output_preview: str | None = None
    """The start of the stored output, as ``input_preview`` (None: no output yet)."""
    error_preview: str | None = None
    """The start of the stored error (JSON text with ``type`` and ``message``...), as
    ``input_preview`` (None: no error)."""
    version: str | None = None
    """The version of the App's code it started under (``App(version=...)``; None: none)."""

    @classmethod
    def from_record(
        cls,
        rec: WorkflowRecord,
        decode: Callable[[str], Any],
        *,
        unserved: bool = False,
        decode_input: Callable[[str], Any] | None = None,
        decode_error: Callable[[str], dict[str, Any]] = json.loads,
        reveal: Callable[[str], str] | None = None,
    ) -> WorkflowInfo:
        """Build from a store record, decoding payloads with ``decode`` (the input with
        ``decode_input``, default ``decode``; the error with ``decode_error``; the previews
        with ``reveal``, see :meth:`summary_of`)."""
        return replace(
            cls.summary_of(rec, unserved=unserved, reveal=reveal),
            summary=False,
            input=(decode_input or decode)(rec.input),
            output=None if rec.output is None else decode(rec.output),
            error=None if rec.error is None else decode_error(rec.error),
        )

    @classmethod
    def summary_of(
        cls,
        rec: WorkflowRecord,
        *,
        unserved: bool = False,
        reveal: Callable[[str], str] | None = None,
    ) -> WorkflowInfo:
        """A listed workflow (``summary``): the record of ``Store.list_workflows``, whose
        payloads are only their first characters, shown as previews and never decoded
        (``reveal``: the App's codec's, which turns a value its payload codecs encoded back
        into the serializer's text when it can, else into ``<encoded: ...>``)."""

        def shown(text: str | None) -> str | None:
            return preview(text if text is None or reveal is None else reveal(text))

        return cls(
            id=rec.id,
            name=rec.name,
            status=rec.status,
            input=None,
            output=None,
            error=None,
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
            created_at_epoch=rec.created_at,
            summary=True,
            input_preview=shown(rec.input),
            output_preview=shown(rec.output),
            error_preview=shown(rec.error),
            version=rec.version,
        )

    @classmethod
    def from_codec(
        cls, rec: WorkflowRecord, codec: Codec, *, unserved: bool = False
    ) -> WorkflowInfo:
        """Build from a store record, decoding payloads with an App's codec (a value it cannot
        decode becomes a :class:`durably.Undecodable`)."""
        return cls.from_record(
            rec, codec.view, unserved=unserved, decode_input=codec.view_input,
            decode_error=codec.view_error, reveal=codec.reveal,
        )  # fmt: skip


def status_filter(
    status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None,
) -> list[WorkflowStatus] | None:
    """A ``status=`` filter of ``list_workflows`` (one status or several) as statuses, each
    checked (None or empty: no filter)."""
    if status is None:
        return None
    wanted = [status] if isinstance(status, str | WorkflowStatus) else list(status)
    try:
        return [WorkflowStatus(s) for s in wanted] or None
    except ValueError:
        valid = ", ".join(s.value for s in WorkflowStatus)
        raise ConfigurationError(f"unknown status in {wanted!r}; use one of: {valid}") from None


def page_position(before: WorkflowInfo | tuple[float, str]) -> tuple[float, str]:
    """The exact ``(created_at, id)`` keyset position of ``list_workflows(before=...)``: a
    :class:`WorkflowInfo` (the last of the previous page) or a ``(created_at, id)`` pair of
    epoch seconds as stored and an id."""
    if isinstance(before, WorkflowInfo):
        if before.created_at_epoch is None:
            raise ConfigurationError(
                f"workflow {before.id!r} carries no exact creation time (created_at_epoch), so "
                "it cannot be paged from: pass a WorkflowInfo that list_workflows returned"
            )
        return before.created_at_epoch, before.id
    if (
        isinstance(before, tuple)
        and len(before) == 2
        and isinstance(before[0], int | float)
        and not isinstance(before[0], bool)
        and isinstance(before[1], str)
    ):
        return limits.check_epoch(before[0], "before's created_at"), validate_workflow_id(before[1])
    raise ConfigurationError(
        "before must be a WorkflowInfo (the last one of the previous page) or a "
        f"(created_at epoch seconds, id) pair, got {before!r}"
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


class HandleSource(Protocol):
    """Where a :class:`WorkflowHandle` reads from (internal): the store of an :class:`App`
    (:class:`durably.app.handles.LocalHandleSource`) or a server (:class:`durably.Client`).

    Every method takes the workflow id and raises :class:`WorkflowNotFoundError` if there is no
    such workflow (``children`` may return an empty list instead).
    """

    def info(self, workflow_id: str) -> WorkflowInfo:
        """A snapshot of the workflow."""
        ...

    def status(self, workflow_id: str) -> WorkflowStatus:
        """The workflow's current status."""
        ...

    def history(self, workflow_id: str) -> list[HistoryEntry]:
        """The journal in sequence order, with failed attempts."""
        ...

    def state(self, workflow_id: str, key: str, default: Any) -> Any:
        """The value published under ``key``, else ``default``."""
        ...

    def states(self, workflow_id: str) -> dict[str, Any]:
        """Everything published with ``durably.set_state``."""
        ...

    def runs(self, workflow_id: str) -> list[RunInfo]:
        """Earlier runs that ended with ``continue_as_new``."""
        ...

    def children(self, workflow_id: str) -> list[WorkflowInfo]:
        """Child workflows, oldest first."""
        ...

    def result(self, workflow_id: str, timeout: float | None) -> Any:
        """Wait for the workflow to end; its result, or :class:`WorkflowFailedError`, or
        :class:`WorkflowTimeoutError` after ``timeout`` seconds."""
        ...

    async def result_async(self, workflow_id: str, timeout: float | None) -> Any:
        """Async twin of :meth:`result`."""
        ...


class WorkflowHandle(Generic[R]):
    """A reference to one workflow by id: ask its status, wait for its result, read its history.

    :meth:`durably.App.start` and :meth:`durably.Client.start` (and their ``handle(id)``)
    return it: the same class reads the store in process or a ``durably server`` over HTTP.
    Every method has an ``_async`` twin for use on an event loop.
    """

    def __init__(self, source: HandleSource, workflow_id: str) -> None:
        self._source = source
        self.id = workflow_id

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id!r}>"

    # -- snapshot ------------------------------------------------------------------------------

    def info(self) -> WorkflowInfo:
        """A snapshot of the workflow (status, input, output, error, timestamps, owner)."""
        return self._source.info(self.id)

    async def info_async(self) -> WorkflowInfo:
        """Async twin of :meth:`info`."""
        return await asyncio.to_thread(self.info)

    def status(self) -> WorkflowStatus:
        """The workflow's current status."""
        return self._source.status(self.id)

    async def status_async(self) -> WorkflowStatus:
        """Async twin of :meth:`status`."""
        return await asyncio.to_thread(self.status)

    def history(self) -> list[HistoryEntry]:
        """The journal, in sequence order, with every failed attempt of each step."""
        return self._source.history(self.id)

    async def history_async(self) -> list[HistoryEntry]:
        """Async twin of :meth:`history`."""
        return await asyncio.to_thread(self.history)

    def state(self, key: str, default: Any = None) -> Any:
        """The value the workflow last published under ``key`` with ``durably.set_state``."""
        return self._source.state(self.id, key, default)

    def states(self) -> dict[str, Any]:
        """Everything the workflow published with ``durably.set_state``."""
        return self._source.states(self.id)

    async def state_async(self, key: str, default: Any = None) -> Any:
        """Async twin of :meth:`state`."""
        return await asyncio.to_thread(self.state, key, default)

    async def states_async(self) -> dict[str, Any]:
        """Async twin of :meth:`states`."""
        return await asyncio.to_thread(self.states)

    def runs(self) -> list[RunInfo]:
        """Earlier runs of this workflow id that ended with ``durably.continue_as_new``."""
        return self._source.runs(self.id)

    async def runs_async(self) -> list[RunInfo]:
        """Async twin of :meth:`runs`."""
        return await asyncio.to_thread(self.runs)

    def children(self) -> list[WorkflowInfo]:
        """The child workflows this workflow started, oldest first."""
        return self._source.children(self.id)

    async def children_async(self) -> list[WorkflowInfo]:
        """Async twin of :meth:`children`."""
        return await asyncio.to_thread(self.children)

    # -- waiting -------------------------------------------------------------------------------

    def result(self, timeout: float | None = None) -> R:
        """Wait for the workflow to end and return its result.

        Raises :class:`WorkflowFailedError` if it ended otherwise (failed, cancelled, terminated,
        needs_attention) and :class:`WorkflowTimeoutError` after ``timeout`` seconds.
        """
        value: R = self._source.result(self.id, timeout)
        return value

    async def result_async(self, timeout: float | None = None) -> R:
        """Async twin of :meth:`result`."""
        value: R = await self._source.result_async(self.id, timeout)
        return value
