"""``durably replay-check MODULE:APP`` (the deploy gate) and ``durably export ID``.

Both only read the database: they open it without migrating, refuse a SQLite file that does not
exist, and write nothing to it.

replay-check exit codes: 0 no workflow would diverge; 1 some would (listed); 2 bad usage or
input (bad MODULE:APP, bad id); 3 an ``--id`` names no workflow; 5 the database cannot be
reached or does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from durably.cli.target import EXIT_FAILED, EXIT_OK, failed
from durably.cli.worker import load_app
from durably.errors import ConfigurationError, DatabaseUnavailableError, DurablyError
from durably.ids import validate_workflow_id
from durably.limits import check_name
from durably.storage import missing_database, open_store, redact_url, resolve_database_url
from durably.storage.base import Store

__all__ = ["COMMANDS", "add_commands", "run"]

COMMANDS = ("replay-check", "export", "move-version")

_FORMATTER = argparse.RawDescriptionHelpFormatter


def add_commands(sub: Any) -> None:
    """Add ``replay-check`` and ``export`` to the ``durably`` subparsers ``sub``."""
    p = sub.add_parser(
        "replay-check",
        help="deploy gate: replay unfinished workflows' journals against new code",
        description="Load the new code (MODULE:APP), replay the journal of every unfinished "
        "workflow (running, parked, pending with a journal, suspended, needs_attention) of the "
        "names it defines (with --version, only those started under that version) against it, "
        "without running any step or writing anything, and list those that would diverge. "
        "Exit 0: none would; 1: some would; 2: bad input; 5: no database.",
        epilog="examples:\n  durably replay-check myapp.workflows:app --db sqlite:///prod.db\n"
        "  durably replay-check myapp.workflows:app --db postgresql://... --json\n"
        "  durably replay-check myapp.workflows:app --id order-7 --id order-8\n"
        "  durably replay-check myapp.workflows:app --version 2026.11.3 --db URL\n",
        formatter_class=_FORMATTER,
    )  # fmt: skip
    p.add_argument("app", metavar="MODULE:APP", help="the new code's App, e.g. myapp.flows:app")
    p.add_argument(
        "--db", metavar="URL", help="the database to check (default: the app's, i.e. its "
        "durably.App(...) URL or $DURABLY_DB); a SQLite file must exist",
    )  # fmt: skip
    p.add_argument(
        "--id", action="append", dest="ids", metavar="ID", default=[],
        help="check only this workflow (repeat for several), whatever its status",
    )  # fmt: skip
    p.add_argument(
        "--version", metavar="V", help="check only the workflows started under version V (with "
        "--id: those of the ids that are; the others are listed as skipped)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON (for CI)")

    p = sub.add_parser(
        "export",
        help="write a workflow's whole history as JSON (durably.history/1)",
        description="Write a workflow's whole history (record, journal, attempts, pending "
        "events, state, earlier runs: the stored payload texts verbatim) as one JSON document "
        "of format durably.history/1, for durably.testing.replay. Reads the database directly "
        "(a server's API does not carry the stored texts).",
        epilog="examples:\n  durably export order-7 -o tests/histories/order-7.json --db prod.db\n",
        formatter_class=_FORMATTER,
    )  # fmt: skip
    p.add_argument("id", metavar="ID", help="the workflow id")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "--db", metavar="URL", help="database URL (default: $DURABLY_DB, else ./durably.db); "
        "a SQLite file must exist",
    )  # fmt: skip
    _add_move_version(sub)


def _add_move_version(sub: Any) -> None:
    p = sub.add_parser(
        "move-version",
        help="move unfinished workflows of one version to another (after a replay check)",
        description="Record version TO on every unfinished workflow started under FROM, so that "
        "workers of TO run them from now on (a worker of FROM that holds one loses it at once; "
        "it resumes on TO from its journal). With --only-if-replays (needs MODULE:APP, the "
        "code of TO), each journal is first replayed against that code and only those that "
        "replay cleanly are moved; the others are listed. Exit 0: all moved; 1: some left "
        "(listed); 2: bad input; 5: no database.",
        epilog="examples:\n  durably move-version --from 2026.11.3 --to 2026.12.1 --db URL\n"
        "  durably move-version myapp.workflows:app --from 2026.11.3 --to 2026.12.1 "
        "--only-if-replays\n",
        formatter_class=_FORMATTER,
    )  # fmt: skip
    p.add_argument(
        "app", metavar="MODULE:APP", nargs="?", default=None,
        help="the new code's App (needed by --only-if-replays; its database is the default)",
    )  # fmt: skip
    p.add_argument("--from", dest="from_version", required=True, metavar="A", help="old version")
    p.add_argument("--to", dest="to_version", required=True, metavar="B", help="new version")
    p.add_argument(
        "--only-if-replays", action="store_true",
        help="move only the workflows whose journal replays cleanly against MODULE:APP",
    )  # fmt: skip
    p.add_argument(
        "--db", metavar="URL", help="database URL (default: the app's, else $DURABLY_DB); a "
        "SQLite file must exist",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _move_version(args: argparse.Namespace, out: TextIO) -> tuple[int, str]:
    from durably.replay import move_version

    for flag, value in (("--from", args.from_version), ("--to", args.to_version)):
        check_name(value, flag)
    if args.only_if_replays and args.app is None:
        raise ConfigurationError(
            "--only-if-replays replays the journals against the new code: give its MODULE:APP "
            "(durably move-version MODULE:APP --from A --to B --only-if-replays)"
        )
    app = None if args.app is None else load_app(args.app)
    store, where = _open(args.db or (app.database_url if app is not None else None))
    try:
        checked = app if args.only_if_replays else None
        report = move_version(store, args.from_version, args.to_version, time.time(), checked)
    finally:
        store.close()
    left = report.changed + [r["id"] for r in report.to_dict()["diverged"]]
    if args.json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        for r in report.check.diverged if report.check is not None else []:
            assert r.divergence is not None
            out.write(f"DIVERGES {r.workflow_id} ({r.workflow_name}): {r.divergence.message}\n")
        for workflow_id in report.changed:
            out.write(f"CHANGED  {workflow_id}: its journal grew after the check; run again\n")
        count = len(report.moved)
        rest = f"; {len(left)} left on {args.from_version}" if left else ""
        out.write(
            f"moved {count} workflow{'s' * (count != 1)} from version {args.from_version} to "
            f"{args.to_version}{rest}\n"
        )
    return (EXIT_FAILED if left else EXIT_OK), where


def _open(db: str | None) -> tuple[Store, str]:
    """Open ``db`` for reading (never migrated, never created)."""
    missing = missing_database(db)
    if missing is not None:
        raise missing
    url = resolve_database_url(db)
    store, where = open_store(url), f"database {redact_url(url)}"
    try:
        version = store.schema_version()
    except DurablyError:  # unreachable, misread URL...: durably's own error says so
        store.close()
        raise
    except Exception:  # the driver's "no such table": no schema here
        version = 0
    if version == 0:
        store.close()
        raise DatabaseUnavailableError(
            f"the {where} holds no durably schema, so no workflows: check the URL (and its "
            "?schema= option); a worker or `durably migrate` creates the schema"
        )
    return store, where


def _replay_check(args: argparse.Namespace, out: TextIO) -> tuple[int, str]:
    from durably.replay import check_store

    for workflow_id in args.ids:
        validate_workflow_id(workflow_id)
    if args.version is not None:
        check_name(args.version, "--version")  # as durably.App(version=...)
    app = load_app(args.app)
    store, where = _open(args.db or app.database_url)
    try:
        report = check_store(app, store, args.ids or None, args.version)
    finally:
        store.close()
    if args.json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        for r in report.diverged:
            assert r.divergence is not None
            out.write(f"DIVERGES {r.workflow_id} ({r.workflow_name}): {r.divergence.message}\n")
        for workflow_id in report.skipped:
            out.write(f"SKIPPED  {workflow_id}: not started under version {args.version}\n")
        count = len(report.results)
        of = "" if args.version is None else f" of version {args.version}"
        entries = sum(r.entries for r in report.results)
        out.write(
            f"{count} workflow{'s' * (count != 1)}{of} ({entries} journal entries) checked in "
            f"{report.seconds:.2f}s against {args.app}: "
            + (f"{len(report.diverged)} would diverge\n" if report.diverged else "all replay\n")
        )
    return (EXIT_FAILED if report.diverged else EXIT_OK), where


def _export(args: argparse.Namespace, out: TextIO) -> tuple[int, str]:
    from durably.history import export_history

    validate_workflow_id(args.id)
    store, where = _open(args.db)
    try:
        history = export_history(store, args.id)
    finally:
        store.close()
    text = json.dumps(history.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        out.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"exported {args.id} ({len(history.journal)} journal entries) to {args.output}")
    return EXIT_OK, where


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``replay-check`` or ``export``; the exit code."""
    out = sys.stdout if out is None else out
    where = "database"
    try:
        handlers = {"replay-check": _replay_check, "move-version": _move_version}
        handler = handlers.get(args.command, _export)
        code, where = handler(args, out)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return failed(exc, where)
