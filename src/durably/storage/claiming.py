"""Claiming across queues with limits: the plan both backends share.

A backend supplies three statements (:meth:`QueuePlanner._take`, :meth:`_lock_queue` and
:meth:`_count_admitted`); :meth:`QueuePlanner._claim_rows` runs them, in the backend's claim
transaction, so that a queue's global limits hold however many workers claim at once:

- workflows of queues without global limits are taken directly (one statement for all the
  queues with no per-worker cap);
- for a limited queue, workflows it already admitted (``running``: parked, or orphaned by a
  dead worker) are taken first, needing no admission; then the queue is locked (PostgreSQL: a
  transaction-scoped advisory lock; SQLite: its single writer already serializes claims), what
  it admitted is counted, and only as many ``pending`` workflows as the limits leave are taken.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from durably.storage.base import QueueClaim

__all__ = ["QueuePlanner", "queue_filter"]


class QueuePlanner(abc.ABC):
    """Mixin of the stores: the queue-aware claim plan over three backend statements."""

    @abc.abstractmethod
    def _take(
        self,
        conn: Any,
        owner: str,
        names: list[str],
        now: float,
        lease_seconds: float,
        limit: int,
        queues: list[str] | None,
        status: str | None,
    ) -> list[tuple[Any, ...]]:
        """Claim up to ``limit`` runnable workflows with one of ``names`` (in ``queues`` if
        given; with ``status`` if given, else pending or running) and return their rows."""

    @abc.abstractmethod
    def _lock_queue(self, conn: Any, queue: str) -> None:
        """Serialize admissions to ``queue`` until this transaction ends."""

    @abc.abstractmethod
    def _count_admitted(self, conn: Any, queue: str, since: float | None) -> int:
        """How many workflows of ``queue`` are admitted and unfinished (``since`` None), or
        were admitted at or after ``since`` (by ``started_at``, finished or not)."""

    def _claim_rows(
        self,
        conn: Any,
        owner: str,
        names: list[str],
        now: float,
        lease_seconds: float,
        limit: int,
        queues: Sequence[QueueClaim] | None,
    ) -> list[tuple[Any, ...]]:
        if queues is None:
            return self._take(conn, owner, names, now, lease_seconds, limit, None, None)
        rows: list[tuple[Any, ...]] = []
        free = [q.name for q in queues if not q.limited and q.limit is None]
        if free and limit > 0:
            rows += self._take(conn, owner, names, now, lease_seconds, limit, free, None)
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
                rows += self._take(conn, owner, names, now, lease_seconds, want, [q.name], None)
                continue
            # admitted already: they hold their place in the queue
            got = self._take(conn, owner, names, now, lease_seconds, want, [q.name], "running")
            rows += got
            want -= len(got)
            if want <= 0:
                continue
            self._lock_queue(conn, q.name)
            admit = self._admissible(conn, q, now, want)
            if admit > 0:
                rows += self._take(
                    conn, owner, names, now, lease_seconds, admit, [q.name], "pending"
                )
        return rows

    def _admissible(self, conn: Any, queue: QueueClaim, now: float, want: int) -> int:
        """How many pending workflows ``queue``'s global limits admit now (at most ``want``)."""
        if queue.concurrency is not None:
            want = min(want, queue.concurrency - self._count_admitted(conn, queue.name, None))
        if queue.rate_limit is not None and want > 0:
            count, period = queue.rate_limit
            want = min(want, count - self._count_admitted(conn, queue.name, now - period))
        return max(want, 0)


def queue_filter(queues: Sequence[QueueClaim] | None) -> tuple[list[str], list[str]] | None:
    """For ``next_wake_at``: (queues whose pending workflows count, limited queues whose
    admitted workflows only count), or None for any queue."""
    if queues is None:
        return None
    return [q.name for q in queues if not q.limited], [q.name for q in queues if q.limited]
