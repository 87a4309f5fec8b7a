"""What a schedule is: :class:`Schedule` (declared in code or made by an operator), the tick
arithmetic of :class:`Timing`, tick ids, and :class:`ScheduleInfo` (a stored schedule as read).

Cron expressions are parsed and evaluated by `cronsim <https://pypi.org/project/cronsim/>`_ (the
cron library of Healthchecks, maintained, zoneinfo-native, no dependencies of its own; croniter
was declared abandoned in 2025 before it changed hands). Its semantics are Debian cron's,
including across daylight-saving changes, and durably keeps them as they are:

- a tick whose local time does not exist (the spring gap: ``30 2 * * *`` on the night clocks go
  from 02:00 to 03:00) runs once, at the first instant after the gap (03:00 local);
- a tick whose local time happens twice (the autumn overlap) runs once, at the first occurrence,
  when the expression names the hour (``30 2 * * *``); an expression with a wildcard hour
  (``0 * * * *``, ``*/30 * * * *``) runs in both occurrences: they are two instants, with two
  offsets, and so two ids (``...T02:00:00+02:00`` and ``...T02:00:00+01:00``).

An ``every=`` schedule ticks at fixed instants ``start_at + k * every`` (from the Unix epoch when
it has no ``start_at``), whatever the time zone, which serves only to spell its ids.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from durably import limits
from durably.errors import ConfigurationError

if TYPE_CHECKING:
    from durably.storage.base import ScheduleRecord

__all__ = [
    "CHANGEABLE",
    "MAX_SCHEDULE_NAME",
    "OVERLAP_POLICIES",
    "Overlap",
    "Schedule",
    "ScheduleInfo",
    "ScheduleOptions",
    "Timing",
    "check_changes",
    "check_overlap",
    "check_schedule_name",
    "info_of",
    "tick_id",
    "zone",
]

Overlap = Literal["skip", "buffer_one", "allow_all", "cancel_previous", "terminate_previous"]
"""What a tick does while an earlier run of its schedule is unfinished: ``skip`` it (the
default), ``buffer_one`` (run it when the earlier runs end; one tick is kept, later ones are
skipped), ``allow_all`` (run it alongside), ``cancel_previous`` or ``terminate_previous`` (stop
the earlier runs, and run it)."""
OVERLAP_POLICIES: tuple[str, ...] = get_args(Overlap)
MAX_SCHEDULE_NAME = 150
"""A schedule's name is the prefix of its workflows' ids (``NAME@<tick>``), which must fit in
200 characters."""
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:=+-]*")
MAX_NOTE_LENGTH = 2000
CHANGEABLE = frozenset(
    {"workflow", "cron", "every", "timezone", "args", "kwargs", "overlap", "catchup_window",
     "jitter", "start_at", "end_at", "queue", "note"}
)  # fmt: skip
"""The fields of a stored schedule's definition an update may change (pausing is its own
operation)."""


def check_changes(changes: Iterable[str]) -> None:
    """Refuse an update of fields that are not :data:`CHANGEABLE`."""
    unknown = sorted(set(changes) - CHANGEABLE)
    if unknown:
        raise ConfigurationError(
            f"cannot update {', '.join(unknown)} of a schedule; changeable: "
            f"{', '.join(sorted(CHANGEABLE))} (pause with pause())"
        )


def check_overlap(overlap: object) -> None:
    """Refuse an overlap policy that is not one of :data:`OVERLAP_POLICIES`."""
    if overlap not in OVERLAP_POLICIES:
        raise ConfigurationError(
            f"overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {overlap!r}"
        )


def check_schedule_name(name: object) -> str:
    """``name`` if it is a valid schedule name, else a :class:`ConfigurationError`."""
    if not isinstance(name, str) or not name or len(name) > MAX_SCHEDULE_NAME:
        shown = repr(name)[:60]
        raise ConfigurationError(
            f"schedule name must be 1 to {MAX_SCHEDULE_NAME} characters, got {shown}"
        )
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"invalid schedule name {name[:60]!r}: use letters, digits and _ . : = + - "
            "(starting with a letter, digit or _; no '@': it separates the name from the tick "
            "in workflow ids)"
        )
    return name


def zone(name: object) -> ZoneInfo:
    """The IANA time zone ``name`` (``"Europe/Berlin"``, ``"UTC"``), else a
    :class:`ConfigurationError`."""
    if not isinstance(name, str) or not name or len(name) > 100:
        raise ConfigurationError(f"timezone must be an IANA zone name, got {repr(name)[:60]}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(
            f"unknown timezone {name[:60]!r}: use an IANA zone name such as 'Europe/Berlin', "
            "'America/New_York' or 'UTC'"
        ) from None


def _seconds(value: object, what: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigurationError(f"{what} must be a timedelta or seconds, got {repr(value)[:60]}")
    if not math.isfinite(seconds) or seconds < minimum or seconds > 100 * 366 * 86400:
        raise ConfigurationError(f"{what} must be at least {minimum:g} seconds, got {seconds:g}")
    return seconds


def _epoch(value: object, what: str, tz: ZoneInfo) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).timestamp()
    return limits.check_epoch(value, what)


def tick_id(name: str, tick: float, tz: ZoneInfo) -> str:
    """The id of the workflow of ``name``'s tick at ``tick`` (Unix seconds): the tick's local
    time in ``tz``, ISO 8601 with its offset (``nightly@2026-12-03T03:00:00+01:00``)."""
    local = datetime.fromtimestamp(tick, tz)
    spec = "seconds" if local.microsecond == 0 else "microseconds"
    return f"{name}@{local.isoformat(timespec=spec)}"


def _check_cron(expression: object) -> str:
    if not isinstance(expression, str) or not expression.strip() or len(expression) > 200:
        raise ConfigurationError(f"cron must be a cron expression, got {repr(expression)[:60]}")
    try:
        CronSim(expression, datetime(2026, 1, 1, tzinfo=UTC))
    except (CronSimError, ValueError, IndexError, KeyError) as exc:
        raise ConfigurationError(
            f"bad cron expression {expression[:60]!r} ({exc}): use five fields, minute hour "
            "day-of-month month day-of-week, e.g. '0 3 * * *' (03:00 every day)"
        ) from None
    return expression


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule ticks: ``cron`` (a cron expression in ``timezone``) or ``every`` (seconds),
    from ``start_at`` to ``end_at`` (Unix seconds, both optional and inclusive)."""

    cron: str | None
    every: float | None
    timezone: str = "UTC"
    start_at: float | None = None
    end_at: float | None = None
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tz", zone(self.timezone))
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError("a schedule needs exactly one of cron= and every=")
        if self.cron is not None:
            _check_cron(self.cron)
        if self.every is not None and (not math.isfinite(self.every) or self.every < 1):
            raise ConfigurationError(f"every must be at least 1 second, got {self.every:g}")
        if self.start_at is not None and self.end_at is not None and self.end_at < self.start_at:
            raise ConfigurationError("end_at must not be before start_at")

    def spec_json(self) -> str:
        """The stored form of the timing (without its bounds, which have columns)."""
        body: dict[str, Any] = {"timezone": self.timezone}
        if self.cron is not None:
            body["cron"] = self.cron
        else:
            body["every"] = self.every
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, start_at: float | None, end_at: float | None) -> Timing:
        """The timing stored as :meth:`spec_json` with these bounds."""
        body = json.loads(text)
        return cls(body.get("cron"), body.get("every"), body["timezone"], start_at, end_at)

    def next_tick(self, after: float, *, inclusive: bool = False) -> float | None:
        """The first tick after ``after`` (at or after it with ``inclusive``) within the bounds;
        None when the schedule has no more ticks."""
        start = after if self.start_at is None else max(after, self.start_at)
        inclusive = inclusive or start > after  # clamped to start_at: that instant may tick
        if self.every is not None:
            anchor = self.start_at or 0.0
            k = math.floor((start - anchor) / self.every)
            tick = anchor + k * self.every
            while tick < start or (tick == start and not inclusive):
                tick += self.every
        else:
            assert self.cron is not None
            begin = datetime.fromtimestamp(start - (1e-3 if inclusive else 0.0), self.tz)
            try:
                tick = next(CronSim(self.cron, begin)).timestamp()
            except StopIteration:  # no match within 50 years (e.g. '0 0 30 2 *')
                return None
        if self.end_at is not None and tick > self.end_at:
            return None
        return tick

    def ticks(self, first: float, until: float, limit: int = 10_000) -> list[float]:
        """The ticks from ``first`` (a tick) to ``until``, both inclusive, at most ``limit``."""
        found: list[float] = []
        tick: float | None = first
        while tick is not None and tick <= until and len(found) < limit:
            found.append(tick)
            tick = self.next_tick(tick)
        return found

    def describe(self) -> str:
        """``cron '0 3 * * *' in Europe/Berlin`` or ``every 900s``."""
        if self.cron is not None:
            return f"cron {self.cron!r} in {self.timezone}"
        return f"every {self.every:g}s"


def jitter_delay(name: str, tick: float, jitter: float) -> float:
    """How long after ``tick`` its workflow starts: a delay in ``[0, jitter)`` that depends
    only on the schedule and the tick, so every worker computes the same one."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.sha256(f"{name}@{tick!r}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * jitter


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule declared in code: ``Schedule("nightly", report, cron="0 3 * * *",
    timezone="Europe/Berlin")``, or ``every=timedelta(minutes=15)``.

    Pass it to ``app.add_schedule`` or ``@app.workflow(schedule=...)`` (the workflow is then the
    decorated one, and ``name`` defaults to its name); each worker of the App creates it in the
    database when it starts, or updates it if the stored definition differs (see the README's
    "Schedules"). ``app.schedule(...)`` takes the same arguments and writes at once.

    ``args``/``kwargs``: the workflow's arguments on every tick. ``overlap``: see
    :data:`Overlap`. ``catchup_window``: how far back ticks missed while no worker ran are still
    run (None, the default: only the latest missed tick); older ones are recorded as missed.
    ``jitter``: each tick's workflow starts up to this long after the tick (its id keeps the
    tick). ``start_at``/``end_at``: the first and last possible tick (naive datetimes are in
    ``timezone``). ``paused``: create it paused. ``queue``: the queue its workflows start on.
    ``note``: free text for operators.
    """

    name: str | None = None
    workflow: Any = None
    """The workflow it starts: a ``@app.workflow`` function or a registered name (None in
    ``@app.workflow(schedule=...)``: the decorated one)."""
    _: KW_ONLY
    cron: str | None = None
    every: timedelta | float | None = None
    timezone: str = "UTC"
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    overlap: Overlap = "skip"
    catchup_window: timedelta | float | None = None
    jitter: timedelta | float | None = None
    start_at: datetime | float | None = None
    end_at: datetime | float | None = None
    paused: bool = False
    queue: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.name is not None:
            check_schedule_name(self.name)
        check_overlap(self.overlap)
        if not isinstance(self.args, tuple | list) or not isinstance(self.kwargs, dict):
            raise ConfigurationError("args must be a tuple and kwargs a dict")
        limits.check_text(self.note, "note", max_length=MAX_NOTE_LENGTH, allow_empty=True)
        if self.queue is not None:
            limits.check_name(self.queue, "queue")
        self.timing  # noqa: B018 (checks cron, every, timezone and bounds now)
        self.catchup_seconds  # noqa: B018
        self.jitter_seconds  # noqa: B018

    @property
    def timing(self) -> Timing:
        """When it ticks (checked: a bad cron expression or time zone raises
        :class:`ConfigurationError`)."""
        tz = zone(self.timezone)
        every = None if self.every is None else _seconds(self.every, "every", minimum=1)
        start = None if self.start_at is None else _epoch(self.start_at, "start_at", tz)
        end = None if self.end_at is None else _epoch(self.end_at, "end_at", tz)
        return Timing(self.cron, every, self.timezone, start, end)

    @property
    def catchup_seconds(self) -> float | None:
        """``catchup_window`` in seconds (None: one tick)."""
        if self.catchup_window is None:
            return None
        return _seconds(self.catchup_window, "catchup_window")

    @property
    def jitter_seconds(self) -> float:
        """``jitter`` in seconds (0: none)."""
        return 0.0 if self.jitter is None else _seconds(self.jitter, "jitter")


_TIMES = frozenset(
    {"start_at", "end_at", "next_run_at", "buffered_tick", "last_tick", "created_at",
     "updated_at"}
)  # fmt: skip
_DURATIONS = frozenset({"every", "catchup_window", "jitter"})


class ScheduleOptions(TypedDict, total=False):
    """The options of ``app.schedule(name, workflow, **options)`` (and of ``client.schedules.
    create``): :class:`Schedule`'s, documented there."""

    cron: str | None
    every: timedelta | float | None
    timezone: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    overlap: Overlap
    catchup_window: timedelta | float | None
    jitter: timedelta | float | None
    start_at: datetime | float | None
    end_at: datetime | float | None
    paused: bool
    queue: str | None
    note: str


def _when(value: float | None, tz: ZoneInfo) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz)


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A stored schedule as read: its definition, where it is, and what its last tick did.

    Times are aware datetimes in the schedule's time zone. ``last_result`` says what the last
    tick did: ``started``, ``exists`` (its workflow was there already), ``skipped``
    (``overlap="skip"``), ``buffered``, or ``missed`` (older than the catch-up window);
    ``missed`` counts the ticks missed so far. ``input`` is the stored arguments (encoded).
    """

    name: str
    workflow: str
    cron: str | None
    every: timedelta | None
    timezone: str
    overlap: str
    catchup_window: timedelta | None
    jitter: timedelta | None
    start_at: datetime | None
    end_at: datetime | None
    paused: bool
    pause_reason: str | None
    note: str
    queue: str
    next_run_at: datetime | None
    buffered_tick: datetime | None
    last_tick: datetime | None
    last_workflow_id: str | None
    last_result: str | None
    missed: int
    input: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScheduleInfo:
        """The inverse of :meth:`to_dict` (a server's answer, to a Client)."""
        values: dict[str, Any] = {}
        for name in cls.__slots__:
            value = data.get(name)
            if name in _TIMES and isinstance(value, str):
                value = datetime.fromisoformat(value)
            elif name in _DURATIONS and value is not None:
                value = timedelta(seconds=value)
            values[name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: datetimes as ISO 8601, durations in seconds."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, timedelta):
                value = value.total_seconds()
            out[name] = value
        return out


def _duration(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def info_of(rec: ScheduleRecord) -> ScheduleInfo:
    """The :class:`ScheduleInfo` of a stored schedule."""
    timing = Timing.from_json(rec.spec, rec.start_at, rec.end_at)
    tz = timing.tz
    created = datetime.fromtimestamp(rec.created_at, tz)
    return ScheduleInfo(
        name=rec.name, workflow=rec.workflow_name, cron=timing.cron,
        every=_duration(timing.every), timezone=timing.timezone, overlap=rec.overlap,
        catchup_window=_duration(rec.catchup_window), jitter=_duration(rec.jitter or None),
        start_at=_when(rec.start_at, tz), end_at=_when(rec.end_at, tz), paused=rec.paused,
        pause_reason=rec.pause_reason, note=rec.note, queue=rec.queue,
        next_run_at=_when(rec.next_run_at, tz), buffered_tick=_when(rec.buffered_at, tz),
        last_tick=_when(rec.last_tick, tz), last_workflow_id=rec.last_workflow_id,
        last_result=rec.last_result, missed=rec.missed, input=rec.input, created_at=created,
        updated_at=_when(rec.updated_at, tz) or created,
    )  # fmt: skip
