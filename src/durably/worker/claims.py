"""How a worker takes work: claim passes (per queue, within its capacity), sleeping until the
next due timer, and start-here (a workflow created already claimed by this worker)."""

from __future__ import annotations

import asyncio
import dataclasses

from durably.storage.base import (
    ClaimedWorkflow,
    CreateWorkflow,
    QueueClaim,
    WorkflowRecord,
    WorkflowStatus,
)
from durably.storage.committer import GroupCommitter
from durably.worker.host import Host
from durably.worker.state import log

__all__ = ["Claims"]


class Claims(Host):
    """Claims workflows, and adopts those started here."""

    def start_here(self, record: WorkflowRecord) -> bool | None:
        """From any thread but the worker's: create ``record`` already claimed by this worker
        (epoch 1, leased) in its next group commit, and run it here: a start and a claim in one
        write. Returns whether it was created (False: the id exists), or None if this worker
        cannot take it (not serving, not its workflow, a limited queue, or full): then start
        it normally."""
        reserved = self._reserve(record)
        if reserved is None:
            return None
        owned, committer = reserved
        try:
            created = committer.write(CreateWorkflow(owned))
        except BaseException:
            self._unreserve()
            raise
        return self._adopt_when_written(owned, created)

    async def start_here_async(self, record: WorkflowRecord) -> bool | None:
        """:meth:`start_here` for a coroutine on any event loop but the worker's: waits for
        the group commit without a thread, so many concurrent starts share commits."""
        reserved = self._reserve(record)
        if reserved is None:
            return None
        owned, committer = reserved
        try:
            created = await committer.write_async(CreateWorkflow(owned))
        except BaseException:
            self._unreserve()
            raise
        return self._adopt_when_written(owned, created)

    def _reserve(self, record: WorkflowRecord) -> tuple[WorkflowRecord, GroupCommitter] | None:
        """Count a place for ``record`` (so that capacity is never exceeded) and return it as
        owned by this worker, with the committer to create it through; None if this worker
        cannot take it."""
        loop, stopping, committer = self._loop, self._stopping, self._committer
        if loop is None or stopping is None or stopping.is_set() or committer is None:
            return None
        if not self.serves(record):
            return None
        if self._limited_queue(record.queue):
            return None  # a limited queue admits it in a claim, where its limits are checked
        with self._adopt_lock:  # counted until spawned, so that capacity is never exceeded
            if self._busy() >= self.options.max_concurrent:
                return None
            self._adopting += 1
        now = self.clock()
        owned = dataclasses.replace(
            record, status=WorkflowStatus.RUNNING, owner=self.id, epoch=1,
            lease_expires_at=now + self.options.lease_seconds, started_at=now,
        )  # fmt: skip
        return owned, committer

    def _unreserve(self) -> None:
        with self._adopt_lock:
            self._adopting -= 1

    def _adopt_when_written(self, owned: WorkflowRecord, created: bool) -> bool:
        """After the creation committed: run it here if it was created, else free the place."""
        loop = self._loop
        if not created or loop is None:
            self._unreserve()
            return created
        try:
            loop.call_soon_threadsafe(self._adopt, ClaimedWorkflow(owned))
        except RuntimeError:  # the loop closed meanwhile: shutdown releases the lease
            self._unreserve()
        return True

    def _adopt(self, claim: ClaimedWorkflow) -> None:
        with self._adopt_lock:
            self._adopting -= 1
        self._spawn(claim)

    def _queue_claims(self) -> list[QueueClaim]:
        claims = []
        for name in self.queue_names():
            queue = self.registry.queue(name)
            in_progress = self._in_queue.get(name, 0)
            claims.append(QueueClaim(name) if queue is None else queue.claim(in_progress))
        return claims

    async def _next_wake(self, names: list[str], queues: list[QueueClaim]) -> float:
        """Seconds to sleep after an idle claim pass: until the earliest timer of an unowned
        workflow is due, or the poll interval, whichever is sooner."""
        poll = self.poll_interval
        try:
            at = await asyncio.to_thread(
                self.store.next_wake_at, names, queues, self.registry.version_claim()
            )
        except Exception as exc:
            log.warning("worker %s could not read its next wake-up: %s", self.id, exc)
            return poll
        if at is None:
            return poll
        # due now but not claimed (another worker's claim holds it, or it raced our claim):
        # look again soon, not in a busy loop
        return min(poll, max(at - self.clock() + 0.001, 0.02))

    async def _claim_loop(self) -> None:
        assert self._wake is not None and self._stopping is not None
        opts = self.options
        names = sorted(self.registry.workflows)
        while not self._stopping.is_set():
            self._wake.clear()
            free = opts.max_concurrent - self._busy()
            want = min(free, opts.claim_batch)
            queues = self._queue_claims()
            if want > 0 and names:
                self.claiming = True
                try:
                    claims = await asyncio.to_thread(
                        self.store.claim, self.id, names, self.clock(), opts.lease_seconds, want,
                        queues, self.registry.version_claim(),
                    )  # fmt: skip
                except Exception as exc:
                    log.warning("worker %s could not claim work: %s", self.id, exc)
                    claims = []
                    await asyncio.sleep(self.poll_interval)
                for claim in claims:
                    if self._stopping.is_set():
                        break
                    self._spawn(claim)
                self.claiming = False
                self._backlog = len(claims) == want
                if self._backlog:
                    continue
            # full: a finishing workflow sets _wake; idle: sleep until the next timer is due
            if want > 0 and names:
                timeout = await self._next_wake(names, queues)
                if any(q.limited for q in queues):  # admissions there wait on other workers
                    timeout = min(timeout, opts.poll_interval)
            else:
                timeout = self.poll_interval
            if self._wake.is_set() or self._stopping.is_set():
                continue
            wake = asyncio.ensure_future(self._wake.wait())
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({wake, stop}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            wake.cancel()
            stop.cancel()
