"""Two worker processes on one database (a SQLite file or a PostgreSQL schema): a paused
worker's lease is taken over and its late writes are fenced out; two live workers never both
advance one workflow; and both survive random pauses and kills."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict

import pytest

import durably

from .support import (
    Execution,
    Worker,
    Workers,
    WorkflowSpec,
    assert_no_traceback,
    check_executions,
    check_fenced_owners,
    check_journals,
    executions,
    mixed_specs,
    outside_transaction,
    owner_pid,
    process_state,
    read_journal,
    read_log,
    read_workflows,
    wait_until,
)

SHORT_LEASE = {"E2E_LEASE_SECONDS": "1.0", "E2E_POLL_INTERVAL": "0.05"}


def pause(workers: Workers, worker: Worker, attempts: int = 50) -> None:
    """SIGSTOP ``worker`` at a moment it is outside any write transaction.

    On SQLite a process paused inside a write transaction blocks every writer of the file (a
    limit of SQLite's file locking, not of fencing); on PostgreSQL one paused inside a
    transaction holds row locks another worker's claim skips. So pause it again until it holds
    nothing.
    """
    pid = worker.pid
    for _ in range(attempts):
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: process_state(pid) == "T", 5.0, f"pid {pid} is stopped")
        if outside_transaction(workers.db, worker):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} was inside a transaction at every one of {attempts} tries")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("resume", ["after_b_advanced", "at_takeover"])
def test_paused_worker_is_fenced_out(workers: Workers, client: durably.App, resume: str) -> None:
    """A runs slow chains and is paused (SIGSTOP); B takes them over once A's lease expires;
    A resumes (SIGCONT) either once B has recorded steps past A's last ones, or as soon as B has
    claimed them, so that A's late writes aim at seqs B has not written yet and only the
    (owner, epoch) fence, not the journal's primary key, can reject them."""
    slow = {**SHORT_LEASE, "E2E_STEP_DELAY": "0.3,0.3"}
    specs = [
        WorkflowSpec("slow-0", "async_chain", (8,)),
        WorkflowSpec("slow-1", "sync_chain", (8, "one")),
        WorkflowSpec("slow-2", "async_chain", (9,)),
        WorkflowSpec("slow-3", "sync_chain", (9, "three")),
    ]
    handles = {s.id: client.start(s.name, *s.args, id=s.id) for s in specs}
    ids = [s.id for s in specs]

    a = workers.spawn("A", slow)

    def steps_recorded(wid: str) -> int:
        return sum(1 for e in client.store.get_journal(wid) if e.kind == "step")

    wait_until(lambda: all(steps_recorded(w) >= 2 for w in ids), 30, "A records 2 steps each")
    pause(workers, a)
    journal = read_journal(workers.db)
    a_owner = journal[ids[0]][0].owner
    assert owner_pid(a_owner) == a.pid
    assert all(e.owner == a_owner for es in journal.values() for e in es)
    a_epoch = {w: read_workflows(workers.db)[w].epoch for w in ids}
    a_last = {w: max(e.seq for e in journal[w]) for w in ids}

    b = workers.spawn("B", slow)
    if resume == "after_b_advanced":

        def b_advanced(wid: str) -> bool:
            entries = client.store.get_journal(wid)
            return any(e.owner != a_owner and e.seq >= a_last[wid] + 2 for e in entries)

        wait_until(lambda: all(b_advanced(w) for w in ids), 30, "B advances past A's entries")
    else:

        def b_claimed(wid: str) -> bool:
            rec = client.store.get_workflow(wid)
            return rec is not None and rec.owner not in (None, a_owner)

        wait_until(lambda: all(b_claimed(w) for w in ids), 30, "B claims every workflow")
        journal = read_journal(workers.db)
        open_seqs = [w for w in ids if len(journal[w]) == a_last[w] + 1]
        assert open_seqs, "B recorded steps before A resumed: the fence was not tested"
    assert process_state(a.pid) == "T", "A must still be paused"
    resumed_at = len(read_log(workers.log))
    os.kill(a.pid, signal.SIGCONT)

    # A resumes: its writes are rejected and it halts every workflow it had (one "execution
    # stopped" line per workflow), without crashing.
    wait_until(
        lambda: a.stderr().count("execution stopped") >= len(ids), 15, "A halts its workflows"
    )
    late_writes = [
        e for es in read_journal(workers.db).values() for e in es
        if e.owner == a_owner and e.seq > a_last[e.workflow_id]
    ]  # fmt: skip
    assert not late_writes, f"A's writes were accepted after B took over: {late_writes}"
    results = {wid: h.result(timeout=30) for wid, h in handles.items()}
    assert workers.terminate(a) == 0, "A must exit cleanly on SIGTERM"
    assert workers.terminate(b) == 0, "B must exit cleanly on SIGTERM"
    for w in (a, b):
        assert_no_traceback(w)
    stopped = [line for line in a.stderr().splitlines() if "execution stopped" in line]
    for wid in ids:  # A noticed, for each workflow, that it lost it
        assert any(f"workflow {wid}:" in s and "lease lost" in s for s in stopped), stopped

    journal = read_journal(workers.db)
    expected = check_journals(specs, journal)
    assert results == {s.id: expected[s.id].result for s in specs}
    check_fenced_owners(journal)
    b_owner = next(e.owner for e in journal[ids[0]] if e.owner != a_owner)
    assert owner_pid(b_owner) == b.pid
    for wid in ids:
        entries = journal[wid]
        b_first = min(e.seq for e in entries if e.owner == b_owner)
        assert b_first == a_last[wid] + 1, (wid, a_last[wid], entries)
        for e in entries:
            if e.seq < b_first:  # what A recorded before it was paused, and nothing else
                assert (e.owner, e.epoch) == (a_owner, a_epoch[wid]), (wid, e)
            else:  # B's claim fenced A out: nothing of A's after B took over
                assert e.owner == b_owner and e.epoch > a_epoch[wid], (wid, e)

    records = read_log(workers.log)
    runs = executions(records)

    def fenced_out(x: Execution) -> bool:
        return x.pid == a.pid

    check_executions(journal, runs, expected, may_have_lost=fenced_out, may_run_late=fenced_out)
    # After SIGCONT, A began at most one step per workflow (if it was paused between two
    # steps) before it noticed it had lost the workflow; none of them was recorded.
    late_starts = [r for r in records[resumed_at:] if r["pid"] == a.pid and r["event"] == "start"]
    assert len({r["workflow_id"] for r in late_starts}) == len(late_starts), late_starts
    lost = [(wid, seq) for (wid, seq), es in runs.items() for x in es
            if x.pid == a.pid and journal[wid][seq].owner != a_owner]  # fmt: skip
    print(f"A began {len(late_starts)} steps after SIGCONT; B re-ran and recorded {lost}")


@pytest.mark.timeout(90)
def test_two_live_workers_share_without_overlap(workers: Workers, client: durably.App) -> None:
    env = {
        **SHORT_LEASE,
        "E2E_STEP_DELAY": "0.002,0.02",
        "E2E_MAX_CONCURRENT": "6",
        "E2E_CLAIM_BATCH": "2",
    }
    pair = [workers.spawn("A", env), workers.spawn("B", env)]
    for w in pair:
        workers.wait_registered(w)
    specs = mixed_specs(40, "pair", size=4)
    handles = {s.id: client.start(s.name, *s.args, id=s.id) for s in specs}
    results = {wid: h.result(timeout=60) for wid, h in handles.items()}
    for w in pair:
        assert workers.terminate(w) == 0
        assert_no_traceback(w)

    journal = read_journal(workers.db)
    expected = check_journals(specs, journal)
    assert results == {s.id: expected[s.id].result for s in specs}
    assert sum(len(es) for es in journal.values()) == sum(len(m.shape) for m in expected.values())
    rows = read_workflows(workers.db)
    assert all(r.status == "completed" and r.owner is None for r in rows.values())
    check_fenced_owners(journal)

    runs = executions(read_log(workers.log))
    moved = {wid for wid, r in rows.items() if r.epoch > 1}
    # A workflow claimed once (epoch 1) was run by one worker: one (owner, epoch) for all its
    # entries, and each of its steps executed exactly once, by that worker.
    for wid, entries in journal.items():
        if wid in moved:
            continue
        assert len({(e.owner, e.epoch) for e in entries}) == 1, entries
        for e in entries:
            if e.kind == "step":
                assert [x.pid for x in runs[(wid, e.seq)]] == [e.pid], (e, runs[(wid, e.seq)])

    # A workflow that moved (a lease expired under load) may have been executed by both, but
    # each step is still recorded once, by the worker whose execution comes last.
    def in_moved(x: Execution) -> bool:
        return x.workflow_id in moved

    check_executions(
        journal, runs, expected, may_have_lost=in_moved, may_run_late=in_moved, may_repeat=in_moved
    )
    per_worker: dict[int, int] = defaultdict(int)
    for es in journal.values():
        for e in es:
            per_worker[e.pid] += 1
    print(f"entries per worker pid: {dict(per_worker)}; moved workflows: {sorted(moved)}")
    assert set(per_worker) == {w.pid for w in pair}, "both workers must have done work"
    assert len(moved) <= len(specs) // 4, f"too many workflows changed hands: {sorted(moved)}"


@pytest.mark.timeout(120)
def test_pauses_and_kills_of_two_workers(workers: Workers, client: durably.App) -> None:
    """Chaos: two workers, each at random paused past its lease (SIGSTOP, then SIGCONT) or
    killed and replaced, while 30 workflows run. Every workflow still completes correctly, each
    step is recorded once under one (owner, epoch) per claim, and the recorded executions agree
    with the side-effect log."""
    seed = int(os.environ.get("E2E_SEED", "16"))
    rng = random.Random(seed)
    print(f"seed {seed} (set E2E_SEED to replay another)")
    env = {
        **SHORT_LEASE,
        "E2E_MAX_CONCURRENT": "4",
        "E2E_CLAIM_BATCH": "2",
        "E2E_STEP_DELAY": "0.0,0.06",
    }
    specs = mixed_specs(30, "chaos", size=26)
    handles = {s.id: client.start(s.name, *s.args, id=s.id) for s in specs}
    live = [workers.spawn("A-0", env), workers.spawn("B-0", env)]
    for w in live:
        workers.wait_registered(w)
    paused: set[int] = set()
    killed: set[int] = set()
    for i in range(1, 15):
        k = rng.randrange(2)
        w = live[k]
        if rng.random() < 0.5:  # pause past the lease (possibly inside a write transaction)
            os.kill(w.pid, signal.SIGSTOP)
            paused.add(w.pid)
            time.sleep(rng.uniform(0.8, 1.8))
            os.kill(w.pid, signal.SIGCONT)
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            time.sleep(rng.uniform(0.05, 0.4))
            workers.kill(w)
            killed.add(w.pid)
            live[k] = workers.spawn(f"{'AB'[k]}-{i}", env)
            workers.wait_registered(live[k])
    results = {wid: h.result(timeout=60) for wid, h in handles.items()}
    for w in live:
        assert workers.terminate(w) == 0, f"worker {w.name} must exit cleanly on SIGTERM"
        assert_no_traceback(w)

    journal = read_journal(workers.db)
    expected = check_journals(specs, journal)
    assert results == {s.id: expected[s.id].result for s in specs}
    check_fenced_owners(journal)
    runs = executions(read_log(workers.log))

    # A worker paused inside a write transaction stalls the other one past its lease as well,
    # so either may lose workflows to the other and later take them back (a new epoch), running
    # a step it had begun again. (A worker never re-claims its own workflows at a new epoch: see
    # test_stalled_lone_worker_keeps_its_workflows.) So here any worker may lose work and run a
    # step late or twice; what must still hold is
    # the rest of check_executions: each step is recorded from an execution that ended, by the
    # process that ran it, and no step began before the recorded runs of the steps it waits for.
    def anyone(x: Execution) -> bool:
        return True

    check_executions(
        journal, runs, expected, may_have_lost=anyone, may_run_late=anyone, may_repeat=anyone
    )
    repeats = [
        key for key, es in runs.items() if len({x.token for x in es}) < len(es)
    ]  # fmt: skip
    moved = [wid for wid, es in journal.items() if len({e.owner for e in es}) > 1]
    print(
        f"{len(paused)} paused and {len(killed)} killed workers; {len(moved)} workflows changed "
        f"hands; {len(repeats)} steps run twice by one process: {repeats}"
    )
    assert moved, "no workflow changed hands: the test proved nothing"


@pytest.mark.timeout(60)
def test_stalled_lone_worker_keeps_its_workflows(workers: Workers, client: durably.App) -> None:
    """A worker paused past its lease, with no other worker to take over, keeps its workflows
    when it resumes: it renews its leases instead of re-claiming them at a new epoch, so no step
    it was running runs a second time (a sync step's thread cannot be cancelled)."""
    env = {**SHORT_LEASE, "E2E_STEP_DELAY": "0.5,0.5"}
    specs = [WorkflowSpec("lone-0", "sync_chain", (3, "x"))]
    handle = client.start(specs[0].name, *specs[0].args, id=specs[0].id)
    a = workers.spawn("A", env)
    wait_until(lambda: read_log(workers.log), 15, "A begins a step")
    pause(workers, a)
    time.sleep(2.0)  # twice the lease
    os.kill(a.pid, signal.SIGCONT)
    result = handle.result(timeout=30)
    assert workers.terminate(a) == 0
    assert_no_traceback(a)
    assert "reclaimed" not in a.stderr() and "execution stopped" not in a.stderr()
    journal = read_journal(workers.db)
    expected = check_journals(specs, journal)
    assert result == expected[specs[0].id].result
    assert {(e.owner, e.epoch) for e in journal[specs[0].id]} == {(journal["lone-0"][0].owner, 1)}
    runs = executions(read_log(workers.log))
    check_executions(journal, runs, expected, may_have_lost=lambda x: False)
