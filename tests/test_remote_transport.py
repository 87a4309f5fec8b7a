"""The Client's HTTP transport against a scripted stdlib HTTP server: keep-alive connections the
server drops, error answers mapped to durably's exceptions, ids quoted in paths."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import durably
from durably.remote import ServerError, ServerUnreachableError
from durably.remote.transport import Transport

# path -> (status, body text, close the connection after answering, answer at all)
SCRIPT: dict[str, tuple[int, str, bool, bool]] = {}
SEEN: list[tuple[str, str, int]] = []  # (method, raw path, connection number)
CONNECTIONS: dict[int, int] = {}  # client port -> connection number


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        number = CONNECTIONS.setdefault(self.client_address[1], len(CONNECTIONS) + 1)
        SEEN.append((self.command, self.path, number))
        status, body, close, answer = SCRIPT.get(self.path.split("?")[0], (200, "{}", False, True))
        if not answer:
            self.close_connection = True
            return
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = close  # closed without saying so: the client finds out

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture
def transport() -> Iterator[Transport]:
    SCRIPT.clear()
    SEEN.clear()
    CONNECTIONS.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    t = Transport(
        f"http://127.0.0.1:{server.server_address[1]}/base/",
        token="tok", timeout=10, decode=durably.JsonSerializer().decode, user_agent="test",
    )  # fmt: skip
    try:
        yield t
    finally:
        t.close()
        server.shutdown()
        server.server_close()


def test_one_connection_is_kept_alive_and_a_dropped_one_replaced(transport: Transport) -> None:
    for _ in range(3):
        assert transport.request("GET", "/v1/a").body == {}
    assert {n for _, _, n in SEEN} == {1}  # one keep-alive connection
    SCRIPT["/base/v1/closing"] = (200, '{"ok": 1}', True, True)
    assert transport.request("GET", "/v1/closing").body == {"ok": 1}
    assert transport.request("GET", "/v1/a").body == {}  # on a new connection
    assert [n for _, _, n in SEEN][-2:] == [1, 2]


def test_a_request_the_server_drops_unanswered_is_resent_only_when_idempotent(
    transport: Transport,
) -> None:
    transport.request("GET", "/v1/a")
    SCRIPT["/base/v1/drop"] = (200, "{}", False, False)
    with pytest.raises(ServerUnreachableError, match="/base/v1/drop"):
        transport.request("POST", "/v1/drop", body={}, idempotent=False)
    assert [p for _, p, _ in SEEN].count("/base/v1/drop") == 1
    transport.request("GET", "/v1/a")
    with pytest.raises(ServerUnreachableError):
        transport.request("GET", "/v1/drop")  # resent once on a new connection, dropped again
    assert [p for _, p, _ in SEEN].count("/base/v1/drop") == 3


def test_error_answers_become_durably_errors(transport: Transport) -> None:
    def error(status: int, code: str, message: str = "says what to do") -> str:
        SCRIPT[f"/base/e{status}"] = (status, json.dumps({"error": {"code": code,
                                                                     "message": message}}),
                                      False, True)  # fmt: skip
        return f"/e{status}"

    cases: list[tuple[str, type[Exception]]] = [
        (error(400, "bad_request"), durably.ConfigurationError),
        (error(404, "not_found"), durably.WorkflowNotFoundError),
        (error(409, "conflict"), durably.WorkflowStateError),
        (error(413, "payload_too_large"), durably.PayloadTooLargeError),
        (error(503, "unavailable"), ServerUnreachableError),
        (error(500, "internal"), ServerError),
    ]
    for path, kind in cases:
        with pytest.raises(kind, match="says what to do"):
            transport.request("GET", path, workflow_id="w-1")
    with pytest.raises(durably.UnknownWorkflowError):
        transport.request("GET", "/e404", not_found=durably.UnknownWorkflowError)
    SCRIPT["/base/html"] = (200, "<html>hi</html>", False, True)
    with pytest.raises(ServerError, match="not JSON"):
        transport.request("GET", "/html")


def test_tagged_values_are_decoded_and_ids_quoted(transport: Transport) -> None:
    SCRIPT["/base/v1/workflows/a%3Ab%40c%2Bd/state"] = (
        200, '{"state": {"at": {"$datetime": "2025-01-31T12:00:00+00:00"}}}', False, True,
    )  # fmt: skip
    from durably.remote.transport import segment

    body = transport.request("GET", f"/v1/workflows/{segment('a:b@c+d')}/state").body
    assert body["state"]["at"].year == 2025
    assert SEEN[-1][1] == "/base/v1/workflows/a%3Ab%40c%2Bd/state"
