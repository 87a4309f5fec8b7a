"""Schedules under chaos: three real ``durably worker`` processes tick an ``every=1s`` schedule
while they are killed with SIGKILL at random and restarted; every tick of the window started
exactly one workflow (the ids prove it: the set of ids is the set of ticks) and each completed.
Then every worker is killed for about five ticks and one restarts with a 2.5 s catch-up window:
the ticks older than the window are recorded as missed, the newer ones run, and ticking goes
on."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

import durably

ROOT = Path(__file__).resolve().parents[2]
CHAOS_SECONDS = float(os.environ.get("DURABLY_SCHEDULE_CHAOS_SECONDS", "30"))


class Workers:
    def __init__(self, url: str, log_dir: Path) -> None:
        self.url = url
        self.log_dir = log_dir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started = 0

    def start(self, slot: int, catchup: float = 300) -> None:
        env = {**os.environ, "DURABLY_DB": self.url, "SCHED_CATCHUP": str(catchup)}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        self.started += 1
        log = open(self.log_dir / f"worker-{self.started}.log", "wb")  # noqa: SIM115
        self.procs[slot] = subprocess.Popen(
            [sys.executable, "-m", "durably.cli", "worker", "tests.e2e.sched_app:app"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def kill(self, slot: int) -> None:
        proc = self.procs.pop(slot, None)
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for slot in list(self.procs):
            self.kill(slot)


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(db_url, tmp_path)
    yield w
    w.stop_all()


def tick_of(workflow_id: str) -> int:
    name, _, when = workflow_id.partition("@")
    assert name == "chaos"
    stamp = datetime.fromisoformat(when).timestamp()
    assert stamp == int(stamp), workflow_id  # a tick id, to the second
    return int(stamp)


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def runs(client: durably.App) -> dict[int, tuple[str, float]]:
    """Each tick that has a workflow: its status and when it was created (epoch seconds)."""
    infos = list(client.iter_workflows(id_prefix="chaos@"))
    found: dict[int, tuple[str, float]] = {}
    for info in infos:
        tick = tick_of(info.id)
        assert tick not in found, f"two workflows for tick {tick}: {info.id}"
        found[tick] = (info.status.value, info.created_at_epoch or 0.0)
    assert len(found) == len(infos)
    return found


def ticks(client: durably.App) -> dict[int, str]:
    return {tick: status for tick, (status, _) in runs(client).items()}


def test_every_tick_runs_exactly_once_under_random_kills(workers: Workers, db_url: str) -> None:
    rng = random.Random()
    client = durably.App(db_url)
    try:
        for slot in range(3):
            workers.start(slot)
        wait_for(lambda: len(ticks(client)) >= 2, 60, "the first ticks")
        chaos_from = time.time()
        kills = 0
        while time.time() - chaos_from < CHAOS_SECONDS:
            time.sleep(rng.uniform(0.2, 1.2))
            victims = rng.sample(sorted(workers.procs), k=rng.choice([1, 1, 2]))
            for slot in victims:
                workers.kill(slot)
                kills += 1
            time.sleep(rng.uniform(0.0, 0.8))
            for slot in victims:
                workers.start(slot)
        chaos_to = time.time()
        # let the ticks of the window be caught up and run
        window = range(int(chaos_from) + 1, int(chaos_to))
        wait_for(
            lambda: all(ticks(client).get(t) == "completed" for t in window),
            60,
            "every tick of the chaos window to complete",
        )
        found = ticks(client)
        first, last = min(found), max(found)
        assert set(found) == set(range(first, last + 1)), "a tick was lost"
        assert set(window) <= set(found) and kills >= 5
        assert client.get_schedule("chaos").missed == 0
        print(f"chaos: {kills} SIGKILLs in {chaos_to - chaos_from:.0f}s, {len(found)} ticks, "
              f"each one workflow")  # fmt: skip

        # all workers down for about five ticks; one comes back with a 2.5 s window
        workers.stop_all()
        down_at = time.time()
        time.sleep(5.5)
        before = set(ticks(client))
        workers.start(0, catchup=2.5)
        wait_for(lambda: max(ticks(client)) > time.time() - 2 > down_at + 6, 60, "ticking again")
        after = runs(client)
        gap = sorted(set(range(max(before) + 1, max(after) + 1)) - set(after))
        assert len(gap) >= 2, "the ticks of the outage older than the window should be missed"
        assert gap == list(range(gap[0], gap[-1] + 1))  # one run of missed ticks, oldest first
        # the ticks within the window at the restart ran, all in its first decision
        first_created = after[gap[-1] + 1][1]
        caught_up = sorted(t for t, (_, made) in after.items() if abs(made - first_created) < 0.2)
        assert caught_up == list(range(gap[-1] + 1, gap[-1] + 1 + len(caught_up)))
        assert 2 <= len(caught_up) <= 3  # a 2.5 s window holds two or three 1 s ticks
        info = client.get_schedule("chaos")
        assert info.missed == len(gap) and info.catchup_window is not None
        assert info.catchup_window.total_seconds() == 2.5
    finally:
        client.close()
