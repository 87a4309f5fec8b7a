"""Crash tests for user workflows: crash a workflow at each of its durable points, resume it,
and check that it ends as an uncrashed run does (``durably.testing.check_crash_safety``).

A crash is simulated in-process, as a ``kill -9`` leaves things: the write ops the crashed
worker submits from the crash point on are lost (those submitted before are committed, as its
group committer had them), its store refuses every other call (no release of its leases), and
the step bodies it would start afterwards never run. A fresh worker then takes the workflow over
the way a worker restarted after a crash does (it expires the dead worker's leases) and resumes
it from its journal. The crashed worker learns of each write as it is submitted through an
internal hook of the worker (``Worker._on_write``, unset and free outside this module).

The points are the entries of the workflow's journal in an uncrashed run (steps, sleeps,
events, ``now``/``random``/``uuid4``, children, patch markers), then its end, and the same for
each of its child workflows:

- ``before`` a point: its entry is not committed; for a step, its body has not run either;
- ``after-body`` of a step: its body ran but its result was not committed, so the step runs
  again on resume (at least once: what an idempotency key is for);
- ``before-consume`` of an event the workflow received: its wait was recorded and the event
  reached the worker, but its consumption was not committed (the event stays in the inbox).

Events (``events=``) are sent to a workflow (or child) as it parks waiting for them, in
every run and on every resume, as a person or a service answering it would; the crash points
then include the consumption of each (``before-consume``, above). A workflow that waits,
with no timeout, for an event not given fails the check at once, naming it. Every run is on
a fresh SQLite database under a time-skipping environment (sleeps cost nothing; retry
backoffs of the steps are skipped too, as the virtual clock does not move during them).

The kill mode (``check_crash_safety(..., kill=True)``, :class:`KillCheck`) crashes for real
instead: each run is served by worker processes (``python -c`` running :func:`serve`: the
App imported as ``MODULE:APP`` and its worker run as ``durably worker`` runs it) on a fresh
SQLite file; the first one, given the point on its command line, sends itself ``SIGKILL``
there (from the same ``_on_write`` hook, before the op reaches its committer, or as the
step's body is about to run), and a second one, started once it is dead, expires its leases
at once (a dead pid on its own host) and resumes the workflow. Nothing in the worker changes
for it: the hook is set by :func:`serve` only. Its step bodies are counted through a file
both processes append to. Real time: sleeps take as long as they say.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, cast

from durably.app import App
from durably.definitions import Step, Workflow
from durably.errors import ConfigurationError
from durably.handle import WorkflowHandle
from durably.scope import step_var
from durably.storage.base import (
    FAR_FUTURE,
    ConsumeEvent,
    FinishWorkflow,
    JournalEntry,
    Park,
    RecordEntry,
    StartChild,
    Store,
    WorkflowStatus,
    WriteOp,
)
from durably.worker.supervisor import stop_process

__all__ = [
    "CrashCheck",
    "CrashPoint",
    "CrashRun",
    "CrashSafetyError",
    "CrashSafetyReport",
    "KillCheck",
]

WORKFLOW_ID = "crash-safety-check"
"""The id every run of the checked workflow gets (its ``random``/``uuid4`` values derive from it,
so that the runs are comparable)."""

RUN_TIMEOUT = 60.0
"""Seconds one run (or one resume) may take before the check gives up."""

When = Literal["before", "after-body", "before-consume"]

Events = Mapping[str, Any] | Iterable[tuple[str, Any]]
"""The events a checked workflow is sent as it waits for them: ``(name, payload)`` pairs, in
the order they are sent (a name may come more than once), or a mapping ``name -> payload``."""

_LOG = logging.getLogger("durably")


@dataclass(frozen=True, slots=True)
class CrashPoint:
    """Where a run was crashed: ``when`` (``"before"``, ``"after-body"`` or
    ``"before-consume"``) the journal entry ``seq`` of ``kind`` and ``name`` (``kind``
    ``"end"``: before the workflow's outcome was recorded, after all its entries) of workflow
    ``workflow_id``: the checked workflow, or one of its children
    (``"crash-safety-check:<key>"`` unless it was given another id)."""

    seq: int
    kind: str
    name: str
    when: When = "before"
    workflow_id: str = WORKFLOW_ID

    def __str__(self) -> str:
        where = "" if self.workflow_id == WORKFLOW_ID else f" of child {self.workflow_id!r}"
        return f"{self.when} {self.kind} {self.name!r} (seq {self.seq}){where}"


@dataclass(frozen=True, slots=True)
class CrashRun:
    """One run crashed at ``point`` and resumed: its ``result`` (the workflow's return value),
    and ``step_runs``: how many times each step's body ran in it, by step name, both workers
    together."""

    point: CrashPoint
    result: Any
    step_runs: dict[str, int]
    exit_code: int | None = None
    """In the kill mode: the exit status of the worker process killed at ``point`` (``-9``,
    its ``SIGKILL``); else None."""

    def reran(self, report: CrashSafetyReport) -> dict[str, int]:
        """The steps whose bodies ran more often than in the uncrashed run, and how often."""
        return {name: n for name, n in self.step_runs.items() if n > report.step_runs.get(name, 0)}


@dataclass(frozen=True, slots=True)
class CrashSafetyReport:
    """What :func:`durably.testing.check_crash_safety` tried and saw.

    ``status``, ``result`` and ``step_runs`` are those of the uncrashed run (``result``: the
    workflow's return value; for a workflow that failed, ``"<error type>: <message>"``);
    ``runs`` has one :class:`CrashRun` per crash point, in journal order (each resumed to the
    same status and result, or the check would have raised :class:`CrashSafetyError`)."""

    workflow: str
    status: WorkflowStatus
    result: Any
    step_runs: dict[str, int]
    runs: list[CrashRun] = field(default_factory=list)

    @property
    def points(self) -> list[CrashPoint]:
        """The crash points tried, in order."""
        return [run.point for run in self.runs]

    def run_at(self, point: str | CrashPoint) -> CrashRun:
        """The run crashed at ``point`` (a :class:`CrashPoint` or its ``str``)."""
        for run in self.runs:
            if run.point == point or str(run.point) == point:
                return run
        raise KeyError(f"no crash point {point!s}; tried: {[str(p) for p in self.points]}")


class CrashSafetyError(AssertionError):
    """A run crashed at ``point`` and resumed did not end as the uncrashed run did (another
    result, another status, a :class:`~durably.NonDeterminismError`), or never reached the
    point. An ``AssertionError``, so that pytest shows it as a failed check."""

    def __init__(self, message: str, point: CrashPoint) -> None:
        super().__init__(message)
        self.point = point


class _Crashed(Exception):
    """Raised to the crashed worker by its store and its step bodies: it is dead."""


class _Crash:
    """The crash of one run: where it happens, whether it happened, step bodies counted."""

    def __init__(self, point: CrashPoint | None, steps_fd: int | None = None) -> None:
        self.point = point
        self.steps_fd = steps_fd
        """In a worker process of the kill mode: the file each step body run is appended to
        (as its name and a newline), and the crash is a real ``kill -9`` of this process."""
        self.happened = threading.Event()
        self.refusing = False
        """The crashed worker is being stopped: no step body may start (a dead process runs
        none); cleared once it has stopped, for the worker that resumes."""
        self.step_runs: Counter[str] = Counter()
        self._log_level: int | None = None
        self._late: dict[int, WriteOp] = {}
        """The ops submitted from the crash on (by id; kept alive so that ids stay unique)."""
        self._lock = threading.Lock()

    def die(self) -> _Crashed:
        with self._lock:
            self._happen()
        return _Crashed(f"simulated crash {self.point}")

    def before_body(self, step: str) -> None:
        """Called as a step's body is about to run: refuse, crash, or count it."""
        with self._lock:
            refusing = self.refusing
        if refusing:
            raise _Crashed("the worker crashed")
        p, ctx = self.point, step_var.get()
        if (
            p is not None and p.kind == "step" and p.when == "before" and ctx is not None
            and ctx.workflow_id == p.workflow_id and ctx.seq == p.seq and ctx.attempt == 1
            and not self.happened.is_set()
        ):  # fmt: skip
            raise self.die()
        with self._lock:
            self.step_runs[step] += 1
            if self.steps_fd is not None:
                os.write(self.steps_fd, step.encode() + b"\n")

    def submitted(self, op: WriteOp) -> None:
        """The crashed worker's hook: called with each write op as it is submitted. The crash
        comes as the point's entry is submitted; that op and every later one are lost."""
        with self._lock:
            if not self.happened.is_set() and self._carries_point(op):
                self._happen()
            if self.happened.is_set():
                self._late[id(op)] = op

    def _happen(self) -> None:
        """Crash now (under the lock): the dead worker's complaints until it has stopped (it
        cannot reach its store) are not logged. In a worker process: ``kill -9`` it."""
        if self.steps_fd is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        self.refusing = True
        self.happened.set()
        self._log_level = _LOG.level
        _LOG.setLevel(logging.CRITICAL)

    def revive(self) -> None:
        """The crashed worker has stopped: step bodies may run again, logs are back."""
        with self._lock:
            self.refusing = False
            if self._log_level is not None:
                _LOG.setLevel(self._log_level)
                self._log_level = None

    def lost_from(self, ops: Sequence[WriteOp]) -> int | None:
        """The index of the first op of ``ops`` the crash lost, if any."""
        with self._lock:
            if not self.happened.is_set():
                return None
            return next((i for i, op in enumerate(ops) if id(op) in self._late), None)

    def _carries_point(self, op: WriteOp) -> bool:
        p = self.point
        if p is None or (p.kind == "step" and p.when == "before"):
            return False  # a step's "before": as its body is about to run
        if p.kind == "end":
            return isinstance(op, FinishWorkflow) and op.workflow_id == p.workflow_id
        carriers = ConsumeEvent if p.when == "before-consume" else RecordEntry | ConsumeEvent
        return (
            isinstance(op, carriers | StartChild)
            and op.entry.workflow_id == p.workflow_id
            and op.entry.seq == p.seq
        )


class _CrashingStore:
    """The crashed worker's view of the store: it dies at the crash point, and from then on
    refuses every call (what a dead process leaves is what was committed before)."""

    def __init__(self, store: Store, crash: _Crash) -> None:
        self._store = store
        self._crash = crash

    def write(self, ops: Sequence[WriteOp]) -> list[bool]:
        lost = self._crash.lost_from(ops)
        if lost is None:
            return self._store.write(ops)
        # those submitted before the crash were the writer's: committed; the others are lost
        # (not applied, as a fenced write of a dead worker's lease is refused)
        applied = self._store.write(ops[:lost]) if lost else []
        return applied + [False] * (len(ops) - lost)

    def is_transient(self, error: Exception) -> bool:
        return self._store.is_transient(error)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._crash.happened.is_set():
                raise _Crashed("the worker crashed")
            return attr(*args, **kwargs)

        return call


class _Events:
    """Sends one run's events: each, as a workflow parks waiting for an event of its name (the
    first unsent one of that name), unless one sent to it for that wait is still unconsumed."""

    def __init__(self, app: App, events: Sequence[tuple[str, Any]]) -> None:
        self.app = app
        self.unsent = list(events)
        self.sent: Counter[tuple[str, str]] = Counter()
        self._parks: list[Park] = []
        self._lock = threading.Lock()

    def saw(self, op: WriteOp) -> None:
        """A worker's hook: called with each write op as it is submitted."""
        if isinstance(op, Park) and op.event_names:
            with self._lock:
                self._parks.append(op)

    def deliver(self) -> None:
        """Send the events the parks seen since the last call wait for (the caller's thread);
        raise ``AssertionError`` for a workflow waiting, with no timeout, for an event that
        ``events=`` does not provide (it would wait forever)."""
        with self._lock:
            parks, self._parks = self._parks, []
        for park in parks:
            wid, names = park.workflow_id, park.event_names
            journal = self.app.store.get_journal(wid)
            consumed = Counter(_received(e) for e in journal if _received(e))
            if any(self.sent[wid, n] > consumed[n] for n in names):
                continue  # the event for this wait was sent, not consumed yet
            i = next((i for i, (n, _) in enumerate(self.unsent) if n in names), None)
            if i is not None:
                name, payload = self.unsent.pop(i)
                self.sent[wid, name] += 1
                self.app.send_event(wid, name, payload)
            elif park.wake_at >= FAR_FUTURE:
                sent = sorted({n for (_, n) in self.sent})
                more = f" (any more: it sent {sent})" if sent else ""
                raise AssertionError(
                    f"workflow {wid!r} waits for event {' or '.join(map(repr, names))}, which "
                    f"events= does not provide{more}: pass check_crash_safety(..., "
                    "events=[(name, payload), ...])"
                )


class Environment(Protocol):
    """Makes the time-skipping environment each run happens in, its virtual clock starting at
    ``start``: entered, it moves the App to a fresh database and starts its worker; left, it
    stops it (``durably.testing.WorkflowEnvironment`` is one)."""

    def __call__(self, app: App, *, start: datetime) -> AbstractContextManager[object]: ...


class CrashCheck:
    """Runs the check of :func:`durably.testing.check_crash_safety` for one App, each run in an
    ``environment(app)``."""

    def __init__(self, app: App, environment: Environment, events: Events | None = None) -> None:
        self.app = app
        self.environment = environment
        items = list(events.items() if isinstance(events, Mapping) else (events or ()))
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ConfigurationError(
                    f"check_crash_safety(events=...): {item!r} is not a (name, payload) pair; "
                    "pass a list of them, or a mapping name -> payload"
                )
        self.events: list[tuple[str, Any]] = items
        self._crash = _Crash(None)
        self._start = datetime.now(UTC)
        """Where every run's virtual clock starts, so that ``durably.now()`` agrees."""

    def run(self, workflow: Workflow[..., Any], /, *args: Any, **kwargs: Any) -> CrashSafetyReport:
        """Run ``workflow(*args, **kwargs)`` uncrashed, then crashed at each point."""
        with _counting_steps(self.app, lambda: self._crash):
            crash = self._crash = _Crash(None)
            events = _Events(self.app, self.events)
            with self.environment(self.app, start=self._start):
                self._restart_worker(events.saw)
                handle = self.app.start(workflow, *args, id=WORKFLOW_ID, **kwargs)
                status, value = _finish(handle, events)
                points = _run_points(self.app, workflow.name)
            if status not in _ENDED or status is WorkflowStatus.NEEDS_ATTENTION:
                raise AssertionError(
                    f"workflow {workflow.name!r} did not end without a crash: {status}, {value}"
                )
            report = CrashSafetyReport(workflow.name, status, value, dict(crash.step_runs))
            for point in points:
                report.runs.append(self._crash_at(point, report, workflow, args, kwargs))
        return report

    def _crash_at(
        self,
        point: CrashPoint,
        report: CrashSafetyReport,
        workflow: Workflow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> CrashRun:
        app = self.app
        crash = self._crash = _Crash(point)
        events = _Events(app, self.events)

        def submitted(op: WriteOp) -> None:
            crash.submitted(op)
            if crash.lost_from([op]) is None:  # a lost park is parked again on resume
                events.saw(op)

        with self.environment(app, start=self._start):
            # the environment's worker makes way for ours, which dies at the point
            worker = self._restart_worker(submitted, _CrashingStore(app.store, crash))
            handle = app.start(workflow, *args, id=WORKFLOW_ID, **kwargs)
            deadline = time.monotonic() + RUN_TIMEOUT
            try:
                while not crash.happened.wait(0.005):
                    if handle.status() in _ENDED or time.monotonic() > deadline:
                        raise CrashSafetyError(
                            f"the run of {workflow.name!r} to crash {point} never reached it "
                            f"({handle.status()}): the workflow does not take the same durable "
                            "calls in every run (is it deterministic?)",
                            point,
                        )
                    events.deliver()
            except CrashSafetyError:
                raise
            except AssertionError as exc:
                raise CrashSafetyError(f"crash {point}: {exc}", point) from None
            app._worker = None
            try:
                worker.stop()
            finally:
                crash.revive()
            app.store.expire_leases([worker.id])  # as a worker restarted after a crash does
            app.store.remove_worker(worker.id)
            self._restart_worker(events.saw)
            try:
                status, value = _finish(handle, events)
            except AssertionError as exc:
                raise CrashSafetyError(f"crashed {point} and resumed: {exc}", point) from None
        if status is not report.status or value != report.result:
            raise CrashSafetyError(
                f"workflow {workflow.name!r} crashed {point} and resumed ended {status} with "
                f"{value!r}, not {report.status} with {report.result!r} as without a crash",
                point,
            )
        return CrashRun(point, value, dict(crash.step_runs))

    def _restart_worker(self, on_write: Callable[[WriteOp], None], store: Any = None) -> Any:
        """Replace the App's worker by one whose write ops ``on_write`` sees first (on
        ``store`` if given) and return it."""
        app = self.app
        app.stop_worker()
        worker = app._new_worker()
        if store is not None:
            worker.store = cast(Store, store)
        worker._on_write = on_write
        worker.start_in_thread()
        app._worker = worker
        return worker


@contextmanager
def _counting_steps(app: App, crash: Callable[[], _Crash]) -> Iterator[None]:
    """Wrap every registered step's function to count (and crash) its bodies through the
    current ``crash()``, and drop the backoff of its retries (real seconds, while the virtual
    clock stands still: the run sees the same times without them)."""
    steps = list(app.registry.steps.values())
    saved = [(step.fn, step.retry) for step in steps]
    for step in steps:
        step.fn = _counted(step, crash)
        step.retry = dataclasses.replace(step.retry, initial=0.0)
    try:
        yield
    finally:
        for step, (fn, retry) in zip(steps, saved, strict=True):
            step.fn, step.retry = fn, retry


def _counted(step: Step[..., Any], crash: Callable[[], _Crash]) -> Callable[..., Any]:
    fn, name = step.fn, step.name
    if step.is_async:

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            crash().before_body(name)
            return await fn(*args, **kwargs)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        crash().before_body(name)
        return fn(*args, **kwargs)

    return run


_ENDED = frozenset(WorkflowStatus) - {WorkflowStatus.PENDING, WorkflowStatus.RUNNING}


def _finish(handle: WorkflowHandle[Any], events: _Events) -> tuple[WorkflowStatus, Any]:
    """Send the workflow its events as it waits for them until it ends; how it ended."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while handle.status() not in _ENDED and time.monotonic() < deadline:
        events.deliver()
        time.sleep(0.005)
    return _outcome(handle)


def _outcome(handle: WorkflowHandle[Any]) -> tuple[WorkflowStatus, Any]:
    """How the workflow ended: its status, and its result or its error's message."""
    try:
        return WorkflowStatus.COMPLETED, handle.result(timeout=RUN_TIMEOUT)
    except Exception:
        info = handle.info()
        error = info.error or {}
        return info.status, f"{error.get('type')}: {error.get('message')}"


def _run_points(app: App, name: str) -> list[CrashPoint]:
    """The crash points of the run just made on ``app``'s database: the checked workflow's,
    then its children's (and theirs), each in journal order."""
    points: list[CrashPoint] = []
    todo = [(WORKFLOW_ID, name)]
    while todo:
        wid, name = todo.pop(0)
        points += _points(app.store.get_journal(wid), name, wid)
        todo += [(child.id, child.name) for child in app.handle(wid).children()]
    return points


def _points(journal: list[JournalEntry], name: str, workflow_id: str) -> list[CrashPoint]:
    """The crash points of workflow ``workflow_id`` (named ``name``) whose journal is
    ``journal``, in order."""
    points: list[CrashPoint] = []
    for e in sorted(journal, key=lambda e: e.seq):
        points.append(CrashPoint(e.seq, e.kind, e.name, "before", workflow_id))
        if e.kind == "step":
            points.append(CrashPoint(e.seq, e.kind, e.name, "after-body", workflow_id))
        if _received(e):
            points.append(CrashPoint(e.seq, e.kind, e.name, "before-consume", workflow_id))
    end = max((e.seq for e in journal), default=-1) + 1
    points.append(CrashPoint(end, "end", name, "before", workflow_id))
    return points


def _received(entry: JournalEntry) -> str | None:
    """The name of the event ``entry`` consumed, if it is an event wait that received its event
    (not one that timed out), or a ``wait_any`` that an event won."""
    if entry.status != "completed" or entry.result is None:
        return None
    if entry.kind == "event":
        return entry.name
    if entry.kind != "any":
        return None
    try:  # the choice: {"index": i, "value": ..., "event": name} when an event won
        event = json.loads(entry.result).get("event")
    except (ValueError, AttributeError):  # not JSON (another serializer): not counted
        return None
    return event if isinstance(event, str) else None


# -- the kill mode: each crash a real ``kill -9`` of a worker process ------------------------

KILL_RUN_TIMEOUT = 60.0
"""Seconds a run of the kill mode (a worker process reaching its crash point, or a workflow
finishing) may take before the check gives up."""

_SERVE = "import sys; from durably.crash_safety import serve; sys.exit(serve(sys.argv[1:]))"


class KillCheck:
    """Runs the check of ``check_crash_safety(..., kill=True)``: every run in real worker
    processes (``app_ref``: ``"MODULE:APP"``, as ``durably worker`` takes it) on a fresh
    SQLite file, the crashed one killed with ``SIGKILL`` at its point, the next one started
    after its death (it expires the dead process's leases at once, as on the same host)."""

    def __init__(self, app: App, app_ref: str | None, workflow: Workflow[..., Any]) -> None:
        self.app = app
        self.app_ref = app_ref or _app_ref(app, workflow)
        self._folder = ""
        self._runs = 0

    def run(self, workflow: Workflow[..., Any], /, *args: Any, **kwargs: Any) -> CrashSafetyReport:
        """Run ``workflow(*args, **kwargs)`` uncrashed in a worker process, then killed at
        each point; the App is back on its own database afterwards."""
        app, saved = self.app, self.app.database_url
        if app._worker is not None:
            raise ConfigurationError("stop the App's worker before check_crash_safety(kill=True)")
        self._folder = tempfile.mkdtemp(prefix="durably-kill-")
        try:
            status, value, step_runs, _ = self._run(workflow, args, kwargs, None)
            if status not in _ENDED or status is WorkflowStatus.NEEDS_ATTENTION:
                raise AssertionError(
                    f"workflow {workflow.name!r} did not end without a crash: {status}, {value}"
                )
            points = _run_points(app, workflow.name)
            report = CrashSafetyReport(workflow.name, status, value, step_runs)
            for point in points:
                status, value, step_runs, code = self._run(workflow, args, kwargs, point)
                if status is not report.status or value != report.result:
                    raise CrashSafetyError(
                        f"workflow {workflow.name!r} killed {point} and resumed ended {status} "
                        f"with {value!r}, not {report.status} with {report.result!r} as without "
                        "a crash",
                        point,
                    )
                report.runs.append(CrashRun(point, value, step_runs, code))
            return report
        finally:
            app.use_database(saved)
            shutil.rmtree(self._folder, ignore_errors=True)

    def _run(
        self,
        workflow: Workflow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        point: CrashPoint | None,
    ) -> tuple[WorkflowStatus, Any, dict[str, int], int | None]:
        """One run on a fresh file: its status, result, step body runs and, when killed at
        ``point``, the exit status of the killed worker process."""
        self._runs += 1
        base = os.path.join(self._folder, f"run{self._runs}")
        app, steps = self.app, base + ".steps"
        open(steps, "wb").close()  # the worker processes append to it
        app.use_database(f"sqlite:///{base}.db")
        handle = app.start(workflow, *args, id=WORKFLOW_ID, **kwargs)  # migrates it first
        worker, code = self._spawn(base, point), None
        try:
            if point is not None:
                code = self._wait_killed(worker, handle, point, workflow.name)
                worker = self._spawn(base, None)
            deadline = time.monotonic() + KILL_RUN_TIMEOUT
            while handle.status() not in _ENDED and time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise AssertionError(f"the worker process died: {_tail(base, worker)}")
                time.sleep(0.01)
            status, value = _outcome(handle)
        finally:
            _stop(worker)
        with open(steps, encoding="utf-8") as f:
            return status, value, dict(Counter(f.read().splitlines())), code

    def _spawn(self, base: str, point: CrashPoint | None) -> subprocess.Popen[bytes]:
        """Start a worker process on ``base``'s database (killing itself at ``point``)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [os.getcwd()])
        wanted = "" if point is None else json.dumps(dataclasses.asdict(point))
        with open(f"{base}.{'crash' if point else 'resume'}.log", "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-c", _SERVE, self.app_ref, self.app.database_url, base, wanted],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip

    def _wait_killed(
        self,
        worker: subprocess.Popen[bytes],
        handle: WorkflowHandle[Any],
        point: CrashPoint,
        name: str,
    ) -> int:
        """Wait for the worker process to kill itself at ``point``; its exit status."""
        deadline = time.monotonic() + KILL_RUN_TIMEOUT
        while worker.poll() is None:
            if handle.status() in _ENDED or time.monotonic() > deadline:
                _stop(worker)
                raise CrashSafetyError(
                    f"the run of {name!r} to kill {point} never reached it ({handle.status()}): "
                    "the workflow does not take the same durable calls in every run (is it "
                    "deterministic?)",
                    point,
                )
            time.sleep(0.005)
        if worker.returncode != -signal.SIGKILL:
            base = os.path.join(self._folder, f"run{self._runs}")
            raise CrashSafetyError(
                f"the worker process to kill {point} exited {worker.returncode}, not killed: "
                f"{_tail(base, worker)}",
                point,
            )
        return worker.returncode


def serve(argv: list[str]) -> int:
    """The worker process of the kill mode (internal, for tests only): ``MODULE:APP URL BASE
    [POINT]``: run ``MODULE:APP``'s worker on database ``URL``, append each step body run to
    ``BASE.steps``, and ``kill -9`` this process at crash point ``POINT`` (JSON) if given."""
    app_ref, url, base, wanted = argv
    module, _, attr = app_ref.partition(":")
    app = getattr(importlib.import_module(module), attr)
    app.use_database(url)
    app.worker_options = dataclasses.replace(app.worker_options, poll_interval=0.01)
    point = CrashPoint(**json.loads(wanted)) if wanted else None
    crash = _Crash(point, os.open(f"{base}.steps", os.O_WRONLY | os.O_APPEND | os.O_CREAT))
    with _counting_steps(app, lambda: crash):
        worker = app._new_worker()
        worker._on_write = crash.submitted  # the n-th write of the point dies before it is sent
        app._worker = worker
        worker.run()
    return 0


def _app_ref(app: App, workflow: Workflow[..., Any]) -> str:
    """``"MODULE:APP"`` of ``app``: a global of the module that defines ``workflow``."""
    module = sys.modules.get(workflow.fn.__module__)
    names = [n for n, v in vars(module).items() if v is app] if module is not None else []
    if not names or workflow.fn.__module__ == "__main__":
        raise ConfigurationError(
            f"check_crash_safety(kill=True): cannot find the App of {workflow.name!r} as a "
            f"global of module {workflow.fn.__module__!r}; pass app_ref='MODULE:APP' (what "
            "`durably worker` takes: a worker process imports it)"
        )
    return f"{workflow.fn.__module__}:{names[0]}"


def _stop(worker: subprocess.Popen[bytes]) -> None:
    """Stop a worker process (SIGTERM: it releases its leases and exits; else SIGKILL)."""
    stop_process(worker, RUN_TIMEOUT)


def _tail(base: str, worker: subprocess.Popen[bytes]) -> str:
    """The end of what the worker process of run ``base`` wrote (its log files)."""
    text = ""
    for suffix in (".crash.log", ".resume.log"):
        with contextlib.suppress(OSError), open(base + suffix, encoding="utf-8") as f:
            text += f.read()
    return text[-2000:] or f"exit status {worker.returncode}"
