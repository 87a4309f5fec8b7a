"""kill -9 a worker at random points, again and again: every workflow still completes with the
result of an uninterrupted run, every step is recorded once, and only killed processes ever
executed a step whose result was not the one recorded."""

from __future__ import annotations

import os
import random
import time

import pytest

import durably

from .support import (
    Workers,
    assert_no_traceback,
    check_executions,
    check_fenced_owners,
    check_journals,
    executions,
    mixed_specs,
    read_journal,
    read_log,
    read_workflows,
)

WORKFLOWS = 30
KILLS = 26
SEED = int(os.environ.get("E2E_SEED", "20240611"))

# Few workflows at a time, so that the work outlasts many short-lived workers.
WORKER_ENV = {
    "E2E_MAX_CONCURRENT": "3",
    "E2E_CLAIM_BATCH": "3",
    "E2E_POLL_INTERVAL": "0.05",
    "E2E_STEP_DELAY": os.environ.get("E2E_STEP_DELAY", "0.0,0.06"),
}


@pytest.mark.timeout(150)
def test_workflows_survive_repeated_kill_9(workers: Workers, client: durably.App) -> None:
    rng = random.Random(SEED)
    print(f"seed {SEED} (set E2E_SEED to replay another)")
    specs = mixed_specs(WORKFLOWS, "crash", size=26)
    handles = {s.id: client.start(s.name, *s.args, id=s.id) for s in specs}

    killed_pids: set[int] = set()
    for i in range(KILLS):
        worker = workers.spawn(f"killed-{i:02d}", WORKER_ENV)
        if rng.random() < 0.15:  # sometimes while it starts up
            time.sleep(rng.uniform(0.0, 0.15))
        else:
            workers.wait_registered(worker)
            time.sleep(rng.uniform(0.05, 0.4))
        workers.kill(worker)
        killed_pids.add(worker.pid)

    unfinished = [w for w in read_workflows(workers.db).values() if w.status != "completed"]
    print(f"{len(unfinished)} of {WORKFLOWS} workflows unfinished after {KILLS} kills")

    final = workers.spawn("final", WORKER_ENV)
    workers.wait_registered(final)  # its SIGTERM handler is installed by then
    results = {spec.id: handles[spec.id].result(timeout=60) for spec in specs}
    assert workers.terminate(final) == 0
    assert_no_traceback(final)

    journal = read_journal(workers.db)
    expected = check_journals(specs, journal)
    for spec in specs:
        assert results[spec.id] == expected[spec.id].result, spec
    rows = read_workflows(workers.db)
    assert {w.status for w in rows.values()} == {"completed"}
    check_fenced_owners(journal)
    for spec in specs:
        epochs = [e.epoch for e in journal[spec.id]]
        assert max(epochs) <= rows[spec.id].epoch, spec
        if spec.name.endswith("_chain"):  # one step at a time: a later step, a later claim
            assert epochs == sorted(epochs), (spec, epochs)

    runs = executions(read_log(workers.log))
    check_executions(journal, runs, expected, may_have_lost=lambda x: x.pid in killed_pids)

    # The test proves something only if kills really interrupted workflows.
    rerun = sorted(key for key, execs in runs.items() if len(execs) > 1)
    cut = sum(1 for execs in runs.values() for x in execs if not x.ended)
    uncommitted = sum(1 for execs in runs.values() for x in execs[:-1] if x.ended)
    moved = sorted(wid for wid, es in journal.items() if len({e.epoch for e in es}) > 1)
    busy_killed = {x.pid for execs in runs.values() for x in execs} & killed_pids
    print(
        f"{len(rerun)} steps executed more than once, {cut} executions cut mid-step, "
        f"{uncommitted} killed after the step's end but before its commit, "
        f"{len(moved)} workflows resumed by another worker, "
        f"{len(busy_killed)} of {KILLS} killed workers had run steps, "
        f"{len(unfinished)} workflows left for the final worker"
    )
    assert rerun or moved, "no kill interrupted anything: the test proved nothing"
    assert cut >= KILLS // 3, "too few kills landed mid-step"
    assert len(busy_killed) >= KILLS // 2, "too few killed workers had work to lose"
