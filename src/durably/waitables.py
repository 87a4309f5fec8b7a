"""What ``durably.wait_any`` waits on, and what it returns.

``durably.event(name)`` and ``durably.timer(...)`` describe a wait without starting it (nothing
is journaled until ``wait_any`` is called); a :class:`~durably.ChildHandle` from
``durably.start_child`` is a wait on that child. ``wait_any`` returns a :class:`Fired`: which
one fired first, and its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from durably.errors import ConfigurationError
from durably.scope import ChildHandle

__all__ = ["EventWait", "Fired", "TimerWait", "Waitable", "describe", "validated"]


@dataclass(frozen=True, slots=True)
class EventWait:
    """A wait for the next event ``name`` (made by ``durably.event(name)``). Its value is the
    event's payload. Only the wait that fires consumes its event: an event another wait won
    over stays in the inbox for a later wait."""

    name: str


@dataclass(frozen=True, slots=True)
class TimerWait:
    """A durable timer (made by ``durably.timer(...)``): ``seconds`` from the ``wait_any`` call,
    or ``until`` a Unix time. Its value is None. A timer that loses is dropped."""

    seconds: float | None = None
    until: float | None = None


Waitable: TypeAlias = EventWait | TimerWait | ChildHandle[Any]
"""What ``durably.wait_any`` accepts: ``durably.event(...)``, ``durably.timer(...)``, or the
handle of a child workflow started with ``durably.start_child``."""


@dataclass(frozen=True, slots=True)
class Fired:
    """What ``durably.wait_any`` returns: the wait that fired first.

    ``index`` is its position among the waits passed (positional ones first, then keyword ones
    in the order written), ``key`` its keyword (None for a positional one), and ``value`` what
    it gave: an event's payload, None for a timer, a child's result (a child that did not
    complete raises :class:`~durably.ChildWorkflowFailed` from ``wait_any`` instead).
    """

    index: int
    key: str | None
    value: Any


def validated(
    waits: Sequence[Any], named: Mapping[str, Any]
) -> tuple[list[Waitable], list[str | None]]:
    """The waits of a ``wait_any(*waits, **named)`` call and their keys, checked."""
    items: list[tuple[str | None, Any]] = [(None, w) for w in waits] + list(named.items())
    if not items:
        raise ConfigurationError(
            "wait_any() needs at least one thing to wait on: durably.event(name), "
            "durably.timer(duration) or a child handle from durably.start_child()"
        )
    for key, w in items:
        if not isinstance(w, EventWait | TimerWait | ChildHandle):
            where = "" if key is None else f" ({key}=...)"
            hint = ""
            if hasattr(w, "__await__") or hasattr(w, "send"):
                close = getattr(w, "close", None)
                if callable(close):
                    close()  # a coroutine of a wait already taken: never awaited, no warning
                hint = (
                    "; pass a description of the wait, not the awaitable of a wait already "
                    "made: durably.event(name) rather than durably.wait_event(name), "
                    "durably.timer(duration) rather than durably.sleep(duration)"
                )
            raise ConfigurationError(
                f"wait_any() cannot wait on {w!r}{where}: pass durably.event(name), "
                f"durably.timer(duration or until=...) or a child handle from "
                f"durably.start_child(){hint}"
            )
    return [w for _, w in items], [k for k, _ in items]


def describe(waits: Sequence[Waitable]) -> str:
    """The journal name of a ``wait_any`` over ``waits`` (what a replay checks it against)."""
    parts = []
    for w in waits:
        if isinstance(w, EventWait):
            parts.append(f"event:{w.name}")
        elif isinstance(w, TimerWait):
            parts.append("timer")
        else:
            parts.append(f"child:{getattr(w._workflow, 'name', '?')}")
    return " | ".join(parts)
