"""``durably bulk ACTION``: cancel, terminate, retry, resume, suspend or purge every workflow a
filter selects (see :mod:`durably.bulk`), on a database or a server.

A filter needs at least one criterion or ``--all``. ``--dry-run`` prints how many match and a
sample of their ids; otherwise, on a terminal, it asks before acting (``--yes`` does not ask),
and prints its progress to standard error after each batch. Interrupted (Ctrl-C, exit 130), it
can be run again: what was done is skipped.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from durably import limits
from durably.argtypes import whole_number
from durably.bulk import BULK_ACTIONS, BulkFilter, BulkResult
from durably.cli import render
from durably.cli.target import EXIT_OK, Target, add_target_arguments
from durably.cli.values import parse_statuses, parse_time
from durably.storage.base import WorkflowStatus

__all__ = ["add_commands"]

_EXAMPLES = """\
examples:
  durably bulk retry --status failed --name send_invoice --dry-run
  durably bulk cancel --status running --id-prefix import-42- --yes
  durably bulk terminate --version 2026.11.1 --reason "bad release" --yes
  durably bulk purge --status completed --finished-before 30d --yes --json
"""
_TIME_HELP = "ISO-8601 (UTC unless it says), epoch seconds, or ago: 30s, 15m, 2h, 1d"


def _filter(args: argparse.Namespace) -> BulkFilter:
    def when(value: str | None, flag: str) -> float | None:
        return None if value is None else parse_time(value, flag)

    flt = BulkFilter(
        status=parse_statuses(args.status),
        name=args.name,
        version=args.version,
        queue=args.queue,
        id_prefix=args.id_prefix,
        created_after=when(args.since, "--since"),
        created_before=when(args.until, "--until"),
        finished_after=when(args.finished_after, "--finished-after"),
        finished_before=when(args.finished_before, "--finished-before"),
        all=args.all,
    )
    flt.selection()  # refused here, before the database or server is opened
    return flt


def _prepare(args: argparse.Namespace) -> None:
    args.filter = _filter(args)
    limits.check_text(
        args.reason, "--reason", max_length=limits.MAX_REASON_LENGTH, allow_empty=True
    )


def _confirm(target: Target, args: argparse.Namespace, err: TextIO) -> bool:
    """On a terminal without --yes: show what would be done and ask."""
    preview = target.bulk(args.action, args.filter, dry_run=True)
    if not preview.matched:
        return True
    shown = ", ".join(preview.sample) + (", ..." if preview.matched > len(preview.sample) else "")
    err.write(f"{args.action} {preview.matched} workflow(s): {shown}\nproceed? [y/N] ")
    err.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _progress(err: TextIO) -> Callable[[BulkResult], None]:
    def report(result: BulkResult) -> None:
        err.write(
            f"{result.action}: {result.matched} gone through, {result.processed} processed, "
            f"{result.skipped} skipped\n"
        )
        err.flush()

    return report


def _run(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    err = sys.stderr
    if not args.dry_run and not args.yes and sys.stdin.isatty() and not _confirm(target, args, err):
        err.write("nothing done\n")
        return EXIT_OK
    result = target.bulk(
        args.action, args.filter, dry_run=args.dry_run, reason=args.reason,
        batch_size=args.batch_size, limit=args.limit,
        progress=None if args.json or args.dry_run else _progress(err),
    )  # fmt: skip
    if args.json:
        out.write(render.dumps(result.to_json()) + "\n")
    elif args.dry_run:
        more = ", ..." if result.matched > len(result.sample) else ""
        out.write(
            f"would {args.action} {result.matched} workflow(s)"
            + (f": {', '.join(result.sample)}{more}" if result.sample else "")
            + "\n"
        )
    else:
        out.write(
            f"{args.action}: {result.processed} processed, {result.skipped} skipped "
            f"(status no longer allowed it) of {result.matched}\n"
        )
        if result.cursor is not None:
            out.write(f"stopped at --limit; run again to go on (after {result.cursor})\n")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Add ``durably bulk ACTION`` to the ``durably`` subparsers ``sub``."""
    summary = "cancel, terminate, retry, resume, suspend or purge every workflow a filter selects"
    p: argparse.ArgumentParser = sub.add_parser(
        "bulk", help=summary, description=summary, epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.set_defaults(handler=_run, prepare=_prepare)
    p.add_argument("action", choices=BULK_ACTIONS, metavar="ACTION", help=", ".join(BULK_ACTIONS))
    add_target_arguments(p)
    statuses = ", ".join(s.value for s in WorkflowStatus)
    p.add_argument(
        "--status", action="append", metavar="S",
        help=f"only this status (repeat or comma-separate for several): {statuses}",
    )  # fmt: skip
    p.add_argument("--name", metavar="N", help="only workflows of this name")
    p.add_argument("--version", metavar="V", help="only workflows started under this version")
    p.add_argument("--queue", metavar="Q", help="only workflows on this queue")
    p.add_argument("--id-prefix", metavar="P", help="only ids starting with P")
    p.add_argument("--since", metavar="TIME", help=f"created at or after TIME: {_TIME_HELP}")
    p.add_argument("--until", metavar="TIME", help="created before TIME (same forms)")
    p.add_argument("--finished-after", metavar="TIME", help="finished at or after TIME")
    p.add_argument("--finished-before", metavar="TIME", help="finished before TIME")
    p.add_argument("--all", action="store_true", help="no filter: every workflow (explicitly)")
    p.add_argument("--dry-run", action="store_true", help="change nothing: count and sample")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask on a terminal")
    p.add_argument("--reason", default="terminated", help="terminate: why (kept in its error)")
    p.add_argument(
        "--batch-size", type=whole_number(1, 10_000), default=500, metavar="N",
        help="workflows per batch (default 500)",
    )  # fmt: skip
    p.add_argument(
        "--limit", type=whole_number(1), metavar="N", help="stop after N workflows (run again "
        "to go on)",
    )  # fmt: skip
