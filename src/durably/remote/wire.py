"""The API's JSON forms (:mod:`durably.jsonforms`, shared with the server and the CLI) read
back as durably's types; a malformed answer is a :class:`ServerError`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from durably import jsonforms
from durably.handle import HistoryEntry, RunInfo, WorkflowInfo
from durably.jsonforms import encode_cursor
from durably.remote.errors import ServerError
from durably.storage.base import VersionCounts, WorkerInfo

__all__ = [
    "encode_cursor",
    "history_entry",
    "run_info",
    "timestamp",
    "version_counts",
    "worker_info",
    "workflow_info",
]

T = TypeVar("T")


def _reading(parse: Callable[[Any], T]) -> Callable[[Any], T]:
    @wraps(parse)
    def read(obj: Any) -> T:
        try:
            return parse(obj)
        except jsonforms.MalformedForm as exc:
            raise ServerError(f"the server sent {exc}") from exc

    return read


def workflow_info(obj: dict[str, Any]) -> WorkflowInfo:
    """A workflow object as :class:`WorkflowInfo`."""
    return _reading(jsonforms.workflow_info)(obj)


def history_entry(obj: dict[str, Any]) -> HistoryEntry:
    """A history entry object as :class:`HistoryEntry`."""
    return _reading(jsonforms.history_entry)(obj)


def run_info(obj: dict[str, Any]) -> RunInfo:
    """A run object as :class:`RunInfo`."""
    return _reading(jsonforms.run_info)(obj)


def worker_info(obj: dict[str, Any]) -> WorkerInfo:
    """A worker object as :class:`WorkerInfo` (timestamps as epoch seconds, as in the store)."""
    return _reading(jsonforms.worker_info)(obj)


def version_counts(obj: dict[str, Any]) -> VersionCounts:
    """A versions object (``GET /v1/versions``) as counts per version and status."""
    return _reading(jsonforms.version_counts)(obj)


def timestamp(value: Any) -> float:
    """An API timestamp (ISO-8601 or epoch seconds) as epoch seconds."""
    return _reading(jsonforms.timestamp)(value)
