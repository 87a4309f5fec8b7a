"""The management commands: start, ls, show, history, send, cancel, terminate, suspend, resume,
retry, fork, purge, workers. Each acts on a database or a server (see :mod:`durably.cli.target`).
"""

from __future__ import annotations

import argparse
import io
import itertools
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

from durably import limits
from durably.argtypes import whole_number
from durably.cli import render
from durably.cli.target import (
    EXIT_FAILED,
    EXIT_OK,
    Target,
    add_target_arguments,
    failed,
    open_target,
)
from durably.cli.values import parse_call, parse_json, parse_statuses, parse_time
from durably.cli.watch import watch
from durably.errors import (
    ConfigurationError,
    UnknownWorkflowError,
    WorkflowFailedError,
)
from durably.ids import validate_workflow_id
from durably.limits import check_event
from durably.queues import DEFAULT_QUEUE, validate_priority, validate_queue_name
from durably.serialization import JsonSerializer
from durably.storage.base import WorkflowStatus

__all__ = ["COMMANDS", "add_commands", "run"]

Handler = Callable[[Target, argparse.Namespace, TextIO], int]


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {value!r}")
    return number


T = TypeVar("T")


def _print_json(out: TextIO, value: Any) -> None:
    out.write(render.dumps(value) + "\n")


def _print_started(out: TextIO, args: argparse.Namespace, handle: Any) -> int:
    """A workflow just started (or forked): its info as JSON (``--json``), else its id."""
    if args.json:
        _print_json(out, render.workflow_json(handle.info()))
    else:
        out.write(handle.id + "\n")
    return EXIT_OK


def _print_list(
    out: TextIO,
    args: argparse.Namespace,
    items: Sequence[T],
    json_form: Callable[[T], Any],
    table: Callable[[Sequence[T]], str],
    none: str,
) -> int:
    """``items`` as a JSON list (``--json``), else as a table, else the ``none`` line."""
    if args.json:
        _print_json(out, [json_form(item) for item in items])
    else:
        out.write((table(items) if items else none) + "\n")
    return EXIT_OK


# -- handlers ----------------------------------------------------------------------------------


def _enqueues(args: argparse.Namespace) -> bool:
    """Whether ``start`` enqueues (on --queue, or with a --priority) rather than starts."""
    return args.queue is not None or bool(args.priority)


def _start(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    positional, named = args.call  # checked by _prepare
    try:
        if _enqueues(args):
            handle = target.enqueue(
                args.queue or DEFAULT_QUEUE, args.name, *positional, id=args.id,
                priority=args.priority, **named,
            )  # fmt: skip
        else:
            handle = target.start(args.name, *positional, id=args.id, **named)
    except UnknownWorkflowError:
        raise UnknownWorkflowError(
            f"unknown workflow {args.name!r}: no worker ever registered it; check the name "
            "(`durably workers` lists what live workers serve) or start a worker that serves it "
            "(`durably worker MODULE:APP`)"
        ) from None
    if args.wait:
        try:
            result = handle.result(timeout=args.timeout)
        except WorkflowFailedError as exc:
            if args.json:
                _print_json(out, render.workflow_json(handle.info()))
            print(f"durably: error: {exc.message}", file=sys.stderr)
            return EXIT_FAILED
        if args.json:
            _print_json(out, render.workflow_json(handle.info()))
        else:
            _print_json(out, render.to_plain(result))
        return EXIT_OK
    return _print_started(out, args, handle)


def _ls(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    filters: dict[str, Any] = {
        "status": args.status, "name": args.name, "id_prefix": args.id_prefix,
        "created_after": args.since, "created_before": args.until,
    }  # fmt: skip
    # page by page (a server answers pages of at most 1000), up to the limit
    pages = target.iter_workflows(page_size=min(args.limit, 500), **filters)
    workflows = list(itertools.islice(pages, args.limit))
    return _print_list(
        out, args, workflows, render.workflow_json, render.workflows_table, "no workflows"
    )


def _show(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    handle = target.handle(args.id)
    if args.watch:
        if args.json:
            status = _wait_quietly(handle)
            _print_json(out, _show_json(handle))
        else:
            status = watch(handle, out, interval=args.interval, redraw=out.isatty())
        return EXIT_OK if status is WorkflowStatus.COMPLETED else EXIT_FAILED
    if args.json:
        _print_json(out, _show_json(handle))
    else:
        page = render.workflow_detail(
            handle.info(), handle.history(), handle.states(), handle.children()
        )
        out.write(page + "\n")
    return EXIT_OK


def _wait_quietly(handle: Any) -> WorkflowStatus:
    try:
        handle.result()
    except WorkflowFailedError:
        pass
    status: WorkflowStatus = handle.status()
    return status


def _show_json(handle: Any) -> dict[str, Any]:
    return {
        "workflow": render.workflow_json(handle.info()),
        "history": [render.history_json(e) for e in handle.history()],
        "state": render.to_plain(handle.states()),
        "children": [render.workflow_json(c) for c in handle.children()],
    }


def _history(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    entries = target.handle(args.id).history()
    return _print_list(
        out, args, entries, render.history_json, render.history_table, "no steps yet"
    )


def _send(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    delivered = target.send_event(args.id, args.event, args.payload, dedup_key=args.dedup_key)
    if args.json:
        _print_json(out, {"id": args.id, "event": args.event, "delivered": delivered})
    elif delivered:
        out.write(f"sent {args.event!r} to {args.id}\n")
    else:
        out.write(f"not sent: {args.id} already got dedup key {args.dedup_key!r}\n")
    return EXIT_OK


def _lifecycle(command: str, done: str) -> Handler:
    def handler(target: Target, args: argparse.Namespace, out: TextIO) -> int:
        if command == "terminate":
            target.terminate(args.id, args.reason)
        else:
            getattr(target, command)(args.id)
        if command == "purge":
            result: dict[str, Any] = {"id": args.id, "purged": True}
        else:
            result = {"id": args.id, "status": target.handle(args.id).status().value}
        if args.json:
            _print_json(out, result)
        else:
            status = result.get("status")
            verb = done
            if command == "cancel" and status != WorkflowStatus.CANCELLED.value:
                verb = "cancel requested for"  # it ends at its next durable point
            out.write(f"{verb} {args.id}" + (f" (now {status})" if status else "") + "\n")
        return EXIT_OK

    return handler


def _fork(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    handle = target.fork(args.id, from_step=args.from_step, new_id=args.new_id)
    return _print_started(out, args, handle)


def _workers(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    workers = target.list_workers(include_stale=args.all)
    none = "no live workers" if not args.all else "no workers registered"
    return _print_list(out, args, workers, render.worker_json, render.workers_table, none)


def _versions(target: Target, args: argparse.Namespace, out: TextIO) -> int:
    form = render.versions_json(target.count_versions())
    if args.json:
        _print_json(out, form)
    else:
        rows = form["versions"]
        out.write((render.versions_table(rows) if rows else "no unfinished workflows") + "\n")
    return EXIT_OK


# -- parsers -----------------------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter


def _command(
    sub: Any, name: str, summary: str, examples: str, handler: Handler
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=summary, epilog="examples:\n" + examples,
        formatter_class=_FORMATTER,
    )  # fmt: skip
    parser.set_defaults(handler=handler)
    add_target_arguments(parser)
    return parser


def _id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", metavar="ID", help="the workflow id")


def add_commands(sub: Any) -> None:
    """Add every management command to the ``durably`` subparsers ``sub``."""
    p = _command(sub, "start", "start a workflow by name (a worker that serves it runs it)", """\
  durably start send_invoice --input '["acme", 120]'
  durably start send_invoice --input '{"args": ["acme"], "kwargs": {"cents": 120}}' --id inv-7
  durably start render --queue gpu --priority 5 --input '{"args": [3]}'
  durably start twice --input 21 --wait          # prints the result when it ends
""", _start)  # fmt: skip
    p.add_argument("name", metavar="NAME", help="the workflow's registered name")
    p.add_argument(
        "--input", metavar="JSON",
        help='arguments: a JSON array of positional arguments, or {"args": [...], "kwargs": '
        "{...}}; any other JSON value is the one positional argument. @FILE reads a file, "
        "- standard input",
    )  # fmt: skip
    p.add_argument(
        "--id", help="workflow id (default: a random one); an existing id of this workflow is a "
        "no-op, one of another workflow is refused (exit 4)",
    )  # fmt: skip
    p.add_argument("--queue", metavar="Q", help="start it on this queue")
    p.add_argument("--priority", type=int, default=0, help="priority on a priority queue")
    p.add_argument("--wait", action="store_true", help="wait for it to end; print its result")
    p.add_argument("--timeout", type=_seconds, metavar="S", help="with --wait: give up after S s")

    p = _command(sub, "ls", "list workflows, newest first", """\
  durably ls
  durably ls --status failed --status needs_attention --since 1d
  durably ls --name send_invoice --id-prefix inv- --limit 500 --json
""", _ls)  # fmt: skip
    statuses = ", ".join(s.value for s in WorkflowStatus)
    p.add_argument(
        "--status", action="append", metavar="S", help=f"only this status (repeat or comma-"
        f"separate for several): {statuses}",
    )  # fmt: skip
    p.add_argument("--name", metavar="N", help="only workflows of this name")
    p.add_argument("--id-prefix", metavar="P", help="only ids starting with P")
    p.add_argument(
        "--since", metavar="TIME", help="created at or after TIME: ISO-8601 (UTC unless it "
        "says), epoch seconds, or ago: 30s, 15m, 2h, 1d",
    )  # fmt: skip
    p.add_argument("--until", metavar="TIME", help="created before TIME (same forms)")
    p.add_argument("--limit", type=whole_number(1), default=50, help="at most N (default 50)")

    p = _command(sub, "show", "show a workflow: status, input, output, steps, state", """\
  durably show inv-7
  durably show inv-7 --watch          # follow it live until it ends
  durably show inv-7 --json | jq .workflow.status
""", _show)  # fmt: skip
    _id(p)
    p.add_argument(
        "--watch", action="store_true", help="follow it until it ends (exit 0 if it "
        "completed, 1 otherwise); with --json, wait and print the final state",
    )  # fmt: skip
    p.add_argument(
        "--interval", type=_seconds, default=1.0, metavar="S", help="--watch redraws at "
        "least every S s (default 1)",
    )  # fmt: skip

    p = _command(sub, "history", "a workflow's journal: steps, sleeps, events, children", """\
  durably history inv-7
  durably history inv-7 --json
""", _history)  # fmt: skip
    _id(p)

    p = _command(sub, "send", "send an event to a workflow (durably.wait_event receives it)", """\
  durably send order-7 approved --data '{"by": "ana"}'
  durably send order-7 approved --data true --dedup-key approval-1
""", _send)  # fmt: skip
    _id(p)
    p.add_argument("event", metavar="EVENT", help="the event name")
    p.add_argument(
        "--data", metavar="JSON", help="the payload as JSON (default null); @FILE, - for stdin"
    )
    p.add_argument("--dedup-key", metavar="K", help="send nothing if K was already sent")

    for name, summary, done in (
        ("cancel", "cancel a workflow (its finally/compensation code runs)", "cancelled"),
        ("terminate", "stop a workflow now (no more of its code runs)", "terminated"),
        ("suspend", "pause a workflow until resumed", "suspended"),
        ("resume", "let a suspended workflow continue", "resumed"),
        ("retry", "run a failed workflow again from its failed step", "retried"),
        ("purge", "delete a finished workflow and its journal", "purged"),
    ):
        p = _command(sub, name, summary, f"  durably {name} inv-7\n", _lifecycle(name, done))
        _id(p)
        if name == "terminate":
            p.add_argument("--reason", default="terminated", help="why (kept in its error)")

    p = _command(sub, "fork", "copy a workflow's journal before a step into a new workflow", """\
  durably fork inv-7 --from-step 3                   # re-runs from step 3, after a fix
  durably fork inv-7 --from-step 0 --new-id inv-7b
""", _fork)  # fmt: skip
    _id(p)
    p.add_argument(
        "--from-step", type=whole_number(0), required=True, metavar="N",
        help="keep journal entries before seq N (see `durably history`)",
    )  # fmt: skip
    p.add_argument("--new-id", metavar="ID", help="the new workflow's id (default: random)")

    p = _command(sub, "workers", "list the worker processes and what they serve", """\
  durably workers
  durably workers --all --json
""", _workers)  # fmt: skip
    p.add_argument("--all", action="store_true", help="include stale registrations")

    _command(sub, "versions", "count unfinished workflows per version (the App's version)", """\
  durably versions
  durably versions --json
""", _versions)  # fmt: skip


COMMANDS = (
    "start", "ls", "show", "history", "send", "cancel", "terminate", "suspend", "resume",
    "retry", "purge", "fork", "workers", "versions",
)  # fmt: skip


def _prepare(args: argparse.Namespace) -> None:
    """Read and check every typed value before the database or server is opened, so bad input
    is a usage error (exit 2, nothing written) whether or not the target exists or answers.
    The checks and messages are those the App or Client would make once the target is open."""
    prepare = getattr(args, "prepare", None)  # a command's own checks (durably bulk)
    if prepare is not None:
        prepare(args)
    for key in ("id", "new_id"):
        if getattr(args, key, None) is not None:
            validate_workflow_id(getattr(args, key))
    if args.command == "start":
        if not args.name.strip():
            raise ConfigurationError(
                "NAME is empty: give the workflow's registered name (`durably workers` lists "
                "the names live workers serve)"
            )
        limits.check_name(args.name, "workflow name")
        args.call = positional, named = parse_call(args.input)
        clash = [k for k in ("id", "priority") if k in named]
        if clash:
            raise ConfigurationError(
                f"--input: keyword argument {clash[0]!r} clashes with a start option; pass that "
                'workflow parameter positionally ({"args": [...]})'
            )
        if _enqueues(args):
            validate_queue_name(args.queue or DEFAULT_QUEUE)
            validate_priority(args.priority)
        # NaN, Infinity or over the size limit: refused as the App or Client would refuse them
        JsonSerializer().encode_call(tuple(positional), named, workflow_id=args.id, name=args.name)
    elif args.command == "send":
        args.payload = None if args.data is None else parse_json(args.data, "--data")
        check_event(args.event, args.dedup_key)
        what = f"payload of event {args.event!r}"
        JsonSerializer().encode(args.payload, what=what, workflow_id=args.id)
    elif args.command == "ls":
        limits.check_filters(args.name, args.id_prefix, None, None)
        args.status = parse_statuses(args.status)
        args.since = None if args.since is None else parse_time(args.since, "--since")
        args.until = None if args.until is None else parse_time(args.until, "--until")
    elif args.command == "terminate":
        limits.check_text(
            args.reason, "--reason", max_length=limits.MAX_REASON_LENGTH, allow_empty=True
        )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the management command in ``args``; the exit code (see :mod:`durably.cli.target`)."""
    if out is None and isinstance(sys.stdout, io.TextIOWrapper):
        # a lone surrogate stored before durably refused them prints escaped, not a traceback
        sys.stdout.reconfigure(errors="backslashreplace")
    out = sys.stdout if out is None else out
    where = "server or database"
    try:
        _prepare(args)
        target, where = open_target(args)
        try:
            code: int = args.handler(target, args, out)
            return code
        finally:
            target.close()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return failed(exc, where)
