"""A fake engine runtime: records writes in memory, with a controllable clock and fence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from durably.codec import codec_for
from durably.definitions import Workflow
from durably.engine import Execution, Outcome, execute
from durably.storage.base import JournalEntry, RecordAttempt, RecordEntry, StartChild, WriteOp


class FakeRuntime:
    """Implements durably.engine.Runtime without any I/O."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.codec = codec_for()
        self.step_executor = ThreadPoolExecutor(4)
        self.workflow_executor = ThreadPoolExecutor(4)
        self.written: list[WriteOp] = []
        self.clock = 1_000.0
        self.fence_ok = True
        self.eviction_threshold = 0.0
        self.new_work = 0
        self.held: dict[str, tuple[str, str | None]] = {}
        """Workflow ids held by others (id: its name and parent id): a child start conflicts."""
        self.ack_later = False
        """Tell ``record``'s callers the outcome from the loop's next turn, as a store's writer
        thread would some time later, instead of at once."""

    def notify_new_work(self) -> None:
        self.new_work += 1

    def time(self) -> float:
        return self.clock

    def record(
        self, op: WriteOp, on_done: Callable[[bool | BaseException], None] | None = None
    ) -> None:
        self.written.append(op)
        if isinstance(op, StartChild) and self.fence_ok and op.child.id in self.held:
            name, parent = self.held[op.child.id]
            if (name, parent) != (op.child.name, op.child.parent_id):
                op.conflicted = op.conflict(name, parent)
        if on_done is not None and self.ack_later:
            self.loop.call_soon(on_done, self.fence_ok)
        elif on_done is not None:
            on_done(self.fence_ok)

    def commit(self, op: WriteOp) -> asyncio.Future[bool]:
        self.written.append(op)
        fut: asyncio.Future[bool] = self.loop.create_future()
        fut.set_result(self.fence_ok)
        return fut

    def entries(self) -> list[JournalEntry]:
        return [op.entry for op in self.written if isinstance(op, RecordEntry)]

    def attempts(self) -> list[RecordAttempt]:
        return [op for op in self.written if isinstance(op, RecordAttempt)]

    def close(self) -> None:
        self.step_executor.shutdown()
        self.workflow_executor.shutdown()


def run_once(
    wf: Workflow[Any, Any],
    *args: Any,
    journal: list[JournalEntry] | None = None,
    setup: Callable[[FakeRuntime], None] | None = None,
    workflow_id: str = "wf-1",
    epoch: int = 1,
    **context: Any,
) -> tuple[Outcome, FakeRuntime, Execution]:
    """Execute ``wf`` once against ``journal`` on a fresh loop with a fake runtime."""

    async def main() -> tuple[Outcome, FakeRuntime, Execution]:
        rt = FakeRuntime(asyncio.get_running_loop())
        if setup is not None:
            setup(rt)
        ctx = Execution(
            workflow_id=workflow_id,
            workflow_name=wf.name,
            owner="owner-1",
            epoch=epoch,
            journal={e.seq: e for e in journal or []},
            runtime=rt,
            is_async=wf.is_async,
            **context,
        )
        encoded = rt.codec.encode_call(args, {})
        try:
            outcome = await execute(ctx, wf, encoded)
        finally:
            rt.close()
        return outcome, rt, ctx

    return asyncio.run(main())


def output(outcome: Outcome) -> Any:
    assert outcome.output is not None, outcome
    return json.loads(outcome.output)


def run_until_done(
    wf: Workflow[Any, Any], *args: Any, **context: Any
) -> tuple[Outcome, list[FakeRuntime], dict[int, JournalEntry]]:
    """Execute ``wf`` until it ends: each time it parks, resume it (a new epoch, its journal
    as written so far) with the fake clock moved to its wake-up time. Returns the outcome, the
    runtime of every execution, and the journal."""
    from durably.engine.waits import Parked
    from durably.storage.base import Park

    journal: dict[int, JournalEntry] = {}
    runtimes: list[FakeRuntime] = []
    clock = 1_000.0
    for epoch in range(1, 50):

        def setup(rt: FakeRuntime, now: float = clock) -> None:
            rt.clock = now

        outcome, rt, _ = run_once(
            wf, *args, journal=list(journal.values()), setup=setup, epoch=epoch, **context
        )
        runtimes.append(rt)
        for e in rt.entries():
            journal[e.seq] = e
        if not isinstance(outcome.reason, Parked):
            return outcome, runtimes, journal
        (park,) = [op for op in rt.written if isinstance(op, Park)]
        clock = max(clock, park.wake_at)
    raise AssertionError(f"{wf.name} did not end in 50 executions")
