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
from pathlib import Path
from typing import Any, TextIO

from durably.cli.target import EXIT_FAILED, EXIT_OK, failed
from durably.cli.worker import load_app
from durably.ids import validate_workflow_id
from durably.storage import missing_database, open_store, redact_url, resolve_database_url
from durably.storage.base import Store

__all__ = ["COMMANDS", "add_commands", "run"]

COMMANDS = ("replay-check", "export")

_FORMATTER = argparse.RawDescriptionHelpFormatter


def add_commands(sub: Any) -> None:
    """Add ``replay-check`` and ``export`` to the ``durably`` subparsers ``sub``."""
    p = sub.add_parser(
        "replay-check",
        help="deploy gate: replay unfinished workflows' journals against new code",
        description="Load the new code (MODULE:APP), replay the journal of every unfinished "
        "workflow (running, parked, pending with a journal, suspended, needs_attention) of the "
        "names it defines against it, without running any step or writing anything, and list "
        "those that would diverge. Exit 0: none would; 1: some would; 2: bad input; 5: no "
        "database.",
        epilog="examples:\n  durably replay-check myapp.workflows:app --db sqlite:///prod.db\n"
        "  durably replay-check myapp.workflows:app --db postgresql://... --json\n"
        "  durably replay-check myapp.workflows:app --id order-7 --id order-8\n",
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


def _open(db: str | None) -> tuple[Store, str]:
    """Open ``db`` for reading (never migrated, never created)."""
    missing = missing_database(db)
    if missing is not None:
        raise missing
    url = resolve_database_url(db)
    return open_store(url), f"database {redact_url(url)}"


def _replay_check(args: argparse.Namespace, out: TextIO) -> tuple[int, str]:
    from durably.replay import check_store

    for workflow_id in args.ids:
        validate_workflow_id(workflow_id)
    app = load_app(args.app)
    store, where = _open(args.db or app.database_url)
    try:
        report = check_store(app, store, args.ids)
    finally:
        store.close()
    if args.json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        for r in report.diverged:
            assert r.divergence is not None
            out.write(f"DIVERGES {r.workflow_id} ({r.workflow_name}): {r.divergence.message}\n")
        count = len(report.results)
        entries = sum(r.entries for r in report.results)
        out.write(
            f"{count} workflow{'s' * (count != 1)} ({entries} journal entries) checked in "
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
        handler = _replay_check if args.command == "replay-check" else _export
        code, where = handler(args, out)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return failed(exc, where)
