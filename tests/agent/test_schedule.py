"""Working hours in clearml-agent's "<hours> <days>" format, forced on/off by worker properties and
queue tags; every check runs against an injected moment, never the real clock."""

from __future__ import annotations

from datetime import datetime

import pytest

from clearml_core.agent.schedule import (
    ScheduleError,
    Window,
    WorkSchedule,
    join_entries,
    may_pull,
    parse_entry,
    queue_force,
    worker_force,
)

# 2026-11-22 is a Sunday
SUN, MON, TUE, WED, SAT = (datetime(2026, 11, d, 0, 0) for d in (22, 23, 24, 25, 28))


def at(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute)


def test_the_documented_examples() -> None:
    assert parse_entry("20-23 SUN") == [Window(0, 20, 23)]
    assert parse_entry("20-23 SUN,TUE") == [Window(0, 20, 23), Window(2, 20, 23)]
    assert parse_entry("20-23 SUN-TUE") == [Window(d, 20, 23) for d in (0, 1, 2)]
    assert parse_entry("20 SUN") == [Window(0, 20, 24)]
    assert parse_entry("20-00,00-08 SUN") == [Window(0, 20, 24), Window(0, 0, 8)]


def test_a_span_from_before_to_after_midnight() -> None:
    # "20-00 SUN", "00-08 MON": 8 PM on Sunday to 8 AM on Monday
    schedule = WorkSchedule.parse(uptime=["20-00 SUN", "00-08 MON"])
    assert schedule.is_on(at(SUN, 20)) and schedule.is_on(at(SUN, 23, 59))
    assert schedule.is_on(at(MON, 0)) and schedule.is_on(at(MON, 7, 59))
    assert not schedule.is_on(at(MON, 8)) and not schedule.is_on(at(SUN, 19, 59))
    # the same written as one wrapping span
    wrapped = WorkSchedule.parse(uptime="22-02 SAT")
    assert wrapped.is_on(at(SAT, 23)) and wrapped.is_on(at(SUN, 1, 30))
    assert not wrapped.is_on(at(SUN, 2)) and not wrapped.is_on(at(SAT, 21))


def test_end_hour_is_exclusive_and_days_lower_case() -> None:
    schedule = WorkSchedule.parse(uptime=["1-10 mon-fri", "20-22 sat"])
    assert schedule.is_on(at(MON, 1)) and schedule.is_on(at(WED, 9, 59))
    assert not schedule.is_on(at(MON, 10)) and not schedule.is_on(at(MON, 0, 59))
    assert not schedule.is_on(at(SUN, 5))
    assert schedule.is_on(at(SAT, 21)) and not schedule.is_on(at(SAT, 22))


def test_day_range_wraps_round_the_week_and_days_may_be_omitted() -> None:
    assert [w.day for w in parse_entry("9-17 FRI-MON")] == [0, 1, 5, 6]
    assert [w.day for w in parse_entry("9-17")] == list(range(7))


def test_downtime_is_the_complement() -> None:
    schedule = WorkSchedule.parse(downtime="09-18 MON-FRI")
    assert not schedule.is_on(at(TUE, 12)) and schedule.is_on(at(TUE, 18)) and schedule.is_on(at(SAT, 12))


def test_no_schedule_is_always_on() -> None:
    schedule = WorkSchedule.parse()
    assert schedule.always_on and schedule.is_on(at(TUE, 3))


@pytest.mark.parametrize(
    "entry", ["25-26 MON", "ab MON", "10-12 FUNDAY", "10-10 MON", "10-12 MO", "", "17-20 TUE WED"]
)
def test_bad_entries_say_what_is_wrong(entry: str) -> None:
    with pytest.raises(ScheduleError):
        WorkSchedule.parse(uptime=[entry or "  x"])


def test_uptime_and_downtime_together_is_an_error() -> None:
    with pytest.raises(ScheduleError, match="either uptime or downtime"):
        WorkSchedule.parse(uptime="1-2 MON", downtime="3-4 MON")


def test_unquoted_words_on_the_command_line_are_joined() -> None:
    assert join_entries(["17-20", "TUE", "1-10 mon-fri", "20-22", "sat"]) == [
        "17-20 TUE",
        "1-10 mon-fri",
        "20-22 sat",
    ]


def test_worker_force_property_with_expiry() -> None:
    now = at(TUE, 12).timestamp()
    assert worker_force({"force": {"value": "on", "expires": now + 60}}, now) is True
    assert worker_force({"force": {"value": "off", "expires": now - 1}}, now) is None
    assert worker_force({"force": {"value": "off", "expires": None}}, now) is False
    assert worker_force([{"key": "force", "value": "on", "expiry": 0}], now) is True
    assert worker_force({}, now) is None


def test_queue_tags() -> None:
    assert queue_force(["x", "force_workers:on"]) is True
    assert queue_force(["force_workers:off"]) is False
    assert queue_force(["force_workers:on", "force_workers:off"]) is False
    assert queue_force([]) is None


def test_overrides_in_order_queue_tag_then_worker_then_schedule() -> None:
    schedule = WorkSchedule.parse(uptime="9-17 MON-FRI")
    night = at(TUE, 23)
    stamp = night.timestamp()
    on_until_later = {"force": {"value": "on", "expires": stamp + 3600}}
    expired = {"force": {"value": "on", "expires": stamp - 1}}

    assert not may_pull(schedule, night).pull
    assert may_pull(schedule, night, worker_properties=on_until_later).pull
    assert not may_pull(schedule, night, worker_properties=expired).pull
    decision = may_pull(schedule, night, queue_tags=["force_workers:off"], worker_properties=on_until_later)
    assert not decision.pull and "force_workers:off" in decision.reason
    assert may_pull(schedule, night, queue_tags=["force_workers:on"]).pull
    day = at(TUE, 10)
    assert may_pull(schedule, day).pull
    assert not may_pull(schedule, day, worker_properties={"force": {"value": "off", "expires": None}}).pull
