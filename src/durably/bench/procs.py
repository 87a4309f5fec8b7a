"""Worker processes for the benchmark: ``durably worker durably.bench.workload:app`` on one
database, spawned, watched (registration, RSS), killed with SIGKILL or stopped with SIGTERM."""

from __future__ import annotations

import compileall
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import durably
from durably.bench.targets import Target
from durably.bench.workload import build
from durably.storage.base import WorkerInfo
from durably.worker.supervisor import CHILD_ENV

APP_SPEC = "durably.bench.workload:app"
POLL = 0.005


def rss_mb(pid: int) -> float:
    """Resident set size of process ``pid`` in MB (VmRSS in Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def ensure_bytecode() -> str:
    """Compile durably's modules to bytecode if they are not yet (as ``pip install`` does), so
    that worker start-up is measured as a deployment starts, not recompiling every module
    (``PYTHONDONTWRITEBYTECODE`` makes a source checkout do that on each start). How it went,
    for the report."""
    package = Path(durably.__file__).resolve().parent
    try:
        done = compileall.compile_dir(package, quiet=2, workers=1)
    except OSError as exc:
        return f"source only ({exc.strerror or exc})"
    return "compiled" if done else "partly compiled (some modules could not be written)"


class Worker:
    """One spawned worker process and when it was spawned."""

    def __init__(self, proc: subprocess.Popen[bytes], spawned_at: float, log: Path) -> None:
        self.proc = proc
        self.spawned_at = spawned_at
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


class Workers:
    """The worker processes serving one database (``url``); all stopped on exit."""

    def __init__(self, url: str, client: durably.App) -> None:
        self.url = url
        self.client = client
        self.running: list[Worker] = []
        self._logs = tempfile.TemporaryDirectory(prefix="durably-bench-logs-")
        src = str(Path(durably.__file__).resolve().parents[1])
        self.env = {k: v for k, v in os.environ.items() if k != CHILD_ENV}
        self.env["DURABLY_DB"] = url
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))

    def __enter__(self) -> Workers:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for worker in list(self.running):
            self.stop(worker)
        self._logs.cleanup()

    def spawn(self, processes: int = 1) -> Worker:
        """Start one worker process now (not waiting for it to register); with ``processes``
        above 1, a supervisor (``--processes``) of that many worker processes."""
        log = Path(self._logs.name) / f"worker-{len(os.listdir(self._logs.name))}.log"
        with log.open("wb") as err:
            spawned_at = time.time()
            proc = subprocess.Popen(
                [sys.executable, "-m", "durably.cli", "worker", APP_SPEC, "-p", str(processes)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        worker = Worker(proc, spawned_at, log)
        self.running.append(worker)
        return worker

    def registration(self, worker: Worker, timeout: float = 60.0) -> WorkerInfo:
        """Wait until ``worker`` registered on the database; its registration."""
        deadline = time.monotonic() + timeout
        while True:
            for info in self.client.list_workers():
                if info.pid == worker.pid:
                    return info
            self.check(worker)
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {worker.pid} did not register:\n{worker.output()}")
            time.sleep(POLL)

    def check(self, worker: Worker) -> None:
        """Raise if ``worker`` exited."""
        if worker.proc.poll() is not None:
            raise RuntimeError(
                f"worker {worker.pid} exited with {worker.proc.returncode}:\n{worker.output()}"
            )

    def kill(self, worker: Worker) -> float:
        """SIGKILL ``worker`` and reap it; the time of the kill."""
        killed_at = time.time()
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()  # reaped: no zombie left to look alive to the next worker
        self.running.remove(worker)
        return killed_at

    def stop(self, worker: Worker, timeout: float = 30.0) -> None:
        """SIGTERM ``worker`` (a clean stop releases its workflows); SIGKILL if it hangs."""
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
            try:
                worker.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        if worker in self.running:
            self.running.remove(worker)


@contextmanager
def client_and_workers(target: Target, label: str) -> Iterator[tuple[str, durably.App, Workers]]:
    """A fresh database (``label``), a client App on it (no worker of its own) and the worker
    processes spawned through it: all stopped and closed on exit. Yields (url, client, workers)."""
    with target.fresh(label) as url:
        client = build(url)
        try:
            with Workers(url, client) as workers:
                yield url, client, workers
        finally:
            client.close()
