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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "FAR_FUTURE",
    "PREVIEW_CHARS",
    "TERMINAL_STATUSES",
    "ChildOutcome",
    "ClaimedWorkflow",
    "ConsumeEvent",
    "ContinueAsNew",
    "CreateWorkflow",
    "DeliverCancel",
    "Ended",
    "FinishWorkflow",
    "InboxEvent",
    "JournalEntry",
    "Park",
    "QueueClaim",
    "RecordAttempt",
    "RecordEntry",
    "RunRecord",
    "ScheduleRecord",
    "SetState",
    "Signals",
    "StartChild",
    "StepAttempt",
    "Store",
    "VersionClaim",
    "VersionCounts",
    "WorkerInfo",
    "WorkflowRecord",
    "WorkflowSelection",
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
    SUSPENDED = "suspended"
    """Paused by ``suspend``: makes no progress (its timers and events wait) until resumed."""
    CONTINUED_AS_NEW = "continued_as_new"
    """A finished run of a workflow that continued as new (seen in its runs, never as status)."""


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
    run: int = 1
    parent_seq: int | None = None
    cancel_requested: bool = False
    cancel_key: str | None = None


PREVIEW_CHARS = 200
"""How much of each payload (input, output, error) a list shows: :meth:`Store.list_workflows`
reads at most one character more (to tell a cut value), never a whole payload."""

FAR_FUTURE = 1e15
"""``wake_at`` of a workflow parked with no timer: only an event, a child or a command wakes it."""


@dataclass(slots=True)
class JournalEntry:
    """The recorded outcome of one durable call at sequence number ``seq`` of a workflow.

    ``kind`` is ``"step"``, ``"now"``, ``"random"``, ``"uuid"``, ``"sleep"``, ``"event"``,
    ``"state"``, ``"child"``, ``"patch"`` (a ``durably.patched()`` marker) or ``"any"`` (a
    ``durably.wait_any``). ``status`` is ``"completed"`` (``result`` holds the encoded value),
    ``"failed"`` (``error`` holds the encoded error) or ``"waiting"`` (an event, child or
    ``wait_any`` wait not resolved yet, ``result`` holding what the wait needs, such as its
    deadline; or a step between two attempts: ``attempts`` made, ``result`` the retry time,
    ``error`` the last attempt's error). A waiting entry is resolved once; a completed or
    failed one is never changed. ``owner``/``epoch`` are the fence the entry was written under.
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
    key: str = ""
    """The call's identity in the code: its branch path and index there (``"3"`` for the
    fourth call of the workflow's main line, ``"b1/0"`` for the first call of its second
    concurrent branch). Replay finds entries by key, so concurrent branches replay the same
    whatever order their calls were first made in; ``seq`` is the order they were made in."""


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

    Not applied if the fence fails or a completed or failed entry exists at that seq: a recorded
    result is never overwritten. A ``waiting`` entry of the same kind and name is replaced.
    """

    entry: JournalEntry


@dataclass(slots=True)
class CreateWorkflow:
    """Write op: insert a new workflow unless its id exists (not fenced: nobody owns it yet).
    Applied means created; an existing workflow is never modified."""

    record: WorkflowRecord


@dataclass(slots=True)
class ConsumeEvent:
    """Write op: mark inbox event ``event_id`` consumed at ``entry.seq`` and record ``entry``
    (its payload), both or neither, fenced. Not applied if the event was already consumed."""

    entry: JournalEntry
    event_id: int


@dataclass(slots=True)
class SetState:
    """Write op: publish ``key = value`` (encoded) from the durable call at ``seq``, fenced.
    A value from an earlier seq never replaces one from a later seq."""

    workflow_id: str
    owner: str
    epoch: int
    key: str
    value: str
    seq: int
    updated_at: float


@dataclass(slots=True)
class StartChild:
    """Write op: create workflow ``child`` and record ``entry`` (a ``waiting`` child entry of
    the parent), both or neither, fenced by the parent's lease.

    A workflow that already holds the child's id is this very start made before (a replay, a
    retried commit) if it is a child of the same parent (``child.parent_id``) with the same
    name: then only ``entry`` is recorded. Any other holder (a top-level workflow, another
    parent's child, a workflow of another name) is a conflict: nothing is created, the entry
    ``conflict(holder's name, holder's parent id or None)`` is recorded instead of ``entry`` (a
    failed child entry, so that every replay of the parent fails the same way, with no second
    attempt), and the write sets ``conflicted`` to it: how its maker learns of the conflict.
    ``conflict`` runs inside the write's transaction: it must be quick and do no I/O.
    """

    child: WorkflowRecord
    entry: JournalEntry
    conflict: Callable[[str, str | None], JournalEntry]
    conflicted: JournalEntry | None = None
    """Set by :meth:`Store.write`: the entry recorded instead of ``entry`` (None: no conflict)."""


@dataclass(slots=True)
class Park:
    """Write op: unwind a waiting workflow: release its lease and set ``wake_at`` so that a
    worker claims it again when its earliest timer is due. Fenced. If, by commit time, an
    unconsumed event named in ``event_names`` exists, a child in ``child_ids`` has finished or a
    cancellation was requested, ``wake_at`` is set to ``now`` instead (no wake-up is lost)."""

    workflow_id: str
    owner: str
    epoch: int
    wake_at: float
    now: float
    event_names: list[str] = field(default_factory=list)
    child_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class DeliverCancel:
    """Write op: record that the requested cancellation was raised at the durable call ``key``."""

    workflow_id: str
    owner: str
    epoch: int
    key: str


@dataclass(slots=True)
class ContinueAsNew:
    """Write op: end the current run (kept in the runs table) and restart the workflow with
    ``input`` and an empty journal, fenced. The next claim starts run ``run + 1``."""

    workflow_id: str
    owner: str
    epoch: int
    input: str
    output: str | None
    finished_at: float


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


WriteOp = (
    RecordEntry
    | RecordAttempt
    | CreateWorkflow
    | FinishWorkflow
    | ConsumeEvent
    | SetState
    | StartChild
    | Park
    | DeliverCancel
    | ContinueAsNew
)


class Ended(NamedTuple):
    """How a workflow ended, as its worker committed it: what a waiter needs of its record."""

    id: str
    name: str
    status: WorkflowStatus
    output: str | None
    error: str | None


@dataclass(slots=True)
class InboxEvent:
    """An event sent to a workflow and not yet consumed."""

    id: int
    workflow_id: str
    name: str
    payload: str | None
    created_at: float


@dataclass(slots=True)
class ChildOutcome:
    """How a finished child workflow ended (its status, output or error)."""

    id: str
    status: WorkflowStatus
    output: str | None
    error: str | None
    finished_at: float | None = None
    """When it ended (Unix time; None where unknown): ``durably.wait_any`` orders what became
    ready while the parent was parked by it."""


@dataclass(slots=True)
class Signals:
    """What changed for running workflows since a worker last looked (see ``poll_signals``)."""

    events: list[InboxEvent] = field(default_factory=list)
    children: dict[str, list[ChildOutcome]] = field(default_factory=dict)
    cancel_requested: set[str] = field(default_factory=set)


@dataclass(slots=True)
class RunRecord:
    """One finished run of a workflow that continued as new."""

    workflow_id: str
    run: int
    input: str
    output: str | None
    status: WorkflowStatus
    started_at: float | None
    finished_at: float


@dataclass(slots=True)
class ClaimedWorkflow:
    """A workflow a worker now owns, with its whole journal, loaded in the claiming call."""

    record: WorkflowRecord
    journal: list[JournalEntry] = field(default_factory=list)
    events: list[InboxEvent] = field(default_factory=list)
    children: list[ChildOutcome] = field(default_factory=list)


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
    version: str | None = None
    """The version of the code it runs (``App(version=...)``), or None: unversioned."""
    auto_upgrade: list[str] = field(default_factory=list)
    """The workflow names its code marks ``auto_upgrade``: it runs them whatever version they
    started under."""


@dataclass(slots=True)
class ScheduleRecord:
    """One row of the schedules table (see :mod:`durably.schedules`). Times are Unix seconds.

    The definition: ``workflow_name``, ``spec`` (the timing as JSON: ``cron`` or ``every``,
    and ``timezone``), ``input`` (the encoded arguments), ``queue``, ``overlap``,
    ``catchup_window`` (seconds; None: one tick), ``jitter`` (seconds), ``start_at``/``end_at``,
    ``paused`` with ``pause_reason``, ``note``. Where it is: ``next_run_at`` (its next tick; None
    when it has no more), ``due_at`` (when that tick's workflow starts: the tick plus its
    jitter), ``buffered_at`` (a tick held back by ``overlap="buffer_one"``). What its last tick
    did: ``last_tick``, ``last_workflow_id``, ``last_result``; ``missed`` counts missed ticks.
    ``revision`` grows by one on every change: every change is a compare-and-set on it."""

    name: str
    workflow_name: str
    spec: str
    input: str
    created_at: float
    updated_at: float
    queue: str = "default"
    overlap: str = "skip"
    catchup_window: float | None = None
    jitter: float = 0.0
    start_at: float | None = None
    end_at: float | None = None
    paused: bool = False
    pause_reason: str | None = None
    note: str = ""
    next_run_at: float | None = None
    due_at: float | None = None
    buffered_at: float | None = None
    last_tick: float | None = None
    last_workflow_id: str | None = None
    last_result: str | None = None
    missed: int = 0
    revision: int = 0


VersionCounts = dict[str | None, dict[WorkflowStatus, int]]
"""Unfinished workflows per version (None: started with no version), by status."""


@dataclass(frozen=True, slots=True)
class VersionClaim:
    """Which workflows a worker of version ``version`` may claim (see
    :meth:`Store.claim`): those started under ``version``, those started with no version, and
    of the names in ``any_version`` (its ``auto_upgrade`` workflows) those of every version."""

    version: str
    any_version: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueClaim:
    """A queue a worker claims from, with the limits that hold on it.

    ``limit`` caps how many workflows of this queue one claim call takes (the worker's own
    ``worker_concurrency`` headroom; None: no cap but the call's). ``concurrency`` and
    ``rate_limit`` are global, across every worker and host: at most ``concurrency`` workflows
    of the queue admitted and not finished (status ``running``), and at most
    ``rate_limit[0]`` admitted in any window of ``rate_limit[1]`` seconds (by ``started_at``).
    A workflow is admitted by its first claim (``pending`` to ``running``); once admitted it
    keeps its place until it finishes, parked or not, so its later claims need no admission.
    """

    name: str
    limit: int | None = None
    concurrency: int | None = None
    rate_limit: tuple[int, float] | None = None

    @property
    def limited(self) -> bool:
        """Whether admission to this queue is limited globally."""
        return self.concurrency is not None or self.rate_limit is not None


@dataclass(frozen=True, slots=True)
class WorkflowSelection:
    """Which workflows a bulk operation or a retention pass acts on: every criterion given must
    hold (an empty selection selects every workflow). Times are epoch seconds; ``*_after`` is
    inclusive, ``*_before`` exclusive. ``exclude_names`` leaves out workflows of those names."""

    statuses: tuple[WorkflowStatus, ...] | None = None
    names: tuple[str, ...] | None = None
    exclude_names: tuple[str, ...] | None = None
    version: str | None = None
    queue: str | None = None
    id_prefix: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    finished_after: float | None = None
    finished_before: float | None = None


class Store(abc.ABC):
    """Durable storage for workflows, journals and workers. See the module docstring."""

    quick_reads: bool = False
    """Whether a read of a few rows returns at once, without a network round trip or a wait on
    another process (SQLite in WAL mode: readers never wait for writers), so that code on an
    event loop may run it there. False (the default): run reads in a thread, lest a database
    outage stall the loop."""

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema by applying every numbered migration not yet applied.

        Idempotent and safe to call from several processes at once.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""

    def schema_version(self) -> int:
        """The highest migration applied to this database (0 if none). Raises the driver's
        error where durably's migrations table does not exist yet."""
        raise NotImplementedError

    @abc.abstractmethod
    def create_workflow(self, record: WorkflowRecord) -> tuple[WorkflowRecord, bool]:
        """Insert ``record`` unless a workflow with its id exists, atomically.

        Returns the stored record (the existing one if the id was taken) and whether this call
        created it. Never modifies an existing workflow.
        """

    def is_transient(self, error: Exception) -> bool:
        """Whether a failed call may succeed if retried as is (the database unreachable,
        locked or in a deadlock), as opposed to an error of the ops themselves. The default,
        for a backend that cannot tell, is True."""
        return True

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
        queues: Sequence[QueueClaim] | None = None,
        version: VersionClaim | None = None,
    ) -> list[ClaimedWorkflow]:
        """Take ownership of up to ``limit`` runnable workflows whose name is in ``names``.

        With ``version``, only the workflows a worker of that version may run (see
        :class:`VersionClaim`); without, any version (an unversioned worker runs anything).

        Runnable: pending or running, not owned or with an expired lease of another owner (a
        worker never re-claims its own workflows: it renews them), and not waiting (``wake_at``
        empty or due). With ``queues``, only workflows of those queues, within each queue's
        limits (see :class:`QueueClaim`; the global limits hold under concurrent claims of
        many workers); without, any queue and no limits. Highest priority first, then oldest
        (within a queue). Each claimed workflow
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
        created_after: float | None = None,
        created_before: float | None = None,
        id_prefix: str | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[WorkflowRecord]:
        """Workflows matching the filters, newest first (by ``created_at``, then ``id``).

        ``created_after``/``created_before`` bound ``created_at`` (inclusive/exclusive, epoch
        seconds); ``id_prefix`` keeps ids that start with it; ``before`` is a keyset cursor: only
        workflows ordered after ``(created_at, id)`` of the last one of the previous page.

        A list never reads whole payloads: each record's ``input``, ``output`` and ``error``
        hold only the first ``PREVIEW_CHARS + 1`` characters of the stored text (longer than
        ``PREVIEW_CHARS``: the value was cut), so a page costs the same whatever the workflows
        carry. :meth:`get_workflow` reads one workflow whole.
        """

    def finished_workflows(self, workflow_ids: Sequence[str]) -> dict[str, WorkflowRecord | None]:
        """Of these workflows, the ones that have ended (a terminal status), and None for each id
        that names no workflow; ids of workflows still under way are left out. One read for many
        waiters (``result_async`` of many handles); backends override it with one query."""
        found: dict[str, WorkflowRecord | None] = {}
        for workflow_id in workflow_ids:
            rec = self.get_workflow(workflow_id)
            if rec is None or rec.status in TERMINAL_STATUSES:
                found[workflow_id] = rec
        return found

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

    # -- events, state, children ------------------------------------------------------------

    @abc.abstractmethod
    def send_event(
        self, workflow_id: str, name: str, payload: str | None, dedup_key: str | None, now: float
    ) -> tuple[WorkflowRecord | None, bool]:
        """Append an event to the workflow's inbox and wake it, atomically.

        Returns the workflow (None if there is none) and whether the event was added: not if the
        workflow has finished, or if an event with the same ``dedup_key`` was already sent to it.
        """

    @abc.abstractmethod
    def poll_signals(self, workflow_ids: Sequence[str], after_event_id: int) -> Signals:
        """For running workflows: unconsumed events with id > ``after_event_id``, finished
        children, and which of them have a cancellation requested."""

    @abc.abstractmethod
    def get_state(self, workflow_id: str) -> dict[str, str]:
        """The workflow's published state: key -> encoded value."""

    @abc.abstractmethod
    def list_children(self, parent_id: str) -> list[WorkflowRecord]:
        """Workflows started as children of ``parent_id``, oldest first."""

    @abc.abstractmethod
    def list_runs(self, workflow_id: str) -> list[RunRecord]:
        """Earlier runs of a workflow that continued as new, oldest first."""

    def listen(self, callback: Callable[[str], None]) -> Callable[[], None] | None:
        """Start pushing wake-ups: call ``callback(kind)`` (from any thread) whenever another
        connection commits runnable work: a new workflow (``"new"``), an event (``"event"``), a
        finished child (``"child"``), an immediate wake (``"wake"``) or a command
        (``"command"``); and ``"reconnect"`` after wake-ups may have been lost. Returns a
        function that stops listening, or None if this store cannot push wake-ups (the default):
        workers then find new work by polling. Delivery is best effort: a worker must still
        poll, slowly, as a fallback."""
        return None

    @abc.abstractmethod
    def next_wake_at(
        self,
        names: Iterable[str],
        queues: Sequence[QueueClaim] | None = None,
        version: VersionClaim | None = None,
    ) -> float | None:
        """The earliest time at which an unowned, unfinished workflow with one of ``names``
        (and, with ``queues``, in one of them; with ``version``, one that version may claim,
        as in :meth:`claim`) becomes runnable (its ``wake_at``; 0 for one
        runnable now); None if none will be (finished, owned, or waiting for an event or a
        child with no timer). Pending workflows of limited queues are left out: when they are
        admitted depends on other workflows finishing, not on a time."""

    # -- versions -------------------------------------------------------------------------------

    @abc.abstractmethod
    def count_versions(self) -> VersionCounts:
        """How many unfinished workflows (any status but a terminal one) each version has, by
        status; the key None counts those started with no version. Versions with none
        unfinished are left out."""

    @abc.abstractmethod
    def move_version(
        self,
        from_version: str,
        to_version: str,
        now: float,
        only: Mapping[str, int] | None = None,
    ) -> list[str]:
        """Record ``to_version`` on unfinished workflows of ``from_version`` (so that workers
        of ``to_version`` run them from now on); returns the ids moved, sorted.

        With ``only`` ({id: journal length}), only those workflows, each only if its journal
        still has that many entries (what was checked is what moves). A moved workflow that a
        worker holds loses its lease at once (epoch bumped, owner cleared): that worker's
        further writes are refused, and a worker of the new version claims it."""

    # -- lifecycle commands (each atomic; each returns the workflow after it, None if absent) --

    @abc.abstractmethod
    def request_cancel(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        """Ask a running workflow and its running descendants to cancel (they wake to see it).
        One that never started is cancelled at once."""

    @abc.abstractmethod
    def terminate(self, workflow_id: str, error: str, now: float) -> WorkflowRecord | None:
        """Stop an unfinished workflow and its unfinished descendants at once: status
        terminated, lease revoked (epoch bumped), so no further write of its worker lands."""

    @abc.abstractmethod
    def suspend(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        """Pause a pending or running workflow: status suspended, lease revoked."""

    @abc.abstractmethod
    def resume(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        """Let a suspended workflow run again (its timers keep their times)."""

    @abc.abstractmethod
    def retry(self, workflow_id: str, now: float) -> WorkflowRecord | None:
        """Run a failed workflow again from its failed step: drop that step's failed entry,
        keep every earlier result, set it running."""

    @abc.abstractmethod
    def fork(
        self, workflow_id: str, new_id: str, from_seq: int, now: float
    ) -> tuple[WorkflowRecord | None, bool]:
        """Create ``new_id``: the same workflow and input with a copy of the journal entries
        with seq < ``from_seq`` (up to the first unresolved wait), pending. Returns (the new or
        existing record, created); None if the source does not exist."""

    def purge(self, workflow_id: str) -> bool:
        """Delete a finished workflow with its journal, attempts, events, state and runs
        (:meth:`purge_workflows` of one id). Returns False (and deletes nothing) if it does
        not exist, has not finished, or is a child whose parent has not finished."""
        return self.purge_workflows([workflow_id]) == [workflow_id]

    # -- schedules (see durably.schedules) ------------------------------------------------------

    def insert_schedule(self, record: ScheduleRecord) -> bool:
        """Insert ``record`` unless a schedule of its name exists; whether it was inserted."""
        raise NotImplementedError

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        """The schedule named ``name``, or None."""
        raise NotImplementedError

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        raise NotImplementedError

    def due_schedules(self, now: float, limit: int = 100) -> list[ScheduleRecord]:
        """Unpaused schedules whose next tick is due (``due_at <= now``) or that hold a
        buffered tick, earliest first, at most ``limit``."""
        raise NotImplementedError

    def next_schedule_due(self) -> float | None:
        """The earliest ``due_at`` of the unpaused schedules (None: none has a next tick)."""
        raise NotImplementedError

    def update_schedule(
        self, record: ScheduleRecord, revision: int, creations: Sequence[WorkflowRecord] = ()
    ) -> list[bool] | None:
        """Compare-and-set: if the stored schedule ``record.name`` is still at ``revision``,
        replace it by ``record`` at ``revision + 1`` and create the workflows ``creations``
        (each unless its id exists, as :meth:`create_workflow`), all in one transaction;
        returns per creation whether it was created. None (and nothing written) if the schedule
        is gone or was changed since (another worker advanced it, an operator edited it): the
        caller reads it again. This is how a tick starts exactly one workflow whatever runs
        concurrently."""
        raise NotImplementedError

    def delete_schedule(self, name: str) -> bool:
        """Delete the schedule (its workflows stay); whether it existed."""
        raise NotImplementedError

    # -- bulk operations and retention ----------------------------------------------------------

    @abc.abstractmethod
    def select_workflow_ids(
        self, selection: WorkflowSelection, *, after: str | None, limit: int
    ) -> list[str]:
        """Up to ``limit`` ids of the workflows ``selection`` selects, in id order, only those
        after ``after`` (a keyset cursor: the last id of the previous page). A read; nothing is
        locked."""

    @abc.abstractmethod
    def count_workflows(self, selection: WorkflowSelection) -> int:
        """How many workflows ``selection`` selects."""

    @abc.abstractmethod
    def expired_workflows(
        self, selection: WorkflowSelection, *, after: tuple[float, str] | None, limit: int
    ) -> list[tuple[float, str]]:
        """``(finished_at, id)`` of up to ``limit`` finished workflows ``selection`` selects,
        oldest finish first, only those after ``after`` (the last pair of the previous page):
        what a retention pass purges, read through the ``(finished_at, id)`` index."""

    @abc.abstractmethod
    def purge_workflows(self, workflow_ids: Sequence[str]) -> list[str]:
        """Delete, in one short transaction, those of ``workflow_ids`` that have finished (a
        terminal status) and are not children of an unfinished parent (which would wait for
        their outcome forever), with their journals, attempts, events, state and runs. Returns
        the ids deleted; the others (absent, unfinished, purged meanwhile by another caller)
        are left as they are. Safe to run concurrently with itself."""
