"""Telling someone who waits on ``handle.result()`` that nothing will run the workflow.

A wait with no timeout (or a long one) on a workflow that no live worker serves would block
forever in silence. After ``UNSERVED_WARNING_AFTER`` seconds of waiting, an :class:`UnservedWatch`
asks once whether a live worker serves the workflow's name on its queue and, if none does, logs
one warning (logger ``durably``) in the words a timed-out wait uses, then keeps waiting.
"""

from __future__ import annotations

import logging
import time

__all__ = ["UNSERVED_WARNING_AFTER", "UnservedWatch", "unserved_hint"]

log = logging.getLogger("durably")

UNSERVED_WARNING_AFTER = 5.0
"""Seconds a result wait runs before it checks (then every as many seconds, until it warns)
whether a live worker serves the workflow."""


def unserved_hint(name: str, queue: str, start: str = "`durably worker MODULE:APP`") -> str:
    """What to do about a workflow no live worker serves (``start``: how to start one)."""
    return f"no live worker serves workflow {name!r} on queue {queue!r}: start one ({start})"


class UnservedWatch:
    """The schedule of one wait's check: :meth:`until_check` says how long the wait may block
    before :meth:`check` is due; after the warning, never again."""

    __slots__ = ("_next", "_started", "warned")

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._next = self._started + UNSERVED_WARNING_AFTER
        self.warned = False

    def until_check(self) -> float | None:
        """Seconds until the next check is due (0 if due now), or None once it warned."""
        return None if self.warned else max(0.0, self._next - time.monotonic())

    def due(self) -> bool:
        """Whether a check is due now."""
        return not self.warned and time.monotonic() >= self._next

    def check(
        self, workflow_id: str, status: str, name: str, queue: str, unserved: bool, start: str
    ) -> None:
        """Warn (once) if the workflow is still unserved, else check again later."""
        if not unserved:
            self._next = time.monotonic() + UNSERVED_WARNING_AFTER
            return
        self.warned = True
        waited = time.monotonic() - self._started
        log.warning(
            "waiting for the result of workflow %r, still %s after %.0fs: %s; still waiting "
            "(pass timeout= to result() to stop waiting)",
            workflow_id,
            status,
            waited,
            unserved_hint(name, queue, start),
        )
