"""What a :class:`~durably.errors.NonDeterminismError` says: the first call where the workflow
code and its journal disagree, where in the user's code it was made, and how to change code
safely (``durably.patched()``)."""

from __future__ import annotations

import os
import sys

from durably.errors import NonDeterminismError

__all__ = ["call_site", "diverged", "unreached"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_ADVICE = (
    'If the change is deliberate, guard it with `if durably.patched("<change-id>"):` (new '
    "workflows take the new path, workflows that went past that point keep the old one); "
    "otherwise deploy code that matches the journal, or fork or terminate this workflow"
)


def call_site() -> str | None:
    """``file:line`` of the innermost frame outside the durably package (the workflow code's
    durable call), or None when there is none."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def diverged(
    workflow_id: str,
    workflow_name: str,
    *,
    seq: int,
    key: str,
    recorded: tuple[str, str],
    called: tuple[str, str],
) -> NonDeterminismError:
    """The error for a durable call (``called``: kind, name) made at ``key`` where the journal
    recorded another (``recorded``: kind, name) at ``seq``."""
    site = call_site()
    where = f" at {site}" if site else ""
    return NonDeterminismError(
        f"workflow {workflow_id!r} ({workflow_name}) diverged from its journal at seq {seq} "
        f"(call {key}): the journal recorded {recorded[0]} {recorded[1]!r} but the code now "
        f"calls {called[0]} {called[1]!r}{where}. {_ADVICE}",
        workflow_id=workflow_id,
        step=called[1],
        seq=seq,
        key=key,
        recorded=recorded,
        called=called,
        location=site,
    )


def unreached(
    workflow_id: str, workflow_name: str, *, calls: int, seq: int, key: str, kind: str, name: str
) -> NonDeterminismError:
    """The error for a workflow that returned after ``calls`` durable calls while its journal
    records a call (``kind``, ``name`` at ``seq``/``key``) that the code no longer makes."""
    return NonDeterminismError(
        f"workflow {workflow_id!r} ({workflow_name}) returned after {calls} durable calls but "
        f"its journal records {kind} {name!r} at seq {seq} (call {key}): the code no longer "
        f"makes that call. {_ADVICE}",
        workflow_id=workflow_id,
        step=name,
        seq=seq,
        key=key,
        recorded=(kind, name),
        called=None,
    )
