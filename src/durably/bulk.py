"""Bulk operations: cancel, terminate, retry, resume, suspend or purge every workflow a filter
selects.

``app.bulk("cancel", BulkFilter(status="running", name="send_invoice"))`` pages through the
matching ids in id order (a keyset: each page starts after the last id of the one before), and
applies to each the very command of one workflow (:mod:`durably.app.lifecycle`: the same
fencing, the same wake-ups of workers); a purge deletes each page in one short transaction
(:meth:`Store.purge_workflows <durably.storage.base.Store.purge_workflows>`, the path of a
single purge). A workflow whose status no longer allows the command (finished meanwhile,
already cancelled, purged by someone else) is *skipped*, not an error. Each command is atomic,
so an operation interrupted anywhere (Ctrl-C, a crash, a ``limit``) can be run again: it acts
on what is left. ``dry_run=True`` changes nothing and reports how many match, with a sample of
their ids.

A filter needs at least one criterion, or ``all=True``: an empty filter never silently means
every workflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from durably import limits
from durably.errors import ConfigurationError, WorkflowNotFoundError, WorkflowStateError
from durably.handle import status_filter
from durably.ids import MAX_ID_LENGTH, validate_workflow_id
from durably.queues import validate_queue_name
from durably.storage.base import TERMINAL_STATUSES, WorkflowSelection, WorkflowStatus

if TYPE_CHECKING:
    from durably.app.database import Database
    from durably.app.lifecycle import Lifecycle
    from durably.storage.base import Store

__all__ = [
    "BULK_ACTIONS",
    "Bulk",
    "BulkAction",
    "BulkFilter",
    "BulkResult",
    "check_action",
    "page_through",
    "run_bulk",
]

BulkAction = Literal["cancel", "terminate", "retry", "resume", "suspend", "purge"]
"""What a bulk operation does to each workflow it selects."""
BULK_ACTIONS: tuple[str, ...] = get_args(BulkAction)
SAMPLE_SIZE = 10
"""How many ids a dry run shows."""
DEFAULT_BATCH = 500
"""Ids per page of a bulk operation."""
MAX_BATCH = 10_000
"""The largest page (and the most one HTTP request goes through)."""

_TIMES = ("created_after", "created_before", "finished_after", "finished_before")


def check_action(action: object) -> BulkAction:
    """``action`` if it names a bulk action; else a :class:`ConfigurationError` listing them."""
    if action not in BULK_ACTIONS:
        raise ConfigurationError(
            f"unknown bulk action {str(action)[:60]!r}; use one of: {', '.join(BULK_ACTIONS)}"
        )
    return action  # type: ignore[return-value]  # checked just above


def _epoch(value: object, what: str) -> float | None:
    """A time criterion as epoch seconds: a number, a datetime (naive: UTC) or, from JSON, an
    ISO-8601 string; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp() if value.tzinfo else value.replace(tzinfo=UTC).timestamp()
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"{what} must be epoch seconds or an ISO-8601 time such as "
                f"2026-01-31T12:00:00Z, got {value[:60]!r}"
            ) from None
        return _epoch(moment, what)
    return limits.check_epoch(value, what)


@dataclass(frozen=True, slots=True)
class BulkFilter:
    """Which workflows a bulk operation acts on: every criterion given must hold.

    ``status`` (one or several), ``name``, ``version``, ``queue``, ``id_prefix``; creation and
    finish time ranges (``*_after`` inclusive, ``*_before`` exclusive; epoch seconds or
    datetimes). At least one criterion is needed, or ``all=True`` to select every workflow.
    """

    status: WorkflowStatus | str | Sequence[WorkflowStatus | str] | None = None
    name: str | None = None
    version: str | None = None
    queue: str | None = None
    id_prefix: str | None = None
    created_after: float | datetime | None = None
    created_before: float | datetime | None = None
    finished_after: float | datetime | None = None
    finished_before: float | datetime | None = None
    all: bool = False

    def selection(self) -> WorkflowSelection:
        """This filter checked, as the store's selection; a :class:`ConfigurationError` says
        what is wrong (an unknown status, a bad time or name, no criterion at all)."""
        statuses = status_filter(self.status)
        if self.name is not None:
            limits.check_name(self.name, "name filter")
        if self.version is not None:
            limits.check_name(self.version, "version filter")
        if self.queue is not None:
            validate_queue_name(self.queue)
        if self.id_prefix is not None:
            limits.check_text(self.id_prefix, "id_prefix", max_length=MAX_ID_LENGTH)
        sel = WorkflowSelection(
            statuses=None if statuses is None else tuple(statuses),
            names=None if self.name is None else (self.name,),
            version=self.version,
            queue=self.queue,
            id_prefix=self.id_prefix or None,
            created_after=_epoch(self.created_after, "created_after"),
            created_before=_epoch(self.created_before, "created_before"),
            finished_after=_epoch(self.finished_after, "finished_after"),
            finished_before=_epoch(self.finished_before, "finished_before"),
        )
        if not self.all and sel == WorkflowSelection():
            raise ConfigurationError(
                "a bulk operation needs at least one filter (status, name, version, queue, "
                "id prefix or a time range); to act on every workflow say so explicitly "
                '(BulkFilter(all=True), --all, {"all": true})'
            )
        return sel

    @classmethod
    def from_json(cls, form: object) -> BulkFilter:
        """A filter from its JSON form (an object of the field names; times as epoch seconds
        or ISO-8601 strings); a :class:`ConfigurationError` for anything else."""
        if not isinstance(form, Mapping):
            raise ConfigurationError(
                'filter must be a JSON object such as {"status": ["failed"], "name": "x"}'
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(str(k)[:40] for k in form if k not in known)
        if unknown:
            raise ConfigurationError(
                f"unknown filter field(s) {', '.join(map(repr, unknown))}; use: "
                f"{', '.join(sorted(known))}"
            )
        values = dict(form)
        for key in ("name", "version", "queue", "id_prefix"):
            if values.get(key) is not None and not isinstance(values[key], str):
                raise ConfigurationError(f"filter {key} must be a string")
        status = values.get("status")
        if status is not None and not (
            isinstance(status, str)
            or (isinstance(status, list) and all(isinstance(s, str) for s in status))
        ):
            raise ConfigurationError("filter status must be a string or a list of strings")
        if not isinstance(values.get("all", False), bool):
            raise ConfigurationError("filter all must be true or false")
        for key in _TIMES:
            value = values.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigurationError(f"{key} must be finite epoch seconds")
            if value is not None and not isinstance(value, str | int | float):
                raise ConfigurationError(f"{key} must be epoch seconds or an ISO-8601 time string")
            if isinstance(value, str):
                values[key] = _epoch(value, key)
        flt = cls(**values)
        flt.selection()  # checked now: a bad filter is refused before anything is done
        return flt

    def to_json(self) -> dict[str, Any]:
        """This filter's JSON form (times as epoch seconds; criteria not given left out)."""
        form: dict[str, Any] = {}
        statuses = status_filter(self.status)
        if statuses:
            form["status"] = [s.value for s in statuses]
        for key in ("name", "version", "queue", "id_prefix"):
            if getattr(self, key) is not None:
                form[key] = getattr(self, key)
        for key in _TIMES:
            value = _epoch(getattr(self, key), key)
            if value is not None:
                form[key] = value
        if self.all:
            form["all"] = True
        return form


@dataclass(slots=True)
class BulkResult:
    """What a bulk operation did (or, with ``dry_run``, would do).

    ``matched``: the workflows it went through (a dry run: how many the filter selects now);
    ``processed``: those it acted on; ``skipped``: those whose status no longer allowed the
    action (or that were gone); ``sample``: the first ids it went through (a dry run: of the
    matching ones); ``cursor``: where it stopped at a ``limit`` (pass it back as ``after`` to
    go on), None when it went through every match.
    """

    action: str
    dry_run: bool = False
    matched: int = 0
    processed: int = 0
    skipped: int = 0
    sample: list[str] = field(default_factory=list)
    cursor: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This result as JSON (what ``durably bulk --json`` and the HTTP API return)."""
        return {
            "action": self.action, "dry_run": self.dry_run, "matched": self.matched,
            "processed": self.processed, "skipped": self.skipped, "sample": list(self.sample),
            "cursor": self.cursor,
        }  # fmt: skip


def _apply(lifecycle: Lifecycle, store: Store, action: str, workflow_id: str, reason: str) -> bool:
    """Apply ``action`` to one workflow as its single command does; False: skipped."""
    try:
        if action == "cancel":
            rec = store.get_workflow(workflow_id)
            if rec is None or rec.status in TERMINAL_STATUSES:
                return False  # finished (or already cancelled): nothing left to cancel
            lifecycle.cancel(workflow_id)
        elif action == "terminate":
            lifecycle.terminate(workflow_id, reason)
        else:
            getattr(lifecycle, action)(workflow_id)
    except (WorkflowStateError, WorkflowNotFoundError):
        return False
    return True


Batch = Callable[[str | None, int], tuple[BulkResult, str | None]]
"""One batch of a bulk operation: given the cursor to start after and the most workflows to go
through, what it did and the cursor to go on from (None: no workflow is left after it)."""


def page_through(
    action: str,
    batch: Batch,
    *,
    batch_size: int,
    limit: int | None,
    after: str | None,
    progress: Callable[[BulkResult], None] | None,
) -> BulkResult:
    """Run ``batch`` after batch from ``after`` until no workflow is left or ``limit`` were gone
    through (then the result's ``cursor`` says where to go on), adding up what each did and
    telling ``progress`` the totals after each."""
    total = BulkResult(action)
    cursor = after
    while True:
        room = batch_size if limit is None else min(batch_size, limit - total.matched)
        if room <= 0:
            total.cursor = cursor
            return total
        part, cursor = batch(cursor, room)
        if not part.matched:
            return total
        total.matched += part.matched
        total.processed += part.processed
        total.skipped += part.skipped
        total.sample += part.sample[: SAMPLE_SIZE - len(total.sample)]
        if progress is not None:
            progress(total)
        if cursor is None:
            return total


def run_bulk(
    lifecycle: Lifecycle,
    store: Store,
    action: BulkAction,
    selection: WorkflowSelection,
    *,
    dry_run: bool = False,
    reason: str = "terminated",
    batch_size: int = DEFAULT_BATCH,
    limit: int | None = None,
    after: str | None = None,
    progress: Callable[[BulkResult], None] | None = None,
) -> BulkResult:
    """Run a bulk operation on ``store`` (see the module docstring); ``progress`` is called
    with the running totals after each batch."""
    if dry_run:
        matched = store.count_workflows(selection)
        sample = store.select_workflow_ids(selection, after=after, limit=SAMPLE_SIZE)
        return BulkResult(action, dry_run=True, matched=matched, sample=sample)

    def batch(cursor: str | None, room: int) -> tuple[BulkResult, str | None]:
        page = store.select_workflow_ids(selection, after=cursor, limit=room)
        if action == "purge":
            done = len(store.purge_workflows(page))
        else:
            done = sum(_apply(lifecycle, store, action, wid, reason) for wid in page)
        part = BulkResult(action, matched=len(page), processed=done, skipped=len(page) - done,
                          sample=page[:SAMPLE_SIZE])  # fmt: skip
        return part, (page[-1] if len(page) == room else None)

    return page_through(
        action, batch, batch_size=batch_size, limit=limit, after=after, progress=progress
    )


@dataclass(frozen=True, slots=True)
class Bulk:
    """The bulk operations of an App (which forwards :meth:`durably.App.bulk` here), over its
    ``database`` and its single-workflow commands (``lifecycle``)."""

    database: Database
    lifecycle: Lifecycle

    def bulk(
        self,
        action: BulkAction,
        filter: BulkFilter,
        *,
        dry_run: bool = False,
        reason: str = "terminated",
        batch_size: int = DEFAULT_BATCH,
        limit: int | None = None,
        after: str | None = None,
        progress: Callable[[BulkResult], None] | None = None,
    ) -> BulkResult:
        """Apply ``action`` (``"cancel"``, ``"terminate"``, ``"retry"``, ``"resume"``,
        ``"suspend"`` or ``"purge"``) to every workflow ``filter`` selects, ``batch_size`` at a
        time in id order, each as its single command would (see :mod:`durably.bulk`).

        ``dry_run``: change nothing, count the matches and show a sample of their ids.
        ``reason``: a terminate's reason. ``limit``: stop after going through that many and
        return a ``cursor`` to pass back as ``after``. ``progress``: called with the running
        totals after each batch. Interrupted, it can be run again: workflows already acted on
        no longer allow the action and are counted as skipped.
        """
        action = check_action(action)
        selection = filter.selection()
        limits.check_count(batch_size, "batch_size", 1, MAX_BATCH)
        if limit is not None:
            limits.check_count(limit, "limit", 1)
        if action == "terminate":
            limits.check_text(
                reason, "reason", max_length=limits.MAX_REASON_LENGTH, allow_empty=True
            )
        if after is not None:
            validate_workflow_id(after)
        return run_bulk(
            self.lifecycle, self.database.store, action, selection, dry_run=dry_run,
            reason=reason, batch_size=batch_size, limit=limit, after=after, progress=progress,
        )  # fmt: skip
