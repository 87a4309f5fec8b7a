"""Workflow ids: what is allowed, and how new ones are made."""

from __future__ import annotations

import re
import uuid

from durably.errors import InvalidIdError

__all__ = ["MAX_ID_LENGTH", "new_workflow_id", "validate_workflow_id"]

MAX_ID_LENGTH = 200
_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@=+-]*")


def validate_workflow_id(workflow_id: object) -> str:
    """Return ``workflow_id`` if it is a valid id, else raise :class:`InvalidIdError`.

    Valid: 1 to 200 characters from letters, digits and ``_ . : @ = + -``, not starting with a
    punctuation character other than ``_``.
    """
    if not isinstance(workflow_id, str):
        raise InvalidIdError(
            f"workflow id must be a string, got {type(workflow_id).__name__}: {workflow_id!r}"
        )
    if not workflow_id or len(workflow_id) > MAX_ID_LENGTH or not _ID.fullmatch(workflow_id):
        raise InvalidIdError(
            f"invalid workflow id {workflow_id[:80]!r}: use 1 to {MAX_ID_LENGTH} characters from "
            "letters, digits and _ . : @ = + - (starting with a letter, digit or _)",
            workflow_id=None,
        )
    return workflow_id


def new_workflow_id() -> str:
    """A fresh random workflow id."""
    return uuid.uuid4().hex
