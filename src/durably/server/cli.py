"""``durably server``: its options, and serving the API with uvicorn.

``durably server --db URL [--host 127.0.0.1] [--port 8233] [--token T] [--max-body-bytes N]
[--header-timeout S] [--keep-alive-timeout S] [--limit-concurrency N] [--app MODULE:APP |
--codecs MODULE:OBJ]``.
The database comes from ``--db``, else the ``--app``'s, else ``$DURABLY_DB``; the token from
``--token`` or ``$DURABLY_TOKEN``; the payload codecs that read stored values from ``--app``,
``--codecs`` or ``$DURABLY_CODECS`` (:mod:`durably.codec_options`; without them encoded values
are answered as undecodable, marked encoded). The server refuses a non-loopback ``--host``
without a token, and a SQLite file that does not exist (``durably migrate`` or a worker
creates it). Slow or idle clients are bounded by the header and keep-alive timeouts, and the
number of connections and requests in progress by the concurrency limit
(:mod:`durably.server.protocol`).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

from durably.argtypes import seconds, whole_number
from durably.codec_options import add_codec_arguments, codec_options
from durably.errors import ConfigurationError
from durably.tokens import check_token

__all__ = ["DEFAULT_PORT", "add_arguments", "is_loopback", "run"]

DEFAULT_PORT = 8233
DEFAULT_MAX_BODY_BYTES = 1_048_576  # the same as durably.server.app's (no Starlette import here)
DEFAULT_HEADER_TIMEOUT = 10.0  # the same as durably.server.protocol's (no uvicorn import here)
DEFAULT_KEEP_ALIVE_TIMEOUT = 5
DEFAULT_LIMIT_CONCURRENCY = 1000


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {number}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``durably server`` (also ``python -m durably.server``)."""
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="database URL (default: $DURABLY_DB, else sqlite:///durably.db); a SQLite file "
        "must exist (durably migrate or a worker creates it)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other than a loopback "
        "address needs a token)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token every request must carry (default: $DURABLY_TOKEN; "
        "none: no auth, loopback only)",
    )
    limits = [  # (option, type, default, metavar, help)
        ("--max-body-bytes", whole_number(1), DEFAULT_MAX_BODY_BYTES, "N",
         "largest request body accepted (default 1 MiB)"),
        ("--header-timeout", seconds(3600), DEFAULT_HEADER_TIMEOUT, "S",
         "close a connection whose request line and headers have not all arrived S seconds "
         "after it opened or after its previous response (408 if part came; default "
         f"{DEFAULT_HEADER_TIMEOUT:g})"),
        ("--keep-alive-timeout", whole_number(1), DEFAULT_KEEP_ALIVE_TIMEOUT, "S",
         "close a connection idle S whole seconds after a response (default "
         f"{DEFAULT_KEEP_ALIVE_TIMEOUT}; behind a proxy, keep it above the proxy's own)"),
        ("--limit-concurrency", whole_number(1), DEFAULT_LIMIT_CONCURRENCY, "N",
         "answer 503 to new requests while N connections are open or N requests are in "
         f"progress (default {DEFAULT_LIMIT_CONCURRENCY})"),
    ]  # fmt: skip
    for option, kind, default, metavar, text in limits:
        parser.add_argument(option, type=kind, default=default, metavar=metavar, help=text)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every request (INFO level)"
    )
    add_codec_arguments(parser)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error(message: str) -> int:
    print(f"durably server: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Serve the API until SIGINT/SIGTERM; returns the exit code (2: bad configuration, such as
    a SQLite database that does not exist or cannot be opened)."""
    token = args.token if args.token is not None else os.environ.get("DURABLY_TOKEN") or None
    if token is not None:
        try:
            check_token(token, "--token" if args.token is not None else "$DURABLY_TOKEN")
        except ConfigurationError as exc:  # its message never shows the token
            return _error(str(exc))
    if token is None and not is_loopback(args.host):
        return _error(
            f"refusing to listen on {args.host!r} without a token: anyone who can reach it could "
            "start and stop workflows. Pass --token (or set $DURABLY_TOKEN), or listen on "
            "127.0.0.1"
        )
    try:
        import uvicorn

        from durably.server.app import create_app
        from durably.server.protocol import head_timeout_protocol
    except ImportError as exc:
        return _error(f"{exc}; install the server extra: pip install 'durably[server]'")
    from durably.errors import DurablyError
    from durably.storage import missing_database, resolve_database_url
    from durably.storage.urls import scrub

    try:
        options = codec_options(args)
    except DurablyError as exc:  # its message names the option and the object, never a key
        return _error(str(exc))
    database = args.db or options.database_url
    missing = missing_database(database)
    if missing is not None:  # serving it would create an empty database: a typo in --db
        return _error(missing.message)
    try:
        client = options.open(database)
        client.list_workflows(limit=1)  # opens and migrates: a bad URL fails now, not per request
    except DurablyError as exc:
        return _error(str(exc))
    except Exception as exc:  # the database driver's own error (unreachable server...)
        detail = scrub(str(exc), resolve_database_url(database))
        return _error(f"cannot open the database: {type(exc).__name__}: {detail}")
    app = create_app(client, token=token, max_body_bytes=args.max_body_bytes)
    verbose = bool(getattr(args, "verbose", False))
    logging.getLogger("durably.server").setLevel(logging.INFO if verbose else logging.WARNING)
    codecs = ", ".join(type(c).__name__ for c in client.codecs)  # names only, never keys
    print(
        f"durably server: serving {client.safe_database_url} on http://{args.host}:{args.port} "
        f"({'token required' if token else 'no auth'}"
        f"{'; payload codecs: ' + codecs if codecs else ''})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info" if verbose else "warning",
        access_log=verbose,
        timeout_graceful_shutdown=5,
        http=head_timeout_protocol(args.header_timeout),
        timeout_keep_alive=args.keep_alive_timeout,
        limit_concurrency=args.limit_concurrency,
    )
    return 0
