"""The durably command, run as a real subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import durably

DURABLY = [sys.executable, "-m", "durably.cli"]


def test_migrate_creates_the_schema(db_url: str) -> None:
    db = db_url
    proc = subprocess.run([*DURABLY, "migrate", "--db", db], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    created = re.search(r"created durably's schema at version (\d+)$", proc.stdout.strip())
    assert created is not None, proc.stdout  # a new database: not "up to date"
    assert durably.App(db).list_workflows() == []
    again = subprocess.run([*DURABLY, "migrate", "--db", db], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(
        f"is up to date (durably's schema at version {created.group(1)})"
    )


def test_small_usage_messages(tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*DURABLY, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=60
        )

    subprocess.run([*DURABLY, "migrate", "--db", "sqlite:///t.db"], cwd=tmp_path, check=True)
    empty = run("start", "", "--db", "sqlite:///t.db")
    assert empty.returncode == 2 and "NAME is empty" in empty.stderr
    data = run("send", "w-1", "go", "--data", "{bad", "--db", "sqlite:///t.db")
    assert data.returncode == 2 and '--data \'{"by": "ana"}\'' in data.stderr
    assert "kwargs" not in data.stderr and "[1, " not in data.stderr  # not --input's shape
    given = run("start", "x", "--input", "[1,", "--db", "sqlite:///t.db")
    assert given.returncode == 2 and """--input '{"kwargs": {"n": 1}}'""" in given.stderr
    mysql = run("ls", "--db", "mysql://localhost/x")
    assert mysql.returncode == 2, mysql.stderr
    for form in ("'mysql://'", "sqlite:///", "bare file path", "postgresql://", "postgres://"):
        assert form in mysql.stderr, mysql.stderr


def test_bad_app_spec_is_a_clear_error(tmp_path: Path) -> None:
    for spec, message in [("nocolon", "MODULE:APP"), ("no_such_mod:app", "cannot import")]:
        proc = subprocess.run(
            [*DURABLY, "worker", spec], capture_output=True, text=True, cwd=tmp_path
        )
        assert proc.returncode == 2 and message in proc.stderr


def test_worker_command_runs_an_apps_workflows(tmp_path: Path, db_url: str) -> None:
    db = db_url
    (tmp_path / "myflows.py").write_text(
        textwrap.dedent(
            f"""
            import durably
            app = durably.App({db!r})

            @app.step()
            def double(x: int) -> int:
                return 2 * x

            @app.workflow()
            def twice(x: int) -> int:
                return double(double(x))
            """
        )
    )
    package_root = Path(durably.__file__).resolve().parents[1]  # the durably under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(package_root)])}
    worker = subprocess.Popen(
        [*DURABLY, "worker", "myflows:app"], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    try:
        client = durably.App(db)
        deadline = time.monotonic() + 20
        while not client.store.list_workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        handle = client.start("twice", 5)  # by name: the client has no code
        assert handle.result(timeout=30) == 20
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert client.store.list_workers() == []  # it deregistered on SIGTERM
    client.close()


def test_worker_serves_only_the_queues_it_is_given(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "gpuflows.py").write_text(
        textwrap.dedent(
            f"""
            import durably
            app = durably.App({db_url!r})
            gpu = durably.Queue("gpu", concurrency=2)
            durably.Queue("emails")

            @app.workflow()
            def render(x: int) -> int:
                return x + 1
            """
        )
    )
    package_root = Path(durably.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(package_root)])}
    bad = subprocess.run(
        [*DURABLY, "worker", "gpuflows:app", "--queue", "not ok"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "invalid queue name 'not ok'" in bad.stderr, bad.stderr
    worker = subprocess.Popen(
        [*DURABLY, "worker", "gpuflows:app", "--queue", "gpu"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE,
    )  # fmt: skip
    client = durably.App(db_url)
    try:
        deadline = time.monotonic() + 20
        while not client.list_workers() and time.monotonic() < deadline:
            time.sleep(0.05)
        (info,) = client.list_workers()
        assert info.queues == ["gpu"] and info.workflows == ["render"]
        on_gpu = client.enqueue("gpu", "render", 1)
        elsewhere = client.enqueue("emails", "render", 2)
        assert on_gpu.result(timeout=30) == 2
        time.sleep(0.5)
        assert elsewhere.status() is durably.WorkflowStatus.PENDING
        assert elsewhere.info().unserved and not on_gpu.info().unserved
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
        client.close()
    assert worker.returncode == 0, err
