"""kill -9 workers at random points while long-lived workflows sleep, wait for events, wait for
child workflows and run compensation after a cancellation, then restart them, again and again.

Real worker processes (``long_app.py``) run with a real clock, short durable sleeps and a tiny
eviction threshold, so that workflows are parked (unwound, lease released) and replayed many
times while workers die under them. Meanwhile the test process starts more workflows, sends
events (some twice with the same dedup key, some before anyone waits for them) and cancels
workflows. Once every workflow is terminal, the database and the side-effect log must show:

* every workflow ended in the right state with exactly the result (and journal) of an
  uninterrupted run; cancelled ones were cancelled at the wait they were cancelled in (also
  when replayed) and ran their compensation exactly once;
* timers fired once and never early: the step after a sleep is recorded once, no execution of
  it began before the sleep's recorded wake time (unless by a killed process that lost its
  own record of the sleep), and the recorded wake time is the recording execution's clock plus
  the duration (a replay never re-arms it);
* events were consumed once each, in send order, duplicates ignored;
* children were started once (one row per expected child id), completed once, and a parent
  never went past a child's result before that child had finished;
* a step was recorded once; only killed processes lost executions; each (workflow, epoch) was
  written by one owner;
* and the kills really hit sleeping, parked, event-waiting, child-completing and cancelling
  workflows.

Set ``E2E_SEED`` to replay another random schedule.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

import durably

from . import long_app
from .support import (
    Database,
    Entry,
    Execution,
    Expected,
    Workers,
    WorkflowSpec,
    check_executions,
    check_fenced_owners,
    executions,
    owner_pid,
    read_journal,
    read_log,
    registered_pids,
)

SEED = int(os.environ.get("E2E_SEED", "20240719"))
KILLS = 40
SEND_WINDOW = 20.0
"""Events are sent within this many seconds of the start (the kill phase lasts longer)."""
CANCEL_WINDOW = (1.5, 22.0)
START_WINDOW = 16.0
"""Workflows started after the beginning are started within this many seconds."""
TERMINAL = ("completed", "failed", "cancelled", "terminated", "needs_attention")
WAKE_SLACK = 0.25
"""How much earlier than "first clock + duration" a recorded wake time may be (the two clock
readings of one durable sleep are microseconds apart; this only tolerates a stalled thread)."""


# -- worker processes of long_app ----------------------------------------------------------------


@pytest.fixture
def long_client(long_workers: Workers) -> Iterator[durably.App]:
    """A client App on the workers' database: starts, signals, cancels; runs no worker."""
    app = long_app.make_app(long_workers.db.url, str(long_workers.log))
    app.store.migrate()
    try:
        yield app
    finally:
        app.close()


def worker_env(rng: random.Random) -> dict[str, str]:
    return {
        "E2E_EVICTION_THRESHOLD": str(rng.choice([0.05, 0.1, 0.2])),
        "E2E_POLL_INTERVAL": "0.02",
        "E2E_LEASE_SECONDS": "5.0",
    }


# -- the model: what an uninterrupted run records and returns ------------------------------------


@dataclass(frozen=True)
class Nap:
    """A sleep entry's value: a wake time ``seconds`` after it was first reached."""

    seconds: float


@dataclass
class Model:
    """An uninterrupted run: journal rows (kind, name, status, value) by seq, the final status
    and result (and the seq of the cancellation), the children started (by the parent's seq),
    and for each awaited child the seq of the parent's step right after the child's result."""

    rows: list[tuple[str, str, str, Any]] = field(default_factory=list)
    status: str = "completed"
    result: Any = None
    cancel_seq: int | None = None
    """Where the cancellation is raised (the test cancels while the workflow waits there)."""
    waiting_at: int | None = None
    """The seq whose entry shows that the workflow reached that wait."""
    children: dict[int, WorkflowSpec] = field(default_factory=dict)
    after_child: dict[int, int] = field(default_factory=dict)

    def sleep(self, seconds: float) -> None:
        self.rows.append(("sleep", "sleep", "completed", Nap(seconds)))

    def step(self, name: str, tag: str) -> str:
        self.rows.append(("step", name, "completed", tag))
        return tag

    def child(self, spec: WorkflowSpec, status: str, value: Any) -> int:
        seq = len(self.rows)
        self.children[seq] = spec
        self.rows.append(("child", spec.name, status, value))
        return seq


def model(spec: WorkflowSpec, items: Mapping[str, list[Any]]) -> Model:
    """Model of long_app's workflows, written independently of their code. ``items``: the
    payloads of the "item" events each workflow was sent, in send order."""
    m = Model()
    step = "work_sync" if spec.name.endswith("_sync") else "work"
    name = spec.name.removesuffix("_sync")
    if name == "naps":
        durations, _ = spec.args
        for i, nap in enumerate(durations):
            m.sleep(nap)
            m.step(step, f"nap{i}")
        m.result = [f"nap{i}" for i in range(len(durations))]
    elif name == "inbox":
        count, _ = spec.args
        sent = items.get(spec.id, [])
        assert len(sent) == count, f"{spec.id}: sent {sent}, it waits for {count}"
        m.rows.append(("event", "ping", "completed", None))
        for i in range(count):
            m.rows.append(("event", "item", "completed", sent[i]))
            if i % 3 == 1:
                m.sleep(0.15)
            m.step(step, f"ack{i}")
        m.result = {"ping": None, "items": sent}
    elif name == "kid":
        label, durations, _ = spec.args
        tags = []
        for i, nap in enumerate(durations):
            m.sleep(nap)
            tags.append(m.step(step, f"{label}.{i}"))
        m.result = f"{label}:{','.join(tags)}"
    elif name == "family":
        label, durations, delay, _ = spec.args
        kid, other = ("kid_sync", "kid") if spec.name.endswith("_sync") else ("kid", "kid_sync")

        def child(seq: int, kid_name: str, args: tuple[Any, ...]) -> tuple[int, Any]:
            child_spec = WorkflowSpec(f"{spec.id}:{seq}", kid_name, args)
            value = model(child_spec, items).result
            assert m.child(child_spec, "completed", value) == seq
            return seq, value

        seq_a, a = child(0, kid, (f"{label}a", durations, delay))
        m.after_child[seq_a] = len(m.rows)
        m.step(step, "after-a")
        seq_b, b = child(2, other, (f"{label}b", durations[::-1], delay))
        if spec.name == "family":
            seq_c, c = child(3, "kid", (f"{label}c", durations[1:], delay))
        m.step(step, "started")
        m.after_child[seq_b] = len(m.rows)
        m.step(step, "after-b")
        if spec.name == "family":
            m.after_child[seq_c] = len(m.rows)
            m.step(step, "after-c")
            m.result = [a, b, c]
        else:
            m.result = [a, b]
    elif name == "doomed":
        mode, delay, warm = spec.args
        m.status = "cancelled"
        m.step(step, "begin")
        for i, nap in enumerate(warm):
            m.sleep(nap)
            m.step(step, f"warm{i}")
        m.cancel_seq = m.waiting_at = len(m.rows)
        if mode == "sleep":
            m.sleep(long_app.DOOMED_SLEEP)
        elif mode == "event":
            m.rows.append(("event", "never", "waiting", {"deadline": None}))
        else:  # a child awaited at once, or ("handle") started, a step, then awaited
            kid_spec = WorkflowSpec(
                f"{spec.id}:{m.cancel_seq}", spec.name, ("sleep", delay, warm[::-1])
            )
            m.child(kid_spec, "waiting", {"id": kid_spec.id})
            if mode == "handle":  # cancelled at the await, at the child's seq
                m.waiting_at = len(m.rows)
                m.step(step, "started")
        m.step(step, "undo")
        m.sleep(long_app.UNDO_NAP)
        m.step(step, "undone")
    else:  # pragma: no cover - a typo in a test
        raise ValueError(f"no model for workflow {spec.name!r}")
    return m


# -- the schedule of a run -----------------------------------------------------------------------


@dataclass
class Send:
    """An event the test sends: ``at`` seconds after the start (0: before any worker runs)."""

    at: float
    workflow_id: str
    payload: Any
    dedup_key: str | None
    duplicate: bool = False


@dataclass
class Plan:
    starts: list[tuple[float, WorkflowSpec]]
    sends: list[Send]
    cancels: dict[str, float]


def make_plan(rng: random.Random) -> Plan:
    def naps(n: int) -> list[float]:
        return [round(rng.uniform(0.1, 0.8), 3) for _ in range(n)]

    def later() -> float:
        return round(rng.uniform(0.5, START_WINDOW), 2)

    def delay() -> float:
        return round(rng.uniform(0.01, 0.08), 3)

    starts: list[tuple[float, WorkflowSpec]] = []
    for i in range(6):
        name = "naps_sync" if i % 2 else "naps"
        starts.append((0.0, WorkflowSpec(f"naps-{i}", name, (naps(rng.randint(30, 50)), delay()))))
    for i in range(4):
        name = "inbox_sync" if i % 2 else "inbox"
        at = 0.0 if i < 2 else later()
        starts.append((at, WorkflowSpec(f"inbox-{i}", name, (rng.randint(5, 8), delay()))))
    for i in range(5):
        name = "family_sync" if i % 2 else "family"
        args = (f"f{i}", naps(rng.randint(3, 6)), delay(), round(rng.uniform(0.2, 0.5), 3))
        starts.append((0.0 if i < 2 else later(), WorkflowSpec(f"family-{i}", name, args)))
    cancels = {}
    for i, (name, mode) in enumerate(
        [("doomed", "sleep"), ("doomed_sync", "event"), ("doomed", "child"),
         ("doomed_sync", "sleep"), ("doomed", "event"), ("doomed_sync", "child"),
         ("doomed_sync", "sleep"), ("doomed", "handle"), ("doomed_sync", "handle"),
         ("doomed", "sleep")]
    ):  # fmt: skip
        # some wait at once, others first sleep and work a little (replayed when cancelled)
        warm = naps(rng.randint(1, 3)) if i % 4 else []
        spec = WorkflowSpec(f"doomed-{i}", name, (mode, delay(), warm))
        at = 0.0 if i < 3 else later()
        starts.append((at, spec))
        cancels[spec.id] = max(at + 0.5, round(rng.uniform(*CANCEL_WINDOW), 2))

    sends: list[Send] = []
    for at, spec in starts:
        if not spec.name.startswith("inbox"):
            continue
        count = spec.args[0]
        early = rng.randint(0, 2)  # sent right after the start, before anything waits
        times = sorted(
            [at] * early + [rng.uniform(at + 0.2, SEND_WINDOW) for _ in range(count - early)]
        )
        for n, t in enumerate(times):
            payload: Any = {"from": spec.id, "n": n} if n % 2 else f"{spec.id}/{n}"
            key = f"{spec.id}-{n}" if rng.random() < 0.6 else None
            sends.append(Send(t, spec.id, payload, key))
            if key is not None and rng.random() < 0.5:  # sent again, maybe after it was consumed
                again = t + rng.choice([0.0, rng.uniform(0.0, 3.0)])
                sends.append(Send(again, spec.id, {"dup": n}, key, duplicate=True))
    sends.sort(key=lambda s: (s.at, s.duplicate))
    return Plan(sorted(starts, key=lambda x: x[0]), sends, cancels)


# -- reading the database ------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """The columns of a workflows row this test looks at."""

    id: str
    name: str
    status: str
    output: Any
    owner: str | None
    epoch: int
    wake_at: float | None
    parent_id: str | None
    parent_seq: int | None
    cancel_seq: int | str | None
    finished_at: float | None


def read_rows(db: Database) -> dict[str, Row]:
    rows = db.query(
        "SELECT id, name, status, output, owner, epoch, wake_at, parent_id, parent_seq, "
        "cancel_key, finished_at FROM workflows"
    )
    return {
        r[0]: Row(
            r[0],
            r[1],
            r[2],
            None if r[3] is None else json.loads(r[3]),
            *r[4:9],
            cancel_seq(r[9]),
            r[10],
        )
        for r in rows
    }


def cancel_seq(key: str | None) -> int | str | None:
    """The seq a cancel key names (a main-line call's key is its seq); any other key is kept
    as text, which no model's cancel seq equals."""
    return int(key) if key is not None and key.isdigit() else key


@dataclass(frozen=True)
class EventRow:
    id: int
    workflow_id: str
    name: str
    payload: Any
    dedup_key: str | None
    consumed_seq: int | None


def read_started(db: Database) -> dict[tuple[str, int], float]:
    """When each journal entry was first recorded (its ``started_at``), by (workflow, seq)."""
    rows = db.query("SELECT workflow_id, seq, started_at FROM journal")
    return {(wid, seq): started for wid, seq, started in rows}


def read_events(db: Database) -> list[EventRow]:
    rows = db.query(
        "SELECT id, workflow_id, name, payload, dedup_key, consumed_seq FROM events ORDER BY id"
    )
    return [EventRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]


# -- what a kill interrupted ---------------------------------------------------------------------


def situations(
    rows: Mapping[str, Row],
    journal: Mapping[str, list[Entry]],
    models: Mapping[str, Model],
    pid: int | None,
    at: float,
) -> set[str]:
    """What the workflows were doing at time ``at`` (a kill of worker ``pid``): each a label."""
    found = set()
    for wid, row in rows.items():
        if row.status in TERMINAL:
            continue
        held = row.owner is not None and owner_pid(row.owner) == pid
        where = "in memory" if held else "parked" if row.owner is None else "orphaned"
        entries = journal.get(wid, [])
        last = entries[-1] if entries else None
        if row.cancel_seq is not None:
            found.add("running compensation after a cancel")
        if last is not None and last.kind == "sleep" and at < last.result < at + 60:
            found.add(f"sleeping ({where})")
        if last is not None and last.kind == "event" and last.status == "waiting":
            found.add(f"waiting for an event ({where})")
        m = models.get(wid)
        if m is not None and m.after_child:
            recorded = {e.seq for e in entries}
            for child_seq, next_seq in m.after_child.items():
                kid = rows.get(m.children[child_seq].id)
                if kid is not None and kid.status == "completed" and next_seq not in recorded:
                    found.add(f"child completed, parent's next step pending ({where})")
    return found


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_long_lived_workflows_survive_repeated_kill_9(
    long_workers: Workers, long_client: durably.App
) -> None:
    workers, client = long_workers, long_client
    rng = random.Random(SEED)
    print(f"seed {SEED} (set E2E_SEED to replay another)")
    plan = make_plan(rng)
    specs = {spec.id: spec for _, spec in plan.starts}
    began = time.monotonic()

    # -- the test's own actions: starts, events, cancels, each when due --------------------------
    pending_starts = list(plan.starts)
    pending_sends = list(plan.sends)
    pending_cancels = dict(plan.cancels)
    sent: dict[str, list[Any]] = defaultdict(list)
    started_at: dict[str, float] = {}
    cancelled_at: dict[str, float] = {}
    duplicates = {"refused": 0, "after the end": 0}

    def cancellable(wid: str) -> bool:
        """Cancel once it (and its child) reached the wait that only a cancellation ends: the
        cancellation is then raised there, whatever the timing, so the journal is predictable."""
        m = model(specs[wid], {})
        waits = [(wid, m.waiting_at)]
        if m.cancel_seq in m.children:
            kid = m.children[m.cancel_seq]
            waits.append((kid.id, model(kid, {}).waiting_at))
        return all(
            workers.db.query("SELECT 1 FROM journal WHERE workflow_id = ? AND seq = ?", key)
            for key in waits
        )

    def act(force: bool = False) -> None:
        now = time.monotonic() - began
        while pending_starts and (force or pending_starts[0][0] <= now):
            _, spec = pending_starts.pop(0)
            client.start(spec.name, *spec.args, id=spec.id)
            started_at[spec.id] = time.time()
        while pending_sends and (force or pending_sends[0].at <= now):
            if pending_sends[0].workflow_id not in started_at:
                break
            s = pending_sends.pop(0)
            try:
                added = client.send_event(s.workflow_id, "item", s.payload, dedup_key=s.dedup_key)
            except durably.WorkflowStateError:
                assert s.duplicate, f"{s}: refused, the workflow is over before its last event"
                added = False
                duplicates["after the end"] += 1
            else:
                if s.duplicate:
                    duplicates["refused"] += 1
            assert added is not s.duplicate, f"{s}: send_event returned {added}"
            if added:
                sent[s.workflow_id].append(s.payload)
        for wid, at in sorted(pending_cancels.items()):
            if (force or at <= now) and wid in started_at and cancellable(wid):
                client.cancel(wid)
                cancelled_at[wid] = time.time()
                del pending_cancels[wid]

    def run_for(seconds: float, until: Callable[[], bool] | None = None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            act()
            if until is not None and until():
                return
            time.sleep(0.02)

    models: dict[str, Model] = {}

    def all_models() -> dict[str, Model]:
        """Models of the workflows started so far and of their children (events not needed)."""
        out: dict[str, Model] = {}
        todo = [specs[wid] for wid in started_at if not specs[wid].name.startswith("inbox")]
        while todo:
            spec = todo.pop()
            out[spec.id] = models.get(spec.id) or model(spec, {})
            todo.extend(out[spec.id].children.values())
        return out

    act()  # the workflows of time 0 and their first events, before any worker runs
    models.update(all_models())

    # -- kill phase --------------------------------------------------------------------------
    killed_pids: set[int] = set()
    hits: Counter[str] = Counter()
    targeted = 0
    for i in range(KILLS):
        worker = workers.spawn(f"killed-{i:02d}", worker_env(rng))
        if rng.random() < 0.12:  # sometimes while it starts up
            run_for(rng.uniform(0.0, 0.2))
        else:
            run_for(15.0, until=lambda w=worker: w.pid in registered_pids(workers.db))
            assert worker.proc.poll() is None, worker.stderr()
            life = rng.uniform(0.1, 1.1)
            # a targeted worker is killed soon after a cancellation or a child's completion is
            # seen: in the compensation, or between the child's end and the parent's next step
            aim = rng.random() < 0.5
            models.update(all_models())
            seen: set[str] = set()

            def interesting(aim: bool = aim, seen: set[str] = seen) -> bool:
                if not aim:
                    return False
                now = time.time()
                found = situations(read_rows(workers.db), read_journal(workers.db), models,
                                   None, now)  # fmt: skip
                seen.update(
                    s for s in found if s.startswith(("running compensation", "child completed"))
                )
                return bool(seen)

            run_for(life, until=interesting)
            if seen:
                targeted += 1
                run_for(rng.uniform(0.0, 0.15))
        workers.kill(worker)
        at = time.time()
        killed_pids.add(worker.pid)
        models.update(all_models())
        found = situations(read_rows(workers.db), read_journal(workers.db), models, worker.pid, at)
        hits.update(found)
        if rng.random() < 0.3:  # no worker for a while: timers come due meanwhile
            run_for(rng.uniform(0.0, 0.3))
    kill_phase = time.monotonic() - began
    unfinished = [r.id for r in read_rows(workers.db).values() if r.status not in TERMINAL]
    print(f"kill phase: {KILLS} kills in {kill_phase:.1f}s, {targeted} targeted; "
          f"{len(unfinished)} workflows unfinished")  # fmt: skip

    # -- a last worker finishes everything ---------------------------------------------------
    final = workers.spawn("final", worker_env(rng))
    run_for(15.0, until=lambda: final.pid in registered_pids(workers.db))
    act(force=True)

    deadline = time.monotonic() + 60
    while True:
        assert final.proc.poll() is None, final.stderr()
        rows = read_rows(workers.db)
        unfinished = [r for r in rows.values() if r.status not in TERMINAL]
        if not unfinished and not pending_cancels:
            break
        # fail fast, naming every workflow in trouble: one that ended in the wrong state, or
        # that sleeps for an hour after its cancellation (its compensation sleeps a moment)
        wrong = [r for r in rows.values() if r.status in TERMINAL and r.status != outcome(r)]
        stuck = [r for r in unfinished if r.cancel_seq is not None and hour_away(r)]
        late = time.monotonic() > deadline
        if wrong or stuck or late:
            journal = read_journal(workers.db)
            raise AssertionError(
                ("workflows unfinished after 60s" if late else "workflows in trouble")
                + ":\n"
                + "\n".join(describe(r, journal) for r in wrong + (unfinished if late else stuck))
            )
        act(force=True)
        time.sleep(0.05)
    assert workers.terminate(final) == 0
    total = time.monotonic() - began
    for w in workers.all:
        assert "Traceback" not in w.stderr(), f"worker {w.name} printed a traceback"

    # -- every workflow: state, result, journal, children ------------------------------------
    rows = read_rows(workers.db)
    journal = read_journal(workers.db)
    runs = executions(read_log(workers.log))
    models = {}
    for spec in specs.values():
        m = model(spec, sent)
        models[spec.id] = m
        todo = list(m.children.values())
        while todo:
            kid = todo.pop()
            models[kid.id] = model(kid, sent)
            todo.extend(models[kid.id].children.values())
    assert set(rows) == set(models), (
        f"workflows rows {sorted(set(rows) ^ set(models))} differ from the expected ones"
    )
    assert set(journal) <= set(models)
    started = read_started(workers.db)
    for wid, m in models.items():
        check_workflow(wid, m, rows, journal.get(wid, []), started)
    lost_timers = check_timers(models, journal, runs, started, killed_pids)
    check_children(models, rows, runs)
    check_events(models, journal, read_events(workers.db), sent)
    for wid, when in cancelled_at.items():
        assert rows[wid].finished_at is not None and rows[wid].finished_at >= when, wid

    # -- steps executed and recorded once, owners fenced --------------------------------------
    keys = [(e.workflow_id, e.seq) for es in journal.values() for e in es]
    assert len(keys) == len(set(keys)), "a (workflow, seq) journal entry recorded twice"
    check_fenced_owners(journal)
    for wid, entries in journal.items():
        assert max(e.epoch for e in entries) <= rows[wid].epoch, wid
    step_deps: dict[str, Expected] = {}
    for wid, entries in journal.items():
        seqs = [e.seq for e in entries if e.kind == "step"]
        step_deps[wid] = Expected(deps={s: seqs[:i][-1:] for i, s in enumerate(seqs)})
    check_executions(journal, runs, step_deps, may_have_lost=lambda x: x.pid in killed_pids)

    # -- the kills really interrupted waiting workflows ---------------------------------------
    rerun = sorted(key for key, execs in runs.items() if len(execs) > 1)
    entry_at = {(e.workflow_id, e.seq): e for es in journal.values() for e in es}
    undo_rerun = [k for k in rerun if entry_at[k].result in ("undo", "undone")]
    cut = sum(1 for execs in runs.values() for x in execs if not x.ended)
    claims = sum(rows[wid].epoch for wid in models)
    print(
        f"{len(models)} workflows, {claims} claims in all ({claims / len(models):.1f} each), "
        f"{len(rerun)} steps executed more than once, {cut} executions cut mid-step, "
        f"{len(undo_rerun)} compensation steps executed more than once, "
        f"{lost_timers} steps run after a timer whose record was lost, "
        f"{sum(len(v) for v in sent.values())} events consumed, duplicates: {duplicates}; "
        f"total {total:.1f}s"
    )
    for what, n in sorted(hits.items()):
        print(f"  {n:3d} of {KILLS} kills hit a workflow {what}")
    assert rerun, "no kill interrupted a step: the test proved nothing"
    assert claims >= 4 * len(models), "workflows were hardly parked or resumed"
    sleeping = hits["sleeping (parked)"] + hits["sleeping (in memory)"]
    assert sleeping >= KILLS // 2, f"only {sleeping} kills hit a sleeping workflow"
    assert hits["sleeping (parked)"] >= KILLS // 3
    events = hits["waiting for an event (parked)"] + hits["waiting for an event (in memory)"]
    assert events >= 3, f"only {events} kills hit a workflow waiting for an event"
    assert any(h.startswith("child completed") for h in hits), "no kill after a child's end"
    assert hits["running compensation after a cancel"] >= 2, "too few kills in compensation"


def outcome(row: Row) -> str:
    """The status a workflow of long_app must end in."""
    return "cancelled" if row.name.startswith("doomed") else "completed"


def hour_away(row: Row) -> bool:
    """Parked until a timer more than half an hour away."""
    return row.wake_at is not None and time.time() + 1800 < row.wake_at < 1e15


def describe(row: Row, journal: Mapping[str, list[Entry]]) -> str:
    entries = [(e.seq, e.kind, e.name, e.status, e.result) for e in journal.get(row.id, [])]
    return f"  {row}\n    journal {entries}"


# -- checks --------------------------------------------------------------------------------------


def check_workflow(
    wid: str,
    m: Model,
    rows: Mapping[str, Row],
    entries: list[Entry],
    started: Mapping[tuple[str, int], float],
) -> None:
    """State, result and journal of one workflow match its model."""
    row = rows[wid]
    assert row.status == m.status, f"{wid}: {row.status} (expected {m.status})"
    if m.status == "completed":
        assert row.output == m.result, f"{wid}: result {row.output!r} != {m.result!r}"
    # cancelled at the wait it was cancelled in (and raised there again on every replay)
    assert row.cancel_seq == m.cancel_seq, f"{wid}: cancelled at seq {row.cancel_seq}"
    got = [(e.seq, e.kind, e.name, e.status) for e in entries]
    want = [(seq, kind, name, status) for seq, (kind, name, status, _) in enumerate(m.rows)]
    assert got == want, f"{wid}: journal {got} != {want}"
    for e, (_, _, _, value) in zip(entries, m.rows, strict=True):
        if isinstance(value, Nap):
            wake = float(e.result)
            first = started[(wid, e.seq)]  # the clock of the first execution that reached the sleep
            assert first + value.seconds - WAKE_SLACK <= wake <= first + value.seconds + 1e-6, (
                f"{wid} seq {e.seq}: wake time {wake} for a {value.seconds}s sleep reached at "
                f"{first}"
            )
        else:
            assert e.result == value, f"{wid} seq {e.seq}: {e.result!r} != {value!r}"
    if m.status == "cancelled":
        undo = [e for e in entries if e.kind == "step" and e.result in ("undo", "undone")]
        assert [e.result for e in undo] == ["undo", "undone"], f"{wid}: compensation {undo}"


def check_timers(
    models: Mapping[str, Model],
    journal: Mapping[str, list[Entry]],
    runs: Mapping[tuple[str, int], list[Execution]],
    started: Mapping[tuple[str, int], float],
    killed: set[int],
) -> int:
    """No execution of the step after a sleep began before the sleep's recorded wake time.

    One exception, counted and returned: a killed process whose own record of the sleep was
    lost with it (it is written without waiting, durable before the step's result) may have
    run the step after its own, earlier, timer, before the timer was armed again and recorded.
    """
    checked = lost = 0
    for wid in models:
        entries = {e.seq: e for e in journal.get(wid, [])}
        for seq, e in entries.items():
            if e.kind != "sleep" or models[wid].cancel_seq == seq:
                continue
            wake = float(e.result)
            after = entries[seq + 1]
            assert after.kind == "step", f"{wid}: seq {seq + 1} after a sleep is {after}"
            assert started[(wid, seq + 1)] >= wake, f"{wid}: step {after} began before {wake}"
            execs = runs.get((wid, seq + 1), [])
            assert execs, f"{wid} seq {seq + 1}: recorded, never executed"
            early = [x for x in execs if x.start_time < wake]
            for x in early:
                own_timer = (
                    x.pid in killed and x.pid != e.pid and x.start_time < started[(wid, seq)]
                )
                assert own_timer, f"{wid}: timer at seq {seq} (wake {wake}) skipped: {x}"
                lost += 1
            checked += 1
    naps = sum(isinstance(r[3], Nap) for m in models.values() for r in m.rows)
    long_naps = sum(m.rows[m.cancel_seq][0] == "sleep" for m in models.values() if m.cancel_seq)
    assert checked == naps - long_naps > 100, (checked, naps, long_naps)
    return lost


def check_children(
    models: Mapping[str, Model],
    rows: Mapping[str, Row],
    runs: Mapping[tuple[str, int], list[Execution]],
) -> None:
    """One row per expected child, under its parent and seq; the parent's step after a child's
    result began only after the child had finished."""
    by_parent: dict[str, dict[str, tuple[str, int | None]]] = defaultdict(dict)
    for r in rows.values():
        if r.parent_id is not None:
            by_parent[r.parent_id][r.id] = (r.name, r.parent_seq)
    for wid, m in models.items():
        want = {c.id: (c.name, seq) for seq, c in m.children.items()}
        assert by_parent.get(wid, {}) == want, f"{wid}: children {by_parent.get(wid)} != {want}"
        for child_seq, next_seq in m.after_child.items():
            kid = rows[m.children[child_seq].id]
            assert kid.finished_at is not None
            execs = runs[(wid, next_seq)]
            early = [x for x in execs if x.start_time < kid.finished_at]
            assert not early, f"{wid}: went past child {kid.id} before it finished: {early}"


def check_events(
    models: Mapping[str, Model],
    journal: Mapping[str, list[Entry]],
    events: list[EventRow],
    sent: Mapping[str, list[Any]],
) -> None:
    """One row per event sent (duplicates dropped), each consumed once, in the order sent, by
    the wait whose journal entry holds its payload."""
    by_workflow: dict[str, list[EventRow]] = defaultdict(list)
    for ev in events:
        by_workflow[ev.workflow_id].append(ev)
    assert set(by_workflow) == set(sent), (sorted(by_workflow), sorted(sent))
    for wid, evs in by_workflow.items():
        assert [ev.payload for ev in evs] == sent[wid], f"{wid}: events {evs} != {sent[wid]}"
        assert all(ev.name == "item" for ev in evs), evs
        keys = [ev.dedup_key for ev in evs if ev.dedup_key is not None]
        assert len(keys) == len(set(keys)), f"{wid}: a dedup key twice: {evs}"
        consumed = [ev.consumed_seq for ev in evs]
        waits = [e for e in journal[wid] if e.kind == "event" and e.name == "item"]
        assert consumed == [e.seq for e in waits], (
            f"{wid}: events consumed at seqs {consumed}, its waits are {[e.seq for e in waits]}"
        )
        for ev, e in zip(evs, waits, strict=True):
            assert e.status == "completed" and e.result == ev.payload, (wid, ev, e)
