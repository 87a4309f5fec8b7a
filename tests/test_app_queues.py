"""Queues belong to their App: ``app.queue(...)`` and ``app.add_queue(...)`` define a queue on
one App, whose workers serve it and whose enqueues check against it; another App in the same
process does not see it. A stand-alone ``durably.Queue(...)`` is adopted by the App that
enqueues onto it, and is a deprecated process-wide fallback only while it lives.

(Limits in the store's claims and across processes: tests/test_queues.py and
tests/e2e/test_queue_limits.py.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import durably

FAST = durably.WorkerOptions(lease_seconds=2.0, poll_interval=0.02)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def two_apps(db_url: str) -> Iterator[tuple[durably.App, durably.App]]:
    """Two Apps on one database, each with a workflow ``echo``."""
    apps = (durably.App(db_url, worker_options=FAST), durably.App(db_url, worker_options=FAST))
    for app in apps:
        app.workflow(name="echo")(lambda x: x)
    try:
        yield apps
    finally:
        for app in apps:
            app.close()


def test_an_app_queue_is_seen_by_its_app_only(two_apps: tuple[durably.App, durably.App]) -> None:
    a, b = two_apps
    name = _name("mine")
    queue = a.queue(name, concurrency=3, priority=False)
    assert queue.app is a and a.registry.queue(name) is queue
    assert b.registry.queue(name) is None and name not in b.registry.queue_names()
    assert name in a.registry.queue_names() and a.registry.serves_queue(name)
    assert not b.registry.serves_queue(name) and b.registry.serves_queue("default")
    # the App's definition is what its enqueues check; b has none of that name
    with pytest.raises(durably.ConfigurationError, match="priority=True"):
        a.enqueue(name, "echo", 1, priority=3)
    b.enqueue(name, "echo", 2, priority=3)
    with a, b:  # each worker registers the queues it serves
        served = [name in w.queues for w in a.list_workers()]
    assert sorted(served) == [False, True]  # a's worker serves it, b's does not


def test_an_app_queue_is_served_with_its_limits(db_url: str) -> None:
    app = durably.App(db_url, worker_options=FAST)
    lock, running, peak = threading.Lock(), [0], [0]

    @app.step()
    async def hold(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            await asyncio.sleep(0.05)
        finally:
            with lock:
                running[0] -= 1
        return i

    @app.workflow()
    async def job(i: int) -> int:
        return await hold(i)

    queue = app.queue(_name("limited"), concurrency=2)
    try:
        with app:
            handles = [queue.enqueue(job, i) for i in range(4)]
            handles += [app.enqueue(queue.name, "job", i) for i in range(4, 8)]  # by name
            assert [h.result(timeout=30) for h in handles] == list(range(8))
        assert peak[0] == 2
        assert {i.queue for i in app.list_workflows()} == {queue.name}
    finally:
        app.close()


def test_a_queue_of_another_app_is_refused(two_apps: tuple[durably.App, durably.App]) -> None:
    a, b = two_apps
    queue = a.queue(_name("theirs"))
    with pytest.raises(durably.ConfigurationError, match="defined on another App"):
        queue.enqueue(b.registry.workflows["echo"], 1)
    with pytest.raises(durably.ConfigurationError, match="defined on another App"):
        b.enqueue(queue, "echo", 1)
    with pytest.raises(durably.ConfigurationError, match="defined on another App"):
        b.add_queue(queue)
    assert b.list_workflows() == [] and b.registry.queues == {}


def test_a_standalone_queue_is_adopted_by_the_app_that_enqueues_onto_it(
    two_apps: tuple[durably.App, durably.App],
) -> None:
    a, b = two_apps
    queue = durably.Queue(_name("loose"), worker_concurrency=1)
    with pytest.raises(durably.ConfigurationError, match="priority=True"):
        queue.enqueue(a.registry.workflows["echo"], 1, priority=1)
    assert a.registry.queues == {}  # a refused enqueue adopts nothing
    queue.enqueue(a.registry.workflows["echo"], 1)
    assert a.registry.queues == {queue.name: queue} and queue.app is None
    assert b.registry.queues == {}
    b.enqueue(queue, "echo", 2)
    assert b.registry.queues == {queue.name: queue}


def test_add_queue_takes_a_queue_out_of_the_process_fallback(
    two_apps: tuple[durably.App, durably.App],
) -> None:
    a, b = two_apps
    queue = durably.Queue(_name("made-elsewhere"), concurrency=4)
    assert b.registry.queue(queue.name) is queue  # stand-alone: the deprecated fallback
    assert a.add_queue(queue) is queue and queue.app is a
    assert b.registry.queue(queue.name) is None
    assert queue.name not in b.registry.queue_names()


def test_the_app_definition_holds_over_a_standalone_queue_of_that_name(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = durably.App(db_url)
    wf = app.workflow(name="echo")(lambda x: x)
    name = _name("both")
    defined = app.queue(name, priority=True)
    loose = durably.Queue(name)  # no priority: the App's definition is the one checked
    try:
        with caplog.at_level(logging.WARNING, logger="durably.queues"):
            handle = loose.enqueue(wf, 1, priority=5)
        assert handle.info().priority == 5 and app.registry.queue(name) is defined
        assert "this App defines" in caplog.text
    finally:
        app.close()


def test_a_redefinition_on_one_app_replaces_the_earlier(caplog: pytest.LogCaptureFixture) -> None:
    app = durably.App("sqlite:///never-opened.db")
    name = _name("again")
    app.queue(name, concurrency=1)
    with caplog.at_level(logging.WARNING, logger="durably.queues"):
        second = app.queue(name, concurrency=2)
    assert app.registry.queue(name) is second and "redefined" in caplog.text


def _make_and_drop(name: str) -> None:
    durably.Queue(name, concurrency=1)


def test_a_standalone_queue_no_one_holds_is_no_longer_served(db_url: str) -> None:
    """The process-wide fallback leaked every queue ever defined into every App's workers;
    now it holds the live stand-alone queues only."""
    app = durably.App(db_url, worker_options=FAST)
    app.workflow(name="echo")(lambda x: x)
    gone, kept = _name("gone"), durably.Queue(_name("kept"))
    _make_and_drop(gone)
    gc.collect()
    try:
        with app:
            (me,) = app.list_workers()
        assert kept.name in me.queues  # still served, as documented before app.queue
        assert gone not in me.queues
    finally:
        app.close()


def test_the_old_process_lookups_are_deprecated() -> None:
    from durably.queues import defined_queue, defined_queues

    loose = durably.Queue(_name("old"))
    with pytest.deprecated_call():
        assert defined_queue(loose.name) is loose
    with pytest.deprecated_call():
        assert loose.name in defined_queues()


def test_bad_app_queue_definitions_are_refused_and_define_nothing() -> None:
    app = durably.App("sqlite:///never-opened.db")
    with pytest.raises(TypeError, match="concurency"):
        app.queue("q", concurency=2)  # type: ignore[call-arg]
    with pytest.raises(durably.ConfigurationError, match="concurrency must be a whole number"):
        app.queue("q", concurrency=0)
    with pytest.raises(durably.ConfigurationError, match="invalid queue name"):
        app.queue("not ok")
    assert app.registry.queues == {}


def test_durably_worker_serves_the_queues_of_its_app_only(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "twoapps.py").write_text(
        textwrap.dedent(
            f"""
            import durably
            app = durably.App({db_url!r})
            other = durably.App({db_url!r})
            app.queue("gpu", worker_concurrency=1)
            other.queue("cpu", concurrency=2)

            @app.workflow()
            def render(x: int) -> int:
                return x + 1
            """
        )
    )
    package_root = Path(durably.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(package_root)])}
    worker = subprocess.Popen(
        [sys.executable, "-m", "durably.cli", "worker", "twoapps:app"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    client = durably.App(db_url)
    try:
        deadline = time.monotonic() + 30
        while not client.list_workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        (info,) = client.list_workers()
        assert info.queues == ["default", "gpu"]
        assert client.enqueue("gpu", "render", 1).result(timeout=30) == 2
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        client.close()
    assert worker.returncode == 0, err
