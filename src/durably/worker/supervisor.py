"""Run several worker processes for one app: ``durably worker MODULE:APP --processes N``.

One Python process is bound by the GIL, so to use every core of a machine the supervisor starts
N independent worker processes (``python -m durably.cli worker MODULE:APP``) on the same
database; leases and fencing make that safe, and each registers as its own worker. The supervisor
never imports the app itself. It

- forwards SIGTERM/SIGINT to the children and waits for them to stop cleanly (exit code 0 when
  every child exited 0);
- restarts a child that dies unexpectedly (a crash, ``kill -9``): at once if it had been up for
  :data:`STARTUP_GRACE` seconds, else after a backoff that grows with each failure in a row;
- keeps one *standby* process ready: started like a child, it imports the app (and opens the
  database) and then waits on its stdin. A child that dies is replaced by the standby, which
  starts serving at once, without the interpreter start and imports (a fresh process spends
  most of its first 0.2 s there), and a new standby is started behind it. A standby that keeps
  failing at startup is given up (children are then started fresh);
- gives up with a non-zero exit code when children keep failing at startup (a bad MODULE:APP, a
  database it cannot open): a child that exits with a configuration error (code 2) before it was
  up for :data:`STARTUP_GRACE` seconds stops everything at once, and so do
  :data:`MAX_STARTUP_FAILURES` startup failures in a row of one child.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["CHILD_ENV", "GO", "STANDBY_ENV", "Supervisor", "resolve_processes", "stop_process"]

log = logging.getLogger("durably.supervisor")

#: Set in a child's environment (to its index) so it runs a single worker, never a supervisor.
CHILD_ENV = "DURABLY_WORKER_PROCESS"
#: Set (to 1) in the standby's environment: it waits for ``go`` on its stdin before serving.
STANDBY_ENV = "DURABLY_WORKER_STANDBY"
#: The word that makes a standby serve.
GO = b"go\n"
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


def _ignore(signum: int, frame: FrameType | None) -> None:
    """SIGCHLD: nothing to do in the handler; its wake-up byte ends the main loop's wait."""


def _wait(fd: int, timeout: float) -> None:
    """Sleep up to ``timeout`` s, or until a signal's wake-up byte arrives on ``fd``."""
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    except InterruptedError:
        return
    if ready:
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop ``proc``: SIGTERM (a worker releases its leases and exits), then, if it has not
    exited within ``grace`` seconds, SIGKILL; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Supervisor:
    """Start ``processes`` worker children for ``spec`` and keep them running until signalled."""

    def __init__(
        self,
        spec: str,
        processes: int,
        *,
        verbose: bool = False,
        queues: Sequence[str] | None = None,
        version: str | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self.spec = spec
        self.queues = list(queues or [])
        self.version = version
        """The ``--version`` its children run (None: the app's own)."""
        self.processes = processes
        self.verbose = verbose
        self._children = [_Child(i) for i in range(processes)]
        self._stop_signal: int | None = None
        self._pending_signal: int | None = None
        self._last_signalled = 0.0
        self._failed: str | None = None
        self._use_standby = True  # until standbys keep failing at startup
        self._standby: subprocess.Popen[bytes] | None = None
        self._standby_started = 0.0
        self._standby_failures = 0

    # -- children ---------------------------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-m", "durably.cli", "worker", self.spec, "--processes", "1"]
        if self.verbose:
            cmd.append("--verbose")
        for queue in self.queues:
            cmd += ["--queue", queue]
        if self.version is not None:
            cmd += ["--version", self.version]
        return cmd

    def _spawn(self, child: _Child) -> None:
        standby = self._activate_standby()
        if standby is not None:
            child.proc = standby
            log.info("worker process %d: the standby (pid %d) took over", child.index, standby.pid)
        else:
            env = {**os.environ, CHILD_ENV: str(child.index)}
            child.proc = subprocess.Popen(self._command(), env=env)
            log.info("started worker process %d (pid %d)", child.index, child.proc.pid)
        child.started_at = time.monotonic()
        child.restart_at = None
        self._ensure_standby()

    # -- the standby ------------------------------------------------------------------------

    def _ensure_standby(self) -> None:
        """Start a standby if there should be one and none runs."""
        if not self._use_standby or self._standby is not None or self._stop_signal is not None:
            return
        env = {**os.environ, CHILD_ENV: "standby", STANDBY_ENV: "1"}
        self._standby = subprocess.Popen(self._command(), env=env, stdin=subprocess.PIPE)
        self._standby_started = time.monotonic()
        log.info("started a standby worker process (pid %d)", self._standby.pid)

    def _activate_standby(self) -> subprocess.Popen[bytes] | None:
        """The standby, told to serve; None if there is none alive."""
        proc, self._standby = self._standby, None
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(GO)
                proc.stdin.close()
                return proc
            except OSError:  # it died meanwhile
                pass
        self._standby_exited(proc)
        return None

    def _standby_exited(self, proc: subprocess.Popen[bytes]) -> None:
        """A standby that died before serving: forget it; give up standbys if they keep
        failing at startup (children are then started fresh, as without them)."""
        code = proc.wait()
        if time.monotonic() - self._standby_started < STARTUP_GRACE:
            self._standby_failures += 1
        else:
            self._standby_failures = 0
        if self._standby_failures >= MAX_STARTUP_FAILURES:
            self._use_standby = False
            log.warning("the standby worker process keeps failing (%s); not keeping one",
                        _describe(code))  # fmt: skip
        else:
            log.warning("the standby worker process (pid %d) exited (%s)", proc.pid,
                        _describe(code))  # fmt: skip

    def _stop_standby(self) -> None:
        proc, self._standby = self._standby, None
        if proc is None:
            return
        if proc.stdin is not None:
            try:
                proc.stdin.close()  # end of input: a waiting standby exits at once
            except OSError:
                pass
        stop_process(proc, STARTUP_GRACE)

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
            self._stop_standby()
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
        # a child's death (SIGCHLD) or a signal wakes the loop at once, through this pipe
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        previous_wakeup = signal.set_wakeup_fd(wake_w)
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _ignore)
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
                            if (
                                child.restart_at is not None
                                and child.restart_at <= time.monotonic()
                            ):
                                self._spawn(child)  # at once, not after the next wait
                                running += 1
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
                standby = self._standby
                if standby is not None and standby.poll() is not None:
                    self._standby = None
                    self._standby_exited(standby)
                    self._ensure_standby()
                if self._stop_signal is not None:
                    if running == 0:
                        break
                    if now - self._last_signalled >= RESIGNAL_INTERVAL:
                        self._signal_children(self._stop_signal)
                _wait(wake_r, _POLL)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
            self._stop_standby()
            for child in self._children:  # only on an unexpected error in the loop itself
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.kill()
                    child.proc.wait()
        if self._failed is not None:
            return 1
        return 0 if clean else 1
