"""The tick arithmetic of schedules (durably.schedules.spec): cron in time zones across DST
changes (cronsim's Debian-cron semantics), fixed intervals, bounds, ids, jitter, and the clear
errors of bad definitions. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import durably
from durably.ids import validate_workflow_id
from durably.schedules.spec import Timing, check_schedule_name, jitter_delay, tick_id

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local_ticks(timing: Timing, start: datetime, count: int) -> list[str]:
    out: list[str] = []
    t: float | None = start.timestamp()
    for _ in range(count):
        assert t is not None
        t = timing.next_tick(t)
        assert t is not None
        out.append(datetime.fromtimestamp(t, timing.tz).isoformat())
    return out


def test_cron_in_a_time_zone_ticks_at_local_times_with_their_offsets() -> None:
    timing = Timing("0 3 * * *", None, "Europe/Berlin")
    assert local_ticks(timing, datetime(2026, 12, 2, 12, tzinfo=BERLIN), 2) == [
        "2026-12-03T03:00:00+01:00",
        "2026-12-04T03:00:00+01:00",
    ]
    # the id is the tick's local time with its offset
    t = datetime(2026, 12, 3, 3, tzinfo=BERLIN).timestamp()
    assert tick_id("nightly-report", t, BERLIN) == "nightly-report@2026-12-03T03:00:00+01:00"
    validate_workflow_id(tick_id("nightly-report", t, BERLIN))


def test_spring_gap_a_named_hour_in_the_gap_runs_once_right_after_it() -> None:
    # Berlin 2026-03-29: 02:00 -> 03:00; 02:30 does not exist that night
    timing = Timing("30 2 * * *", None, "Europe/Berlin")
    assert local_ticks(timing, datetime(2026, 3, 28, 12, tzinfo=BERLIN), 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_spring_gap_a_wildcard_hour_skips_the_missing_hour() -> None:
    timing = Timing("0 * * * *", None, "Europe/Berlin")
    assert local_ticks(timing, datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN), 3) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]


def test_fall_overlap_a_named_hour_runs_once_at_its_first_occurrence() -> None:
    # Berlin 2026-10-25: 03:00 -> 02:00; 02:30 happens twice
    timing = Timing("30 2 * * *", None, "Europe/Berlin")
    assert local_ticks(timing, datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_fall_overlap_a_wildcard_hour_runs_in_both_with_distinct_ids() -> None:
    timing = Timing("0 * * * *", None, "Europe/Berlin")
    ticks = local_ticks(timing, datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN), 4)
    assert ticks == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    ids = {tick_id("h", datetime.fromisoformat(t).timestamp(), BERLIN) for t in ticks}
    assert len(ids) == 4


def test_another_zone_has_its_own_dst_dates() -> None:
    # New York springs forward on 2026-03-08 02:00 -> 03:00
    timing = Timing("30 2 * * *", None, "America/New_York")
    assert local_ticks(timing, datetime(2026, 3, 7, 12, tzinfo=NEW_YORK), 2) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_every_ticks_at_fixed_instants_from_the_epoch_or_start_at() -> None:
    timing = Timing(None, 900.0, "UTC")
    t = datetime(2026, 12, 3, 10, 7, tzinfo=UTC).timestamp()
    first = timing.next_tick(t)
    assert first is not None
    assert datetime.fromtimestamp(first, UTC).isoformat() == "2026-12-03T10:15:00+00:00"
    assert timing.next_tick(first) == first + 900
    assert timing.next_tick(first, inclusive=True) == first
    # DST does not bend an interval: 1h apart in absolute time across the change
    hourly = Timing(None, 3600.0, "Europe/Berlin")
    before = datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN).timestamp()
    after = hourly.next_tick(before)
    assert after == before + 3600
    assert tick_id("h", after, BERLIN) == "h@2026-03-29T03:00:00+02:00"
    anchored = Timing(None, 60.0, "UTC", start_at=t + 7.0)
    assert anchored.next_tick(t) == t + 7.0
    assert anchored.next_tick(t + 7.0) == t + 67.0


def test_bounds_limit_the_ticks() -> None:
    start = datetime(2026, 12, 3, tzinfo=UTC).timestamp()
    timing = Timing(None, 60.0, "UTC", start_at=start, end_at=start + 120)
    assert timing.ticks(start, start + 1000) == [start, start + 60, start + 120]
    assert timing.next_tick(start + 120) is None
    with pytest.raises(durably.ConfigurationError, match="Bad day-of-month"):
        Timing("0 0 30 2 *", None, "UTC")  # February 30th never comes: refused up front


def test_jitter_is_deterministic_and_within_range() -> None:
    delays = {jitter_delay("s", 1000.0 + i, 30.0) for i in range(50)}
    assert all(0 <= d < 30 for d in delays) and len(delays) > 40
    assert jitter_delay("s", 1000.0, 30.0) == jitter_delay("s", 1000.0, 30.0)
    assert jitter_delay("s", 1000.0, 0) == 0


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"cron": "61 * * * *"}, "bad cron expression '61 * * * *'"),
        ({"cron": "every day"}, "bad cron expression"),
        ({"cron": ""}, "cron must be a cron expression"),
        ({"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"cron": "0 3 * * *", "every": 60}, "exactly one of cron= and every="),
        ({}, "exactly one of cron= and every="),
        ({"every": timedelta(milliseconds=10)}, "every must be at least 1 second"),
        ({"every": "5m"}, "every must be a timedelta or seconds"),
        ({"every": 60, "overlap": "queue"}, "overlap must be one of skip, buffer_one"),
        ({"every": 60, "catchup_window": -1}, "catchup_window must be at least 0"),
        ({"every": 60, "start_at": 100.0, "end_at": 50.0}, "end_at must not be before start_at"),
        ({"every": 60, "note": "x\x00"}, "NUL"),
    ],
)
def test_bad_definitions_are_clear_errors_at_definition_time(
    kwargs: dict[str, object], says: str
) -> None:
    with pytest.raises(durably.ConfigurationError) as err:
        durably.Schedule("s", "wf", **kwargs)  # type: ignore[arg-type]
    assert says in str(err.value)


@pytest.mark.parametrize("name", ["", "a@b", "-x", "x" * 151, "a b", 5])
def test_bad_schedule_names_are_refused(name: object) -> None:
    with pytest.raises(durably.ConfigurationError, match="schedule name"):
        check_schedule_name(name)
