"""Steering workflows from outside: events, cancel, terminate, suspend, resume, retry, fork, purge.

A mixin of :class:`durably.App`. Every command is one atomic store call; a workflow that does not
exist raises :class:`WorkflowNotFoundError`, and one whose status does not allow the command
raises :class:`WorkflowStateError` naming that status. Nothing is half-done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from durably import limits
from durably.errors import ConfigurationError, WorkflowNotFoundError, WorkflowStateError
from durably.ids import new_workflow_id, validate_workflow_id
from durably.storage.base import TERMINAL_STATUSES, WorkflowRecord, WorkflowStatus
from durably.storage.urls import redact_url

if TYPE_CHECKING:
    from durably.codec import Codec
    from durably.handle import WorkflowHandle
    from durably.storage.base import Store

__all__ = ["Commands", "Lifecycle"]


def _found(rec: WorkflowRecord | None, workflow_id: str, database: str) -> WorkflowRecord:
    """``rec``, or the error that no workflow ``workflow_id`` is in ``database`` (a URL, shown
    with its secrets hidden)."""
    if rec is None:
        raise WorkflowNotFoundError(
            f"no workflow with id {workflow_id!r} in {redact_url(database)}; check the id "
            "(app.list_workflows() lists them)",
            workflow_id=workflow_id,
        )
    return rec


def _refuse(rec: WorkflowRecord, command: str, hint: str = "") -> WorkflowStateError:
    return WorkflowStateError(
        f"cannot {command} workflow {rec.id!r}: it is {rec.status.value}{hint}",
        workflow_id=rec.id,
    )


class Lifecycle:
    """Lifecycle commands of :class:`durably.App`: events, cancel, terminate, suspend, resume,
    retry, fork, purge."""

    database_url: str
    codec: Codec
    clock: Callable[[], float]

    @property
    def store(self) -> Store:  # provided by App
        raise NotImplementedError

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:  # provided by App
        raise NotImplementedError

    def _notify_worker(self) -> None:  # provided by App
        raise NotImplementedError

    def send_event(
        self, workflow_id: str, name: str, payload: Any = None, *, dedup_key: str | None = None
    ) -> bool:
        """Send event ``name`` with ``payload`` to a running (or not yet started) workflow.

        Events wait in the workflow's inbox until ``durably.wait_event(name)`` consumes them, one
        per wait, in the order sent. Returns False (and adds nothing) if an event with the same
        ``dedup_key`` was already sent to it. Raises :class:`WorkflowStateError` if the workflow
        has finished.
        """
        validate_workflow_id(workflow_id)
        limits.check_event(name, dedup_key)
        encoded = self.codec.encode(
            payload, what=f"payload of event {name!r}", workflow_id=workflow_id
        )
        rec, added = self.store.send_event(workflow_id, name, encoded, dedup_key, self.clock())
        rec = _found(rec, workflow_id, self.database_url)
        if not added and rec.status in TERMINAL_STATUSES:
            raise _refuse(rec, f"send event {name!r} to", ": events go to unfinished workflows")
        if added:
            self._notify_worker()
        return added

    def cancel(self, workflow_id: str) -> None:
        """Cancel a workflow: :class:`durably.Cancelled` is raised inside it at its next durable
        point (so ``finally`` and compensation code run), then it ends ``cancelled``. Its running
        children are cancelled too. A workflow no worker has started yet is cancelled at once."""
        rec = _found(
            self.store.request_cancel(validate_workflow_id(workflow_id), self.clock()),
            workflow_id,
            self.database_url,
        )
        if rec.status in TERMINAL_STATUSES and rec.status is not WorkflowStatus.CANCELLED:
            raise _refuse(rec, "cancel")
        self._notify_worker()

    def terminate(self, workflow_id: str, reason: str = "terminated") -> None:
        """Stop a workflow now: no more of its code runs (no ``finally``, no compensation); its
        unfinished children are terminated too. Status ``terminated`` with ``reason``."""
        reason = limits.check_text(
            reason, "reason", max_length=limits.MAX_REASON_LENGTH, allow_empty=True
        )
        error = self.codec.encode_error(
            {"type": "Terminated", "code": "terminated", "message": reason}
        )
        before = self.store.get_workflow(validate_workflow_id(workflow_id))
        before = _found(before, workflow_id, self.database_url)
        if before.status in TERMINAL_STATUSES:
            raise _refuse(before, "terminate")
        self.store.terminate(workflow_id, error, self.clock())

    def suspend(self, workflow_id: str) -> None:
        """Pause a workflow: it makes no progress (its timers and events wait) until resumed."""
        rec = _found(
            self.store.suspend(validate_workflow_id(workflow_id), self.clock()),
            workflow_id,
            self.database_url,
        )
        if rec.status is not WorkflowStatus.SUSPENDED:
            raise _refuse(rec, "suspend")

    def resume(self, workflow_id: str) -> None:
        """Let a suspended workflow continue where it stopped."""
        before = self.store.get_workflow(validate_workflow_id(workflow_id))
        before = _found(before, workflow_id, self.database_url)
        if before.status is not WorkflowStatus.SUSPENDED:
            raise _refuse(before, "resume", ": only suspended workflows resume")
        self.store.resume(workflow_id, self.clock())
        self._notify_worker()

    def retry(self, workflow_id: str) -> None:
        """Run a failed (or needs_attention) workflow again from its failed step: earlier step
        results are kept and not run again. Deploy the fix first."""
        rec = _found(
            self.store.retry(validate_workflow_id(workflow_id), self.clock()),
            workflow_id,
            self.database_url,
        )
        if rec.status is not WorkflowStatus.RUNNING:
            raise _refuse(rec, "retry", ": only failed or needs_attention workflows retry")
        self._notify_worker()

    def fork(
        self, workflow_id: str, *, from_step: int, new_id: str | None = None
    ) -> WorkflowHandle[Any]:
        """A new workflow with the same input and a copy of this one's journal before seq
        ``from_step``; it re-executes from there (to recover after a bug fix)."""
        validate_workflow_id(workflow_id)
        limits.check_from_step(from_step)
        target = new_workflow_id() if new_id is None else validate_workflow_id(new_id)
        self._check_fork_point(workflow_id, from_step)
        rec, created = self.store.fork(workflow_id, target, from_step, self.clock())
        _found(rec, workflow_id, self.database_url)
        if not created:
            raise WorkflowStateError(
                f"cannot fork {workflow_id!r} into {target!r}: that id is taken",
                workflow_id=target,
            )
        self._notify_worker()
        return self.handle(target)

    def _check_fork_point(self, workflow_id: str, from_step: int) -> None:
        """Refuse a ``from_step`` past the end of the journal (a journal only grows, so the
        check holds when the fork runs): from 0 to the number of entries."""
        journal = self.store.get_journal(workflow_id)
        end = max((e.seq for e in journal), default=-1) + 1
        if from_step <= end:
            return
        _found(self.store.get_workflow(workflow_id), workflow_id, self.database_url)
        entries = (
            "its journal is empty" if end == 0 else (f"its journal has entries 0 to {end - 1}")
        )
        raise ConfigurationError(
            f"cannot fork {workflow_id!r} from step {from_step}: {entries}; pick a step from 0 "
            f"to {end} (its history lists them: `durably history {workflow_id}`); nothing was "
            "created",
            workflow_id=workflow_id,
        )

    def purge(self, workflow_id: str) -> None:
        """Delete a finished workflow with its journal, events, state and runs."""
        if not self.store.purge(validate_workflow_id(workflow_id)):
            rec = _found(self.store.get_workflow(workflow_id), workflow_id, self.database_url)
            raise _refuse(rec, "purge", ": only finished workflows are purged")


Commands = Lifecycle
"""Deprecated name of :class:`Lifecycle`."""
