"""What the engine needs from whoever hosts it (a worker, or a fake in tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Protocol

from durably.codec import Codec
from durably.storage.base import WriteOp

__all__ = ["Runtime"]


class Runtime(Protocol):
    """The engine's only way to the outside world."""

    loop: asyncio.AbstractEventLoop
    """The event loop async workflows and step bookkeeping run on."""
    codec: Codec
    """How values are encoded for the store and decoded back (the App's serializer)."""
    step_executor: Executor
    """Runs sync steps."""
    workflow_executor: Executor
    """Runs sync workflow functions (one thread each while they run)."""
    eviction_threshold: float
    """Seconds a workflow may wait in memory before it is parked (0: park at once)."""

    def notify_new_work(self) -> None:
        """A workflow (a child) was started: look for work soon."""
        ...

    def time(self) -> float:
        """Wall-clock Unix time."""
        ...

    def record(
        self, op: WriteOp, on_done: Callable[[bool | BaseException], None] | None = None
    ) -> None:
        """Queue a fenced write without waiting; it is durable before any later ``commit``.

        ``on_done`` (called on any thread) learns whether it was applied, or the store's error.
        """
        ...

    def commit(self, op: WriteOp) -> Awaitable[bool]:
        """Queue a fenced write; resolves once durable, to False if the fence rejected it."""
        ...
