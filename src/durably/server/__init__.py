"""``durably server``: the HTTP API (JSON + OpenAPI, bearer-token auth, Dapr workflow routes).

Needs the ``server`` extra (``pip install 'durably[server]'``: Starlette, uvicorn, pydantic).
Only this package imports the web framework, and only when the app is built: :func:`create_app`
gives the ASGI app; ``durably server`` serves it (see :mod:`durably.server.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import DEFAULT_MAX_BODY_BYTES, create_app

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:  # import Starlette on first use, so `durably --help` works without it
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
