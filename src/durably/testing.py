"""Testing tools: run real workflows on a real SQLite file with a clock that skips ahead.

::

    from durably.testing import WorkflowEnvironment

    from myapp import app, remind_in_30_days          # the module-level App, as deployed

    def test_reminder():
        with WorkflowEnvironment(app) as env:          # on a fresh temporary database
            start = env.now()
            h = app.start(remind_in_30_days, "ada", id="reminder-ada")
            assert h.result(timeout=10) == "reminded"  # took milliseconds
            assert env.now() - start >= timedelta(days=30)

Inside the environment the worker's clock is virtual: whenever no workflow is running or
runnable and some are waiting on timers, it jumps to the earliest timer. Everything else is the
real engine: the journal, replay, parking (every wait is unwound at once here), events and
children. By default it runs on a fresh, empty SQLite database of its own, with the App's
registrations, so that the same test runs the same way every time (fixed ids do not find the
workflows of an earlier run). Production code always uses the real clock; only this module
changes it, through :attr:`durably.App.clock`.

:func:`replay` checks recorded histories (``durably export ID -o FILE``) against the current
code, so that a project can keep production histories as regression tests::

    def test_histories_still_replay():
        durably.testing.replay(app, "tests/histories/")   # raises on the first divergence
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import time
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from durably.app import App
from durably.crash_safety import (
    CrashCheck,
    CrashPoint,
    CrashRun,
    CrashSafetyError,
    CrashSafetyReport,
    Events,
    KillCheck,
)
from durably.definitions import Workflow
from durably.errors import ConfigurationError, WorkflowTimeoutError
from durably.handle import WorkflowHandle
from durably.history import load_histories
from durably.replay import CheckReport, ReplayDivergenceError, check_histories
from durably.with_block import WithBlock

__all__ = [
    "CrashPoint",
    "CrashRun",
    "CrashSafetyError",
    "CrashSafetyReport",
    "ReplayDivergenceError",
    "VirtualClock",
    "WorkflowEnvironment",
    "check_crash_safety",
    "replay",
]

_FOLDERS: weakref.WeakKeyDictionary[App, weakref.finalize[Any, Any]] = weakref.WeakKeyDictionary()
"""The deletion of each App's current fresh environment folder (run when the next environment
replaces it, when the App is collected, or at interpreter exit)."""


class VirtualClock:
    """A clock that only moves when told to (thread-safe)."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Lock()

    def time(self) -> float:
        """The virtual Unix time."""
        with self._lock:
            return self._now

    def advance_to(self, t: float) -> None:
        """Move forward to ``t`` (never backwards)."""
        with self._lock:
            self._now = max(self._now, t)


class WorkflowEnvironment(WithBlock):
    """Runs an :class:`App`'s embedded worker with a time-skipping :class:`VirtualClock`.

    ``fresh=True`` (the default): entering moves the App to a new, empty SQLite database in a
    temporary folder (its workflows and steps stay registered), so a test runs the same way
    every time; the App stays on it after the block, so its handles can still be read, until
    the next environment moves it again (that folder is then deleted, as the last one is when
    the App is garbage-collected or the interpreter exits). Its own database is never touched.
    ``fresh=False`` runs on the database the App uses now (a SQLite file) instead.
    ``auto_skip=False`` keeps the clock still unless :meth:`advance` is called.
    """

    def __init__(
        self,
        app: App,
        *,
        start: datetime | None = None,
        auto_skip: bool = True,
        fresh: bool = True,
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ConfigurationError("WorkflowEnvironment(start=...) needs an aware datetime")
        self.app = app
        self.fresh = fresh
        self.clock = VirtualClock((start or datetime.now(UTC)).timestamp())
        self.auto_skip = auto_skip
        self.skips = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved = (app.clock, app.worker_options)

    def now(self) -> datetime:
        """The virtual time."""
        return datetime.fromtimestamp(self.clock.time(), UTC)

    def advance(self, delta: float | timedelta) -> None:
        """Move the virtual clock forward and wake the worker."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        self.clock.advance_to(self.clock.time() + seconds)
        self.app._notify_worker()

    def wait_until_waiting(self, handle: WorkflowHandle[Any], timeout: float = 10.0) -> None:
        """Block until ``handle``'s workflow is parked on a timer still ahead of the virtual
        clock, e.g. before sending it an event at a chosen virtual moment (with
        ``auto_skip=False``). Raises :class:`WorkflowTimeoutError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            wake_at = handle.info().wake_at
            if wake_at is not None and wake_at > self.now():
                return
            if time.monotonic() > deadline:
                raise WorkflowTimeoutError(
                    f"workflow {handle.id!r} did not wait on a timer within {timeout}s",
                    workflow_id=handle.id,
                )
            time.sleep(0.005)

    def _enter(self) -> None:
        app = self.app
        if app._worker is not None:
            raise ConfigurationError("stop the App's worker before entering WorkflowEnvironment")
        if self.fresh:
            self._use_fresh_database()
        app.clock = self.clock.time
        app.worker_options = dataclasses.replace(
            app.worker_options, eviction_threshold=0.0, poll_interval=0.01
        )
        app.start_worker()
        if self.auto_skip:
            self._thread = threading.Thread(target=self._skip, name="durably-skip", daemon=True)
            self._thread.start()

    def _exit(self, exc: BaseException | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.app.stop_worker()
        self.app.clock, self.app.worker_options = self._saved

    def _use_fresh_database(self) -> None:
        """Move the App to a new SQLite file in a temporary folder (closing what it had open;
        the folder of its previous environment, if any, is deleted)."""
        app = self.app
        folder = tempfile.mkdtemp(prefix="durably-env-")
        app.use_database(f"sqlite:///{folder}/env.db")
        previous = _FOLDERS.get(app)
        _FOLDERS[app] = weakref.finalize(app, shutil.rmtree, folder, ignore_errors=True)
        if previous is not None:
            previous()  # deletes the previous environment's folder now

    def _idle_until(self) -> float | None:
        """The next timer if the worker is idle and nothing is runnable now, else None."""
        worker = self.app._worker
        if worker is None or worker.busy():
            return None
        t = self.app.store.next_wake_at(self.app.registry.workflows)
        if t is None or t <= self.clock.time() or worker.busy():
            return None
        return t

    def _skip(self) -> None:
        while not self._stop.wait(0.002):
            t = self._idle_until()
            if t is None:
                continue
            time.sleep(0.002)  # idle twice in a row: no claim or wake-up was in flight
            if self._idle_until() != t:
                continue
            self.clock.advance_to(t)
            self.skips += 1
            self.app._notify_worker()


def replay(app: App, history: Any) -> CheckReport:
    """Replay recorded histories against ``app``'s current code, executing nothing.

    ``history``: a file written by ``durably export ID -o FILE``, a folder of them (every
    ``*.json``), a ``durably.history/1`` dict, or a list of those. Returns the report if every
    history replays; raises :class:`ReplayDivergenceError` (a
    :class:`~durably.NonDeterminismError`) naming each workflow's first divergence (seq, call
    key, what the journal has, what the code called) otherwise, and ConfigurationError for a
    file that is not a history.
    """
    report = check_histories(app, load_histories(history))
    diverged = [r.divergence for r in report.diverged if r.divergence is not None]
    if diverged:
        raise ReplayDivergenceError(diverged)
    return report


def check_crash_safety(
    app: App,
    workflow: Workflow[..., Any],
    /,
    *args: Any,
    events: Events | None = None,
    kill: bool = False,
    app_ref: str | None = None,
    **kwargs: Any,
) -> CrashSafetyReport:
    """Crash ``workflow(*args, **kwargs)`` at each of its durable points (before each journal
    entry, and after each step's body but before its result is committed), resume it on a
    fresh worker each time, and check that it ends with the result of an uncrashed run.

    ``events``: what a workflow that waits for events (``durably.wait_event``) is sent, in
    every run, each as it parks waiting for an event of that name: ``(name, payload)`` pairs
    in the order they are sent (a name may repeat), or a mapping ``name -> payload``; a
    workflow (or child) that waits with no timeout for an event it does not provide fails the
    check at once, naming the event (``events`` is taken by the check: a workflow argument of
    that name cannot be passed through it).

    Each run is on a fresh database in a :class:`WorkflowEnvironment` (sleeps cost nothing;
    the App stays on the last one afterwards, as after the environment), with the id
    ``"crash-safety-check"``; the App's worker must not be running.
    Returns a :class:`~durably.crash_safety.CrashSafetyReport` (the points tried, the result
    and how often each step's body ran, per point); raises
    :class:`~durably.crash_safety.CrashSafetyError` naming the first point where a resumed run
    diverged or ended differently. See :mod:`durably.crash_safety`.

    ``kill=True``: each crash is a real ``kill -9`` of a worker process instead: every run
    (the uncrashed one too) is served by ``durably worker``-like processes on a fresh SQLite
    file, the first one killing itself with ``SIGKILL`` at the point, the next one taking the
    workflow over at once (a dead process's leases on the same host are expired). The App
    must be importable by them: ``app_ref="MODULE:APP"``, or by default the module global
    that holds ``app`` in the module defining ``workflow``. Real time is used (a workflow's
    sleeps take as long as they say; one that reads ``durably.now()`` into its result does
    not compare), ``events`` is refused, each :class:`CrashRun` carries the killed
    process's ``exit_code`` (``-9``), and step body runs are counted across both processes.
    The App is back on its own database afterwards (``kill`` and ``app_ref`` are taken by
    the check, as ``events`` is).
    """
    if kill:
        if events is not None:
            raise ConfigurationError(
                "check_crash_safety(kill=True) does not send events: check a workflow that "
                "waits for events without kill=True"
            )
        return KillCheck(app, app_ref, workflow).run(workflow, *args, **kwargs)
    return CrashCheck(app, WorkflowEnvironment, events).run(workflow, *args, **kwargs)
