"""Steering workflows from outside: events, cancel, terminate, suspend, resume, retry, fork, purge.

A component of :class:`durably.App`, which forwards its methods here. Every command is one
atomic store call; a workflow that does not exist raises :class:`WorkflowNotFoundError`, and one
whose status does not allow the command raises :class:`WorkflowStateError` naming that status.
Nothing is half-done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from durably import limits
from durably.app.database import found
from durably.errors import ConfigurationError, WorkflowStateError
from durably.ids import new_workflow_id, validate_workflow_id
from durably.storage.base import TERMINAL_STATUSES, WorkflowRecord, WorkflowStatus

if TYPE_CHECKING:
    from durably.app.database import Database
    from durably.codec import Codec
    from durably.handle import WorkflowHandle
    from durably.storage.base import Store

__all__ = ["Commands", "Lifecycle"]


def _refuse(rec: WorkflowRecord, command: str, hint: str = "") -> WorkflowStateError:
    return WorkflowStateError(
        f"cannot {command} workflow {rec.id!r}: it is {rec.status.value}{hint}",
        workflow_id=rec.id,
    )


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The lifecycle commands of an App (which forwards its own methods here): events, cancel,
    terminate, suspend, resume, retry, fork, purge.

    ``database``: where the commands go; ``codec``: how payloads and errors are stored;
    ``clock``: the time the commands record; ``notify``: wakes the App's worker (if one runs
    here) after a command that gives it work; ``handle``: makes the handle :meth:`fork`
    returns.
    """

    database: Database
    codec: Codec
    clock: Callable[[], float]
    notify: Callable[[], None]
    handle: Callable[[str], WorkflowHandle[Any]]

    @property
    def _store(self) -> Store:
        return self.database.store

    def _found(self, rec: WorkflowRecord | None, workflow_id: str) -> WorkflowRecord:
        return found(rec, workflow_id, self.database)

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
        rec, added = self._store.send_event(workflow_id, name, encoded, dedup_key, self.clock())
        rec = self._found(rec, workflow_id)
        if not added and rec.status in TERMINAL_STATUSES:
            raise _refuse(rec, f"send event {name!r} to", ": events go to unfinished workflows")
        if added:
            self.notify()
        return added

    def cancel(self, workflow_id: str) -> None:
        """Cancel a workflow: :class:`durably.Cancelled` is raised inside it at its next durable
        point (so ``finally`` and compensation code run), then it ends ``cancelled``. Its running
        children are cancelled too. A workflow no worker has started yet is cancelled at once."""
        rec = self._found(
            self._store.request_cancel(validate_workflow_id(workflow_id), self.clock()),
            workflow_id,
        )
        if rec.status in TERMINAL_STATUSES and rec.status is not WorkflowStatus.CANCELLED:
            raise _refuse(rec, "cancel")
        self.notify()

    def terminate(self, workflow_id: str, reason: str = "terminated") -> None:
        """Stop a workflow now: no more of its code runs (no ``finally``, no compensation); its
        unfinished children are terminated too. Status ``terminated`` with ``reason``."""
        reason = limits.check_text(
            reason, "reason", max_length=limits.MAX_REASON_LENGTH, allow_empty=True
        )
        error = self.codec.encode_error(
            {"type": "Terminated", "code": "terminated", "message": reason}
        )
        before = self._store.get_workflow(validate_workflow_id(workflow_id))
        before = self._found(before, workflow_id)
        if before.status in TERMINAL_STATUSES:
            raise _refuse(before, "terminate")
        self._store.terminate(workflow_id, error, self.clock())

    def suspend(self, workflow_id: str) -> None:
        """Pause a workflow: it makes no progress (its timers and events wait) until resumed."""
        rec = self._found(
            self._store.suspend(validate_workflow_id(workflow_id), self.clock()), workflow_id
        )
        if rec.status is not WorkflowStatus.SUSPENDED:
            raise _refuse(rec, "suspend")

    def resume(self, workflow_id: str) -> None:
        """Let a suspended workflow continue where it stopped."""
        before = self._store.get_workflow(validate_workflow_id(workflow_id))
        before = self._found(before, workflow_id)
        if before.status is not WorkflowStatus.SUSPENDED:
            raise _refuse(before, "resume", ": only suspended workflows resume")
        self._store.resume(workflow_id, self.clock())
        self.notify()

    def retry(self, workflow_id: str) -> None:
        """Run a failed (or needs_attention) workflow again from its failed step: earlier step
        results are kept and not run again. Deploy the fix first."""
        rec = self._found(
            self._store.retry(validate_workflow_id(workflow_id), self.clock()), workflow_id
        )
        if rec.status is not WorkflowStatus.RUNNING:
            raise _refuse(rec, "retry", ": only failed or needs_attention workflows retry")
        self.notify()

    def fork(
        self, workflow_id: str, *, from_step: int, new_id: str | None = None
    ) -> WorkflowHandle[Any]:
        """A new workflow with the same input and a copy of this one's journal before seq
        ``from_step``; it re-executes from there (to recover after a bug fix)."""
        validate_workflow_id(workflow_id)
        limits.check_from_step(from_step)
        target = new_workflow_id() if new_id is None else validate_workflow_id(new_id)
        self._check_fork_point(workflow_id, from_step)
        rec, created = self._store.fork(workflow_id, target, from_step, self.clock())
        self._found(rec, workflow_id)
        if not created:
            raise WorkflowStateError(
                f"cannot fork {workflow_id!r} into {target!r}: that id is taken",
                workflow_id=target,
            )
        self.notify()
        return self.handle(target)

    def _check_fork_point(self, workflow_id: str, from_step: int) -> None:
        """Refuse a ``from_step`` past the end of the journal (a journal only grows, so the
        check holds when the fork runs): from 0 to the number of entries."""
        journal = self._store.get_journal(workflow_id)
        end = max((e.seq for e in journal), default=-1) + 1
        if from_step <= end:
            return
        self._found(self._store.get_workflow(workflow_id), workflow_id)
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
        """Delete a finished workflow with its journal, events, state and runs. A child whose
        parent has not finished is refused (the parent reads the child's outcome)."""
        if not self._store.purge(validate_workflow_id(workflow_id)):
            rec = self._found(self._store.get_workflow(workflow_id), workflow_id)
            hint = ": only finished workflows are purged"
            if rec.status in TERMINAL_STATUSES:
                hint = f": its parent {rec.parent_id!r} has not finished; purge it after the parent"
            raise _refuse(rec, "purge", hint)


Commands = Lifecycle
"""Deprecated name of :class:`Lifecycle`."""
