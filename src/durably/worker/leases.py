"""Leases and liveness: the worker's registration, its heartbeat (renews its leases in bulk,
lets go of orphans, halts executions whose lease was lost), and the detection of dead workers
(on this host at once by pid, elsewhere after long silence), whose leases it expires.

Two times, on purpose: leases are in the App's clock (:attr:`durably.App.clock`, virtual under
:class:`durably.testing.WorkflowEnvironment`), as are claims and timers; a worker's liveness
(registration, heartbeat, the silence that makes it stale) is in real time, :func:`wall_time`,
because other processes and ``App.list_workers`` compare it with their own real time."""

from __future__ import annotations

import asyncio
import os
import time

from durably.errors import LeaseLostError
from durably.storage.base import WorkerInfo
from durably.worker.state import WorkerState, log

__all__ = ["STALE_WORKER_SECONDS", "Leases", "pid_alive", "wall_time"]

STALE_WORKER_SECONDS = 3600.0
"""Registrations of workers silent for this long (died on another host) are deleted."""

wall_time = time.time
"""Real Unix time: the time of workers' liveness (never virtual)."""


class Leases(WorkerState):
    """Registers the worker, beats its heart, and expires dead workers' leases."""

    def _register(self) -> None:
        """Insert or refresh this worker's registration (names and queues it serves)."""
        queues = self.queue_names()
        now = wall_time()
        info = WorkerInfo(
            self.id, self.hostname, os.getpid(), self._started_at, now,
            sorted(self.registry.workflows), queues, self.registry.version,
            self.registry.auto_upgrade(),
        )  # fmt: skip
        self.store.register_worker(info)
        self._registered_queues = queues

    def _expire_dead_local_workers(self) -> int:
        workers = self.store.list_workers()
        stale = wall_time() - STALE_WORKER_SECONDS
        dead = [
            w.id
            for w in workers
            if w.id != self.id
            and ((w.hostname == self.hostname and not pid_alive(w.pid)) or w.heartbeat_at < stale)
        ]
        if dead:
            n = self.store.expire_leases(dead)
            for worker_id in dead:
                self.store.remove_worker(worker_id)
            log.info("expired %d lease(s) of dead or long-silent worker(s) %s", n, dead)
            return n
        return 0

    async def _heartbeat_loop(self) -> None:
        interval = min(self.options.lease_seconds / 4, 1.0)
        while True:
            await asyncio.sleep(interval)
            snapshot = dict(self.active)
            try:
                owned = await asyncio.to_thread(
                    self.store.renew_leases, self.id, self.clock() + self.options.lease_seconds
                )
                if self.queue_names() != self._registered_queues:
                    await asyncio.to_thread(self._register)  # a Queue was defined since
                else:
                    await asyncio.to_thread(self.store.heartbeat_worker, self.id, wall_time())
                if await asyncio.to_thread(self._expire_dead_local_workers) and self._wake:
                    self._wake.set()  # their workflows are claimable now: take them at once
            except Exception as exc:
                log.warning("worker %s heartbeat failed: %s", self.id, exc)
                continue
            # ours but not running here on two heartbeats in a row (a release that failed):
            # let them go; one heartbeat is not enough, a claim may be about to spawn them
            suspects = owned - set(self.active) - self._finishing
            orphans, self._suspects = suspects & self._suspects, suspects
            if orphans:
                try:
                    await asyncio.to_thread(self.store.release, self.id, sorted(orphans))
                except Exception as exc:
                    log.warning("worker %s could not release %s: %s", self.id, orphans, exc)
            lost = []
            for wid, ctx in snapshot.items():
                if wid not in owned and wid not in self._finishing and self.active.get(wid) is ctx:
                    ctx.halt(
                        LeaseLostError(
                            f"workflow {wid!r}: lease lost by {self.id}", workflow_id=wid
                        )
                    )
                    lost.append(wid)
            if lost:  # why, read and logged aside: the heartbeat must not wait for it
                task = asyncio.create_task(self._say_why_lost(lost))
                self._telling.add(task)
                task.add_done_callback(self._telling.discard)

    async def _say_why_lost(self, workflow_ids: list[str]) -> None:
        """Log why each of these workflows is no longer this worker's: taken by a command
        (INFO) or by another worker (WARNING)."""
        for wid in workflow_ids:
            level, message, _ = await self._why_lost(wid)
            log.log(level, "%s", message)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host is alive (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody reaped yet is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
