"""The command line of ``durably bench`` and the sizes it runs with."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from durably.argtypes import whole_number

#: Workload names, in the order they run (``--only`` picks some).
WORKLOADS = (
    "throughput", "sequential", "latency", "recovery", "replay", "replay-check", "memory",
)  # fmt: skip
QUICK = {
    "workflows": 50, "steps": 50, "samples": 20, "journal": 200, "journals": 50, "sleepers": 500,
}  # fmt: skip

_AT_LEAST_ONE = whole_number(1)

#: The size options, each a whole number >= 1: name -> (metavar, what it sizes); the help
#: adds the default, from :class:`Params`.
_SIZES = {
    "workflows": ("N", "throughput workflows"),
    "processes": ("K", "worker processes, K"),
    "steps": ("M", "steps of the sequential workflow"),
    "samples": ("N", "start-to-result samples"),
    "journal": ("J", "journal entries to replay"),
    "journals": ("N", "parked workflows of 20 entries for replay-check"),
    "sleepers": ("S", "sleeping workflows"),
}


@dataclass(frozen=True)
class Params:
    """Sizes of one benchmark run."""

    # the sizes of the command line's options (_SIZES)
    workflows: int = 2000
    processes: int = 2
    steps: int = 1000
    samples: int = 200
    journal: int = 10_000
    journals: int = 1000
    sleepers: int = 100_000
    # fixed sizes: unmeasured latency samples first, the floors' commit and batch runs, the
    # slow-step workflow
    warmup: int = 20
    commits: int = 1000
    batches: int = 100
    batch_rows: int = 100
    slow_steps: int = 6


def _workloads(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        bad = ", ".join(unknown) or repr(value)
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {bad}; choose from {', '.join(WORKLOADS)}"
        )
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``durably bench`` (also ``python -m durably.bench``)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db",
        metavar="URL",
        help="a PostgreSQL URL (postgresql://...): each measurement in a fresh schema, dropped "
        "afterwards; default: fresh SQLite files",
    )
    where.add_argument(
        "--db-dir", type=Path, metavar="DIR", help="folder for the SQLite files (default: temp)"
    )
    defaults = Params()
    for name, (metavar, what) in _SIZES.items():
        shown = f"{what} ({getattr(defaults, name)})"
        parser.add_argument(f"--{name}", type=_AT_LEAST_ONE, metavar=metavar, help=shown)
    parser.add_argument(
        "--only",
        type=_workloads,
        metavar="NAMES",
        help=f"comma-separated workloads to run: {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for a smoke test (50 workflows, 50 steps, 20 samples, 200 journal "
        "entries, 50 journals, 500 sleepers); explicit sizes still win",
    )
    parser.add_argument(
        "--relaxed",
        action="store_true",
        help="measure the relaxed-durability opt-in (SQLite ?synchronous=normal, PostgreSQL "
        "?synchronous_commit=off), floors included; default: full durability",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    parser.add_argument(
        "--codecs",
        metavar="MODULE:OBJ",
        help="measure with these payload codecs on every stored value (an App, a codec, a list, "
        "or a function returning one; default: $DURABLY_CODECS, else none)",
    )


def params_from(args: argparse.Namespace) -> Params:
    """The sizes: defaults, then --quick, then explicit options."""
    sizes: dict[str, int] = {}
    if args.quick:
        sizes.update(QUICK, warmup=5, commits=100, batches=10, slow_steps=4)
    for name in _SIZES:
        value = getattr(args, name)
        if value is not None:
            sizes[name] = value
    params = Params(**sizes)
    if params.steps < 2:
        raise argparse.ArgumentTypeError("--steps must be >= 2 (per-step times are deltas)")
    return params
