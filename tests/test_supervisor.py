"""``durably worker MODULE:APP --processes N``: a supervisor over N real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import durably
from durably.supervisor import resolve_processes

DURABLY = [sys.executable, "-m", "durably.cli"]


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _command_env(tmp_path: Path) -> dict[str, str]:
    """The environment for the command: tmp_path and the durably under test on its path."""
    package_root = Path(durably.__file__).resolve().parents[1]  # the durably under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(package_root)])}
    env.pop("DURABLY_WORKER_PROCESS", None)
    return env


@pytest.fixture
def flows(tmp_path: Path, db_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A module of workflows in tmp_path; yields (database URL, environment for the command).

    On each backend (``db_url``)."""
    db = db_url
    (tmp_path / "myflows.py").write_text(
        textwrap.dedent(
            f"""
            import time
            import durably
            app = durably.App({db!r})

            @app.step()
            def double(x: int) -> int:
                time.sleep(0.01)
                return 2 * x

            @app.workflow()
            def twice(x: int) -> int:
                return double(double(x))
            """
        )
    )
    yield db, _command_env(tmp_path)


def _supervise(
    tmp_path: Path, env: dict[str, str], processes: int, stderr: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """``durably worker myflows:app --processes N`` in tmp_path."""
    return subprocess.Popen(
        [*DURABLY, "worker", "myflows:app", "--processes", str(processes)],
        cwd=tmp_path,
        env=env,
        stderr=stderr,
    )


def _pids(client: durably.App) -> set[int]:
    return {w.pid for w in client.store.list_workers()}


def _run_batch(client: durably.App, start: int, count: int) -> None:
    handles = [client.start("twice", i) for i in range(start, start + count)]
    assert [h.result(timeout=60) for h in handles] == [4 * i for i in range(start, start + count)]


def test_processes_are_parsed() -> None:
    assert resolve_processes("3") == 3
    assert resolve_processes("auto") == resolve_processes("0") == (os.cpu_count() or 1)
    with pytest.raises(ValueError):
        resolve_processes("-1")
    with pytest.raises(ValueError):
        resolve_processes("many")


def test_three_processes_serve_and_stop_cleanly(
    tmp_path: Path, flows: tuple[str, dict[str, str]]
) -> None:
    db, env = flows
    sup = _supervise(tmp_path, env, 3)
    client = durably.App(db)
    try:
        _wait_for(lambda: len(_pids(client)) == 3)
        assert sup.pid not in _pids(client)  # the supervisor is not a worker itself
        _run_batch(client, 0, 60)
    finally:
        sup.send_signal(signal.SIGTERM)
        _, err = sup.communicate(timeout=60)
    assert sup.returncode == 0, err.decode()
    assert client.store.list_workers() == []  # every child deregistered on SIGTERM
    client.close()


def test_a_killed_child_is_restarted(tmp_path: Path, flows: tuple[str, dict[str, str]]) -> None:
    db, env = flows
    sup = _supervise(tmp_path, env, 2)
    client = durably.App(db)
    try:
        _wait_for(lambda: len(_pids(client)) == 2)
        before = _pids(client)
        handles = [client.start("twice", i) for i in range(30)]
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        # The supervisor starts a replacement, which registers with a new pid.
        _wait_for(lambda: len(_pids(client) - before) == 1)
        assert [h.result(timeout=60) for h in handles] == [4 * i for i in range(30)]
        _run_batch(client, 100, 20)  # and work keeps completing afterwards
        # The surviving workers notice the dead pid and remove its row.
        _wait_for(lambda: victim not in _pids(client))
    finally:
        sup.send_signal(signal.SIGTERM)
        _, err = sup.communicate(timeout=60)
    assert sup.returncode == 0, err.decode()
    assert "died unexpectedly" in err.decode() and "restarting" in err.decode()
    assert client.store.list_workers() == []
    client.close()


def test_a_bad_app_fails_fast(tmp_path: Path) -> None:
    env = _command_env(tmp_path)  # no database: it fails before opening one
    started = time.monotonic()
    proc = subprocess.run(
        [*DURABLY, "worker", "no_such_mod:app", "--processes", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "cannot import" in proc.stderr  # the child's own message
    assert "failed at startup" in proc.stderr  # and the supervisor's
    assert time.monotonic() - started < 20


def test_a_child_that_keeps_crashing_at_startup_gives_up(tmp_path: Path) -> None:
    env = _command_env(tmp_path)  # no database: it fails before opening one
    (tmp_path / "crashy.py").write_text("raise RuntimeError('boom')\n")
    proc = subprocess.run(
        [*DURABLY, "worker", "crashy:app", "--processes", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "RuntimeError: boom" in proc.stderr
    assert "restarting in" in proc.stderr  # it retried with a backoff...
    assert "failed at startup 5 times in a row" in proc.stderr  # ...then gave up


def test_a_child_that_was_up_is_replaced_at_once_and_failures_in_a_row_back_off() -> None:
    from durably.supervisor import BACKOFF_INITIAL, STARTUP_GRACE, Supervisor, _Child

    class Exited:
        pid = 4242

    sup = Supervisor("mod:app", 1)
    child = _Child(0, proc=Exited(), started_at=time.monotonic() - STARTUP_GRACE - 60)  # type: ignore[arg-type]
    sup._on_exit(child, -9)  # killed after a long run: its workflows wait for a replacement
    assert child.restart_at is not None and child.restart_at <= time.monotonic()
    child.proc, child.started_at = Exited(), time.monotonic()  # type: ignore[assignment]
    sup._on_exit(child, 1)  # died again right after starting: back off
    assert child.restart_at is not None
    assert child.restart_at - time.monotonic() > BACKOFF_INITIAL / 2
    assert sup._failed is None


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != b"Z":
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _serving_and_standby(sup: subprocess.Popen[bytes], client: durably.App) -> tuple[set[int], int]:
    """Once a 2-process supervisor is up: its registered children, and its standby (a child
    that is not registered: not serving)."""
    _wait_for(lambda: len(_pids(client)) == 2 and len(_children(sup.pid)) == 3)
    serving = _pids(client)
    (standby,) = _children(sup.pid) - serving
    return serving, standby


def test_a_killed_child_is_replaced_by_the_standby(
    tmp_path: Path, flows: tuple[str, dict[str, str]]
) -> None:
    """The supervisor keeps one standby process (app imported, database open, not serving); a
    child that dies is replaced by it (the same process starts serving), and a new standby
    is started. Stopping stops the standby too."""
    db, env = flows
    sup = _supervise(tmp_path, env, 2)
    client = durably.App(db)
    try:
        serving, standby = _serving_and_standby(sup, client)  # up, but not registered: not serving
        time.sleep(0.5)
        assert _pids(client) == serving and _alive(standby)
        handles = [client.start("twice", i) for i in range(30)]
        victim = min(serving)
        os.kill(victim, signal.SIGKILL)
        # the standby itself is the replacement: it registers, with its own pid
        _wait_for(lambda: _pids(client) - serving == {standby})
        assert [h.result(timeout=60) for h in handles] == [4 * i for i in range(30)]
        # and a new standby stands behind it
        _wait_for(lambda: len(_children(sup.pid) - _pids(client)) == 1)
        (second,) = _children(sup.pid) - _pids(client)
        assert second not in serving | {standby}
        _run_batch(client, 100, 20)
    finally:
        sup.send_signal(signal.SIGTERM)
        _, err = sup.communicate(timeout=60)
    assert sup.returncode == 0, err.decode()
    assert not _alive(second) and not _alive(standby)
    assert client.store.list_workers() == []
    client.close()


def test_a_standby_leaves_when_its_supervisor_is_gone(
    tmp_path: Path, flows: tuple[str, dict[str, str]]
) -> None:
    """A supervisor killed with SIGKILL cannot stop its standby: the standby sees its stdin
    end and exits by itself (it never serves)."""
    db, env = flows
    sup = _supervise(tmp_path, env, 2, stderr=subprocess.DEVNULL)
    client = durably.App(db)
    try:
        serving, standby = _serving_and_standby(sup, client)
        sup.kill()
        sup.wait(30)
        _wait_for(lambda: not _alive(standby))
        assert standby not in _pids(client)
    finally:
        for pid in serving:  # the orphaned children: stop them as their supervisor would
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _wait_for(lambda: not any(_alive(p) for p in serving))
        client.close()
