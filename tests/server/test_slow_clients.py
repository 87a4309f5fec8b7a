"""Slow and idle clients against a real ``durably server`` process on loopback: a connection
whose request head does not arrive within ``--header-timeout`` is closed (408 if part came),
while normal requests are served; keep-alive connections that keep sending requests live on;
``--limit-concurrency`` answers 503 past its limit."""

from __future__ import annotations

import http.client
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

import durably

from .conftest import Server, server_command, server_env, start_server

HEADER_TIMEOUT = 2.0
FUSE = 30.0  # seconds: only a server that never closes them gets anywhere near it
ENDLESS_HEAD = b"GET /v1/workflows HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 10_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('slow')}/slow.db"
    app = durably.App(url)
    _ = app.store  # the server refuses a missing SQLite file
    app.close()
    return url


@pytest.fixture(scope="module")
def guarded(db: str) -> Iterator[Server]:
    s = start_server(db, None, "--header-timeout", str(HEADER_TIMEOUT))
    yield s
    s.stop()


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


@dataclass
class SlowClients:
    """``count`` connections that send ``head`` one byte every ``interval`` seconds (``head``
    empty: they send nothing), read what comes back, and note when the server closes them."""

    port: int
    count: int
    head: bytes
    interval: float = 0.25
    connected: threading.Event = field(default_factory=threading.Event)
    answers: list[bytes] = field(default_factory=list)
    still_open: int = -1

    def run(self) -> None:
        socks = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(self.count)]
        self.connected.set()
        got = {s: b"" for s in socks}
        sent = dict.fromkeys(socks, 0)
        live = set(socks)
        deadline = time.monotonic() + FUSE
        while live and time.monotonic() < deadline:
            readable, _, _ = select.select(list(live), [], [], self.interval)
            for s in readable:
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    data = b""
                got[s] += data
                if not data:
                    live.discard(s)
            for s in live - set(readable):
                if sent[s] < len(self.head):
                    try:
                        sent[s] += s.send(self.head[sent[s] : sent[s] + 1])
                    except OSError:  # closed under us: the next select reads the rest
                        pass
        self.still_open = len(live)
        self.answers = [got[s] for s in socks]
        for s in socks:
            s.close()


def _drive(clients: SlowClients) -> threading.Thread:
    thread = threading.Thread(target=clients.run, daemon=True)
    thread.start()
    assert clients.connected.wait(FUSE)
    return thread


def test_slowloris_connections_are_closed_while_normal_requests_are_served(
    guarded: Server,
) -> None:
    slow = SlowClients(_port(guarded), 50, ENDLESS_HEAD)
    idle = SlowClients(_port(guarded), 10, b"")
    threads = [_drive(slow), _drive(idle)]
    # while they hold their connections, ordinary requests are answered
    for _ in range(3):
        assert httpx.get(f"{guarded.url}/v1/workflows", timeout=10).status_code == 200
    for thread in threads:
        thread.join(FUSE + 10)
    assert slow.still_open == 0 and idle.still_open == 0
    answered = [a for a in slow.answers if a]
    assert answered, "no slow client got an answer before its connection closed"
    assert all(a.startswith(b"HTTP/1.1 408 ") and b"--header-timeout" not in a for a in answered)
    assert all(b"did not arrive within 2 s" in a for a in answered)
    assert idle.answers == [b""] * 10  # nothing sent, nothing to answer: closed quietly
    assert httpx.get(f"{guarded.url}/healthz", timeout=10).status_code == 200


def test_a_busy_keep_alive_connection_outlives_the_header_timeout(guarded: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", _port(guarded), timeout=10)
    try:
        started = time.monotonic()
        answers = []
        sockets = set()
        # one connection, a request every half second: longer than the header timeout in all
        while time.monotonic() - started < 2 * HEADER_TIMEOUT:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            answers.append(response.status)
            sockets.add(id(conn.sock))  # http.client would open a new one after a close
            time.sleep(HEADER_TIMEOUT / 4)
        assert len(answers) >= 4 and set(answers) == {200} and len(sockets) == 1
    finally:
        conn.close()


def test_limit_concurrency_answers_503_past_the_limit(db: str) -> None:
    server = start_server(db, None, "--limit-concurrency", "3", "--header-timeout", "60")
    try:
        holders = [socket.create_connection(("127.0.0.1", _port(server))) for _ in range(3)]
        try:
            deadline = time.monotonic() + FUSE
            status = 0
            while time.monotonic() < deadline:  # until the server has accepted all three
                status = httpx.get(f"{server.url}/healthz", timeout=10).status_code
                if status == 503:
                    break
                time.sleep(0.05)
            assert status == 503
        finally:
            for s in holders:
                s.close()
        deadline = time.monotonic() + FUSE
        while httpx.get(f"{server.url}/healthz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "still 503 after the connections closed"
            time.sleep(0.05)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--header-timeout", "0"), ("--header-timeout", "nan"), ("--header-timeout", "-1"),
     ("--keep-alive-timeout", "0"), ("--keep-alive-timeout", "1.5"),
     ("--limit-concurrency", "0")],
)  # fmt: skip
def test_bad_limits_are_refused(db: str, option: str, value: str) -> None:
    done = subprocess.run(server_command(db, option, value, "--port", "1"), env=server_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert option in done.stderr and "Traceback" not in done.stderr
