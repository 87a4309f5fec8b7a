"""``durably worker MODULE:APP`` and ``durably migrate``: what operating workers needs."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from durably.app import App
from durably.codec_options import load_object
from durably.errors import ConfigurationError
from durably.storage import open_store, redact_url, resolve_database_url
from durably.worker.supervisor import CHILD_ENV, GO, STANDBY_ENV, Supervisor, resolve_processes

__all__ = ["add_migrate", "add_worker", "load_app", "run_migrate", "run_worker"]

_FORMATTER = argparse.RawDescriptionHelpFormatter


def load_app(spec: str) -> App:
    """Import ``"package.module:attribute"`` and return the :class:`App` it names."""
    app = load_object(spec, shape="MODULE:APP", example="myapp.workflows:app", missing_ok=True)
    if not isinstance(app, App):
        raise ConfigurationError(
            f"{spec!r} is not a durably.App (found {type(app).__name__}); point at the App object"
        )
    return app


def _processes(value: str) -> int:
    try:
        return resolve_processes(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_worker(sub: Any) -> None:
    """The ``worker`` subcommand."""
    worker = sub.add_parser(
        "worker", help="run a worker for an app until SIGINT/SIGTERM",
        description="Run a worker that serves the workflows of an app, until SIGINT/SIGTERM. "
        "The app's database comes from its durably.App(...) (or $DURABLY_DB).",
        epilog="examples:\n  durably worker myapp.workflows:app\n"
        "  durably worker myapp.workflows:app --processes auto --queue gpu\n",
        formatter_class=_FORMATTER,
    )  # fmt: skip
    worker.add_argument("app", help="MODULE:APP, e.g. myapp.workflows:app")
    worker.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    worker.add_argument(
        "-p",
        "--processes",
        type=_processes,
        default=1,
        metavar="N",
        help="run N worker processes under a supervisor (0 or 'auto': one per CPU; default 1)",
    )
    worker.add_argument(
        "-q",
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="serve this queue (repeat for several); default: the 'default' queue and every "
        "durably.Queue the app's modules define",
    )
    worker.add_argument(
        "--version",
        default=None,
        metavar="V",
        help="the version of the app's code this worker runs (overrides durably.App(version=) "
        "and $DURABLY_VERSION): it runs the workflows started under V, and those it starts "
        "record V",
    )


def add_migrate(sub: Any) -> None:
    """The ``migrate`` subcommand."""
    migrate = sub.add_parser(
        "migrate", help="create or upgrade the database schema",
        description="Create or upgrade the database schema (workers and Apps also do it on "
        "first use).",
        epilog="examples:\n  durably migrate --db postgresql://user@host/db\n",
        formatter_class=_FORMATTER,
    )  # fmt: skip
    migrate.add_argument("--db", default=None, help="database URL (default: $DURABLY_DB)")


def run_worker(args: argparse.Namespace) -> int:
    """``durably worker``: serve until SIGINT/SIGTERM."""
    if args.processes > 1 and CHILD_ENV not in os.environ:
        return Supervisor(
            args.app, args.processes, verbose=args.verbose, queues=args.queues,
            version=args.version,
        ).run()  # fmt: skip
    app = load_app(args.app)
    if args.version is not None:
        app.version = args.version
    if args.queues:
        app.worker_options = dataclasses.replace(app.worker_options, queues=tuple(args.queues))
    if os.environ.get(STANDBY_ENV) == "1" and not _standby(app):
        return 0
    app.run_worker()
    return 0


def _standby(app: App) -> bool:
    """The supervisor's standby: with the app imported and its database opened, wait for the
    supervisor's word on stdin. Whether to serve (False: the supervisor is stopping or gone)."""
    try:
        app.store  # noqa: B018 - open (and migrate) now, not when a child has died
    except Exception:  # the worker it becomes opens it again, and reports what fails then
        pass
    try:
        return sys.stdin.buffer.readline() == GO
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: not an error here
        return False


def run_migrate(args: argparse.Namespace) -> int:
    """``durably migrate``."""
    url = resolve_database_url(args.db)
    store = open_store(url)
    try:
        before = _schema_version(store)
        store.migrate()
        after = _schema_version(store)
    finally:
        store.close()
    shown = redact_url(url)
    if before == 0:
        print(f"database {shown}: created durably's schema at version {after}")
    elif before < after:
        print(f"database {shown}: migrated durably's schema from version {before} to {after}")
    else:
        print(f"database {shown} is up to date (durably's schema at version {after})")
    return 0


def _schema_version(store: Any) -> int:
    """The store's schema version, 0 before the first migration (no table yet)."""
    try:
        return int(store.schema_version())
    except Exception:
        return 0
