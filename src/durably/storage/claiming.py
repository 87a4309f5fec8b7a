"""Claiming: which workflows a worker takes over, across queues with limits, and when the next
one becomes claimable. Each statement is written once for every SQL dialect.

:meth:`SqlClaims.claim` runs its plan in one transaction, so that a queue's global limits hold
however many workers claim at once:

- workflows of queues without global limits are taken directly (one statement for all the
  queues with no per-worker cap);
- for a limited queue, workflows it already admitted (``running``: parked, or orphaned by a
  dead worker) are taken first, needing no admission; then the queue is locked (PostgreSQL: a
  transaction-scoped advisory lock; SQLite: its single writer already serializes claims), what
  it admitted is counted, and only as many ``pending`` workflows as the limits leave are taken.

A take picks its rows (PostgreSQL: skipping rows other claims hold, ``FOR UPDATE SKIP
LOCKED``) and takes them over in one statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from durably.storage.base import FAR_FUTURE, ClaimedWorkflow, QueueClaim, VersionClaim
from durably.storage.dialect import Dialect
from durably.storage.rows import JOURNAL_COLUMNS, WF_COLUMNS, to_entry, to_record
from durably.storage.sql_commands import SqlCommands

__all__ = ["ClaimStatements", "SqlClaims", "queue_filter"]

_VERSION = "(? = 1 OR version IS NULL OR version = ? OR name {in})"
"""Which versions a claim takes (see ``VersionClaim``): any (the first parameter 1), else the
claimant's (the second), unversioned ones, and any of the names (its auto_upgrade ones)."""
_TAKE = (
    "WITH picked AS (SELECT id FROM workflows{indexed} WHERE {where} AND name {{in}} "
    "  AND " + _VERSION.replace("{", "{{").replace("}", "}}") + " "
    "  AND (owner IS NULL OR (lease_expires_at < ? AND owner <> ?)) "
    "  AND (wake_at IS NULL OR wake_at <= ?) "
    "  ORDER BY priority DESC, created_at LIMIT ?{{skip_locked}}) "
    "UPDATE workflows SET owner = ?, epoch = epoch + 1, lease_expires_at = ?, "
    "status = 'running', updated_at = ?, started_at = COALESCE(started_at, ?) "
    "FROM picked WHERE workflows.id = picked.id RETURNING "
    + ", ".join(f"workflows.{c.strip()}" for c in WF_COLUMNS.split(","))
)
_RUNNABLE = "status IN ('pending', 'running')"
_NEXT_WAKE = (
    "SELECT MIN(COALESCE(wake_at, 0)) FROM workflows "
    f"WHERE {_RUNNABLE} AND owner IS NULL AND COALESCE(wake_at, 0) < ? AND name {{in}} "
    f"AND {_VERSION}"
)


class ClaimStatements:
    """The statements of :class:`SqlClaims`, rendered once for one dialect."""

    def __init__(self, d: Dialect) -> None:
        s = d.sql
        runnable = d.indexed("workflows_runnable")
        admitted = d.indexed("workflows_queue_admitted")
        self.take_any = s(_TAKE.format(indexed=runnable, where=_RUNNABLE))
        self.take_queues = s(_TAKE.format(indexed=runnable, where=f"{_RUNNABLE} AND queue {{in}}"))
        self.take_status = s(_TAKE.format(indexed=admitted, where="queue = ? AND status = ?"))
        self.count_running = s(
            f"SELECT COUNT(*) FROM workflows{admitted} WHERE queue = ? AND status = 'running'"
        )
        self.count_started = s(
            f"SELECT COUNT(*) FROM workflows{d.indexed('workflows_queue_started')} "
            "WHERE queue = ? AND started_at >= ?"
        )
        self.journals = s(
            f"SELECT {JOURNAL_COLUMNS} FROM journal WHERE workflow_id {{in}} "
            "ORDER BY workflow_id, seq"
        )
        self.next_wake = s(_NEXT_WAKE)
        self.next_wake_queues = s(
            _NEXT_WAKE + " AND (queue {in} OR (status = 'running' AND queue {in}))"
        )


class _Claimant(NamedTuple):
    """Who claims, which workflow names, and the lease: the same for every take of a claim."""

    owner: str
    names: Any
    """The names, bound as the dialect binds a list."""
    versions: list[Any]
    """The parameters of the version filter."""
    now: float
    until: float


class SqlClaims(SqlCommands):
    """The claim half of the SQL stores."""

    _claims: ClaimStatements

    def claim(
        self,
        owner: str,
        names: Iterable[str],
        now: float,
        lease_seconds: float,
        limit: int,
        queues: Sequence[QueueClaim] | None = None,
        version: VersionClaim | None = None,
    ) -> list[ClaimedWorkflow]:
        ids = self._dialect.ids
        versions = self._version_params(version)
        who = _Claimant(owner, ids(sorted(set(names))), versions, now, now + lease_seconds)
        with self._transaction() as conn:
            rows = self._claim_rows(conn, who, limit, queues)
            claims = {row[0]: ClaimedWorkflow(to_record(row)) for row in rows}
            replayed = [wid for wid, c in claims.items() if c.record.epoch > 1]
            if replayed:
                for row in conn.execute(self._claims.journals, (ids(replayed),)).fetchall():
                    claims[row[0]].journal.append(to_entry(row))
            if claims:
                claimed = ids(list(claims))
                for event in self._inbox(conn, claimed, 0):
                    claims[event.workflow_id].events.append(event)
                for parent, child in self._finished_children(conn, claimed):
                    claims[parent].children.append(child)
        return sorted(claims.values(), key=lambda c: (-c.record.priority, c.record.created_at))

    def _claim_rows(
        self, conn: Any, who: _Claimant, limit: int, queues: Sequence[QueueClaim] | None
    ) -> list[tuple[Any, ...]]:
        if queues is None:
            return self._take(conn, who, limit)
        rows: list[tuple[Any, ...]] = []
        free = [q.name for q in queues if not q.limited and q.limit is None]
        if free and limit > 0:
            rows += self._take(conn, who, limit, free)
        for q in queues:
            left = limit - len(rows)
            if left <= 0:
                break
            if not q.limited and q.limit is None:
                continue  # taken above
            want = left if q.limit is None else min(left, q.limit)
            if want <= 0:
                continue
            if not q.limited:
                rows += self._take(conn, who, want, [q.name])
                continue
            # admitted already: they hold their place in the queue
            got = self._take(conn, who, want, [q.name], "running")
            rows += got
            want -= len(got)
            if want <= 0:
                continue
            self._lock_queue(conn, q.name)
            admit = self._admissible(conn, q, who.now, want)
            if admit > 0:
                rows += self._take(conn, who, admit, [q.name], "pending")
        return rows

    def _take(
        self,
        conn: Any,
        who: _Claimant,
        limit: int,
        queues: list[str] | None = None,
        status: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Claim up to ``limit`` runnable workflows (in ``queues`` if given; with ``status`` if
        given, else pending or running) and return their rows."""
        params: list[Any]
        if status is not None:  # one queue's admitted or pending workflows
            assert queues is not None and len(queues) == 1
            query, params = self._claims.take_status, [queues[0], status]
        elif queues is not None:
            query, params = self._claims.take_queues, [self._dialect.ids(queues)]
        else:
            query, params = self._claims.take_any, []
        params += [who.names, *who.versions, who.now, who.owner, who.now, limit]
        params += [who.owner, who.until, who.now, who.now]
        rows: list[tuple[Any, ...]] = conn.execute(query, params).fetchall()
        return rows

    def _version_params(self, version: VersionClaim | None) -> list[Any]:
        """The parameters of the version filter (``_VERSION``) for ``version``."""
        if version is None:
            return [1, "", self._dialect.ids([])]
        return [0, version.version, self._dialect.ids(sorted(version.any_version))]

    def _lock_queue(self, conn: Any, queue: str) -> None:
        """Serialize admissions to ``queue`` until this transaction ends, with the dialect's
        queue lock; none is needed where claims run one writer at a time."""
        if self._dialect.queue_lock is not None:
            conn.execute(self._dialect.queue_lock, (queue,))

    def _count_admitted(self, conn: Any, queue: str, since: float | None) -> int:
        """How many workflows of ``queue`` are admitted and unfinished (``since`` None), or
        were admitted at or after ``since`` (by ``started_at``, finished or not)."""
        if since is None:
            row = conn.execute(self._claims.count_running, (queue,)).fetchone()
        else:
            row = conn.execute(self._claims.count_started, (queue, since)).fetchone()
        return int(row[0])

    def _admissible(self, conn: Any, queue: QueueClaim, now: float, want: int) -> int:
        """How many pending workflows ``queue``'s global limits admit now (at most ``want``)."""
        if queue.concurrency is not None:
            want = min(want, queue.concurrency - self._count_admitted(conn, queue.name, None))
        if queue.rate_limit is not None and want > 0:
            count, period = queue.rate_limit
            want = min(want, count - self._count_admitted(conn, queue.name, now - period))
        return max(want, 0)

    def next_wake_at(
        self,
        names: Iterable[str],
        queues: Sequence[QueueClaim] | None = None,
        version: VersionClaim | None = None,
    ) -> float | None:
        ids = self._dialect.ids
        params: tuple[Any, ...] = (
            FAR_FUTURE, ids(sorted(set(names))), *self._version_params(version)
        )  # fmt: skip
        query = self._claims.next_wake
        split = queue_filter(queues)
        if split is not None:
            query = self._claims.next_wake_queues
            params += (ids(split[0]), ids(split[1]))
        with self._read() as conn:
            row = conn.execute(query, params).fetchone()
        return None if row is None or row[0] is None else float(row[0])


def queue_filter(queues: Sequence[QueueClaim] | None) -> tuple[list[str], list[str]] | None:
    """For ``next_wake_at``: (queues whose pending workflows count, limited queues whose
    admitted workflows only count), or None for any queue."""
    if queues is None:
        return None
    return [q.name for q in queues if not q.limited], [q.name for q in queues if q.limited]
