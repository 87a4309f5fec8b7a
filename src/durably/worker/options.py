"""Tuning of a worker (:class:`WorkerOptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from durably.errors import ConfigurationError
from durably.queues import validate_queue_name

__all__ = ["WorkerOptions"]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Tuning for a worker. The defaults suit most apps."""

    lease_seconds: float = 5.0
    """How long a claim lasts without a heartbeat; another host's worker takes over after it."""
    poll_interval: float = 0.25
    """How often to look for new work started by other processes (and for events, commands and
    expired leases of other hosts' workers). With a store that pushes wake-ups (PostgreSQL:
    LISTEN/NOTIFY) polling is only a fallback, every ``max(poll_interval,
    listen_poll_interval)``. Due timers never wait for a poll: the worker sleeps until the
    earliest one."""
    listen_poll_interval: float = 1.0
    """The slowest fallback poll when the store pushes wake-ups (notifications can be lost,
    e.g. across a reconnect): work of other processes then waits for it only if its wake-up
    was lost, or after a dead worker's lease expires. Set 0 to poll every ``poll_interval``."""
    max_concurrent: int = 500
    """Workflows in progress at once in this worker."""
    claim_batch: int = 100
    step_threads: int = 32
    """Threads for sync steps."""
    workflow_threads: int = 64
    """Threads for sync workflow functions (each holds one while it runs)."""
    eviction_threshold: float = 5.0
    """A workflow waiting (timer, event, child) longer than this many seconds is unwound from
    memory and replayed when it wakes; 0 unwinds every wait at once."""
    queues: tuple[str, ...] | None = None
    """The queues this worker serves (e.g. ``("gpu",)`` on a GPU machine). None: the
    ``default`` queue and every queue of the worker's App (``app.queue(...)``, and the
    stand-alone :class:`~durably.Queue` objects it adopted or, deprecated, that live in this
    process)."""
    schedules: bool = True
    """Whether this worker ticks schedules (writes its App's declared schedules at start and
    starts the workflows of due ticks; see :mod:`durably.schedules`). Any number of workers may
    tick: each tick still starts one workflow."""
    retention_interval: float = 60.0
    """Seconds between this worker's retention passes (see :mod:`durably.worker.retention`);
    a pass runs only when the App or one of its workflows has a ``retention``."""
    retention_batch: int = 100
    """Workflows purged per transaction by a retention pass (short transactions: SQLite's
    single writer is held a few milliseconds at a time)."""
    retention_pause: float = 0.0
    """The least a retention pass waits between two batches, in seconds."""
    retention_share: float = 0.05
    """The most of its time a retention pass spends in its batches' transactions: after a
    batch that took t seconds it waits t * (1 - share) / share (0.05: 19 t), so running work
    keeps the database (SQLite's single writer above all)."""

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0 or self.poll_interval <= 0:
            raise ConfigurationError("lease_seconds and poll_interval must be > 0 seconds")
        if (
            self.retention_interval <= 0
            or self.retention_pause < 0
            or self.retention_batch < 1
            or not 0 < self.retention_share <= 1
        ):
            raise ConfigurationError(
                "retention_interval must be > 0 seconds, retention_pause >= 0, "
                "retention_batch >= 1 and retention_share from 0 (excluded) to 1"
            )
        if self.eviction_threshold < 0 or self.listen_poll_interval < 0:
            raise ConfigurationError(
                "eviction_threshold and listen_poll_interval must be >= 0 seconds"
            )
        if min(self.max_concurrent, self.claim_batch, self.step_threads,
               self.workflow_threads) < 1:  # fmt: skip
            raise ConfigurationError(
                "max_concurrent, claim_batch, step_threads and workflow_threads must be >= 1"
            )
        if self.queues is not None:
            if isinstance(self.queues, str) or not self.queues:
                raise ConfigurationError(
                    "queues must be a non-empty tuple of queue names, such as ('default', "
                    f"'gpu'), or None for every queue defined here; got {self.queues!r}"
                )
            object.__setattr__(
                self, "queues", tuple(dict.fromkeys(validate_queue_name(q) for q in self.queues))
            )
