"""Deterministic identities for the durable calls of concurrent branches.

A workflow's main line is branch ``""``; every asyncio task created from workflow code (by
``asyncio.gather``, ``create_task``, a ``TaskGroup``...) is a child branch named after its parent
and the order in which the parent created it (``"b0/"``, ``"b1/"``, ``"b1/b0/"``). A durable call
is keyed by its branch and its index within that branch (``"3"``, ``"b1/0"``). Each branch's
calls depend only on its own code and on the results it was given, so keys are the same on every
replay, however differently the branches interleaved the first time; a plain counter across
branches is not (it depends on which branch's step finished first).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator, Iterable
from contextvars import ContextVar
from typing import Any

from durably.scope import scope_var

__all__ = ["Branch", "branch_var", "install_task_factory"]


class Branch:
    """One line of execution of a workflow: counts its durable calls and its child branches."""

    __slots__ = ("calls", "children", "patches", "prefix")

    def __init__(self, prefix: str = "", patches: dict[str, bool] | None = None) -> None:
        self.prefix = prefix
        self.calls = 0
        self.children = 0
        self.patches: dict[str, bool] = dict(patches) if patches else {}
        """``durably.patched()`` decisions of this branch, and of its ancestors up to its
        creation: each is decided once, in an order that does not depend on how branches
        interleave."""

    def peek_key(self) -> str:
        """The key the next durable call of this branch will have (nothing is taken)."""
        return f"{self.prefix}{self.calls}"

    def next_key(self) -> str:
        """The key of this branch's next durable call."""
        key = f"{self.prefix}{self.calls}"  # peek_key(), without a call: every durable call
        self.calls += 1
        return key

    def child(self) -> Branch:
        """A new child branch (a task this branch creates)."""
        branch = Branch(f"{self.prefix}b{self.children}/", self.patches)
        self.children += 1
        return branch

    def went_past(self, keys: Iterable[str]) -> bool:
        """Whether any of ``keys`` (a journal's) is this branch's next call or a later one,
        or a call of a branch it creates after this point: the journal went past here."""
        for key in keys:
            if not key.startswith(self.prefix):
                continue
            rest = key[len(self.prefix) :]
            if rest.isdigit():
                if int(rest) >= self.calls:
                    return True
            elif rest.startswith("b") and "/" in rest:
                number = rest[1 : rest.index("/")]
                if number.isdigit() and int(number) >= self.children:
                    return True
        return False


branch_var: ContextVar[Branch | None] = ContextVar("durably_branch", default=None)


def _factory(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
    **kwargs: Any,
) -> asyncio.Task[Any]:
    context = kwargs.pop("context", None)
    ctx = context if context is not None else contextvars.copy_context()
    scope = ctx.get(scope_var)
    if scope is not None:
        parent = ctx.get(branch_var)
        if parent is not None:
            ctx.run(branch_var.set, parent.child())
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=ctx, **kwargs)
    if scope is not None:
        register = getattr(scope, "register_task", None)
        if register is not None:
            register(task)
    return task


def install_task_factory(loop: asyncio.AbstractEventLoop) -> None:
    """Make tasks created from workflow code on ``loop`` child branches (idempotent)."""
    if loop.get_task_factory() is not _factory:
        loop.set_task_factory(_factory)
