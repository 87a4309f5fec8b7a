"""The ``durably`` command.

Operate workers (``worker``, ``migrate``, ``bench``, ``server``) and manage workflows (``start``,
``ls``, ``show``, ``history``, ``send``, ``cancel``, ``terminate``, ``suspend``, ``resume``,
``retry``, ``fork``, ``purge``, ``workers``) against a database URL or a ``durably server``;
check workflow code for calls that break replay (``lint``, :mod:`durably.lint`).

Exit codes: 0 ok; 1 the workflow did not complete (``start --wait``, ``show --watch``); 2 bad
usage or input (nothing written); 3 not found (workflow id or name); 4 the command does not apply
in the workflow's status; 5 the database or server cannot be reached (or no SQLite database
exists at the path: management commands never create one); 6 the server refused the token.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from durably.cli.worker import add_migrate, add_worker, load_app, run_migrate, run_worker
from durably.errors import DurablyError

__all__ = ["load_app", "main"]

_DESCRIPTION = """\
durable execution for Python

operate:   worker, server, migrate, bench
manage:    start, ls, show, history, send, cancel, terminate, suspend, resume, retry, fork,
           purge, workers, schedules (on --db URL / $DURABLY_DB, or --server URL /
           $DURABLY_SERVER)
           purge, workers (on --db URL / $DURABLY_DB, or --server URL / $DURABLY_SERVER)
bulk:      bulk cancel|terminate|retry|resume|suspend|purge --status S --name N ... [--dry-run]
check:     lint PATH... (calls in workflow code that break replay; exit 1 with findings)
deploy:    replay-check (the deploy gate), export (a workflow's history, for replay tests),
           versions (unfinished workflows per version), move-version (old version to new)

exit codes: 0 ok, 1 workflow did not complete (start --wait, show --watch), 2 bad usage or
input, 3 not found, 4 not allowed in the workflow's status, 5 database or server unreachable,
6 token refused
"""


_LINT_HELP = "check workflow code for calls that break replay (README, Determinism lint)"


def _add_server(sub: Any, load: bool) -> None:
    """``durably server``: its options come from durably.server.cli (imported only when the
    command is ``server``, so the rest of the CLI works without the server extra)."""
    help_text = "serve the HTTP API (needs the server extra: pip install 'durably[server]')"
    if load:
        try:
            from durably.server.cli import add_arguments
        except ImportError as exc:
            parser = sub.add_parser("server", help=help_text)
            parser.add_argument("rest", nargs=argparse.REMAINDER)
            parser.set_defaults(server_missing=str(exc))
            return
        add_arguments(sub.add_parser("server", help=help_text, description=help_text))
    else:
        sub.add_parser("server", help=help_text, add_help=False)


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="durably", description=_DESCRIPTION, formatter_class=formatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_worker(sub)
    if list(argv[:1]) == ["worker"]:
        # a worker (re)starting: skip what the other commands import, it delays recovery
        return parser
    from durably import lint

    lint.add_arguments(sub.add_parser("lint", help=_LINT_HELP, description=_LINT_HELP))
    if list(argv[:1]) == ["lint"]:
        return parser  # the lint reads source files: it needs nothing of the rest
    _add_server(sub, load=list(argv[:1]) == ["server"])
    add_migrate(sub)
    from durably.bench.options import add_arguments as add_bench_arguments

    bench = sub.add_parser(
        "bench", help="run the benchmark suite next to the storage floor (see README)"
    )
    add_bench_arguments(bench)
    from durably.cli import manage

    manage.add_commands(sub)
    from durably.cli import bulk

    bulk.add_commands(sub)
    from durably.cli import replay

    replay.add_commands(sub)
    from durably.cli import schedules

    schedules.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``durably`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "lint":
        from durably import lint

        return lint.run(args)
    if args.command == "bench":
        from durably.bench.run import run as run_bench

        return run_bench(args)
    if args.command == "server":
        missing = getattr(args, "server_missing", None)
        if missing is not None:
            print(
                f"durably: error: `durably server` needs the server extra ({missing}); "
                "pip install 'durably[server]'",
                file=sys.stderr,
            )
            return 2
        from durably.server.cli import run as run_server

        code: int = run_server(args)
        return code
    if args.command in ("replay-check", "export", "move-version"):
        from durably.cli import replay

        return replay.run(args)
    if args.command == "schedules":
        from durably.cli import schedules

        return schedules.run(args)
    if args.command not in ("worker", "migrate"):
        from durably.cli import manage

        return manage.run(args)
    try:
        return run_worker(args) if args.command == "worker" else run_migrate(args)
    except DurablyError as exc:
        print(f"durably: error: {exc}", file=sys.stderr)
        return 2
