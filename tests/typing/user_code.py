"""User code that must type-check under mypy --strict (checked by tests/test_public_api.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, assert_type

import durably

app = durably.App("sqlite:///typing-never-opened.db")


@app.step(retry=durably.Retry(attempts=5, initial=0.5, non_retryable=(ValueError,)), timeout=10.0)
async def withdraw(account: str, cents: int, txn: str) -> int:
    assert_type(durably.step_context().idempotency_key, str)
    return cents


@app.step()
def deposit(account: str, cents: int, txn: str) -> int:
    return cents


@app.workflow()
async def transfer(src: str, dst: str, cents: int) -> dict[str, object]:
    txn = str(durably.uuid4())
    a, b = await asyncio.gather(withdraw(src, cents, txn), durably.run(deposit, dst, cents, txn))
    assert_type(a, int)
    assert_type(b, int)
    assert_type(durably.now().year, int)
    assert_type(durably.random(), float)
    assert_type(durably.patched("fraud-check"), bool)
    assert_type(durably.deprecate_patch("old-change"), None)
    return {"txn": txn, "balances": [a, b]}


@app.workflow
def sync_transfer(src: str, cents: int) -> int:
    if durably.patched("sync-fraud-check"):
        cents += 0
    future = durably.submit(withdraw, src, cents, "t")
    assert_type(future, durably.StepFuture[int])
    return future.result() + deposit(src, cents, "t")


@app.workflow
async def first_answer(n: int) -> object:
    child = durably.start_child(upgrades, n)
    fired = await durably.wait_any(
        durably.event("answer"), late=durably.timer(timedelta(days=1)), child=child
    )
    assert_type(fired, durably.Fired)
    assert_type(fired.index, int)
    assert_type(fired.key, str | None)
    until = durably.timer(until=datetime(2030, 1, 1, tzinfo=UTC))
    return fired.value if fired.key else durably.wait_any_sync(until).value


versioned = durably.App("sqlite:///typing-never-opened.db", version="2026.12.1")


@versioned.workflow(versioning="auto_upgrade")
async def upgrades(n: int) -> int:
    return n


def client() -> None:
    assert_type(versioned.version, str | None)
    assert_type(versioned.start(upgrades, 1).info().version, str | None)
    handle = app.start(transfer, "alice", "bob", 500, id="t-1")
    assert_type(handle, durably.WorkflowHandle[dict[str, object]])
    assert_type(handle.result(timeout=30), dict[str, object])
    assert_type(app.start(sync_transfer, "a", 1).result(), int)
    assert_type(handle.status(), durably.WorkflowStatus)
    infos = app.list_workflows(status="completed", name="transfer", limit=10)
    assert_type(infos, list[durably.WorkflowInfo])


async def async_client() -> None:
    handle = app.handle("t-1")
    info = await handle.info_async()
    assert_type(info.status, durably.WorkflowStatus)
    await handle.result_async(timeout=1)


emails = durably.Queue("typing-emails", concurrency=10, rate_limit=(100, 60.0), priority=True)
gpu = app.queue("typing-gpu", worker_concurrency=1, rate_limit=(5, 1.0))
assert_type(gpu, durably.Queue)
assert_type(app.add_queue(durably.Queue("typing-more")), durably.Queue)


def enqueue() -> None:
    handle = emails.enqueue(transfer, "alice", "bob", 1, id="t-2", priority=5)
    assert_type(handle, durably.WorkflowHandle[dict[str, object]])
    assert_type(emails.enqueue(sync_transfer, "a", 1).result(), int)
    assert_type(gpu.enqueue(sync_transfer, "a", 1).result(), int)
    assert_type(app.enqueue("typing-emails", "transfer", "a", "b", 1), durably.WorkflowHandle[Any])
    workers = app.list_workers()
    assert_type(workers, list[durably.WorkerInfo])


def operations() -> None:
    """App and Client both satisfy WorkflowOperations: tools take either."""

    def stuck(ops: durably.WorkflowOperations) -> list[str]:
        return [i.id for i in ops.iter_workflows(status="needs_attention")]

    stuck(app)
    stuck(durably.Client("http://127.0.0.1:8233"))
    _handle, created = app.start_named("transfer", ["a", "b", 1], id="t-3")
    assert_type(created, bool)


async def async_operations() -> None:
    """App and Client have the same async twins, and so does WorkflowOperations."""

    async def steer(ops: durably.WorkflowOperations) -> None:
        assert_type(await ops.send_event_async("t-1", "go", {"ok": True}), bool)
        await ops.cancel_async("t-1")
        await ops.terminate_async("t-1", "reason")
        await ops.suspend_async("t-1")
        await ops.resume_async("t-1")
        await ops.retry_async("t-1")
        assert_type(await ops.fork_async("t-1", from_step=2), durably.WorkflowHandle[Any])
        await ops.purge_async("t-1")
        infos = await ops.list_workflows_async(status="failed", limit=5)
        assert_type(infos, list[durably.WorkflowInfo])
        assert_type(await ops.list_workers_async(), list[durably.WorkerInfo])
        _handle, created = await ops.start_named_async("transfer", ["a", "b", 1], id="t-4")
        assert_type(created, bool)

    await steer(app)
    client = durably.Client("http://127.0.0.1:8233")
    await steer(client)
    assert_type(await app.send_event_async("t-1", "go", dedup_key="k"), bool)
    assert_type(await app.fork_async("t-1", from_step=0, new_id="t-5"), durably.WorkflowHandle[Any])
    since = datetime.now(UTC)
    assert_type(await client.list_workflows_async(created_after=since), list[durably.WorkflowInfo])
    with client as same:
        assert_type(same, durably.Client)
    with app as running:
        assert_type(running, durably.App)


def crash_test() -> None:
    """A crash test of a workflow: its report, typed."""
    from durably.testing import CrashSafetyError, CrashSafetyReport, check_crash_safety

    try:
        report = check_crash_safety(app, transfer, "a", "b", 100)
    except CrashSafetyError as exc:
        assert_type(str(exc.point), str)
        raise
    assert_type(report, CrashSafetyReport)
    for run in report.runs:
        assert_type(run.step_runs, dict[str, int])
        assert_type(run.reran(report), dict[str, int])
        assert_type(run.point.when, Literal["before", "after-body", "before-consume"])
    assert_type(report.run_at("after-body step 'withdraw' (seq 1)").result, Any)
    approved = check_crash_safety(app, transfer, "a", "b", 100, events=[("approval", {"by": "a"})])
    assert_type(approved, CrashSafetyReport)
    assert_type(check_crash_safety(app, transfer, "a", "b", 1, events={"approval": 1}).result, Any)
    killed = check_crash_safety(app, transfer, "a", "b", 1, kill=True, app_ref="bank.flows:app")
    assert_type(killed.runs[0].exit_code, int | None)


def histories_still_replay(app: durably.App) -> None:
    """A unit test over exported histories (``durably export ID -o FILE``)."""
    import durably.testing

    report = durably.testing.replay(app, "tests/histories/")
    assert_type(report.diverged, list[durably.replay.ReplayResult])
    try:
        durably.testing.replay(app, [{"format": "durably.history/1"}, "order-7.json"])
    except durably.testing.ReplayDivergenceError as exc:
        for d in exc.divergences:
            assert_type(d.seq, int | None)
            assert_type(d.code_kind, str)


class Reversed:
    """A payload codec of the user's own, written to the ``durably.PayloadCodec`` protocol."""

    names = ("reversed",)

    def encode(self, data: bytes) -> tuple[str, bytes] | None:
        return "reversed", data[::-1]

    def decode(self, label: str, data: bytes) -> bytes:
        return data[::-1]


def codecs_type_check(key: bytes) -> durably.App:
    """Payload codecs: the shipped ones and one of the user's own, chained on an App."""
    from durably.codecs import Compression, Encryption

    codec: durably.PayloadCodec = Reversed()
    encryption = Encryption(keys={"k2": key, "k1": key}, active="k2")
    assert_type(encryption.key_ids, list[str])
    assert_type(Encryption.from_env(), Encryption)
    return durably.App(codecs=[Compression(threshold=512, algorithm="zstd"), codec, encryption])


@app.workflow(schedule=durably.Schedule(every=timedelta(minutes=15), overlap="buffer_one"))
def poll_feeds() -> None:
    pass


def schedules() -> None:
    info = app.schedule(
        "nightly", transfer, cron="0 3 * * *", timezone="Europe/Berlin", args=("a", "b", 5),
        catchup_window=timedelta(hours=1), jitter=30.0, note="team a",
    )  # fmt: skip
    assert_type(info, durably.ScheduleInfo)
    assert_type(info.next_run_at, datetime | None)
    app.add_schedule(durably.Schedule("weekly", sync_transfer, cron="0 6 * * MON", args=("x", 1)))
    assert_type(app.schedules.list(), list[durably.ScheduleInfo])
    assert_type(app.schedules.trigger("nightly"), durably.ScheduleTick)
    ticks = app.schedules.backfill("nightly", datetime(2026, 1, 1, tzinfo=UTC), 1.8e9)
    assert_type(ticks, list[durably.ScheduleTick])
    app.schedules.pause("nightly", reason="db move")
    with durably.Client("http://127.0.0.1:8233") as remote:
        assert_type(remote.schedules.get("nightly"), durably.ScheduleInfo)
