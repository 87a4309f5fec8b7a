"""Where a management command acts: a database directly (a client-only :class:`durably.App`) or a
``durably server`` (a :class:`durably.Client`), and the exit code of each kind of failure."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys

from durably import errors
from durably.codec_options import add_codec_arguments, codec_options
from durably.operations import WorkflowOperations
from durably.remote.errors import AuthenticationError, ServerUnreachableError
from durably.storage import missing_database, redact_url

__all__ = [
    "EXIT_AUTH",
    "EXIT_CONFLICT",
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Target",
    "add_target_arguments",
    "describe",
    "exit_code",
    "failed",
    "is_database_failure",
    "missing_database",
    "open_target",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""``start --wait`` / ``show --watch``: the workflow ended other than completed, or is still
running after ``--timeout``."""
EXIT_USAGE = 2
"""Bad flags or input (bad JSON, bad id, unknown status...): nothing was written."""
EXIT_NOT_FOUND = 3
"""No workflow with that id, or no worker ever registered that workflow name."""
EXIT_CONFLICT = 4
"""The command does not apply in the workflow's status (e.g. resume of a running one), or a
start's id is taken by a workflow of another name."""
EXIT_UNREACHABLE = 5
"""The database or server cannot be reached, or no SQLite database exists at the path."""
EXIT_AUTH = 6
"""The server refused the token (missing or wrong)."""


Target = WorkflowOperations
"""What a management command acts on: an App or a Client, through the operations they share."""


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db``, ``--server``, ``--token`` and ``--json`` on a management command."""
    where = parser.add_argument_group("where (default: $DURABLY_SERVER, else $DURABLY_DB)")
    where.add_argument(
        "--db",
        metavar="URL",
        help="database URL (sqlite:///path.db, postgresql://...); a SQLite file must exist "
        "(durably migrate or a worker creates it)",
    )
    where.add_argument(
        "--server", metavar="URL", help="a durably server's URL, e.g. http://127.0.0.1:8233"
    )
    where.add_argument(
        "--token", metavar="TOKEN", help="the server's bearer token (default: $DURABLY_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    values = parser.add_argument_group(
        "values encoded by payload codecs (with --db; default: shown as <encoded: ...>)"
    )
    add_codec_arguments(values)


def open_target(args: argparse.Namespace) -> tuple[Target, str]:
    """The App or Client the flags and environment name, and a description of it.

    ``--db``/``--server`` win (not both); then ``$DURABLY_SERVER``; then ``$DURABLY_DB`` (else
    ``./durably.db``, as for ``durably.App()``). A SQLite file that does not exist is an error
    (:func:`missing_database`): a management command never creates a database. ``--app`` /
    ``--codecs`` / ``$DURABLY_CODECS`` give the App the payload codecs that read the values
    (:mod:`durably.codec_options`); ``--app`` also its database when there is no ``--db``.
    """
    if args.db and args.server:
        raise errors.ConfigurationError("give --db or --server, not both")
    server = args.server or (None if args.db else os.environ.get("DURABLY_SERVER"))
    if server:
        from durably.client import Client

        return Client(server, token=args.token), f"server {redact_url(server)}"
    options = codec_options(args)
    database = args.db or options.database_url
    missing = missing_database(database)
    if missing is not None:
        raise missing
    app = options.open(database)
    return app, f"database {app.safe_database_url}"


def is_database_failure(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database driver (SQLite, psycopg) or the OS.

    durably's own errors never are, even those that are also a ``TimeoutError`` (hence an
    ``OSError``) such as :class:`~durably.WorkflowTimeoutError`: each has its own exit code."""
    if isinstance(exc, errors.DurablyError):
        return False
    if isinstance(exc, sqlite3.Error | OSError):
        return True
    module = type(exc).__module__
    return module.startswith(("psycopg", "psycopg_pool"))


def exit_code(exc: BaseException) -> int:
    """The exit code of a failed command."""
    if isinstance(
        exc,
        errors.WorkflowNotFoundError | errors.UnknownWorkflowError | errors.ScheduleNotFoundError,
    ):
        return EXIT_NOT_FOUND
    if isinstance(exc, errors.WorkflowStateError | errors.WorkflowIdConflictError):
        return EXIT_CONFLICT
    if isinstance(exc, AuthenticationError):
        return EXIT_AUTH
    if isinstance(exc, ServerUnreachableError) or is_database_failure(exc):
        return EXIT_UNREACHABLE
    if isinstance(exc, errors.DatabaseUnavailableError):
        return EXIT_UNREACHABLE  # a store could not connect (it names the URL)
    if isinstance(exc, errors.WorkflowFailedError | errors.WorkflowTimeoutError):
        return EXIT_FAILED
    return EXIT_USAGE


def describe(exc: BaseException, where: str) -> str:
    """The message of a failed command (database errors name the database)."""
    if isinstance(exc, errors.WorkflowNotFoundError) and exc.workflow_id:
        return f"no workflow with id {exc.workflow_id!r} in the {where}; `durably ls` lists them"
    if isinstance(exc, errors.DurablyError):
        return exc.message
    if is_database_failure(exc):
        return f"cannot use the {where}: {type(exc).__name__}: {exc}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def failed(exc: Exception, where: str) -> int:
    """Say on stderr why a command failed (on the ``where`` it used) and return its exit code.
    Re-raises what is neither durably's nor the database's: a bug shows its traceback."""
    if not isinstance(exc, errors.DurablyError) and not is_database_failure(exc):
        raise exc
    print(f"durably: error: {describe(exc, where)}", file=sys.stderr)
    return exit_code(exc)
