"""The ASGI application of ``durably server``: the native API, the Dapr routes, the guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from durably.app import App
from durably.tokens import check_token

from .auth import Guard
from .endpoint import ServedApp, not_found
from .openapi import OPERATIONS, openapi
from .operation import routes

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]

DEFAULT_MAX_BODY_BYTES = 1_048_576
"""Default limit on a request body (1 MiB)."""


def create_app(
    database: str | App | None = None,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """The HTTP API as an ASGI app (serve it with uvicorn or any ASGI server).

    ``database``: a database URL (default ``$DURABLY_DB``) or a client :class:`durably.App`
    (closed when the server stops). A URL naming a SQLite file that does not exist raises
    :class:`durably.errors.DatabaseUnavailableError` (as ``durably server`` refuses it): create
    the database first (``durably migrate``, or a worker), or pass an App. ``token``: when
    set, every route but ``/healthz`` needs ``Authorization: Bearer <token>``.
    ``max_body_bytes``: larger request bodies get a 413.
    """
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
    if token is not None:
        check_token(token, "token")  # visible ASCII: every client sends it as the same bytes
    if not isinstance(database, App):
        from durably.storage import missing_database

        missing = missing_database(database)
        if missing is not None:  # serving it would create an empty database: a typo, surely
            raise missing
    client = database if isinstance(database, App) else App(database)
    served: ServedApp = client  # what the routes may use of it (never its store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            client.close()

    web = Starlette(
        routes=routes(OPERATIONS),
        middleware=[
            Middleware(
                Guard,
                token=token,
                max_body=max_body_bytes,
                open_paths=frozenset(op.path for op in OPERATIONS if not op.auth),
            )
        ],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    web.state.durably = served
    web.state.openapi = openapi()
    return web
