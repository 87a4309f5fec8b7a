"""``durably schedules ls|show|create|update|pause|unpause|trigger|backfill|delete``: the
schedules of a database (``--db``) or a server (``--server``), see :mod:`durably.schedules`.

Every value is checked before the database or server is opened: a bad cron expression, time
zone, overlap policy, time or input is a usage error (exit 2) and writes nothing. An unknown
schedule (or workflow, on create) exits 3.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from durably.cli import render
from durably.cli.target import EXIT_OK, Target, failed
from durably.cli.values import parse_call, parse_time
from durably.errors import ConfigurationError
from durably.schedules.spec import OVERLAP_POLICIES, Schedule, ScheduleInfo, check_schedule_name

__all__ = ["add_commands", "run"]

_FORMATTER = argparse.RawDescriptionHelpFormatter
_SUMMARY = "list and operate schedules (cron or interval workflows ticked by the workers)"
_EXAMPLES = """\
  durably schedules ls
  durably schedules create nightly-report report --cron '0 3 * * *' --timezone Europe/Berlin \\
      --input '["eu"]' --note 'owned by data team'
  durably schedules create poll poll_feeds --every 900 --overlap skip --catchup-window 3600
  durably schedules pause nightly-report --reason 'warehouse migration'
  durably schedules trigger nightly-report
  durably schedules backfill nightly-report --from 2026-12-01T00:00:00+01:00 --to 1d
  durably schedules backfill poll --from 7d --to 1d --overlap allow_all   # 7 to 1 days ago
"""


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value!r}")
    return number


def _definition(p: argparse.ArgumentParser, *, create: bool) -> None:
    when = p.add_mutually_exclusive_group(required=create)
    when.add_argument("--cron", metavar="EXPR", help="a cron expression, e.g. '0 3 * * *'")
    when.add_argument("--every", metavar="S", type=_seconds, help="an interval in seconds")
    p.add_argument("--timezone", metavar="TZ", help="IANA time zone of the cron (default UTC)")
    p.add_argument("--input", metavar="JSON", help="the workflow's arguments, as `durably start`")
    p.add_argument("--overlap", choices=OVERLAP_POLICIES, help="while a run is unfinished")
    p.add_argument(
        "--catchup-window", metavar="S", type=_seconds,
        help="run ticks missed up to S seconds back (default: only the latest one)",
    )  # fmt: skip
    p.add_argument("--jitter", metavar="S", type=_seconds, help="start up to S s after a tick")
    p.add_argument("--start-at", metavar="TIME", help="first possible tick (ISO-8601, epoch)")
    p.add_argument("--end-at", metavar="TIME", help="last possible tick")
    p.add_argument("--queue", metavar="Q", help="the queue its workflows start on")
    p.add_argument("--note", metavar="TEXT", help="free text for operators")


def add_commands(sub: Any) -> None:
    """Add ``schedules`` and its subcommands to the ``durably`` subparsers ``sub``."""
    from durably.cli.manage import _command

    parent = sub.add_parser(
        "schedules", help=_SUMMARY, description=_SUMMARY, epilog="examples:\n" + _EXAMPLES,
        formatter_class=_FORMATTER,
    )  # fmt: skip
    ssub = parent.add_subparsers(dest="schedules_command", required=True, metavar="ACTION")
    _command(ssub, "ls", "list schedules with their next runs and last results", "  ls\n", _ls)
    p = _command(ssub, "show", "show one schedule", "  show nightly-report\n", _show)
    p.add_argument("name", metavar="NAME")
    p = _command(ssub, "create", "create a schedule, or update the one of that name", "", _put)
    p.add_argument("name", metavar="NAME")
    p.add_argument("workflow", metavar="WORKFLOW", help="the workflow's registered name")
    _definition(p, create=True)
    p.add_argument("--paused", action="store_true", help="create it paused")
    p = _command(ssub, "update", "change a schedule's definition", "", _update)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--workflow", metavar="WORKFLOW", help="start this workflow instead")
    _definition(p, create=False)
    p = _command(ssub, "pause", "pause a schedule", "  pause nightly --reason 'db move'\n", _pause)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--reason", default="", help="why (shown with the schedule)")
    p = _command(
        ssub, "unpause", "let a paused schedule tick again (from its next tick)",
        "  unpause nightly-report\n", _unpause,
    )  # fmt: skip
    p.add_argument("name", metavar="NAME")
    p = _command(ssub, "trigger", "run a schedule now", "  trigger nightly-report\n", _trigger)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--overlap", choices=OVERLAP_POLICIES, help="instead of the schedule's")
    p = _command(ssub, "backfill", "run the ticks of a past time range", "", _backfill)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--from", dest="start", required=True, metavar="TIME", help="first tick")
    p.add_argument("--to", dest="end", required=True, metavar="TIME", help="last tick")
    p.add_argument("--overlap", choices=OVERLAP_POLICIES, help="instead of the schedule's")
    p = _command(ssub, "delete", "delete a schedule (its workflows stay)", "", _delete)
    p.add_argument("name", metavar="NAME")


# -- checks before anything is opened ----------------------------------------------------------


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The definition flags given, as :class:`durably.Schedule` fields, checked."""
    changes: dict[str, Any] = {}
    flags = ["cron", "every", "timezone", "overlap", "jitter", "queue", "note"]
    if args.schedules_command == "update":
        flags.append("workflow")
    for flag in flags:
        value = getattr(args, flag, None)
        if value is not None:
            changes[flag] = value
    if args.catchup_window is not None:
        changes["catchup_window"] = args.catchup_window
    for flag in ("start_at", "end_at"):
        text = getattr(args, flag)
        if text is not None:
            changes[flag] = parse_time(text, "--" + flag.replace("_", "-"))
    if args.input is not None:
        call_args, kwargs = parse_call(args.input)
        changes["args"], changes["kwargs"] = tuple(call_args), kwargs
    return changes


def _check(args: argparse.Namespace) -> None:
    if hasattr(args, "name"):
        check_schedule_name(args.name)
    action = args.schedules_command
    if action in ("create", "update"):
        changes = _changes(args)
        timed = {"cron", "every"} & set(changes)
        probe = {"every": 60.0} if action == "update" and not timed else {}
        Schedule(args.name, "probe", **{**probe, **changes})  # raises what the App would
        args.changes = changes
    if action == "backfill":
        args.range = (parse_time(args.start, "--from"), parse_time(args.end, "--to"))
        if args.range[1] < args.range[0]:
            raise ConfigurationError("--to is before --from: give the range oldest first")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Check the flags, then run the action as a management command."""
    try:
        _check(args)
    except Exception as exc:
        return failed(exc, "schedules")
    from durably.cli.manage import run as run_command

    return run_command(args, out)


# -- the actions -------------------------------------------------------------------------------


def _schedules(target: Target) -> Any:
    ops = getattr(target, "schedules", None)
    if ops is None:
        raise ConfigurationError("this target cannot operate schedules")
    return ops


def _print(out: TextIO, args: argparse.Namespace, info: ScheduleInfo) -> int:
    if args.json:
        out.write(render.dumps(info.to_dict()) + "\n")
        return EXIT_OK
    rows = [(k, "-" if v is None else str(v)) for k, v in info.to_dict().items()]
    out.write(render.table(["field", "value"], rows) + "\n")
    return EXIT_OK


def _when(info: ScheduleInfo) -> str:
    if info.every is not None:
        return f"every {render.duration(info.every.total_seconds())}"
    return info.cron or "-"


def _ls(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    infos: list[ScheduleInfo] = _schedules(target).list()
    if args.json:
        out.write(render.dumps([i.to_dict() for i in infos]) + "\n")
        return EXIT_OK
    rows = [
        (
            i.name, i.workflow, _when(i), i.timezone,
            "paused: " + (i.pause_reason or "") if i.paused else "active",
            render.when(i.next_run_at), render.when(i.last_tick), i.last_result or "-",
            i.last_workflow_id or "-",
        )
        for i in infos
    ]  # fmt: skip
    headers = ["name", "workflow", "when", "tz", "state", "next run (UTC)", "last tick (UTC)",
               "last result", "last workflow"]  # fmt: skip
    out.write(render.table(headers, rows) + "\n")
    return EXIT_OK


def _show(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    return _print(out, args, _schedules(target).get(args.name))


def _put(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    changes = dict(args.changes)
    workflow = args.workflow
    info = _schedules(target).create(args.name, workflow, paused=args.paused, **changes)
    return _print(out, args, info)


def _update(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    return _print(out, args, _schedules(target).update(args.name, **args.changes))


def _pause(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    return _print(out, args, _schedules(target).pause(args.name, reason=args.reason))


def _unpause(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    return _print(out, args, _schedules(target).unpause(args.name))


def _delete(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    _schedules(target).delete(args.name)
    out.write(
        render.dumps({"deleted": args.name}) + "\n" if args.json else f"deleted {args.name}\n"
    )
    return EXIT_OK


def _ticks(out: TextIO, args: argparse.Namespace, ticks: list[Any]) -> int:
    if args.json:
        out.write(render.dumps([{"tick": t.tick.isoformat(), "workflow_id": t.workflow_id,
                                 "result": t.result} for t in ticks]) + "\n")  # fmt: skip
        return EXIT_OK
    rows = [(t.tick.isoformat(), t.workflow_id, t.result) for t in ticks]
    out.write(render.table(["tick", "workflow id", "result"], rows) + "\n")
    return EXIT_OK


def _trigger(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    return _ticks(out, args, [_schedules(target).trigger(args.name, overlap=args.overlap)])


def _backfill(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    start, end = args.range
    ticks = _schedules(target).backfill(args.name, start, end, overlap=args.overlap)
    return _ticks(out, args, ticks)
