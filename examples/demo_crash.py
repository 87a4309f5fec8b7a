"""durably crash demo: a money transfer survives `kill -9` of its worker, mid-workflow.

Run it with ``make run`` (or ``python examples/demo_crash.py``). It needs no arguments and leaves
no files behind: the workflow database and a tiny "bank" (its own SQLite file) live in a
temporary folder that is removed at the end.

What happens:

1. a worker process starts (this same script, run with the ``worker`` argument: it calls
   ``app.run_worker()``);
2. this process, a client that runs no worker, starts a transfer workflow of four steps
   (reserve, withdraw, deposit, notify), each of which takes about 0.4 s;
3. once two steps are checkpointed in the journal, the worker is killed with SIGKILL while the
   third step is in flight;
4. a second worker process starts and finishes the workflow: it replays the two recorded steps
   from the journal (without running them again) and re-runs the interrupted one, whose side
   effect the bank applies only once thanks to the step's idempotency key;
5. the journal and the balances are checked: every step recorded once, money conserved, the
   transfer applied exactly once. The exit status is non-zero if anything is inconsistent.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import durably

# The parent makes a scratch folder and hands it to its worker processes in this variable.
_OWNS_DIR = "DURABLY_DEMO_DIR" not in os.environ
DEMO_DIR = Path(os.environ.get("DURABLY_DEMO_DIR") or tempfile.mkdtemp(prefix="durably-demo-"))
BANK = DEMO_DIR / "bank.db"
STEP_SECONDS = 0.4
OPENING = {"alice": 500_00, "bob": 100_00}  # cents
AMOUNT = 150_00
STEPS = ["reserve", "withdraw", "deposit", "notify"]

app = durably.App(f"sqlite:///{DEMO_DIR / 'durably.db'}")


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def say(text: str = "") -> None:
    print(text, flush=True)


# -- the bank: its own SQLite file; every operation is applied at most once per key ----------------


class InsufficientFunds(Exception):
    pass


def _bank() -> sqlite3.Connection:
    return sqlite3.connect(BANK, isolation_level=None, timeout=10.0)


def bank_setup() -> None:
    with closing(_bank()) as conn:
        conn.executescript(
            """
            CREATE TABLE accounts (name TEXT PRIMARY KEY, balance INTEGER NOT NULL);
            CREATE TABLE holds (key TEXT PRIMARY KEY, account TEXT, amount INTEGER,
                                captured INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE applied (key TEXT PRIMARY KEY, op TEXT NOT NULL, pid INTEGER NOT NULL,
                                  result TEXT NOT NULL);
            CREATE TABLE runs (id INTEGER PRIMARY KEY, key TEXT, op TEXT, pid INTEGER);
            CREATE TABLE notices (key TEXT PRIMARY KEY, text TEXT);
            """
        )
        conn.executemany("INSERT INTO accounts VALUES (?, ?)", OPENING.items())


def bank_apply(key: str, op: str, change: Callable[[sqlite3.Connection], Any]) -> tuple[Any, bool]:
    """Apply ``change`` once per idempotency ``key``, atomically with the record that it was.

    Returns (result, applied_now). A second call with the same key applies nothing and returns
    the first call's result, as a payment API given an idempotency key would.
    """
    conn = _bank()
    try:
        conn.execute("INSERT INTO runs (key, op, pid) VALUES (?, ?, ?)", (key, op, os.getpid()))
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT result FROM applied WHERE key = ?", (key,)).fetchone()
            if row is not None:
                conn.execute("ROLLBACK")
                return json.loads(row[0]), False
            result = change(conn)
            conn.execute(
                "INSERT INTO applied (key, op, pid, result) VALUES (?, ?, ?, ?)",
                (key, op, os.getpid(), json.dumps(result)),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result, True
    finally:
        conn.close()


def bank_query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(_bank()) as conn:
        return conn.execute(sql, params).fetchall()


def bank_balances() -> dict[str, int]:
    return dict(bank_query("SELECT name, balance FROM accounts ORDER BY name"))


# -- the workflow ----------------------------------------------------------------------------------


async def _side_effect(op: str, change: Callable[[sqlite3.Connection], Any], done: str) -> Any:
    """Call the bank with this step's idempotency key, then wait for its slow "response"."""
    key = durably.step_context().idempotency_key
    result, applied_now = await asyncio.to_thread(bank_apply, key, op, change)
    if applied_now:
        say(f"    [worker {os.getpid()}] {op:<8}  {done}  (key {key})")
    else:
        say(f"    [worker {os.getpid()}] {op:<8}  re-run: key {key} was already applied, skipped")
    await asyncio.sleep(STEP_SECONDS)  # a slow network call: the kill lands in here
    return result


@app.step(retry=durably.Retry(attempts=3, initial=0.2, non_retryable=(InsufficientFunds,)))
async def reserve(account: str, cents: int) -> str:
    def change(conn: sqlite3.Connection) -> str:
        (balance,) = conn.execute(
            "SELECT balance FROM accounts WHERE name = ?", (account,)
        ).fetchone()
        if balance < cents:
            raise InsufficientFunds(f"{account} has {money(balance)}, needs {money(cents)}")
        key = durably.step_context().idempotency_key
        conn.execute("INSERT INTO holds (key, account, amount) VALUES (?, ?, ?)",
                     (key, account, cents))  # fmt: skip
        return key

    result: str = await _side_effect("reserve", change, f"hold {money(cents)} on {account}")
    return result


@app.step()
async def withdraw(account: str, cents: int, hold: str) -> int:
    def change(conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE holds SET captured = 1 WHERE key = ?", (hold,))
        conn.execute("UPDATE accounts SET balance = balance - ? WHERE name = ?", (cents, account))
        (balance,) = conn.execute(
            "SELECT balance FROM accounts WHERE name = ?", (account,)
        ).fetchone()
        return int(balance)

    result: int = await _side_effect("withdraw", change, f"debit {money(cents)} from {account}")
    return result


@app.step()
async def deposit(account: str, cents: int) -> int:
    def change(conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE accounts SET balance = balance + ? WHERE name = ?", (cents, account))
        (balance,) = conn.execute(
            "SELECT balance FROM accounts WHERE name = ?", (account,)
        ).fetchone()
        return int(balance)

    result: int = await _side_effect("deposit", change, f"credit {money(cents)} to {account}")
    return result


@app.step()
async def notify(text: str) -> bool:
    def change(conn: sqlite3.Connection) -> bool:
        key = durably.step_context().idempotency_key
        conn.execute("INSERT INTO notices (key, text) VALUES (?, ?)", (key, text))
        return True

    result: bool = await _side_effect("notify", change, f"send notice {text!r}")
    return result


@app.workflow()
async def transfer(source: str, target: str, cents: int) -> dict[str, Any]:
    hold = await reserve(source, cents)
    source_balance = await withdraw(source, cents, hold)
    target_balance = await deposit(target, cents)
    await notify(f"{money(cents)} from {source} to {target}")
    return {"source_balance": source_balance, "target_balance": target_balance}


# -- the demo (parent process) ---------------------------------------------------------------------


class DemoFailed(Exception):
    pass


def check(ok: bool, what: str) -> None:
    if not ok:
        raise DemoFailed(what)


def owner_pid(owner: str) -> int:
    """Worker ids are ``host:pid:suffix``."""
    return int(owner.rsplit(":", 2)[1])


def start_worker(number: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DURABLY_DEMO_DIR": str(DEMO_DIR), "PYTHONUNBUFFERED": "1"}
    script = os.path.abspath(__file__)
    proc = subprocess.Popen([sys.executable, script, "worker"], env=env)
    say(f"    worker #{number} started: pid {proc.pid}")
    deadline = time.monotonic() + 15
    while not any(w.pid == proc.pid for w in app.store.list_workers()):
        if proc.poll() is not None:
            raise DemoFailed(f"worker #{number} exited at start with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"worker #{number} did not come up within 15 s")
        time.sleep(0.02)
    return proc


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.01)


def demo() -> None:
    total = sum(OPENING.values())
    say("durably crash demo: a money transfer that survives kill -9 of its worker")
    say(f"  scratch folder {DEMO_DIR} (removed at the end)")
    bank_setup()
    say("  bank: " + ", ".join(f"{k} {money(v)}" for k, v in bank_balances().items()))
    say()

    say("[1] start a worker process (this script with `worker`: app.run_worker())")
    first = start_worker(1)
    workers = [first]
    try:
        say()
        wid = f"transfer-{int(time.time())}"
        say(f"[2] start workflow {wid}: move {money(AMOUNT)} from alice to bob")
        say(f"    four steps ({', '.join(STEPS)}) of ~{STEP_SECONDS} s each")
        handle = app.start(transfer, "alice", "bob", AMOUNT, id=wid)

        wait_until(lambda: len(handle.history()) >= 2, 15, "2 steps are in the journal")
        # The next step's side effect reaches the bank right away; give it a moment to land,
        # so the kill hits a step whose effect is applied but not yet checkpointed.
        in_flight = STEPS[min(len(handle.history()), len(STEPS) - 1)]
        try:
            wait_until(
                lambda: bool(bank_query("SELECT 1 FROM applied WHERE op = ?", in_flight)),
                STEP_SECONDS / 2, f"{in_flight} reached the bank",
            )  # fmt: skip
        except DemoFailed:
            pass
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = handle.history()
        done = [e.name for e in at_kill]
        say()
        say(f"[3] SIGKILL worker #1 (pid {first.pid}): exit status {first.returncode}")
        say(f"    checkpointed at the kill: {', '.join(done)}")
        if len(done) < len(STEPS):
            in_flight = STEPS[len(done)]
            effect_applied = bool(bank_query("SELECT 1 FROM applied WHERE op = ?", in_flight))
            where = "it had reached the bank" if effect_applied else "the bank had not seen it"
            say(f"    in flight at the kill: {in_flight} ({where}; its result was not recorded)")
        say("    bank now: " + ", ".join(f"{k} {money(v)}" for k, v in bank_balances().items()))
        say(f"    workflow status: {handle.status().value}")
        check(first.returncode == -signal.SIGKILL, "worker #1 was not killed by SIGKILL")
        check(2 <= len(done) < len(STEPS), f"the kill did not land mid-workflow ({done})")
        say()

        say("[4] start worker #2: it claims the orphaned workflow and resumes it from its journal")
        t0 = time.monotonic()
        second = start_worker(2)
        workers.append(second)
        result = handle.result(timeout=20)
        say(f"    workflow completed {time.monotonic() - t0:.1f} s after worker #2 started")
        say(f"    result: {result}")
        say()

        say("[5] check the journal and the bank")
        history = handle.history()
        say("    seq  step      epoch  worker pid  attempts")
        for e in history:
            who = owner_pid(e.owner)
            tag = "worker #1 (before the kill)" if who == first.pid else "worker #2"
            say(f"    {e.seq:>3}  {e.name:<8}  {e.epoch:>5}  {who:>10}  {e.attempts:>8}   {tag}")
        names = [e.name for e in history]
        check(names == STEPS, f"journal records {names}, expected each of {STEPS} once")
        check(
            [(e.seq, e.owner, e.epoch) for e in history[: len(at_kill)]]
            == [(e.seq, e.owner, e.epoch) for e in at_kill],
            "entries recorded before the kill were changed",
        )
        check(all(owner_pid(e.owner) == first.pid for e in at_kill), "pre-kill owner mismatch")
        after = history[len(at_kill) :]
        check(
            all(owner_pid(e.owner) == second.pid and e.epoch > at_kill[0].epoch for e in after),
            "steps after the kill were not recorded by worker #2 under a newer epoch",
        )
        marks = ",".join("?" * len(done))
        reran = bank_query(
            f"SELECT op FROM runs WHERE pid = ? AND op IN ({marks})", second.pid, *done
        )
        check(not reran, f"worker #2 re-ran completed steps: {reran}")
        say(f"    worker #2 resumed after {done[-1]}: {', '.join(done)} were replayed from the")
        say("    journal, not run again; every step is recorded exactly once")
        runs = bank_query("SELECT op, COUNT(*) FROM runs GROUP BY op")
        applied = dict(bank_query("SELECT op, COUNT(*) FROM applied GROUP BY op"))
        for op, count in runs:
            if count > 1:
                once = "once" if applied.get(op) == 1 else f"{applied.get(op, 0)} times"
                say(f"    {op} ran {count} times (before and after the kill), applied {once}")

        balances = bank_balances()
        expected = {"alice": OPENING["alice"] - AMOUNT, "bob": OPENING["bob"] + AMOUNT}
        say(
            "    final balances: "
            + ", ".join(f"{k} {money(v)}" for k, v in balances.items())
            + f"; total {money(sum(balances.values()))} (was {money(total)})"
        )
        check(sum(balances.values()) == total, "money was created or destroyed")
        check(balances == expected, f"balances {balances}, expected {expected}")
        check(applied == dict.fromkeys(STEPS, 1), f"bank operations applied: {applied}")
        check(bank_query("SELECT COUNT(*) FROM holds WHERE captured = 1") == [(1,)], "hold")
        check(bank_query("SELECT COUNT(*) FROM notices") == [(1,)], "notice count")
        check(
            result == {"source_balance": expected["alice"], "target_balance": expected["bob"]},
            f"unexpected workflow result {result}",
        )
        say("    consistent: money conserved, the transfer applied exactly once")
        say()
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    say(f"[6] worker #2 stopped cleanly (SIGTERM, exit status {workers[-1].returncode})")
    check(workers[-1].returncode == 0, "worker #2 did not exit cleanly")
    say("OK: the workflow survived kill -9 and finished exactly once.")


def main() -> int:
    if sys.argv[1:] == ["worker"]:
        app.run_worker()  # serves until SIGTERM / SIGINT
        return 0
    if len(sys.argv) > 1:
        print(f"usage: {sys.argv[0]} (no arguments)", file=sys.stderr)
        return 2
    try:
        demo()
        return 0
    except (DemoFailed, durably.DurablyError) as exc:
        say(f"FAILED: {exc}")
        return 1
    finally:
        app.close()
        if _OWNS_DIR:
            shutil.rmtree(DEMO_DIR, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
