"""The HTTP/1.1 protocol ``durably server`` runs under uvicorn: uvicorn's h11 protocol with a
deadline on each request head.

uvicorn bounds the idle time between requests (``timeout_keep_alive``, and only once a first
response went out) but not the time a client takes to send a request's line and headers: a
client that sends one byte a second holds its connection (and a file descriptor, and a place
under ``limit_concurrency``) as long as it likes. Here every connection that waits for a
request head (a new connection, or one whose last response went out) must receive that whole
head within ``head_timeout`` seconds, else it is closed, with a 408 if part of the head came.
The deadline does not cover request bodies or the time the application takes to answer.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DEFAULT_HEADER_TIMEOUT", "HeadTimeoutProtocol", "head_timeout_protocol"]

DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a client has to send a whole request head (``durably server --header-timeout``)."""


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head does not arrive within
    :attr:`head_timeout` seconds (see :func:`head_timeout_protocol` for other deadlines)."""

    head_timeout: float = DEFAULT_HEADER_TIMEOUT
    """Seconds from the start of the wait for a request head to the whole head received."""

    _head_timer: asyncio.TimerHandle | None = None
    _head_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None and data:
            self._head_begun = True
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        """Whether the connection waits for (the rest of) a request head."""
        cycle = self.cycle
        waiting = cycle is None or cycle.response_complete
        return waiting and not self.transport.is_closing()

    def _watch_head(self) -> None:
        """Start the deadline when a wait for a head begins; stop it once the head is in."""
        if not self._awaiting_head():
            self._stop_head_timer()
        elif self._head_timer is None:
            self._head_begun = False
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head():
            return
        # a client that sent part of a head is told why (not one still sending the body of a
        # request already answered: it is only closed)
        if self._head_begun and self.conn.their_state is h11.IDLE:
            body = (
                f"the request line and headers did not arrive within {self.head_timeout:g} s; "
                "send each request's head at once\n"
            ).encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HeadTimeoutProtocol]:
    """The protocol class to give uvicorn (``uvicorn.run(app, http=...)``) for a request-head
    deadline of ``seconds``."""
    if not seconds > 0:
        raise ValueError(f"the header timeout must be > 0 seconds, got {seconds!r}")
    return type("HeadTimeoutProtocol", (HeadTimeoutProtocol,), {"head_timeout": float(seconds)})
