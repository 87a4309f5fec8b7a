"""The public App API on a real database (SQLite and PostgreSQL: ``db_url``), with an embedded
worker."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import durably
from durably import WorkflowStatus
from durably.storage.base import WorkflowRecord

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


@pytest.fixture
def db(db_url: str) -> str:
    """The test's database, on each backend of DURABLY_TEST_BACKENDS in turn."""
    return db_url


@pytest.fixture
def app(db: str) -> Iterator[durably.App]:
    a = durably.App(db, worker_options=FAST)
    yield a
    a.close()


class Counter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def hit(self, key: str) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1


@dataclass
class Order:
    id: str
    cents: int
    placed: datetime


def test_quickstart_shape_async_and_sync(app: durably.App) -> None:
    counter = Counter()

    @app.step(
        retry=durably.Retry(attempts=5, initial=0.01, backoff=2.0, max_interval=1.0,
                            non_retryable=(ValueError,)),
        timeout=10.0,
    )  # fmt: skip
    async def withdraw(account: str, cents: int, txn: str) -> int:
        counter.hit("withdraw")
        return 1000 - cents

    @app.step()
    def deposit(account: str, cents: int, txn: str) -> int:
        counter.hit("deposit")
        ctx = durably.step_context()
        assert ctx.idempotency_key == f"{durably.workflow_id()}:{ctx.seq}"
        return 1000 + cents

    @app.workflow()
    async def transfer(src: str, dst: str, cents: int) -> dict[str, Any]:
        txn = str(durably.uuid4())
        a, b = await asyncio.gather(
            withdraw(src, cents, txn), durably.run(deposit, dst, cents, txn)
        )
        return {"txn": txn, "balances": [a, b]}

    @app.workflow()
    def sync_transfer(src: str, dst: str, cents: int) -> list[int]:
        f = durably.submit(withdraw, src, cents, "x")
        return [f.result(), deposit(dst, cents, "x")]

    with app:
        h = app.start(transfer, "alice", "bob", 500, id="t-1")
        result = h.result(timeout=30)
        assert result["balances"] == [500, 1500]
        assert h.status() is WorkflowStatus.COMPLETED
        # idempotent start: same id, even with other arguments, returns the same workflow
        again = app.start(transfer, "carol", "dave", 1, id="t-1")
        assert again.id == "t-1" and again.result(timeout=30) == result
        assert app.start(sync_transfer, "a", "b", 7).result(timeout=30) == [993, 1007]
        assert asyncio.run(app.handle("t-1").result_async(timeout=5)) == result
    assert counter.counts == {"withdraw": 2, "deposit": 2}
    history = app.handle("t-1").history()
    assert [(e.seq, e.kind, e.name) for e in history] == [
        (0, "uuid", "uuid"), (1, "step", "withdraw"), (2, "step", "deposit"),
    ]  # fmt: skip
    assert history[0].result == result["txn"]


def test_dataclass_and_datetime_arguments_round_trip(app: durably.App) -> None:
    @app.step()
    async def total(order: Order) -> Order:
        assert isinstance(order, Order) and isinstance(order.placed, datetime)
        return Order(order.id, order.cents * 2, order.placed)

    @app.workflow()
    async def process(order: Order) -> Order:
        return await total(order)

    placed = datetime(2026, 1, 2, 3, 4, 5)
    with app:
        out = app.start(process, Order("o-1", 21, placed)).result(timeout=30)
    assert out == Order("o-1", 42, placed)


def test_failed_step_fails_workflow_with_history_of_attempts(app: durably.App) -> None:
    @app.step(retry=durably.Retry(attempts=3, initial=0.01, backoff=1.0))
    def charge(cents: int) -> str:
        raise ConnectionError(f"gateway down for {cents}")

    @app.workflow()
    def pay(cents: int) -> str:
        return charge(cents)

    with app:
        h = app.start(pay, 99, id="pay-1")
        with pytest.raises(durably.WorkflowFailedError) as info:
            h.result(timeout=30)
    assert info.value.status == "failed"
    assert info.value.error["type"] == "durably.errors.StepFailed"
    assert info.value.error["cause_type"] == "ConnectionError"
    assert "Traceback" in info.value.error["traceback"]
    assert h.status() is WorkflowStatus.FAILED
    (step,) = h.history()
    assert step.status == "failed" and step.attempts == 3
    assert [a["attempt"] for a in step.failed_attempts] == [1, 2, 3]
    assert "gateway down for 99" in step.failed_attempts[0]["error"]["message"]
    assert app.list_workflows(status="failed")[0].id == "pay-1"


def test_bad_input_is_rejected_clearly_and_writes_nothing(app: durably.App, db: str) -> None:
    @app.workflow()
    async def echo(x: Any) -> Any:
        return x

    with pytest.raises(durably.UnknownWorkflowError, match="nope"):
        app.start("nope")
    with pytest.raises(durably.SerializationError) as ser:
        app.start(echo, object(), id="bad-arg")
    assert "echo" in str(ser.value) and "object" in str(ser.value)
    assert ser.value.workflow_id == "bad-arg"
    small = durably.App(db, max_payload_bytes=1_000)
    small.registry.add_workflow(echo)
    with pytest.raises(durably.PayloadTooLargeError, match="1000"):
        small.start(echo, "x" * 2_000, id="too-big")
    small.close()
    for bad in ["", "has space", "slash/id", "x" * 201, "-leading", "ünïcode"]:
        with pytest.raises(durably.InvalidIdError):
            app.start(echo, 1, id=bad)
    with pytest.raises(durably.InvalidIdError):
        app.start(echo, 1, id=42)
    with pytest.raises(durably.InvalidIdError):
        app.handle("a b")
    with pytest.raises(durably.WorkflowNotFoundError, match="missing"):
        app.handle("missing").status()
    with pytest.raises(durably.ConfigurationError):
        app.list_workflows(status="sleeping")
    assert app.list_workflows() == []  # nothing was half-written


def test_oversized_step_result_fails_naming_the_step(db: str) -> None:
    app = durably.App(db, max_payload_bytes=5_000, worker_options=FAST)

    @app.step(retry=durably.Retry(attempts=3, initial=0.01))
    async def big() -> str:
        return "y" * 10_000

    @app.workflow()
    async def makes_big() -> str:
        return await big()

    with app:
        h = app.start(makes_big, id="big-1")
        with pytest.raises(durably.WorkflowFailedError) as info:
            h.result(timeout=30)
    app.close()
    error = info.value.error
    assert error["cause_type"] == "durably.errors.PayloadTooLargeError"
    assert "big" in error["cause_message"] and "big-1" in error["cause_message"]
    (step,) = h.history()
    assert step.attempts == 1  # not retried: it can never succeed


def test_bad_configuration_is_reported(tmp_path: Path) -> None:
    with pytest.raises(durably.ConfigurationError, match="does not exist"):
        _ = durably.App(f"sqlite:///{tmp_path}/no/such/dir/x.db").store
    with pytest.raises(durably.ConfigurationError, match="unsupported database URL"):
        _ = durably.App("mysql://localhost/x").store
    with pytest.raises(durably.ConfigurationError, match="synchronous"):
        _ = durably.App(f"sqlite:///{tmp_path}/x.db?synchronous=off").store
    not_db = tmp_path / "not.db"
    not_db.write_text("this is not a database" * 100)
    with pytest.raises(durably.ConfigurationError, match=r"not\.db"):
        _ = durably.App(f"sqlite:///{not_db}").store
    with pytest.raises(durably.ConfigurationError):
        durably.Retry(attempts=0)
    with pytest.raises(durably.ConfigurationError):
        durably.WorkerOptions(lease_seconds=0)


def test_result_timeout_without_a_worker(app: durably.App) -> None:
    @app.workflow()
    async def idle() -> None:
        return None

    h = app.start(idle)
    with pytest.raises(durably.WorkflowTimeoutError, match="still pending"):
        h.result(timeout=0.1)
    assert h.status() is WorkflowStatus.PENDING


def test_stopped_worker_resumes_elsewhere_without_rerunning_steps(db: str) -> None:
    counter = Counter()
    gate = threading.Event()

    def build() -> tuple[durably.App, Any]:
        app = durably.App(db, worker_options=FAST)

        @app.step()
        async def first(x: int) -> int:
            counter.hit("first")
            return x + 1

        @app.step()
        async def second(x: int) -> int:
            counter.hit("second")
            if not gate.is_set():
                await asyncio.sleep(60)  # the first worker is stopped while in here
            return x * 2

        @app.workflow()
        async def two_steps(x: int) -> int:
            return await second(await first(x))

        return app, two_steps

    app1, wf1 = build()
    with app1:
        h = app1.start(wf1, 5, id="resume-1")
        deadline = time.monotonic() + 10
        while counter.counts.get("second", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    app1.close()
    assert h.status() is WorkflowStatus.RUNNING
    gate.set()
    app2, _ = build()
    with app2:
        assert app2.handle("resume-1").result(timeout=30) == 12
    app2.close()
    assert counter.counts == {"first": 1, "second": 2}  # only the in-flight step ran again
    epochs = [e.epoch for e in app2.handle("resume-1").history()]
    assert epochs == [1, 2]


def test_code_change_that_diverges_stops_in_needs_attention(db: str) -> None:
    hold = threading.Event()

    app1 = durably.App(db, worker_options=FAST)

    @app1.step(name="reserve")
    async def reserve() -> str:
        return "reserved"

    @app1.step(name="charge")
    async def charge() -> str:
        await asyncio.sleep(60)
        return "charged"

    @app1.workflow(name="order")
    async def order_v1() -> str:
        await reserve()
        return await charge()

    with app1:
        app1.start(order_v1, id="order-1")
        deadline = time.monotonic() + 10
        while not app1.handle("order-1").history() and time.monotonic() < deadline:
            time.sleep(0.01)
    app1.close()

    app2 = durably.App(db, worker_options=FAST)

    @app2.step(name="validate")
    async def validate() -> str:
        hold.set()
        return "valid"

    @app2.workflow(name="order")
    async def order_v2() -> str:
        await validate()  # seq 0 used to be 'reserve'
        return "done"

    with app2:
        h = app2.handle("order-1")
        with pytest.raises(durably.WorkflowFailedError) as info:
            h.result(timeout=30)
    assert info.value.status == "needs_attention"
    assert h.status() is WorkflowStatus.NEEDS_ATTENTION
    message = info.value.error["message"]
    assert "'reserve'" in message and "'validate'" in message and "seq 0" in message
    assert not hold.is_set()  # the divergent step never ran
    assert [(e.seq, e.name, e.epoch) for e in h.history()] == [(0, "reserve", 1)]
    app2.close()


def test_start_by_name_served_by_another_process_worker(db: str) -> None:
    server = durably.App(db, worker_options=FAST)

    @server.workflow(name="greet")
    async def greet(who: str) -> str:
        return f"hello {who}"

    client = durably.App(db)
    with pytest.raises(durably.UnknownWorkflowError):
        client.start("greet", "x")
    with server:
        h = client.start("greet", "bob", id="greet-1")
        assert h.result(timeout=30) == "hello bob"
    client.close()
    server.close()


def test_list_workflows_filters(app: durably.App) -> None:
    @app.workflow()
    async def a_wf(n: int) -> int:
        return n

    @app.workflow()
    def b_wf(n: int) -> int:
        return n

    with app:
        handles = [app.start(a_wf, i) for i in range(3)] + [app.start(b_wf, 9)]
        for h in handles:
            h.result(timeout=30)
    assert len(app.list_workflows()) == 4
    assert {w.name for w in app.list_workflows(name="b_wf")} == {"b_wf"}
    assert len(app.list_workflows(limit=2)) == 2
    done = app.list_workflows(status=[WorkflowStatus.COMPLETED], name="a_wf")
    # a list carries summaries (previews); each workflow's own info has its output
    assert all(w.summary and w.output is None for w in done)
    assert sorted(app.handle(w.id).info().output for w in done) == [0, 1, 2]
    assert sorted(w.output_preview for w in done if w.output_preview) == ["0", "1", "2"]
    assert app.list_workflows(status="running") == []


def _same_microsecond(store: Any, prefix: str) -> list[str]:
    """42 workflows created within a few microseconds: pairs at identical times on adjacent
    doubles (what many fast starts produce), which ``WorkflowInfo.created_at`` (a datetime,
    to the microsecond) cannot tell apart. Their ids, newest first."""
    t = 1_700_000_000.1234565
    made: list[tuple[float, str]] = []
    for k in range(21):
        for half in "ab":
            wid = f"{prefix}-{k:02d}{half}"
            store.create_workflow(WorkflowRecord(wid, "wf", WorkflowStatus.PENDING, "[]", t, t))
            made.append((t, wid))
        t = math.nextafter(t, math.inf)
    return [wid for _, wid in sorted(made, reverse=True)]


def test_list_workflows_pages_exactly_from_workflow_infos(app: durably.App) -> None:
    ids = _same_microsecond(app.store, "same")
    everything = app.list_workflows(limit=1000)
    assert [w.id for w in everything] == ids
    assert len({w.created_at for w in everything}) < len({w.created_at_epoch for w in everything})
    for limit in (1, 3, 5, 100):
        seen: list[str] = []
        page = app.list_workflows(limit=limit)
        while page:
            seen += [w.id for w in page]
            page = app.list_workflows(limit=limit, before=page[-1])
        assert seen == ids, limit  # every workflow exactly once, newest first
    # the (created_at, id) pair of the exact stored time pages the same
    records = app.store.list_workflows(limit=1000)
    assert [r.created_at for r in records] == [w.created_at_epoch for w in everything]
    rest = app.list_workflows(limit=1000, before=(records[9].created_at, records[9].id))
    assert [w.id for w in rest] == ids[10:]
    assert [w.id for w in app.list_workflows(limit=4, before=everything[9])] == ids[10:14]
    # filters still apply after the cursor
    odd = app.list_workflows(limit=1000, id_prefix="same-0", before=everything[2])
    assert [w.id for w in odd] == [i for i in ids[3:] if i.startswith("same-0")]
    # iter_workflows: every page, each workflow once, filters applied, datetimes accepted
    for size in (1, 4, 42, 100):
        assert [w.id for w in app.iter_workflows(page_size=size)] == ids, size
    assert [w.id for w in app.iter_workflows(id_prefix="same-1", page_size=3)] == [
        i for i in ids if i.startswith("same-1")
    ]
    middle = everything[20].created_at_epoch
    assert middle is not None
    newer = list(app.iter_workflows(created_after=middle, page_size=5))
    assert [w.id for w in newer] == [w.id for w in everything if w.created_at_epoch >= middle]
    assert list(app.iter_workflows(created_before=datetime(2000, 1, 1, tzinfo=UTC))) == []
    with pytest.raises(durably.ConfigurationError, match="WorkflowInfo"):
        app.list_workflows(before=everything[0].created_at)  # type: ignore[arg-type]
    with pytest.raises(durably.ConfigurationError, match="no exact creation time"):
        app.list_workflows(before=replace(everything[0], created_at_epoch=None))


def test_an_id_taken_by_another_workflow_name_is_a_conflict(app: durably.App) -> None:
    @app.workflow()
    async def add(a: int, b: int) -> int:
        return a + b

    @app.workflow()
    async def shout(text: str) -> str:
        return text.upper()

    def check(exc: durably.WorkflowIdConflictError) -> None:
        assert exc.code == "id_conflict" and exc.workflow_id == "job-1"
        assert (exc.name, exc.existing_name) == (shout.name, add.name)
        assert "'job-1'" in exc.message and add.name in exc.message and shout.name in exc.message
        assert "another id" in exc.message

    def attempts() -> None:
        with pytest.raises(durably.WorkflowIdConflictError) as info:
            app.start(shout, "hey", id="job-1")
        check(info.value)
        with pytest.raises(durably.WorkflowIdConflictError) as info:
            app.start(shout.name, "hey", id="job-1")
        check(info.value)
        with pytest.raises(durably.WorkflowIdConflictError) as info:
            asyncio.run(app.start_async(shout, "hey", id="job-1"))
        check(info.value)
        with pytest.raises(durably.WorkflowIdConflictError):
            app.enqueue("default", shout, "hey", id="job-1")
        with pytest.raises(durably.WorkflowIdConflictError):
            app.start_named(shout.name, ["hey"], id="job-1")

    assert app.start(add, 1, 2, id="job-1").id == "job-1"
    attempts()  # no worker: the App's own group commit
    with app:  # the embedded worker's start path
        assert app.handle("job-1").result(timeout=30) == 3
        attempts()
        # the same id with the same name stays idempotent
        assert app.start(add, 5, 5, id="job-1").result(timeout=30) == 3
        assert asyncio.run(app.start_async(add, 5, 5, id="job-1")).id == "job-1"
        assert app.start_named(add.name, [5, 5], id="job-1")[1] is False
    assert [(w.id, w.name) for w in app.list_workflows()] == [("job-1", add.name)]


def test_starting_a_plain_function_says_to_decorate_it(app: durably.App) -> None:
    async def not_registered(x: int) -> int:
        return x

    @app.step()
    async def a_step() -> None:
        return None

    with pytest.raises(durably.UnknownWorkflowError) as info:
        app.start(not_registered, 1)  # type: ignore[call-overload]
    assert "'test_starting_a_plain_function_says_to_decorate_it.<locals>.not_registered'" in (
        info.value.message
    )
    assert "decorate it with @app.workflow" in info.value.message
    with pytest.raises(durably.UnknownWorkflowError, match=r"is a step \(@app.step\)"):
        app.start(a_step)  # type: ignore[call-overload]
    with pytest.raises(durably.UnknownWorkflowError, match="got int 42"):
        app.start(42)  # type: ignore[call-overload]
    assert app.list_workflows() == []


def test_use_database_moves_the_app_and_keeps_its_registrations(tmp_path: Path) -> None:
    app = durably.App(f"sqlite:///{tmp_path}/first.db")

    @app.workflow
    async def hello(name: str) -> str:
        return f"hi {name}"

    with app:
        assert app.start(hello, "a", id="one").result(timeout=10) == "hi a"
        with pytest.raises(durably.ConfigurationError, match="stop the App's worker"):
            app.use_database(f"sqlite:///{tmp_path}/second.db")
    app.use_database(f"sqlite:///{tmp_path}/second.db")
    with app:
        assert app.start(hello, "b", id="two").result(timeout=10) == "hi b"
        assert [w.id for w in app.list_workflows()] == ["two"]  # "one" stayed in first.db
    app.close()


def test_the_async_twins_steer_workflows_as_the_sync_methods_do(app: durably.App) -> None:
    """App has the async twins Client has (WorkflowOperations lists them): each does what its
    sync method does, errors included."""

    @app.workflow()
    async def waits() -> Any:
        return await durably.wait_event("go")

    async def main() -> None:
        handle, created = await app.start_named_async(waits.name, id="tw-1")
        assert created and not (await app.start_named_async(waits.name, id="tw-1"))[1]
        assert await app.send_event_async("tw-1", "go", {"n": 1}, dedup_key="k")
        assert not await app.send_event_async("tw-1", "go", {"n": 2}, dedup_key="k")
        assert await handle.result_async(timeout=30) == {"n": 1}
        assert [w.id for w in await app.list_workflows_async(name=waits.name)] == ["tw-1"]
        assert any(waits.name in w.workflows for w in await app.list_workers_async())
        with pytest.raises(durably.WorkflowStateError, match="only failed or needs_attention"):
            await app.retry_async("tw-1")
        forked = await app.fork_async("tw-1", from_step=0, new_id="tw-2")
        assert forked.id == "tw-2"
        await app.suspend_async("tw-2")
        assert forked.status() is WorkflowStatus.SUSPENDED
        await app.resume_async("tw-2")
        await app.cancel_async("tw-2")
        with pytest.raises(durably.WorkflowFailedError, match="ended cancelled"):
            await forked.result_async(timeout=30)
        await app.purge_async("tw-1")
        with pytest.raises(durably.WorkflowNotFoundError):
            await app.terminate_async("tw-1")

    with app:
        asyncio.run(main())
