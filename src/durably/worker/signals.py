"""Signals to live executions: the store's pushed wake-ups (if it has them), and the loop that
hands new events, finished children and cancel requests to the executions they are for."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from durably.storage.base import InboxEvent
from durably.worker.state import WorkerState, log

__all__ = ["Signals"]


class Signals(WorkerState):
    """Listens for wake-ups and delivers signals."""

    async def _listen(self) -> Callable[[], None] | None:
        """Subscribe to the store's wake-ups, if it pushes them; then poll only slowly."""

        def woken(kind: str) -> None:
            self.notify()

        try:
            unlisten = await asyncio.to_thread(self.store.listen, woken)
        except Exception as exc:
            log.warning("worker %s cannot listen for wake-ups, polling: %s", self.id, exc)
            unlisten = None
        self.listening = unlisten is not None
        opts = self.options
        self.poll_interval = (
            max(opts.poll_interval, opts.listen_poll_interval)
            if self.listening
            else opts.poll_interval
        )
        return unlisten

    async def _signals_loop(self) -> None:
        """Deliver new events, finished children and cancel requests to live workflows."""
        assert self._poke is not None
        while True:
            try:
                await asyncio.wait_for(self._poke.wait(), self.poll_interval)
            except TimeoutError:
                pass
            self._poke.clear()
            ids = list(self.active)
            if not ids:
                continue
            try:
                signals = await asyncio.to_thread(self.store.poll_signals, ids, 0)
            except Exception as exc:
                log.warning("worker %s could not poll signals: %s", self.id, exc)
                continue
            by_workflow: dict[str, list[InboxEvent]] = {}
            for event in signals.events:
                by_workflow.setdefault(event.workflow_id, []).append(event)
            for wid, ctx in list(self.active.items()):
                ctx.deliver(
                    events=by_workflow.get(wid),
                    children=signals.children.get(wid),
                    cancel=wid in signals.cancel_requested,
                )
