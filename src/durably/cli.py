"""The ``durably`` command: run a worker for an app, or migrate a database.

The full management CLI (start, ls, show, history, ...) arrives with the HTTP API; this module
holds what operating a worker needs now.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from durably.app import App
from durably.bench.options import add_arguments as add_bench_arguments
from durably.errors import ConfigurationError, DurablyError
from durably.storage import open_store, resolve_database_url
from durably.supervisor import CHILD_ENV, Supervisor, resolve_processes

__all__ = ["load_app", "main"]


def load_app(spec: str) -> App:
    """Import ``"package.module:attribute"`` and return the :class:`App` it names."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"expected MODULE:APP (e.g. myapp.workflows:app), got {spec!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} ({exc}); run from the folder that holds it or set "
            "PYTHONPATH"
        ) from exc
    app = getattr(module, attr, None)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durably", description="durable execution for Python")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run a worker for an app until SIGINT/SIGTERM")
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
    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--db", default=None, help="database URL (default: $DURABLY_DB)")
    bench = sub.add_parser(
        "bench", help="run the benchmark suite next to the storage floor (see README)"
    )
    add_bench_arguments(bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``durably`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "bench":
        from durably.bench.run import run as run_bench

        return run_bench(args)
    try:
        if args.command == "worker":
            if args.processes > 1 and CHILD_ENV not in os.environ:
                return Supervisor(
                    args.app, args.processes, verbose=args.verbose, queues=args.queues
                ).run()
            app = load_app(args.app)
            if args.queues:
                app.worker_options = dataclasses.replace(
                    app.worker_options, queues=tuple(args.queues)
                )
            app.run_worker()
        else:
            url = resolve_database_url(args.db)
            store = open_store(url)
            store.migrate()
            store.close()
            print(f"database {url} is up to date")
    except DurablyError as exc:
        print(f"durably: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
