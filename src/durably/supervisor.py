"""Run several worker processes for one app: ``durably worker MODULE:APP --processes N``.

One Python process is bound by the GIL, so to use every core of a machine the supervisor starts
N independent worker processes (``python -m durably.cli worker MODULE:APP``) on the same
database; leases and fencing make that safe, and each registers as its own worker. The supervisor
never imports the app itself. It

- forwards SIGTERM/SIGINT to the children and waits for them to stop cleanly (exit code 0 when
  every child exited 0);
- restarts a child that dies unexpectedly (a crash, ``kill -9``): at once if it had been up for
  :data:`STARTUP_GRACE` seconds, else after a backoff that grows with each failure in a row;
- gives up with a non-zero exit code when children keep failing at startup (a bad MODULE:APP, a
  database it cannot open): a child that exits with a configuration error (code 2) before it was
  up for :data:`STARTUP_GRACE` seconds stops everything at once, and so do
  :data:`MAX_STARTUP_FAILURES` startup failures in a row of one child.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["CHILD_ENV", "Supervisor", "resolve_processes"]

log = logging.getLogger(__name__)

#: Set in a child's environment (to its index) so it runs a single worker, never a supervisor.
CHILD_ENV = "DURABLY_WORKER_PROCESS"
#: A child that exits before it was up this long (seconds) failed at startup.
STARTUP_GRACE = 5.0
#: Give up after this many startup failures in a row of one child.
MAX_STARTUP_FAILURES = 5
#: Restart backoff (seconds): doubles with each failure in a row, up to the cap.
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 10.0
#: While stopping, signal children that are still running again this often (seconds).
RESIGNAL_INTERVAL = 2.0
_POLL = 0.1
_CONFIG_ERROR_EXIT = 2  # what ``durably worker`` returns for a DurablyError


def resolve_processes(value: str) -> int:
    """Parse ``--processes``: a positive count, or ``0``/``auto`` for ``os.cpu_count()``."""
    text = value.strip().lower()
    if text == "auto":
        count = 0
    else:
        try:
            count = int(text)
        except ValueError:
            raise ValueError(f"expected a number of processes or 'auto', got {value!r}") from None
    if count < 0:
        raise ValueError(f"the number of processes cannot be negative, got {count}")
    return count if count > 0 else (os.cpu_count() or 1)


@dataclass
class _Child:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # startup failures in a row
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Start ``processes`` worker children for ``spec`` and keep them running until signalled."""

    def __init__(
        self,
        spec: str,
        processes: int,
        *,
        verbose: bool = False,
        queues: Sequence[str] | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.spec = spec
        self.queues = list(queues or [])
        self.processes = processes
        self.verbose = verbose
        self._children = [_Child(i) for i in range(processes)]
        self._stop_signal: int | None = None
        self._pending_signal: int | None = None
        self._last_signalled = 0.0
        self._failed: str | None = None

    # -- children ---------------------------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-m", "durably.cli", "worker", self.spec, "--processes", "1"]
        if self.verbose:
            cmd.append("--verbose")
        for queue in self.queues:
            cmd += ["--queue", queue]
        return cmd

    def _spawn(self, child: _Child) -> None:
        env = {**os.environ, CHILD_ENV: str(child.index)}
        child.proc = subprocess.Popen(self._command(), env=env)
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("started worker process %d (pid %d)", child.index, child.proc.pid)

    def _on_exit(self, child: _Child, code: int) -> None:
        """A child exited while the supervisor was not stopping: schedule a restart or give up."""
        assert child.proc is not None
        pid, uptime = child.proc.pid, time.monotonic() - child.started_at
        child.proc = None
        child.exit_codes.append(code)
        if uptime >= STARTUP_GRACE:
            child.failures = 0
        child.failures += 1
        if uptime < STARTUP_GRACE and code == _CONFIG_ERROR_EXIT:
            self._fail(
                f"worker process {child.index} (pid {pid}) failed at startup with a "
                f"configuration error (exit code {code}); see its message above"
            )
            return
        if uptime < STARTUP_GRACE and child.failures >= MAX_STARTUP_FAILURES:
            self._fail(
                f"worker process {child.index} failed at startup {child.failures} times in a row "
                f"(last: {_describe(code)}); giving up"
            )
            return
        # a child that had been up (killed, crashed) is replaced at once: its workflows wait
        # for it; only failures in a row back off
        delay = (
            0.0
            if uptime >= STARTUP_GRACE
            else min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** (child.failures - 1))
        )
        log.warning(
            "worker process %d (pid %d) died unexpectedly (%s after %.1fs); restarting in %.1fs",
            child.index,
            pid,
            _describe(code),
            uptime,
            delay,
        )
        child.restart_at = time.monotonic() + delay

    def _fail(self, message: str) -> None:
        self._failed = message
        print(f"durably: error: {message}", file=sys.stderr, flush=True)
        self._begin_stop(signal.SIGTERM)

    # -- stopping ---------------------------------------------------------------------------

    def _handle_signal(self, signum: int, frame: FrameType | None) -> None:
        self._pending_signal = signum  # acted on by the main loop, not in the handler

    def _begin_stop(self, signum: int) -> None:
        if self._stop_signal is None:
            self._stop_signal = signum
            log.info("stopping %d worker process(es) (%s)", self.processes, _describe(-signum))
        self._signal_children(signum)

    def _signal_children(self, signum: int) -> None:
        self._last_signalled = time.monotonic()
        for child in self._children:
            if child.proc is not None and child.proc.poll() is None:
                try:
                    child.proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    # -- main loop --------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (or a startup failure); return the exit code."""
        previous = {
            sig: signal.signal(sig, self._handle_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        clean = True
        try:
            for child in self._children:
                if self._stop_signal is None and self._pending_signal is None:
                    self._spawn(child)
            while True:
                if self._pending_signal is not None:
                    signum, self._pending_signal = self._pending_signal, None
                    self._begin_stop(signum)
                now = time.monotonic()
                running = 0
                for child in self._children:
                    proc = child.proc
                    if proc is not None:
                        code = proc.poll()
                        if code is None:
                            running += 1
                        elif self._stop_signal is None:
                            self._on_exit(child, code)
                        else:
                            child.proc = None
                            child.exit_codes.append(code)
                            # Killed by the forwarded signal before it installed its handlers:
                            # it was not running anything yet, so that is a clean stop too.
                            if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                                clean = False
                                log.warning(
                                    "worker process %d (pid %d) stopped with %s",
                                    child.index,
                                    proc.pid,
                                    _describe(code),
                                )
                    elif (
                        self._stop_signal is None
                        and child.restart_at is not None
                        and now >= child.restart_at
                    ):
                        self._spawn(child)
                        running += 1
                if self._stop_signal is not None:
                    if running == 0:
                        break
                    if now - self._last_signalled >= RESIGNAL_INTERVAL:
                        self._signal_children(self._stop_signal)
                time.sleep(_POLL)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for child in self._children:  # only on an unexpected error in the loop itself
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.kill()
                    child.proc.wait()
        if self._failed is not None:
            return 1
        return 0 if clean else 1
