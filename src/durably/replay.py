"""The deploy gate: replay the journals of workflows in flight (or exported histories) against
new code, without executing anything, and list the workflows the new code would send to
``needs_attention``.

``durably replay-check MODULE:APP --db URL`` runs :func:`check_store`;
``durably.testing.replay(app, history)`` runs :func:`check_histories`. Both only read: the
replay itself runs on :mod:`durably.engine.replay` (no store, no step, no write).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from durably.app import App
from durably.engine.replay import Divergence, Replayer, ReplayResult
from durably.errors import NonDeterminismError, WorkflowNotFoundError
from durably.history import History
from durably.storage.base import PREVIEW_CHARS, JournalEntry, Store, WorkflowRecord, WorkflowStatus

__all__ = [
    "UNFINISHED",
    "CheckReport",
    "Divergence",
    "MoveReport",
    "ReplayDivergenceError",
    "ReplayResult",
    "check_histories",
    "check_store",
    "move_version",
    "version_ids",
]

UNFINISHED = (
    WorkflowStatus.RUNNING,  # running now, or parked (on a timer, an event or a child)
    WorkflowStatus.PENDING,
    WorkflowStatus.SUSPENDED,
    WorkflowStatus.NEEDS_ATTENTION,
)
"""The statuses the gate checks: a workflow in one of them may still run its code."""

_PAGE = 1000


class ReplayDivergenceError(NonDeterminismError):
    """Replayed histories diverge from the current code (``durably.testing.replay``).

    ``divergences`` lists the first divergence of each diverging workflow; ``seq``, ``key``,
    ``recorded``, ``called`` and ``location`` are those of the first one.
    """

    def __init__(self, divergences: Sequence[Divergence]) -> None:
        first = divergences[0]
        lines = [d.message for d in divergences]
        more = f" ({len(divergences)} workflows diverge)" if len(divergences) > 1 else ""
        super().__init__(
            "the code diverges from recorded histories" + more + ":\n  " + "\n  ".join(lines),
            workflow_id=first.workflow_id,
            step=first.code_name,
            seq=first.seq,
            key=first.key,
            recorded=None
            if first.journal_kind is None or first.journal_name is None
            else (first.journal_kind, first.journal_name),
            called=None if first.code_name is None else (first.code_kind, first.code_name),
            location=first.location,
        )
        self.divergences = list(divergences)


@dataclass(slots=True)
class CheckReport:
    """What a check found: one result per workflow replayed (in the order checked)."""

    results: list[ReplayResult] = field(default_factory=list)
    seconds: float = 0.0
    statuses: dict[str, str] = field(default_factory=dict)
    """Each checked workflow's status, by id."""
    version: str | None = None
    """The version checked (``--version``), or None: every version."""
    skipped: list[str] = field(default_factory=list)
    """With ``version`` and ids: the ids left out because they are of another version."""

    @property
    def diverged(self) -> list[ReplayResult]:
        """The results with a divergence."""
        return [r for r in self.results if r.divergence is not None]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form of ``durably replay-check`` (with ``version`` and ``skipped``
        when a version was given)."""
        chosen = {} if self.version is None else {"version": self.version, "skipped": self.skipped}
        return {
            **chosen,
            "ok": not self.diverged,
            "checked": len(self.results),
            "diverged": len(self.diverged),
            "entries": sum(r.entries for r in self.results),
            "seconds": round(self.seconds, 6),
            "workflows": [
                {
                    "id": r.workflow_id,
                    "name": r.workflow_name,
                    "status": self.statuses.get(r.workflow_id),
                    "entries": r.entries,
                    "replayed": r.replayed,
                    "ok": r.ok,
                    "divergence": None if r.divergence is None else r.divergence.to_dict(),
                }
                for r in self.results
            ],
        }


async def _replay_all(
    app: App, items: Iterable[tuple[WorkflowRecord, list[JournalEntry]]]
) -> list[ReplayResult]:
    workflows = app.registry.workflows
    async with Replayer(app.codec) as replayer:
        return [await replayer.replay(workflows.get(r.name), r, j) for r, j in items]


def _run(app: App, items: Iterable[tuple[WorkflowRecord, list[JournalEntry]]]) -> CheckReport:
    started = time.perf_counter()
    statuses: dict[str, str] = {}

    def noted() -> Iterable[tuple[WorkflowRecord, list[JournalEntry]]]:
        for record, journal in items:
            statuses[record.id] = record.status.value
            yield record, journal

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        results = asyncio.run(_replay_all(app, noted()))
    else:  # called from async code (an async test): replay on a loop of its own
        with ThreadPoolExecutor(1) as pool:
            results = pool.submit(asyncio.run, _replay_all(app, noted())).result()
    return CheckReport(results, time.perf_counter() - started, statuses)


def _pages(store: Store) -> Iterable[list[WorkflowRecord]]:
    """The unfinished workflows in ``store``, page by page (newest first)."""
    before: tuple[float, str] | None = None
    while True:
        page = store.list_workflows(statuses=UNFINISHED, limit=_PAGE, before=before)
        yield page
        if len(page) < _PAGE:
            return
        before = (page[-1].created_at, page[-1].id)


def _unfinished(store: Store, names: set[str], version: str | None) -> Iterable[WorkflowRecord]:
    """The unfinished workflows of ``names`` (and of ``version`` unless None), newest first."""
    for page in _pages(store):
        for rec in page:
            if rec.name not in names or (version is not None and rec.version != version):
                continue
            if len(rec.input) > PREVIEW_CHARS:  # a list shows the start of long inputs only
                whole = store.get_workflow(rec.id)
                if whole is None:  # purged meanwhile
                    continue
                rec = whole
            yield rec


def check_store(
    app: App, store: Store, ids: Sequence[str] | None = None, version: str | None = None
) -> CheckReport:
    """Replay against ``app``'s code every unfinished workflow in ``store`` of the names the app
    defines (or the workflows ``ids``, whatever their status: an empty ``ids`` checks none),
    reading the store only. A
    pending workflow with an empty journal has nothing to replay and is left out. With
    ``version``, only the workflows recorded under that version are checked (with ``ids``: those
    of ``ids`` that are; the others are listed in the report's ``skipped``)."""
    skipped: list[str] = []

    def items() -> Iterable[tuple[WorkflowRecord, list[JournalEntry]]]:
        if ids is not None:
            records: Iterable[WorkflowRecord] = (_get(store, i) for i in ids)
        else:
            records = _unfinished(store, set(app.registry.workflows), version)
        for rec in records:
            if version is not None and rec.version != version:
                skipped.append(rec.id)
                continue
            journal = store.get_journal(rec.id)
            if journal or rec.status is not WorkflowStatus.PENDING or ids is not None:
                yield rec, journal

    report = _run(app, items())
    report.version, report.skipped = version, skipped
    return report


def _get(store: Store, workflow_id: str) -> WorkflowRecord:
    rec = store.get_workflow(workflow_id)
    if rec is None:
        raise WorkflowNotFoundError(f"no workflow with id {workflow_id!r}", workflow_id=workflow_id)
    return rec


@dataclass(slots=True)
class MoveReport:
    """What ``durably move-version`` did: the workflows moved, and (with the replay check)
    those left on the old version because they diverge, or changed after they were checked."""

    moved: list[str]
    check: CheckReport | None = None
    """The replay check run first (None: moved without one)."""
    changed: list[str] = field(default_factory=list)
    """Replayed cleanly, but their journal grew before the move: left, check them again."""

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form of ``durably move-version``."""
        return {
            "moved": self.moved,
            "changed": self.changed,
            "diverged": [
                {"id": r.workflow_id, "name": r.workflow_name, "divergence": r.divergence.to_dict()}
                for r in (self.check.diverged if self.check is not None else [])
                if r.divergence is not None
            ],
        }


def version_ids(store: Store, version: str) -> list[str]:
    """The ids of the unfinished workflows started under ``version`` (every name)."""
    return [rec.id for page in _pages(store) for rec in page if rec.version == version]


def move_version(
    store: Store, from_version: str, to_version: str, now: float, app: App | None = None
) -> MoveReport:
    """Move the unfinished workflows of ``from_version`` to ``to_version`` (workers of
    ``to_version`` run them from then on). With ``app`` (the new code), first replay each
    one's journal against it and move only those that replay cleanly and whose journal did not
    grow since (:meth:`Store.move_version` with ``only``)."""
    if app is None:
        return MoveReport(store.move_version(from_version, to_version, now))
    report = check_store(app, store, version_ids(store, from_version))
    clean = {r.workflow_id: r.entries for r in report.results if r.ok}
    moved = store.move_version(from_version, to_version, now, only=clean) if clean else []
    left = sorted(set(clean) - set(moved))
    return MoveReport(moved, report, left)


def check_histories(app: App, histories: Iterable[History]) -> CheckReport:
    """Replay exported histories against ``app``'s code."""
    return _run(app, ((h.workflow, h.journal) for h in histories))
