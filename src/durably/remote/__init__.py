"""Talking to a ``durably server`` over HTTP: the transport, the wire format and the handles of
:class:`durably.Client` (standard library only)."""

from __future__ import annotations

from durably.remote.errors import AuthenticationError, ServerError, ServerUnreachableError

__all__ = ["AuthenticationError", "ServerError", "ServerUnreachableError"]
