"""The host of executions: spawns a claimed workflow on the engine, and records how it ended
(finished, continued as new) or releases it (stopped while still this worker's)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from durably.definitions import Workflow
from durably.engine import Execution, Outcome, execute
from durably.errors import LeaseLostError
from durably.storage.base import (
    ClaimedWorkflow,
    ContinueAsNew,
    Ended,
    FinishWorkflow,
    WorkflowStatus,
    WriteOp,
)
from durably.worker.log import log_bad_end
from durably.worker.state import Stopping, WorkerState, log

__all__ = ["Host"]


class Host(WorkerState):
    """Spawns executions and finishes them."""

    def _spawn(self, claim: ClaimedWorkflow) -> None:
        rec = claim.record
        wf = self.registry.workflows[rec.name]
        old = self.active.get(rec.id)
        if old is not None:  # we claimed it again after losing it: the old run must stop
            old.halt(LeaseLostError(f"workflow {rec.id!r} reclaimed", workflow_id=rec.id))
        assert self.runtime is not None and self._loop is not None
        ctx = Execution(
            workflow_id=rec.id,
            workflow_name=rec.name,
            owner=self.id,
            epoch=rec.epoch,
            journal={e.seq: e for e in claim.journal},
            runtime=self.runtime,
            is_async=wf.is_async,
            run=rec.run,
            inbox=claim.events,
            children=claim.children,
            cancel_requested=rec.cancel_requested,
            cancel_key=rec.cancel_key,
            version=rec.version,
        )
        self.active[rec.id] = ctx
        if old is None:
            self._queue_of[rec.id] = rec.queue
            self._in_queue[rec.queue] = self._in_queue.get(rec.queue, 0) + 1
        self._tasks[rec.id] = self._loop.create_task(self._run(ctx, wf, rec.input))

    async def _run(self, ctx: Execution, wf: Workflow[Any, Any], encoded_input: str) -> None:
        wid = ctx.workflow_id
        try:
            outcome = await execute(ctx, wf, encoded_input)
            await self._finish(ctx, outcome)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("workflow %s: engine error; releasing it", wid)
            await self._release(ctx)
        finally:
            # stray branches (e.g. of an asyncio.gather the workflow left) must not write on
            ctx.end(lambda: Stopping(f"workflow {wid!r}: execution over", workflow_id=wid))
            if self.active.get(wid) is ctx:
                del self.active[wid]
                self._tasks.pop(wid, None)
                queue = self._queue_of.pop(wid, None)
                if queue is not None:
                    self._in_queue[queue] -= 1
            else:
                queue = None
            self._finishing.discard(wid)
            # a freed place matters if the last claim left work behind, or in a limited queue
            # (its next admission may be due); else the claim loop has nothing to take
            if self._wake is not None and (self._backlog or self._limited_queue(queue)):
                self._wake.set()

    async def _finish(self, ctx: Execution, outcome: Outcome) -> None:
        wid = ctx.workflow_id
        if outcome.status is None:
            if outcome.parked:
                return
            said: object = outcome.reason
            if outcome.lease_lost:
                level, _, why = await self._why_lost(wid)
                if level == logging.INFO:  # a command took it: say so, not "lease lost"
                    said = why
            log.info("workflow %s: execution stopped: %s", wid, said)
            if outcome.release:  # still ours: let it resume
                await self._release(ctx)
            return
        self._finishing.add(wid)
        op: WriteOp
        if outcome.status is WorkflowStatus.CONTINUED_AS_NEW:
            assert outcome.next_input is not None
            op = ContinueAsNew(
                wid, ctx.owner, ctx.epoch, outcome.next_input, outcome.output, self.clock()
            )
        else:
            op = FinishWorkflow(
                wid, ctx.owner, ctx.epoch, outcome.status, outcome.output, outcome.error,
                self.clock(),
            )  # fmt: skip
        assert self.runtime is not None
        try:
            applied = await self.runtime.commit(op)
        except Exception as exc:
            log.warning("workflow %s: could not record its outcome: %s", wid, exc)
            await self._release(ctx)
            return
        if not applied:
            level, message, _ = await self._why_lost(wid)
            log.log(level, "workflow %s: outcome not recorded: %s", wid, message)
            return
        if isinstance(op, ContinueAsNew):
            self.notify()
            return
        log_bad_end(wid, ctx.workflow_name, op.status, op.error, self.codec.view_error)
        if self._on_finished is not None:
            self._on_finished(Ended(wid, ctx.workflow_name, op.status, op.output, op.error))
