"""The storage contract every backend implements.

A :class:`Store` holds workflows, their journals and the workers that run them. The engine and
the worker talk to storage only through this interface. Every method is thread-safe and
synchronous; callers on an event loop run it in a thread. Every method that writes does so in
one transaction: when it returns, the write is durable (committed), or nothing was written.

Fencing: a worker claims a workflow by bumping its ``epoch`` and setting itself as ``owner``
under a lease. Every later write for that workflow names (owner, epoch); the store applies it only
while the workflow still has exactly that owner and epoch, so a worker that lost its lease can
never overwrite the progress of the worker that took the workflow over.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "TERMINAL_STATUSES",
    "ClaimedWorkflow",
    "FinishWorkflow",
    "JournalEntry",
    "RecordAttempt",
    "RecordEntry",
    "StepAttempt",
    "Store",
    "WorkerInfo",
    "WorkflowRecord",
    "WorkflowStatus",
    "WriteOp",
]


class WorkflowStatus(StrEnum):
    """Where a workflow is in its life."""

    PENDING = "pending"
    """Started, not yet picked up by any worker."""
    RUNNING = "running"
    """Picked up at least once and not finished (it may be between owners after a crash)."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"
    NEEDS_ATTENTION = "needs_attention"
    """Stopped by a NonDeterminismError: the code no longer matches the journal."""


TERMINAL_STATUSES = frozenset(
    {
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
        WorkflowStatus.CANCELLED,
        WorkflowStatus.TERMINATED,
        WorkflowStatus.NEEDS_ATTENTION,
    }
)


@dataclass(slots=True)
class WorkflowRecord:
    """One row of the workflows table. Times are Unix seconds; payloads are encoded text."""

    id: str
    name: str
    status: WorkflowStatus
    input: str
    created_at: float
    updated_at: float
    output: str | None = None
    error: str | None = None
    queue: str = "default"
    priority: int = 0
    owner: str | None = None
    epoch: int = 0
    lease_expires_at: float | None = None
    wake_at: float | None = None
    version: str | None = None
    parent_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None


@dataclass(slots=True)
class JournalEntry:
    """The recorded outcome of one durable call at sequence number ``seq`` of a workflow.

    ``kind`` is ``"step"``, ``"now"``, ``"random"``, ``"uuid"`` (later: sleep, event, child...).
    ``status`` is ``"completed"`` (``result`` holds the encoded value) or ``"failed"`` (``error``
    holds the encoded error). ``owner``/``epoch`` are the fence the entry was written under.
    """

    workflow_id: str
    seq: int
    kind: str
    name: str
    status: str
    result: str | None
    error: str | None
    attempts: int
    owner: str
    epoch: int
    started_at: float
    finished_at: float


@dataclass(slots=True)
class StepAttempt:
    """One failed attempt of a step that was retried (or gave up)."""

    workflow_id: str
    seq: int
    attempt: int
    error: str
    owner: str
    epoch: int
    started_at: float
    finished_at: float


@dataclass(slots=True)
class RecordEntry:
    """Write op: insert a journal entry, fenced by ``entry.owner``/``entry.epoch``.

    Not applied if the fence fails or an entry at that seq already exists: a recorded result is
    never overwritten.
    """

    entry: JournalEntry


@dataclass(slots=True)
class RecordAttempt:
    """Write op: record a failed step attempt, fenced by ``attempt.owner``/``attempt.epoch``."""

    attempt: StepAttempt


@dataclass(slots=True)
class FinishWorkflow:
    """Write op: set a terminal status with output or error (fenced), and release the lease."""

    workflow_id: str
    owner: str
    epoch: int
    status: WorkflowStatus
    output: str | None
    error: str | None
    finished_at: float


WriteOp = RecordEntry | RecordAttempt | FinishWorkflow


@dataclass(slots=True)
class ClaimedWorkflow:
    """A workflow a worker now owns, with its whole journal, loaded in the claiming call."""

    record: WorkflowRecord
    journal: list[JournalEntry] = field(default_factory=list)


@dataclass(slots=True)
class WorkerInfo:
    """A worker process's registration: who it is, where, and what it serves."""

    id: str
    hostname: str
    pid: int
    started_at: float
    heartbeat_at: float
    workflows: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)


class Store(abc.ABC):
    """Durable storage for workflows, journals and workers. See the module docstring."""

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema by applying every numbered migration not yet applied.

        Idempotent and safe to call from several processes at once.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    @abc.abstractmethod
    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        """Insert ``record`` unless a workflow with its id exists, atomically.

        Returns the stored record (the existing one if the id was taken) and whether this call
        created it. Never modifies an existing workflow.
        """

    @abc.abstractmethod
    def write(self, ops: Sequence[WriteOp]) -> list[bool]:
        """Apply a batch of fenced write ops in one transaction, in order.

        Each op is applied only if its workflow still has the op's owner and epoch (and, for a
        journal entry, no entry exists at that seq). Returns, per op, whether it was applied. When
        this returns the applied ops are durable. Ops of many workflows may share one batch:
        this is how group commit pays one commit for many steps.
        """

    @abc.abstractmethod
    def claim(
        self,
        owner: str,
        names: Iterable[str],
        now: float,
        lease_seconds: float,
        limit: int,
    ) -> list[ClaimedWorkflow]:
        """Take ownership of up to ``limit`` runnable workflows whose name is in ``names``.

        Runnable: pending or running, not owned or with an expired lease of another owner (a
        worker never re-claims its own workflows: it renews them), and not waiting (``wake_at``
        empty or due). Highest priority first, then oldest. Each claimed workflow
        gets ``owner``, ``epoch + 1`` and a lease until ``now + lease_seconds``, atomically, so two
        workers never claim the same workflow at one epoch. Returns them with their journals.
        """

    @abc.abstractmethod
    def renew_leases(self, owner: str, until: float) -> set[str]:
        """Extend every lease held by ``owner`` to ``until``; return the ids it still owns."""

    @abc.abstractmethod
    def release(self, owner: str, workflow_ids: Iterable[str] | None = None) -> None:
        """Give up ownership (of all, or of the given workflows) so another worker may claim them
        at once. Only unfinished workflows still owned by ``owner`` are touched."""

    @abc.abstractmethod
    def expire_leases(self, owners: Iterable[str]) -> int:
        """Make every lease held by the given owners expire now (their processes are known dead).

        Returns how many workflows were affected.
        """

    @abc.abstractmethod
    def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """The workflow with this id, or None."""

    @abc.abstractmethod
    def list_workflows(
        self,
        *,
        statuses: Sequence[WorkflowStatus] | None = None,
        name: str | None = None,
        limit: int = 100,
    ) -> list[WorkflowRecord]:
        """Workflows matching the filters, newest first."""

    @abc.abstractmethod
    def get_journal(self, workflow_id: str) -> list[JournalEntry]:
        """The workflow's journal ordered by seq (empty if none)."""

    @abc.abstractmethod
    def get_attempts(self, workflow_id: str) -> list[StepAttempt]:
        """The workflow's failed step attempts ordered by (seq, attempt)."""

    @abc.abstractmethod
    def register_worker(self, info: WorkerInfo) -> None:
        """Insert or replace the registration of worker ``info.id``."""

    @abc.abstractmethod
    def heartbeat_worker(self, worker_id: str, now: float) -> None:
        """Record that the worker is alive at ``now``."""

    @abc.abstractmethod
    def remove_worker(self, worker_id: str) -> None:
        """Delete the worker's registration (leases are not touched)."""

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerInfo]:
        """Every registered worker."""
