"""Helpers of the end-to-end tests: worker processes, the side-effect log, the journal, and an
independent model of what each workflow of ``crash_app`` must do and return."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# re-exported for the e2e tests: DURABLY_TEST_BACKENDS and DURABLY_TEST_POSTGRES_URL
from ..backends import BACKENDS as BACKENDS
from ..backends import PG_URL as PG_URL

HERE = Path(__file__).resolve().parent
CRASH_APP = HERE / "crash_app.py"
SRC = HERE.parents[1] / "src"
MODULUS = 1_000_003  # the modulus of crash_app's ``mul`` step

# -- the model: what an uninterrupted run of each workflow records and returns ------------------

ANY = object()
"""A journal value the model cannot predict (a recorded time or uuid)."""
ECHO = object()
"""An ``echo`` step's value: must equal the workflow's recorded uuid (or time, as ISO text)."""


@dataclass(frozen=True)
class WorkflowSpec:
    """One workflow the test starts: id, registered name, positional arguments."""

    id: str
    name: str
    args: tuple[Any, ...]


@dataclass
class Expected:
    """An uninterrupted run: its result, the journal's (kind, name, value) per seq, and for each
    step the seqs of the steps whose results it waits for (``deps``): a step may begin only once
    those are recorded."""

    result: Any = None
    shape: list[tuple[str, str, Any]] = field(default_factory=list)
    deps: dict[int, list[int]] = field(default_factory=dict)
    _barrier: list[int] = field(default_factory=list)

    def value(self, kind: str) -> None:
        """A recorded time or uuid."""
        self.shape.append((kind, kind, ANY))

    def step(self, name: str, value: Any) -> Any:
        """One step awaited at once: later steps wait for it."""
        (value,) = self.gather([(name, value)])
        return value

    def gather(self, calls: list[tuple[str, Any]]) -> list[Any]:
        """Steps started together (gather, or submit then collect), awaited together."""
        seqs = []
        for name, value in calls:
            seqs.append(len(self.shape))
            self.deps[len(self.shape)] = list(self._barrier)
            self.shape.append(("step", name, value))
        self._barrier = seqs
        return [value for _, value in calls]


def expected_run(name: str, args: tuple[Any, ...]) -> Expected:
    """Model of crash_app's workflows, written independently of their code."""
    exp = Expected()
    if name == "async_chain":
        (n,) = args
        exp.value("uuid")
        exp.step("echo", ECHO)
        acc = 1
        for i in range(n):
            if i % 2 == 0:
                acc = exp.step("add", acc + i)
            else:
                acc = exp.step("mul", acc * (i + 1) % MODULUS)
        exp.result = {"acc": acc, "uuid_ok": True}
    elif name == "async_fanout":
        (xs,) = args
        exp.value("now")
        exp.step("echo", ECHO)
        powers = exp.gather(
            [("square", x * x) if i % 2 == 0 else ("cube", x**3) for i, x in enumerate(xs)]
        )
        shifted = exp.gather([("add", v + i) for i, v in enumerate(powers)])
        exp.result = {"total": exp.step("total", sum(shifted)), "now_ok": True}
    elif name == "sync_chain":
        n, label = args
        parts = [
            exp.step("add", i + 100) if i % 3 == 2 else exp.step("mul", i * 7 % MODULUS)
            for i in range(n)
        ]
        exp.value("uuid")
        exp.step("echo", ECHO)
        result = exp.step("total", sum(parts))
        exp.result = f"{label}:{'-'.join(map(str, parts))}:{result}:ok"
    elif name == "sync_fanout":
        (xs,) = args
        powers = exp.gather(
            [("cube", x**3) if i % 2 else ("square", x * x) for i, x in enumerate(xs)]
        )
        shifted = exp.gather([("add", v + i) for i, v in enumerate(powers)])
        exp.result = exp.step("total", sum(shifted))
        exp.value("now")
        exp.step("echo", ECHO)
    else:  # pragma: no cover - a typo in a test
        raise ValueError(f"no model for workflow {name!r}")
    return exp


def mixed_specs(count: int, prefix: str, size: int) -> list[WorkflowSpec]:
    """``count`` workflows cycling through the four kinds; ``size`` scales their length."""
    specs = []
    for i in range(count):
        wid = f"{prefix}-{i:03d}"
        kind = i % 4
        if kind == 0:
            specs.append(WorkflowSpec(wid, "async_chain", (size + i % 5,)))
        elif kind == 1:
            specs.append(WorkflowSpec(wid, "async_fanout", ([i + k for k in range(2 + i % 4)],)))
        elif kind == 2:
            specs.append(WorkflowSpec(wid, "sync_chain", (size - 1 + i % 4, f"w{i}")))
        else:
            specs.append(WorkflowSpec(wid, "sync_fanout", ([i - k for k in range(2 + i % 3)],)))
    return specs


# -- the database, read directly -----------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One journal row, its result decoded."""

    workflow_id: str
    seq: int
    kind: str
    name: str
    status: str
    result: Any
    owner: str
    epoch: int

    @property
    def pid(self) -> int:
        return owner_pid(self.owner)


@dataclass(frozen=True)
class WorkflowRow:
    """The columns of a workflows row the tests look at."""

    id: str
    status: str
    output: Any
    owner: str | None
    epoch: int


def owner_pid(owner: str) -> int:
    """The pid in a worker id ``host:pid:rand``."""
    return int(owner.rsplit(":", 2)[1])


class Database:
    """The test database, on either backend: the URL the worker scripts and clients open, and
    direct SQL reads for the checks (written with ``?`` placeholders, as for SQLite).

    On PostgreSQL the tables live in their own ``schema``; each worker connects with an
    ``application_name`` of its own (:meth:`worker_url`), so the test can see its sessions.
    """

    def __init__(self, backend: str, url: str, *, path: Path | None = None,
                 server_url: str | None = None, schema: str | None = None) -> None:  # fmt: skip
        self.backend = backend
        self.url = url
        self.path = path
        self.server_url = server_url
        self.schema = schema
        self._pg: Any = None

    @classmethod
    def sqlite(cls, path: Path) -> Database:
        return cls("sqlite", f"sqlite:///{path}", path=path)

    @classmethod
    def postgres(cls, server_url: str, schema: str) -> Database:
        sep = "&" if "?" in server_url else "?"
        return cls("postgres", f"{server_url}{sep}schema={schema}", server_url=server_url,
                   schema=schema)  # fmt: skip

    def worker_url(self, name: str) -> str:
        """The URL a worker process named ``name`` opens."""
        if self.backend == "sqlite":
            return self.url
        return f"{self.url}&application_name={self.app_name(name)}"

    def app_name(self, name: str) -> str:
        assert self.schema is not None
        return f"e2e.{name}.{self.schema[-16:]}"[:63]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read-only query."""
        if self.backend == "sqlite":
            assert self.path is not None
            with connect(self.path) as conn:
                return conn.execute(sql, params).fetchall()
        if self._pg is None:
            import psycopg

            self._pg = psycopg.connect(
                self.server_url, autocommit=True, connect_timeout=10,
                options=f"-c search_path={self.schema}",
            )  # fmt: skip
        return self._pg.execute(sql.replace("?", "%s"), params).fetchall()

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
            self._pg = None


@contextlib.contextmanager
def connect(db: Path, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A short-lived connection to a SQLite test database."""
    conn = sqlite3.connect(str(db), timeout=timeout, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def read_journal(db: Database) -> dict[str, list[Entry]]:
    """Every workflow's journal, ordered by seq."""
    journal: dict[str, list[Entry]] = defaultdict(list)
    rows = db.query(
        "SELECT workflow_id, seq, kind, name, status, result, owner, epoch FROM journal "
        "ORDER BY workflow_id, seq"
    )
    for wid, seq, kind, name, status, result, owner, epoch in rows:
        value = None if result is None else json.loads(result)
        journal[wid].append(Entry(wid, seq, kind, name, status, value, owner, epoch))
    return dict(journal)


def read_workflows(db: Database) -> dict[str, WorkflowRow]:
    """Every workflow row by id."""
    rows = db.query("SELECT id, status, output, owner, epoch FROM workflows")
    return {
        wid: WorkflowRow(wid, status, None if out is None else json.loads(out), owner, epoch)
        for wid, status, out, owner, epoch in rows
    }


def registered_pids(db: Database) -> set[int]:
    """Pids of the workers registered in the database."""
    return {row[0] for row in db.query("SELECT pid FROM workers")}


def write_lock_free(db: Path, timeout: float = 0.3) -> bool:
    """Whether a write transaction can begin within ``timeout`` s on SQLite file ``db`` (no
    process holds the lock)."""
    try:
        with connect(db, timeout=timeout) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return False
    return True


def outside_transaction(db: Database, worker: Worker) -> bool:
    """Whether ``worker`` (stopped) holds no lock another worker could wait for: on SQLite, the
    file's write lock is free; on PostgreSQL, none of its sessions is inside a transaction."""
    if db.backend == "sqlite":
        assert db.path is not None
        return write_lock_free(db.path)
    rows = db.query(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = ? "
        "AND xact_start IS NOT NULL",
        (db.app_name(worker.name),),
    )
    return rows[0][0] == 0


# -- the side-effect log -------------------------------------------------------------------------


@dataclass
class Execution:
    """One execution of one step by one process, from the side-effect log."""

    workflow_id: str
    seq: int
    step: str
    pid: int
    token: str
    index: int
    """Position of its "start" line in the log (the log is in time order)."""
    start_time: float
    end_index: int | None = None
    """Position of its "end" line, if it got that far."""

    @property
    def ended(self) -> bool:
        return self.end_index is not None


def read_log(path: Path) -> list[dict[str, Any]]:
    """The side-effect log's records, in the order they were appended.

    A record is one ``os.write`` with ``O_APPEND``, but Linux may cut a write short when the
    writer gets SIGKILL while the record spans a page boundary: the killed process's torn head
    is then followed, on the same line, by the next whole record of another process. The torn
    head is dropped, as if the kill had come just before that write (what ``may_have_lost``
    allows for a killed process); every whole record is kept."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            whole = line.rfind('{"event": ')
            if whole > 0:  # a torn head, then a whole record
                records.append(json.loads(line[whole:]))
            elif not line.endswith("}"):  # the very last write, torn: nothing followed
                continue
            else:
                raise
    return records


def executions(records: list[dict[str, Any]]) -> dict[tuple[str, int], list[Execution]]:
    """Step executions by (workflow id, seq), in the order they started."""
    by_key: dict[tuple[str, int], list[Execution]] = defaultdict(list)
    by_run: dict[str, Execution] = {}
    for i, r in enumerate(records):
        if r["event"] == "start":
            assert r["run"] not in by_run, f"two 'start' lines for one execution: {r}"
            ex = Execution(r["workflow_id"], r["seq"], r["step"], r["pid"], r["token"], i,
                           r["time"])  # fmt: skip
            by_key[(ex.workflow_id, ex.seq)].append(ex)
            by_run[r["run"]] = ex
        else:
            assert r["event"] == "end", r
            ex = by_run[r["run"]]
            assert not ex.ended, f"two 'end' lines for one execution: {r}"
            ex.end_index = i
    return dict(by_key)


# -- checks shared by the tests ------------------------------------------------------------------


def check_journals(
    specs: list[WorkflowSpec], journal: Mapping[str, list[Entry]]
) -> dict[str, Expected]:
    """Each journal has exactly the model's entries (kind, name, value) at seqs 0..n-1.

    Returns the model of each workflow by id.
    """
    models = {}
    for spec in specs:
        exp = expected_run(spec.name, spec.args)
        models[spec.id] = exp
        entries = journal.get(spec.id, [])
        got = [(e.seq, e.kind, e.name, e.status) for e in entries]
        want = [(seq, kind, name, "completed") for seq, (kind, name, _) in enumerate(exp.shape)]
        assert got == want, f"{spec.id} ({spec.name}{spec.args}): journal shape {got} != {want}"
        recorded = {e.kind: e.result for e in entries if e.kind in ("uuid", "now")}
        for e, (_, _, value) in zip(entries, exp.shape, strict=True):
            if value is ECHO:
                if "uuid" in recorded:
                    value = recorded["uuid"]
                else:
                    value = datetime.fromtimestamp(recorded["now"], UTC).isoformat()
            if value is not ANY:
                assert e.result == value, (
                    f"{spec.id} seq {e.seq} {e.name}: {e.result!r} != {value!r}"
                )
    extra = set(journal) - {s.id for s in specs}
    assert not extra, f"journal entries for workflows never started: {sorted(extra)}"
    return models


def check_fenced_owners(journal: Mapping[str, list[Entry]]) -> None:
    """Within a workflow, one epoch was written by one owner only (a claim is exclusive)."""
    for wid, entries in journal.items():
        owners: dict[int, set[str]] = defaultdict(set)
        for e in entries:
            owners[e.epoch].add(e.owner)
        shared = {epoch: o for epoch, o in owners.items() if len(o) > 1}
        assert not shared, f"{wid}: epochs written by several owners: {shared}"


def check_executions(
    journal: Mapping[str, list[Entry]],
    runs: Mapping[tuple[str, int], list[Execution]],
    models: Mapping[str, Expected],
    may_have_lost: Callable[[Execution], bool],
    may_run_late: Callable[[Execution], bool] | None = None,
    may_repeat: Callable[[Execution], bool] | None = None,
) -> None:
    """The side-effect log agrees with the journal, step by step.

    For every recorded step: the process that recorded it ran it to its end (its last execution
    there, if it ``may_repeat`` it); nobody began executing it after that (except processes that
    ``may_run_late``: one fenced out but not yet aware of it); no process executed it twice
    (unless it ``may_repeat`` it: it lost and took back the workflow); every other execution is
    by a process that ``may_have_lost`` its work (killed, or fenced out). Every step execution
    in the log belongs to a recorded step of the same name. And no execution began before the
    recorded executions of the steps it waits for had ended (a result is committed before the
    workflow goes past it, so nothing builds on a result that a crash could still lose).
    """
    recorded = {(e.workflow_id, e.seq): e for es in journal.values() for e in es}
    winners: dict[tuple[str, int], Execution] = {}
    for key, execs in runs.items():
        entry = recorded.get(key)
        assert entry is not None and entry.kind == "step", f"{key}: executed but not recorded"
        assert {x.step for x in execs} == {entry.name}, f"{key}: {execs} vs {entry}"
    for key, entry in recorded.items():
        if entry.kind != "step":
            continue
        execs = runs.get(key, [])
        seen: set[str] = set()
        for x in execs:
            repeat = x.token in seen and (may_repeat is None or not may_repeat(x))
            assert not repeat, f"{key}: a process executed it twice: {execs}"
            seen.add(x.token)
        committed = [x for x in execs if x.pid == entry.pid]
        assert committed, f"{key}: recorded by pid {entry.pid}, executions {execs}"
        winners[key] = winner = committed[-1]
        assert winner.ended, f"{key}: recorded but its execution never ended: {winner}"
        after = execs[execs.index(winner) + 1 :]
        late = [x for x in after if may_run_late is None or not may_run_late(x)]
        assert not late, f"{key}: executed again after it was recorded: {execs}"
        losers = [x for x in execs if x is not winner and not may_have_lost(x)]
        assert not losers, f"{key}: executions by live, unfenced processes: {losers} ({entry})"
    for (wid, seq), execs in runs.items():
        for dep in models[wid].deps[seq]:
            before = winners[(wid, dep)]
            for x in execs:
                assert before.end_index is not None and before.end_index < x.index, (
                    f"{wid}: seq {seq} began before the recorded execution of seq {dep} ended: "
                    f"{x} vs {before}"
                )


# -- worker processes ----------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns a true value (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(interval)


def process_state(pid: int) -> str:
    """The one-letter state of a process in /proc (R, S, T, Z...), or "" if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


@dataclass
class Worker:
    """A ``crash_app.py`` worker subprocess and its output files."""

    name: str
    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


class Workers:
    """Starts, signals and reaps worker processes on one database and side-effect log."""

    def __init__(self, tmp_path: Path, db: Database, script: Path = CRASH_APP) -> None:
        self.script = script
        self.tmp_path = tmp_path
        self.db = db
        self.log = tmp_path / "effects.log"
        self.all: list[Worker] = []

    def env(self, overrides: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DURABLY_", "E2E_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(overrides)
        return env

    def spawn(self, name: str, env: Mapping[str, str]) -> Worker:
        out_path = self.tmp_path / f"{name}.out"
        err_path = self.tmp_path / f"{name}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(self.script), self.db.worker_url(name), str(self.log)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env(env),
            )  # fmt: skip
        worker = Worker(name, proc, out_path, err_path)
        self.all.append(worker)
        return worker

    def wait_registered(self, worker: Worker, timeout: float = 15.0) -> None:
        """Wait until the worker registered itself in the database (it is about to claim)."""

        def registered() -> bool:
            if worker.proc.poll() is not None:
                raise AssertionError(
                    f"worker {worker.name} exited with {worker.proc.returncode}:\n{worker.stderr()}"
                )
            return worker.pid in registered_pids(self.db)

        wait_until(registered, timeout, f"worker {worker.name} registers")

    def kill(self, worker: Worker) -> None:
        """SIGKILL the worker and reap it."""
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=30)

    def terminate(self, worker: Worker, timeout: float = 30.0) -> int:
        """SIGTERM the worker and wait for it to exit; return its exit code."""
        worker.proc.send_signal(signal.SIGTERM)
        return worker.proc.wait(timeout=timeout)

    def cleanup(self) -> None:
        """SIGKILL (works on stopped processes too) and reap every worker still alive."""
        for worker in self.all:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGKILL)
            worker.proc.wait(timeout=30)

    def report(self, tail: int = 60) -> str:
        """The last lines of every worker's stderr, to debug a failure."""
        parts = []
        for w in self.all:
            lines = w.stderr().splitlines()[-tail:] if w.err_path.exists() else []
            parts.append(
                f"----- worker {w.name} pid {w.pid} exit {w.proc.returncode} "
                f"({w.err_path}) -----\n" + "\n".join(lines)
            )
        return "\n".join(parts)


def assert_no_traceback(worker: Worker) -> None:
    """The worker logged no traceback (an unexpected exception)."""
    text = worker.stderr()
    assert "Traceback" not in text, f"worker {worker.name} printed a traceback:\n{text}"
