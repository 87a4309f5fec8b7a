"""Scale-out chaos: four worker processes serve 1,000 workflows of mixed steps, durable sleeps
and event waits, while one worker after another is killed with SIGKILL and replaced at random.

Real worker processes (``scale_app.py``) share one database with a short lease and a fast poll.
Four are alive at all times: every 0.3-1.5 s (a seeded random schedule) one of them, chosen at
random, is SIGKILLed and a new one is spawned in its place; meanwhile the test process starts
the later workflows and sends the events they wait for (some twice under one dedup key). After
the chaos phase the last four workers finish the work and are stopped with SIGTERM. Then:

* every workflow completed with exactly the result an independent model predicts, and its
  journal is exactly the model's: dense seqs, each step recorded once with its value, each sleep
  with a wake time of its first clock plus the duration, each event wait with its payload;
* each event is stored once (duplicates refused) and consumed once, by the wait that recorded it;
* within a workflow, each epoch was written by one owner;
* the side-effect log agrees: a step's recorded result comes from an execution that ran to its
  end in the recording process, and every other execution of it was in a process later killed;
  no step began before the steps it builds on had been recorded;
* no worker printed a traceback, and the survivors exited 0 on SIGTERM.

Set ``E2E_SEED`` to replay another random schedule (it is printed).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

import durably

from . import scale_app
from .support import (
    MODULUS,
    Database,
    Entry,
    Expected,
    Worker,
    Workers,
    WorkflowSpec,
    check_executions,
    check_fenced_owners,
    executions,
    read_journal,
    read_log,
    read_workflows,
)

SEED = int(os.environ.get("E2E_SEED", "20261121"))
WORKFLOWS = 1_000
PROCESSES = 4
CHAOS_SECONDS = 24.0
"""How long workers are killed and replaced."""
KILL_EVERY = (0.3, 1.5)
START_WINDOW = 10.0
"""The workflows not started up front are started within this many seconds."""
UP_FRONT = 500
SEND_WINDOW = 20.0
"""Events are sent within this many seconds of the start (within the chaos phase)."""
DRAIN_TIMEOUT = 40.0
WAKE_SLACK = 0.25
"""How much earlier than "first clock + duration" a recorded wake time may be."""
SLEEP = object()
"""A sleep entry's value in the model: checked against the entry's own clock."""
BAD = ("failed", "cancelled", "terminated", "needs_attention")


def worker_env(rng: random.Random) -> dict[str, str]:
    return {
        "E2E_LEASE_SECONDS": "2.0",
        "E2E_POLL_INTERVAL": "0.05",
        "E2E_EVICTION_THRESHOLD": str(rng.choice([0.0, 0.2, 0.5, 5.0])),
        "E2E_STEP_DELAY": "0.0,0.02",
    }


@pytest.fixture
def scale_client(scale_workers: Workers) -> Iterator[durably.App]:
    """A client App on the workers' database: starts workflows, sends events; runs no worker."""
    app = scale_app.make_app(scale_workers.db.url, str(scale_workers.log))
    app.store.migrate()
    try:
        yield app
    finally:
        app.close()


# -- the plan: workflows, when they start, the events they are sent -------------------------------


@dataclass
class Send:
    at: float
    workflow_id: str
    name: str
    payload: dict[str, Any]
    duplicate: bool = False

    @property
    def dedup_key(self) -> str:
        return f"{self.workflow_id}/{self.name}"


@dataclass
class Plan:
    starts: list[tuple[float, WorkflowSpec]]
    sends: list[Send]


def make_plan(rng: random.Random) -> Plan:
    starts: list[tuple[float, WorkflowSpec]] = []
    sends: list[Send] = []
    for i in range(WORKFLOWS):
        wid = f"scale-{i:04d}"
        ops: list[list[Any]] = [
            [rng.choice(["add", "mul", "pair"]), rng.randint(2, 999)]
            for _ in range(rng.randint(2, 6))
        ]
        ops += [
            ["sleep", round(rng.uniform(0.05, 1.5), 3)] for _ in range(rng.choice([0, 1, 1, 2]))
        ]
        names = [f"e{j}" for j in range(rng.choice([0, 0, 1, 1, 2]))]
        ops += [["event", name] for name in names]
        rng.shuffle(ops)
        name = "plan_sync" if i % 2 else "plan"
        at = 0.0 if i < UP_FRONT else round(rng.uniform(0.0, START_WINDOW), 3)
        starts.append((at, WorkflowSpec(wid, name, (rng.randint(1, 10_000), ops))))
        for ev in names:
            when = round(rng.uniform(at, SEND_WINDOW), 3)
            sends.append(Send(when, wid, ev, {"v": rng.randint(1, 10**6), "to": f"{wid}/{ev}"}))
            if rng.random() < 0.2:  # sent again: refused, maybe after the workflow ended
                again = round(when + rng.uniform(0.0, 3.0), 3)
                sends.append(Send(again, wid, ev, {"v": -1, "dup": True}, duplicate=True))
    starts.sort(key=lambda s: s[0])
    sends.sort(key=lambda s: (s.at, s.duplicate))
    return Plan(starts, sends)


# -- the model: what an uninterrupted run records and returns ------------------------------------


@dataclass
class Model:
    """Journal rows (kind, name, value) by seq, the result, and each step's dependencies."""

    rows: list[tuple[str, str, Any]] = field(default_factory=list)
    deps: dict[int, list[int]] = field(default_factory=dict)
    result: Any = None


def model(spec: WorkflowSpec, payloads: Mapping[tuple[str, str], dict[str, Any]]) -> Model:
    """Model of scale_app's workflows, written independently of their code. ``payloads``: the
    payload sent (first, not the refused duplicate) for each (workflow id, event name)."""
    m = Model()
    base, ops = spec.args
    acc, events = base, []
    barrier: list[int] = []

    def step(name: str, value: int, after: list[int]) -> int:
        seq = len(m.rows)
        m.deps[seq] = list(after)
        m.rows.append(("step", name, value))
        return seq

    for op, arg in ops:
        if op == "add":
            acc += arg
            barrier = [step("add", acc, barrier)]
        elif op == "mul":
            acc = acc * arg % MODULUS
            barrier = [step("mul", acc, barrier)]
        elif op == "pair":
            first, second = acc + arg, arg * arg
            barrier = [step("add", first, barrier), step("square", second, barrier)]
            acc = (first + second) % MODULUS
        elif op == "sleep":
            m.rows.append(("sleep", "sleep", SLEEP))
        else:
            payload = payloads[(spec.id, arg)]
            m.rows.append(("event", arg, payload))
            events.append(payload)
            acc = (acc + payload["v"]) % MODULUS
    m.result = {"acc": acc, "events": events}
    return m


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_scale_out_chaos(scale_workers: Workers, scale_client: durably.App) -> None:
    workers, client, db = scale_workers, scale_client, scale_workers.db
    print(f"seed {SEED} (set E2E_SEED to replay it), backend {db.backend}")
    rng = random.Random(SEED)
    plan = make_plan(rng)
    specs = {spec.id: spec for _, spec in plan.starts}
    pending_starts, pending_sends = list(plan.starts), list(plan.sends)
    started: set[str] = set()
    payloads: dict[tuple[str, str], dict[str, Any]] = {}
    refused: Counter[str] = Counter()
    t0 = began = time.monotonic()

    def act(force: bool = False, until: float = float("inf")) -> None:
        """Start the workflows and send the events that are due (stop at monotonic ``until``:
        the next kill comes first)."""
        now = time.monotonic() - began
        while pending_starts and (force or pending_starts[0][0] <= now):
            if time.monotonic() >= until:
                return
            _, spec = pending_starts.pop(0)
            client.start(spec.name, *spec.args, id=spec.id)
            started.add(spec.id)
        while pending_sends and (force or pending_sends[0].at <= now):
            if time.monotonic() >= until:
                return
            s = pending_sends[0]
            if s.workflow_id not in started:
                break
            pending_sends.pop(0)
            try:
                added = client.send_event(s.workflow_id, s.name, s.payload, dedup_key=s.dedup_key)
            except durably.WorkflowStateError:
                assert s.duplicate, f"{s}: refused, its workflow is over before its event"
                refused["after the end"] += 1
                continue
            assert added is not s.duplicate, f"{s}: send_event returned {added}"
            if added:
                payloads[(s.workflow_id, s.name)] = s.payload
            else:
                refused["duplicate"] += 1

    def statuses() -> Counter[str]:
        return Counter(dict(db.query("SELECT status, count(*) FROM workflows GROUP BY status")))

    act()  # the first half of the workflows, before any worker runs
    began = time.monotonic()  # the schedule counts from here

    # -- chaos: four workers alive, one killed and replaced every 0.3-1.5 s -----------------
    spawned = 0

    def spawn() -> Worker:
        nonlocal spawned
        spawned += 1
        return workers.spawn(f"w{spawned:03d}", worker_env(rng))

    alive = [spawn() for _ in range(PROCESSES)]
    killed: list[Worker] = []
    next_kill = time.monotonic() + rng.uniform(*KILL_EVERY)
    while time.monotonic() - began < CHAOS_SECONDS:
        act(until=next_kill)
        if time.monotonic() >= next_kill:
            victim = alive.pop(rng.randrange(len(alive)))
            crashed = victim.proc.poll()
            assert crashed is None, f"{victim.name} exited {crashed}:\n{victim.stderr()}"
            workers.kill(victim)
            killed.append(victim)
            alive.append(spawn())
            next_kill = time.monotonic() + rng.uniform(*KILL_EVERY)
        time.sleep(0.01)
    counts = statuses()
    print(
        f"chaos: {len(killed)} kills in {time.monotonic() - began:.1f}s; "
        f"workflows by status {dict(counts)}"
    )

    # -- the last four finish the work -------------------------------------------------------
    act(force=True)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        for w in alive:
            assert w.proc.poll() is None, f"{w.name} exited {w.proc.returncode}:\n{w.stderr()}"
        counts = statuses()
        bad = {s: n for s, n in counts.items() if s in BAD}
        assert not bad, f"workflows ended badly: {bad}: {describe_bad(db)}"
        if counts["completed"] == WORKFLOWS:
            break
        assert time.monotonic() < deadline, (
            f"unfinished after {DRAIN_TIMEOUT}s of drain: {dict(counts)}:\n"
            + describe_unfinished(db, workers)
        )
        time.sleep(0.05)
    total = time.monotonic() - t0
    for w in alive:
        # a replacement may still be starting (SIGTERM before its handlers would kill it)
        workers.wait_registered(w)
        assert workers.terminate(w) == 0, f"{w.name}:\n{w.stderr()}"
    for w in workers.all:
        assert "Traceback" not in w.stderr(), f"worker {w.name} printed a traceback:\n{w.stderr()}"

    # -- every workflow: result and journal match the model ----------------------------------
    rows = read_workflows(db)
    journal = read_journal(db)
    assert set(rows) == set(specs), sorted(set(rows) ^ set(specs))
    assert set(journal) <= set(specs)
    first_clock = {
        (wid, seq): t
        for wid, seq, t in db.query("SELECT workflow_id, seq, started_at FROM journal")
    }
    models: dict[str, Model] = {}
    for wid, spec in specs.items():
        m = models[wid] = model(spec, payloads)
        row = rows[wid]
        assert row.status == "completed", row
        assert row.output == m.result, f"{wid}: result {row.output!r} != {m.result!r}"
        check_journal(spec, m, journal.get(wid, []), first_clock)

    keys = [(e.workflow_id, e.seq) for es in journal.values() for e in es]
    assert len(keys) == len(set(keys)), "a (workflow, seq) journal entry recorded twice"
    check_events(db, journal, payloads)
    check_fenced_owners(journal)
    for wid, entries in journal.items():
        assert max(e.epoch for e in entries) <= rows[wid].epoch, wid

    # -- the side-effect log: only killed processes lost executions ------------------------
    killed_pids = {w.pid for w in killed}
    runs = executions(read_log(workers.log))
    deps = {wid: Expected(deps=m.deps) for wid, m in models.items()}
    check_executions(journal, runs, deps, may_have_lost=lambda x: x.pid in killed_pids)

    # -- the chaos really interrupted work -------------------------------------------------
    rerun = [key for key, execs in runs.items() if len(execs) > 1]
    cut = sum(1 for execs in runs.values() for x in execs if not x.ended)
    moved = [wid for wid, es in journal.items() if len({e.owner for e in es}) > 1]
    busy_killed = {x.pid for execs in runs.values() for x in execs} & killed_pids
    claims = sum(r.epoch for r in rows.values())
    steps = sum(1 for es in journal.values() for e in es if e.kind == "step")
    print(
        f"{WORKFLOWS} workflows, {len(keys)} journal entries ({steps} steps), "
        f"{len(payloads)} events consumed, duplicates refused {dict(refused)}; "
        f"{len(killed)} kills, {len(busy_killed)} killed workers had run steps; "
        f"{claims} claims, {len(moved)} workflows written by several owners, "
        f"{len(rerun)} steps executed more than once, {cut} executions cut mid-step; "
        f"total {total:.1f}s"
    )
    assert len(killed) >= CHAOS_SECONDS / KILL_EVERY[1]
    assert len(busy_killed) >= len(killed) // 3, "too few killed workers had work to lose"
    assert len(moved) >= 50, "too few workflows changed hands"
    assert rerun and cut, "no kill interrupted a step: the test proved nothing"


# -- checks --------------------------------------------------------------------------------------


def check_journal(
    spec: WorkflowSpec,
    m: Model,
    entries: list[Entry],
    first_clock: Mapping[tuple[str, int], float],
) -> None:
    """Dense seqs, each entry completed with the model's kind, name and value."""
    got = [(e.seq, e.kind, e.name, e.status) for e in entries]
    want = [(seq, kind, name, "completed") for seq, (kind, name, _) in enumerate(m.rows)]
    assert got == want, f"{spec.id} ({spec.name}{spec.args}): journal {got} != {want}"
    durations = iter(arg for op, arg in spec.args[1] if op == "sleep")
    for e, (_, _, value) in zip(entries, m.rows, strict=True):
        if value is SLEEP:
            nap, wake = next(durations), float(e.result)
            first = first_clock[(spec.id, e.seq)]
            assert first + nap - WAKE_SLACK <= wake <= first + nap + 1e-6, (
                f"{spec.id} seq {e.seq}: wake time {wake} for a {nap}s sleep reached at {first}"
            )
        else:
            assert e.result == value, f"{spec.id} seq {e.seq}: {e.result!r} != {value!r}"


def check_events(
    db: Database,
    journal: Mapping[str, list[Entry]],
    payloads: Mapping[tuple[str, str], dict[str, Any]],
) -> None:
    """One row per event sent (duplicates refused), each consumed once, by its wait."""
    rows = db.query(
        "SELECT workflow_id, name, payload, dedup_key, consumed_seq FROM events ORDER BY id"
    )
    stored: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for wid, name, payload, key, consumed in rows:
        stored[(wid, name)].append((json.loads(payload), key, consumed))
    assert set(stored) == set(payloads), sorted(set(stored) ^ set(payloads))
    for (wid, name), evs in stored.items():
        assert len(evs) == 1, f"{wid}: event {name} stored {len(evs)} times: {evs}"
        ((payload, key, consumed),) = evs
        assert payload == payloads[(wid, name)] and key == f"{wid}/{name}", (wid, name, evs)
        waits = [e for e in journal[wid] if e.kind == "event" and e.name == name]
        assert [e.seq for e in waits] == [consumed], f"{wid}: {name} consumed at {consumed}"


def describe_bad(db: Database) -> str:
    rows = [r for r in read_workflows(db).values() if r.status in BAD]
    journal = read_journal(db)
    return "\n".join(f"  {r}\n    {journal.get(r.id, [])}" for r in rows[:10])


def describe_unfinished(db: Database, workers: Workers) -> str:
    """The unfinished workflows (ten at most): row, journal, events, and what the workers
    logged about them."""
    ids = [r[0] for r in db.query("SELECT id FROM workflows WHERE status <> 'completed'")][:10]
    journal = read_journal(db)
    parts = []
    for wid in ids:
        (row,) = db.query(
            "SELECT status, owner, epoch, wake_at, lease_expires_at, cancel_requested, updated_at "
            "FROM workflows WHERE id = ?",
            (wid,),
        )
        events = db.query(
            "SELECT id, name, consumed_seq, created_at FROM events WHERE workflow_id = ?", (wid,)
        )
        entries = [
            (e.seq, e.kind, e.name, e.status, e.owner, e.epoch) for e in journal.get(wid, [])
        ]
        logged = [
            f"      {w.name}: {line}"
            for w in workers.all
            for line in w.stderr().splitlines()
            if f"{wid}:" in line or f"{wid} " in line or f"{wid}'" in line
        ]
        parts.append(
            f"  {wid}: (status, owner, epoch, wake_at, lease_expires_at, cancel_requested, "
            f"updated_at) = {row} at {time.time()}\n    journal {entries}\n    events {events}\n"
            + "\n".join(logged)
        )
    return "\n".join(parts)
