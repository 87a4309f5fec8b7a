"""What the parts of an App need of its database: the store, a name for it fit for messages,
and the one error that says a workflow is not there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from durably.errors import WorkflowNotFoundError

if TYPE_CHECKING:
    from durably.storage.base import Store, WorkflowRecord

__all__ = ["Database", "found", "missing"]


class Database(Protocol):
    """The database of an App (:class:`durably.App` is one): read anew on each use, since an
    App may move to another database (:meth:`durably.App.use_database`)."""

    @property
    def store(self) -> Store:
        """The store, opened and migrated on first use."""

    @property
    def safe_database_url(self) -> str:
        """The database URL with its secrets hidden, for messages."""


def missing(workflow_id: str, where: str) -> WorkflowNotFoundError:
    """The error that no workflow ``workflow_id`` is in the database ``where`` (a safe URL)."""
    return WorkflowNotFoundError(
        f"no workflow with id {workflow_id!r} in {where}; check the id "
        "(app.list_workflows() lists them)",
        workflow_id=workflow_id,
    )


def found(rec: WorkflowRecord | None, workflow_id: str, database: Database) -> WorkflowRecord:
    """``rec``, or (None) the error that no workflow ``workflow_id`` is in ``database``."""
    if rec is None:
        raise missing(workflow_id, database.safe_database_url)
    return rec
