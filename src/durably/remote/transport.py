"""HTTP/1.1 to a ``durably server``: one keep-alive connection per thread, JSON in and out, and
the API's error answers turned into durably's exceptions."""

from __future__ import annotations

import http.client
import json
import select
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from durably.errors import (
    ConfigurationError,
    DurablyError,
    PayloadTooLargeError,
    WorkflowIdConflictError,
    WorkflowNotFoundError,
    WorkflowStateError,
)
from durably.remote.errors import AuthenticationError, ServerError, ServerUnreachableError
from durably.storage.urls import redact_url
from durably.tokens import check_token

__all__ = ["Response", "Transport", "segment"]

_STALE = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)
"""What a keep-alive connection the server closed while idle raises on reuse."""


def segment(value: str) -> str:
    """``value`` as one URL path segment (ids may hold ``: @ = +``)."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class Response:
    """A successful answer: its status, headers (lower-case names) and decoded JSON body (None
    if empty)."""

    status: int
    headers: Mapping[str, str]
    body: Any


class Transport:
    """Sends requests to ``base_url`` (``http://`` or ``https://``, optionally with a path
    prefix) with the bearer ``token``; ``decode`` turns response text into values."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout: float,
        decode: Callable[[str], Any],
        user_agent: str,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                "server URL must look like http://HOST:PORT (or https://...), "
                f"got {redact_url(base_url)!r}"
            )
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.url = redact_url(base_url.rstrip("/"))
        """The server's URL as messages show it (a password in it is not used, and hidden)."""
        self._https = parts.scheme == "https"
        self._netloc = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        """Seconds to wait for the server to answer a request."""
        self._decode = decode
        self._headers = {"Accept": "application/json", "User-Agent": user_agent}
        if token:
            check_token(token, "the token (token=, --token or $DURABLY_TOKEN)")
            self._headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._all_lock = threading.Lock()
        # connections of a transport dropped without close() are closed when it is collected
        weakref.finalize(self, _close_all, self._all, self._all_lock)

    def close(self) -> None:
        """Close every thread's connection (a later request opens a new one)."""
        _close_all(self._all, self._all_lock)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it was used before (may have gone stale)."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and _dropped(conn.sock):
            conn.close()
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._netloc, timeout=self.timeout)
            self._local.conn = conn
        if conn.sock is None:  # (re)opened by this request: close() must reach it
            with self._all_lock:
                if conn not in self._all:
                    self._all.append(conn)
            return conn, False
        return conn, True

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        encoded: str | None = None,
        timeout: float | None = None,
        idempotent: bool = True,
        not_found: type[DurablyError] = WorkflowNotFoundError,
        workflow_id: str | None = None,
    ) -> Response:
        """Send ``method path`` (``body`` as JSON, or ``encoded`` JSON text) and return the
        answer; an error answer raises (404 as ``not_found``, 409 WorkflowStateError
        (WorkflowIdConflictError for code ``id_conflict``), 400
        ConfigurationError, 401 AuthenticationError, 413 PayloadTooLargeError, 503 and network
        failures ServerUnreachableError). ``timeout`` (s) overrides the default for this call.
        A request on a connection the server closed while idle is sent again when
        ``idempotent``."""
        target = self._prefix + path + (f"?{urlencode(query)}" if query else "")
        headers = dict(self._headers)
        data: bytes | None = None
        if encoded is None and body is not None:
            encoded = json.dumps(body, separators=(",", ":"))
        if encoded is not None:
            data = encoded.encode("utf-8")
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                conn.timeout = self.timeout if timeout is None else timeout
                if conn.sock is not None:
                    conn.sock.settimeout(conn.timeout)
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
            except _STALE as exc:
                conn.close()
                if reused and idempotent and attempt == 1:
                    continue
                raise self._unreachable(method, target, exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise self._unreachable(method, target, exc) from exc
            if resp.will_close:
                conn.close()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return self._answer(resp.status, headers, text, not_found, workflow_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, method: str, target: str, exc: BaseException) -> ServerUnreachableError:
        reason = str(exc) or type(exc).__name__
        return ServerUnreachableError(
            f"cannot reach the durably server at {self.url} ({method} {target}: {reason}); check "
            "the URL (--server / DURABLY_SERVER) and that `durably server` runs there"
        )

    def _answer(
        self,
        status: int,
        headers: Mapping[str, str],
        text: str,
        not_found: type[DurablyError],
        workflow_id: str | None,
    ) -> Response:
        body: Any = None
        if text:
            try:
                body = self._decode(text) if status < 400 else json.loads(text)
            except (ValueError, DurablyError):
                if status < 400:
                    raise ServerError(
                        f"{self.url} answered {status} with a body that is not JSON: "
                        f"{text[:200]!r}; is it a durably server?",
                        status=status,
                    ) from None
        if status < 400:
            return Response(status, headers, body)
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = f"HTTP {status}" + (f": {text[:200]}" if text else "")
        raise _error(status, code, message, self.url, not_found, workflow_id)


def _error(
    status: int,
    code: object,
    message: str,
    url: str,
    not_found: type[DurablyError],
    workflow_id: str | None,
) -> DurablyError:
    if status == 401:
        return AuthenticationError(
            f"the durably server at {url} refused the request: {message} (pass its token: "
            "Client(url, token=...), --token or DURABLY_TOKEN)"
        )
    if status == 404 and code in ("not_found", None):
        return not_found(message, workflow_id=workflow_id)
    if status == 409 and code == "id_conflict":
        return WorkflowIdConflictError(message, workflow_id=workflow_id)
    if status == 409:
        return WorkflowStateError(message, workflow_id=workflow_id)
    if status == 413:
        return PayloadTooLargeError(message, workflow_id=workflow_id)
    if status in (400, 422):
        return ConfigurationError(message, workflow_id=workflow_id)
    if status == 503:
        return ServerUnreachableError(f"the durably server at {url} is unavailable: {message}")
    return ServerError(
        f"the durably server at {url} answered {status} ({code or 'error'}): {message}",
        status=status,
        workflow_id=workflow_id,
    )


def _close_all(conns: list[http.client.HTTPConnection], lock: threading.Lock) -> None:
    with lock:
        closing = list(conns)
        conns.clear()
    for conn in closing:
        conn.close()


def _dropped(sock: Any) -> bool:
    """Whether an idle keep-alive socket was closed by the server (readable while idle means
    EOF or junk: either way not reusable)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
