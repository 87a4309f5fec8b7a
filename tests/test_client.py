"""``durably.Client`` against a real ``durably server`` process on a loopback port, on each backend,
with a worker (embedded in the test process, on the same database) running the workflows; and
the CLI's ``--server`` mode against the same server."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import durably
import durably.waiting
from durably.remote import AuthenticationError, ServerUnreachableError
from durably.storage.base import WorkflowRecord, WorkflowStatus

from .backends import BACKENDS, postgres_schema, schema_url
from .ports import free_port

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

DURABLY = [sys.executable, "-m", "durably.cli"]
TOKEN = "client-test-token"
FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


@dataclass(frozen=True)
class Served:
    """A server process's URL and token, and the App whose worker runs the workflows."""

    url: str
    token: str
    app: durably.App


def _register(app: durably.App) -> None:
    @app.step(name="double", retry=durably.Retry(attempts=1))
    def double(x: int) -> int:
        return 2 * x

    @app.workflow(name="twice")
    async def twice(x: int) -> int:
        return await durably.run(double, await durably.run(double, x))

    @app.workflow(name="when")
    async def when(at: datetime, *, days: int = 1) -> datetime:
        return at + timedelta(days=days)

    @app.workflow(name="waiter")
    async def waiter() -> Any:
        durably.set_state("stage", "waiting")
        value = await durably.wait_event("go")
        durably.set_state("stage", "done")
        return value

    @app.workflow(name="boom")
    async def boom() -> None:
        raise ValueError("boom")

    @app.workflow(name="countdown")
    async def countdown(n: int) -> int:
        if n > 0:
            durably.continue_as_new(n - 1)
        return n

    @app.workflow(name="parent")
    async def parent(n: int) -> int:
        child = durably.start_child(twice, n)
        result: int = await child
        return result + 1


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """``durably server --token`` (started through the durably CLI) on a fresh database of each
    backend, and a worker serving the test workflows on it."""
    if request.param == "sqlite":
        db = f"sqlite:///{tmp_path_factory.mktemp('client')}/client.db"
        yield from _serve(db)
    else:
        with postgres_schema() as schema:
            yield from _serve(schema_url(schema))


def _serve(db: str) -> Iterator[Served]:
    app = durably.App(db, worker_options=FAST)
    _register(app)
    app.store.migrate()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    proc = subprocess.Popen(
        [*DURABLY, "server", "--db", db, "--port", str(port), "--token", TOKEN],
        env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "server did not answer /healthz in 30 s"
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        with app:
            yield Served(url, TOKEN, app)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        app.close()


@pytest.fixture
def client(served: Served) -> Iterator[durably.Client]:
    with durably.Client(served.url, token=served.token) as c:
        yield c


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_start_result_and_the_same_handle_as_app(served: Served, client: durably.Client) -> None:
    handle = client.start("twice", 5)
    assert isinstance(handle, durably.WorkflowHandle)
    assert handle.result(timeout=30) == 20
    info = handle.info()
    assert info.status is durably.WorkflowStatus.COMPLETED and info.name == "twice"
    assert info.input == {"args": [5], "kwargs": {}} and info.output == 20
    assert info.created_at.tzinfo is not None and info.finished_at is not None
    assert info == served.app.handle(handle.id).info()  # what App reads, field for field
    history = handle.history()
    assert [(e.seq, e.kind, e.name, e.result) for e in history] == [
        (0, "step", "double", 10),
        (1, "step", "double", 20),
    ]
    assert history == served.app.handle(handle.id).history()

    # tagged values (datetimes) round-trip; kwargs; an existing id starts nothing again
    wid = _id("when")
    at = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    assert client.start("when", at, id=wid, days=2).result(timeout=30) == at + timedelta(days=2)
    again = client.start("when", datetime(1999, 1, 1, tzinfo=UTC), id=wid)
    assert again.result(timeout=30) == at + timedelta(days=2)

    parent = client.start("parent", 4)
    assert parent.result(timeout=30) == 17
    (child,) = parent.children()
    assert child.parent_id == parent.id and child.output == 16

    failing = client.handle(client.start("boom").id)
    with pytest.raises(durably.WorkflowFailedError, match="ValueError: boom") as failed:
        failing.result(timeout=30)
    assert failed.value.status == "failed" and failed.value.error["type"] == "ValueError"
    assert failing.status() is durably.WorkflowStatus.FAILED


def test_runs_of_a_workflow_that_continued_as_new(served: Served, client: durably.Client) -> None:
    handle = client.start("countdown", 2)
    assert handle.result(timeout=30) == 0
    runs = handle.runs()
    assert [(r.run, r.status, r.input) for r in runs] == [
        (1, durably.WorkflowStatus.CONTINUED_AS_NEW, {"args": [2], "kwargs": {}}),
        (2, durably.WorkflowStatus.CONTINUED_AS_NEW, {"args": [1], "kwargs": {}}),
    ]
    assert runs == served.app.handle(handle.id).runs()  # what App reads, field for field
    with pytest.raises(durably.WorkflowNotFoundError):
        client.handle(_id("missing")).runs()


def test_events_state_and_commands(served: Served, client: durably.Client) -> None:
    wid = _id("wait")
    handle = client.start("waiter", id=wid)
    deadline = time.monotonic() + 30
    while handle.state("stage") != "waiting":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert handle.states() == {"stage": "waiting"} and handle.state("nope", 7) == 7
    with pytest.raises(durably.WorkflowTimeoutError, match="still running"):
        handle.result(timeout=0.2)
    assert client.send_event(wid, "note", 1, dedup_key="k") is True
    assert client.send_event(wid, "note", 2, dedup_key="k") is False
    client.suspend(wid)
    assert handle.status() is durably.WorkflowStatus.SUSPENDED
    client.resume(wid)
    with pytest.raises(durably.WorkflowStateError, match="only suspended"):
        client.resume(wid)
    assert client.send_event(wid, "go", {"ok": True}) is True
    assert handle.result(timeout=30) == {"ok": True}
    with pytest.raises(durably.WorkflowStateError):
        client.send_event(wid, "go", 1)
    with pytest.raises(durably.WorkflowStateError):
        client.cancel(wid)

    cancelled = client.start("waiter")
    client.cancel(cancelled.id)
    with pytest.raises(durably.WorkflowFailedError, match="cancelled"):
        cancelled.result(timeout=30)
    terminated = client.start("waiter")
    client.terminate(terminated.id, reason="enough")
    assert terminated.info().error == {
        "type": "Terminated", "code": "terminated", "message": "enough"
    }  # fmt: skip

    failed = client.start("boom")
    with pytest.raises(durably.WorkflowFailedError):
        failed.result(timeout=30)
    client.retry(failed.id)
    with pytest.raises(durably.WorkflowFailedError):
        failed.result(timeout=30)

    source = client.start("twice", 3)
    assert source.result(timeout=30) == 12
    forked = client.fork(source.id, from_step=1, new_id=_id("fork"))
    assert forked.result(timeout=30) == 12 and forked.history()[0].result == 6
    with pytest.raises(durably.WorkflowStateError, match="taken"):
        client.fork(source.id, from_step=1, new_id=forked.id)

    client.purge(source.id)
    with pytest.raises(durably.WorkflowNotFoundError):
        source.info()
    with pytest.raises(durably.WorkflowNotFoundError):
        client.cancel(source.id)
    with pytest.raises(durably.WorkflowStateError):
        client.purge(client.start("waiter").id)  # not finished
    with pytest.raises(durably.UnknownWorkflowError):
        client.start("no_such_workflow")
    with pytest.raises(durably.InvalidIdError):
        client.handle("bad id!")
    with pytest.raises(durably.ConfigurationError):
        client.list_workflows(limit=100_000)  # over the server's cap: its 400


def test_list_filters_pages_and_workers(served: Served, client: durably.Client) -> None:
    prefix = _id("page")
    before = datetime.now(UTC)
    ids = [client.start("twice", i, id=f"{prefix}-{i}").id for i in range(5)]
    for wid in ids:
        client.handle(wid).result(timeout=30)
    listed = client.list_workflows(id_prefix=prefix)
    assert sorted(w.id for w in listed) == sorted(ids)
    assert [w.id for w in client.list_workflows(id_prefix=prefix, limit=2)] == [
        w.id for w in listed[:2]
    ]
    walked = list(client.iter_workflows(id_prefix=prefix, page_size=2))
    assert [w.id for w in walked] == [w.id for w in listed]
    assert client.list_workflows(id_prefix=prefix, status="failed") == []
    assert len(client.list_workflows(id_prefix=prefix, status=["completed", "failed"])) == 5
    assert len(client.list_workflows(id_prefix=prefix, created_after=before)) == 5
    assert client.list_workflows(id_prefix=prefix, created_before=before.timestamp()) == []
    assert {w.name for w in client.list_workflows(name="twice", limit=1000)} == {"twice"}
    with pytest.raises(durably.ConfigurationError, match="unknown status"):
        client.list_workflows(status="happy")

    (worker,) = client.list_workers()
    assert "twice" in worker.workflows and "default" in worker.queues
    assert worker.heartbeat_at > time.time() - 60
    assert served.app.list_workers()[0].id == worker.id


def test_list_pages_exactly_from_workflow_infos(served: Served, client: durably.Client) -> None:
    """Workflows created within the same microsecond (identical or adjacent stored times) page
    exactly through ``before=info``: the info's exact ``created_at_epoch`` makes the cursor the
    server itself would make."""
    prefix = _id("same")
    t = 1_600_000_000.1234565  # older than every other test's workflows
    made: list[tuple[float, str]] = []
    for k in range(15):
        for half in "ab":
            wid = f"{prefix}-{k:02d}{half}"
            record = WorkflowRecord(wid, "twice", WorkflowStatus.COMPLETED, "[1]", t, t, "4")
            served.app.store.create_workflow(record)
            made.append((t, wid))
        t = math.nextafter(t, math.inf)
    ids = [wid for _, wid in sorted(made, reverse=True)]
    everything = client.list_workflows(id_prefix=prefix, limit=1000)
    assert [w.id for w in everything] == ids
    assert {w.created_at_epoch for w in everything} == {created for created, _ in made}
    assert everything == served.app.list_workflows(id_prefix=prefix, limit=1000)
    for limit in (1, 4):
        seen: list[str] = []
        page = client.list_workflows(id_prefix=prefix, limit=limit)
        while page:
            seen += [w.id for w in page]
            page = client.list_workflows(id_prefix=prefix, limit=limit, before=page[-1])
        assert seen == ids, limit  # every workflow exactly once, newest first
        assert [w.id for w in client.iter_workflows(id_prefix=prefix, page_size=limit)] == ids
    pair = (everything[6].created_at_epoch or 0.0, everything[6].id)
    assert [w.id for w in client.list_workflows(id_prefix=prefix, before=pair)] == ids[7:]
    with pytest.raises(durably.ConfigurationError, match="no exact creation time"):
        client.list_workflows(before=replace(everything[0], created_at_epoch=None))
    # an App's info pages a Client, and the other way round: one exact position
    app_page = served.app.list_workflows(id_prefix=prefix, limit=5)
    assert [w.id for w in client.list_workflows(id_prefix=prefix, before=app_page[-1])] == ids[5:]
    assert served.app.list_workflows(id_prefix=prefix, before=everything[4]) == everything[5:]


def test_async_twins(client: durably.Client) -> None:
    async def main() -> None:
        handle = await client.start_async("twice", 7)
        assert await handle.result_async(timeout=30) == 28
        assert (await handle.info_async()).output == 28
        assert len(await handle.history_async()) == 2
        waiting = await client.start_async("waiter")
        assert await client.send_event_async(waiting.id, "go", "now") is True
        assert await waiting.result_async(timeout=30) == "now"
        stopped = await client.start_async("waiter")
        await client.cancel_async(stopped.id)
        with pytest.raises(durably.WorkflowFailedError):
            await stopped.result_async(timeout=30)
        listed = await client.list_workflows_async(limit=1000)
        assert {handle.id, waiting.id, stopped.id} <= {w.id for w in listed}
        assert await client.list_workers_async()
        results = await asyncio.gather(
            *[(await client.start_async("twice", i)).result_async(timeout=30) for i in range(4)]
        )
        assert results == [0, 4, 8, 12]

    asyncio.run(main())


def test_auth_and_unreachable_errors(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURABLY_TOKEN", raising=False)
    with durably.Client(served.url) as anonymous, pytest.raises(AuthenticationError, match="tok"):
        anonymous.list_workflows()
    with durably.Client(served.url, token="wrong") as wrong, pytest.raises(AuthenticationError):
        wrong.handle("x-1").status()
    monkeypatch.setenv("DURABLY_TOKEN", served.token)
    monkeypatch.setenv("DURABLY_SERVER", served.url)
    with durably.Client() as from_env:
        assert isinstance(from_env.list_workflows(limit=1), list)

    port = free_port()  # nothing listens there
    with (
        durably.Client(f"http://127.0.0.1:{port}", timeout=5) as nowhere,
        pytest.raises(ServerUnreachableError, match=f"http://127.0.0.1:{port}"),
    ):
        nowhere.start("twice", 1)
    with pytest.raises(durably.ConfigurationError, match="http://HOST:PORT"):
        durably.Client("ftp://example.com")


def test_cli_against_the_server(served: Served, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env |= {"DURABLY_SERVER": served.url, "DURABLY_TOKEN": served.token}

    def cli(*argv: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*DURABLY, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == code, (argv, proc.stdout, proc.stderr)
        return proc

    assert cli("start", "twice", "--input", "[4]", "--wait").stdout.strip() == "16"
    wid = _id("cli")
    assert cli("start", "waiter", "--id", wid).stdout.strip() == wid
    assert wid in cli("ls", "--id-prefix", "cli-").stdout
    for i in range(3):
        cli("start", "twice", "--input", str(i), "--id", f"{wid}-{i}")
    # pages of the server's list, followed up to --limit
    listed = json.loads(cli("ls", "--id-prefix", f"{wid}-", "--limit", "2", "--json").stdout)
    assert [w["id"] for w in listed] == [f"{wid}-2", f"{wid}-1"]
    deadline = time.monotonic() + 30
    while json.loads(cli("show", wid, "--json").stdout)["state"] != {"stage": "waiting"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert json.loads(cli("send", wid, "go", "--data", '"hi"', "--json").stdout)["delivered"]
    shown = json.loads(cli("show", wid, "--watch", "--json").stdout)
    assert shown["workflow"]["output"] == "hi" and shown["state"] == {"stage": "done"}
    assert [e["kind"] for e in json.loads(cli("history", wid, "--json").stdout)][-1] == "state"
    assert "twice" in cli("workers").stdout
    pid = _id("parent")
    assert cli("start", "parent", "--input", "[1]", "--id", pid, "--wait").stdout.strip() == "5"
    (child,) = json.loads(cli("show", pid, "--json").stdout)["children"]
    assert child["parent_id"] == pid and child["output"] == 4
    assert "children (1)" in cli("show", pid).stdout
    assert "cannot resume" in cli("resume", wid, code=4).stderr
    assert cli("show", "no-such-id", code=3).stderr
    assert "unknown workflow" in cli("start", "nope", code=3).stderr
    assert "token" in cli("ls", "--token", "wrong", code=6).stderr
    env["DURABLY_TOKEN"] = ""
    assert "token" in cli("ls", code=6).stderr


def test_start_of_an_id_taken_by_another_name_raises_the_conflict(
    served: Served, client: durably.Client
) -> None:
    wid = _id("taken")
    assert client.start("twice", 2, id=wid).result(timeout=30) == 8
    with pytest.raises(durably.WorkflowIdConflictError) as info:
        client.start("boom", id=wid)
    assert info.value.workflow_id == wid and "'twice'" in info.value.message
    assert "'boom'" in info.value.message
    assert client.start("twice", 3, id=wid).result(timeout=30) == 8  # same name: idempotent


def test_cli_start_conflict_and_wait_timeout_exit_codes_through_the_server(
    served: Served, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLY_")}
    env |= {"DURABLY_SERVER": served.url, "DURABLY_TOKEN": served.token}

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*DURABLY, *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    wid = _id("cli-taken")
    assert cli("start", "twice", "--input", "[1]", "--id", wid, "--wait").returncode == 0
    taken = cli("start", "boom", "--id", wid)
    assert taken.returncode == 4, taken.stderr
    assert "'twice'" in taken.stderr and "'boom'" in taken.stderr
    # --timeout passing is "did not complete" (1), not "server unreachable" (5)
    waited = cli("start", "waiter", "--wait", "--timeout", "1")
    assert waited.returncode == 1, waited.stderr
    assert "still" in waited.stderr and "Traceback" not in waited.stderr


def test_waiting_through_the_server_on_an_unserved_workflow_warns_once(
    served: Served,
    client: durably.Client,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(durably.waiting, "UNSERVED_WARNING_AFTER", 0.3)
    caplog.set_level(logging.INFO, logger="durably")
    handle = client.enqueue("nobody-serves-this", "twice", 1, id=_id("unserved"))
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            handle.result()
        except durably.WorkflowFailedError as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and handle.id in r.getMessage()]  # fmt: skip

    deadline = time.monotonic() + 30
    while not warned():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.terminate(handle.id, "nobody serves it")  # ends the wait
    waiting.join(30)
    (warning,) = warned()
    assert "no live worker serves workflow 'twice' on queue 'nobody-serves-this'" in warning
    assert [type(e) for e in outcome] == [durably.WorkflowFailedError]
