"""Unit tests for the ``crontab()`` parser and the predicate it returns (spec §9)."""

from __future__ import annotations

import datetime
import pickle

import pytest

from huey._crontab import Crontab, crontab

# 2024-01-07 is a Sunday; days 7..13 run Sunday (0) .. Saturday (6).
SUNDAY = datetime.datetime(2024, 1, 7, 0, 0)


def on_weekday(cron_dow: int, hour: int = 0, minute: int = 0) -> datetime.datetime:
    """A datetime in January 2024 whose cron weekday (Sunday=0) is ``cron_dow``."""
    return SUNDAY.replace(day=7 + cron_dow, hour=hour, minute=minute)


def matching_minutes(schedule: Crontab) -> set[int]:
    base = datetime.datetime(2024, 1, 1, 0, 0)
    return {m for m in range(60) if schedule(base.replace(minute=m))}


def matching_hours(schedule: Crontab) -> set[int]:
    base = datetime.datetime(2024, 1, 1, 0, 0)
    return {h for h in range(24) if schedule(base.replace(hour=h))}


def matching_days(schedule: Crontab) -> set[int]:
    base = datetime.datetime(2024, 1, 1, 0, 0)  # January has 31 days
    return {d for d in range(1, 32) if schedule(base.replace(day=d))}


def matching_months(schedule: Crontab) -> set[int]:
    base = datetime.datetime(2024, 1, 1, 0, 0)
    return {m for m in range(1, 13) if schedule(base.replace(month=m))}


def matching_weekdays(schedule: Crontab) -> set[int]:
    return {d for d in range(7) if schedule(on_weekday(d))}


# --- defaults and the predicate -------------------------------------------------------------


def test_default_matches_every_minute() -> None:
    every = crontab()
    start = datetime.datetime(2024, 2, 28, 22, 0)
    # Crosses midnight, a month end (leap day) and several weekdays.
    for step in range(0, 3 * 24 * 60, 7):
        assert every(start + datetime.timedelta(minutes=step))
    assert every.minutes == frozenset(range(60))
    assert every.hours == frozenset(range(24))
    assert every.days == frozenset(range(1, 32))
    assert every.months == frozenset(range(1, 13))
    assert every.days_of_week == frozenset(range(7))


def test_seconds_and_microseconds_are_ignored() -> None:
    schedule = crontab(minute="5", hour="3")
    assert schedule(datetime.datetime(2024, 5, 5, 3, 5, 59, 999999))
    assert not schedule(datetime.datetime(2024, 5, 5, 3, 6, 0))


def test_all_fields_must_match() -> None:
    # 2024-03-15 is a Friday (cron 5).
    schedule = crontab(minute="30", hour="12", day="15", month="3", day_of_week="5")
    hit = datetime.datetime(2024, 3, 15, 12, 30)
    assert schedule(hit)
    assert not schedule(hit.replace(minute=31))
    assert not schedule(hit.replace(hour=13))
    assert not schedule(hit.replace(day=16))
    assert not schedule(hit.replace(month=4))
    # Same minute/hour/day/month in 2025 is a Saturday.
    assert not schedule(hit.replace(year=2025))


def test_predicate_is_callable_and_repr_readable() -> None:
    schedule = crontab(minute=0, hour="*/6")
    assert callable(schedule)
    assert repr(schedule) == (
        "crontab(minute='0', hour='*/6', day='*', month='*', day_of_week='*')"
    )


# --- single values and lists ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "getter", "expected"),
    [
        ({"minute": "0"}, matching_minutes, {0}),
        ({"minute": "59"}, matching_minutes, {59}),
        ({"minute": "0,15,30,45"}, matching_minutes, {0, 15, 30, 45}),
        ({"hour": "0"}, matching_hours, {0}),
        ({"hour": "23"}, matching_hours, {23}),
        ({"hour": "9,17"}, matching_hours, {9, 17}),
        ({"day": "1"}, matching_days, {1}),
        ({"day": "31"}, matching_days, {31}),
        ({"month": "1"}, matching_months, {1}),
        ({"month": "12"}, matching_months, {12}),
        ({"month": "3,6,9,12"}, matching_months, {3, 6, 9, 12}),
        ({"day_of_week": "0"}, matching_weekdays, {0}),
        ({"day_of_week": "6"}, matching_weekdays, {6}),
        ({"day_of_week": "1,3,5"}, matching_weekdays, {1, 3, 5}),
    ],
)
def test_values_and_lists(kwargs: dict[str, str], getter: object, expected: set[int]) -> None:
    assert getter(crontab(**kwargs)) == expected  # type: ignore[operator]


def test_ints_are_accepted() -> None:
    schedule = crontab(minute=15, hour=4, day=2, month=6, day_of_week=0)
    assert schedule == crontab(minute="15", hour="4", day="2", month="6", day_of_week="0")
    # 2024-06-02 is a Sunday.
    assert schedule(datetime.datetime(2024, 6, 2, 4, 15))


def test_whitespace_around_pieces_is_ignored() -> None:
    assert matching_minutes(crontab(minute="0, 30")) == {0, 30}
    assert matching_minutes(crontab(minute=" 5-7 ", strict=True)) == {5, 6, 7}


def test_duplicate_and_overlapping_pieces_collapse() -> None:
    assert matching_minutes(crontab(minute="1,1,1-3,2")) == {1, 2, 3}


# --- ranges, steps and wrap-around ----------------------------------------------------------


@pytest.mark.parametrize(
    ("minute", "expected"),
    [
        ("10-14", {10, 11, 12, 13, 14}),
        ("0-59", set(range(60))),
        ("7-7", {7}),
        ("0-10/5", {0, 5, 10}),
        ("1-10/3", {1, 4, 7, 10}),
        ("1-5/2", {1, 3, 5}),
        ("0-59/15", {0, 15, 30, 45}),
        ("10-20/100", {10}),
        ("*/15", {0, 15, 30, 45}),
        ("*/20", {0, 20, 40}),
        ("*/7", set(range(0, 60, 7))),
        ("*/1", set(range(60))),
        ("*/60", {0}),
        ("58-2", {58, 59, 0, 1, 2}),
        ("50-10/5", {50, 55, 0, 5, 10}),
        ("0,*/30,7-8", {0, 30, 7, 8}),
    ],
)
def test_minute_ranges_and_steps(minute: str, expected: set[int]) -> None:
    assert matching_minutes(crontab(minute=minute)) == expected


def test_step_range_is_not_read_as_plain_range() -> None:
    # 3.3 read '1-5/2' as '1-5'; 3.4+ applies the step.
    assert matching_minutes(crontab(minute="1-5/2")) != {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("hour", "expected"),
    [
        ("22-2", {22, 23, 0, 1, 2}),
        ("23-0", {23, 0}),
        ("9-17", set(range(9, 18))),
        ("*/6", {0, 6, 12, 18}),
        ("20-4/2", {20, 22, 0, 2, 4}),
    ],
)
def test_hour_ranges(hour: str, expected: set[int]) -> None:
    assert matching_hours(crontab(hour=hour)) == expected


def test_day_and_month_every_n_start_at_one() -> None:
    assert matching_days(crontab(day="*/10")) == {1, 11, 21, 31}
    assert matching_months(crontab(month="*/3")) == {1, 4, 7, 10}
    assert matching_months(crontab(month="*/5")) == {1, 6, 11}


def test_day_and_month_wrap_around() -> None:
    assert matching_days(crontab(day="30-2")) == {30, 31, 1, 2}
    assert matching_months(crontab(month="11-2")) == {11, 12, 1, 2}
    assert matching_months(crontab(month="10-3/2")) == {10, 12, 2}


def test_hour_wrap_around_at_midnight() -> None:
    night = crontab(minute="0", hour="22-2")
    base = datetime.datetime(2024, 1, 1, 0, 0)
    fired = [h for h in range(24) if night(base.replace(hour=h))]
    assert fired == [0, 1, 2, 22, 23]


# --- day of week ----------------------------------------------------------------------------


def test_weekday_conversion_from_python_monday_zero() -> None:
    # Python: Monday=0 .. Sunday=6. Cron: Sunday=0 .. Saturday=6.
    monday = crontab(day_of_week="1")
    sunday = crontab(day_of_week="0")
    saturday = crontab(day_of_week="6")
    base = datetime.datetime(2024, 1, 1)  # a Monday
    assert base.weekday() == 0
    assert monday(base) and not sunday(base) and not saturday(base)
    assert sunday(datetime.datetime(2024, 1, 7)) and not monday(datetime.datetime(2024, 1, 7))
    assert saturday(datetime.datetime(2024, 1, 6))


def test_every_weekday_over_four_weeks() -> None:
    for cron_dow in range(7):
        schedule = crontab(day_of_week=str(cron_dow))
        days = [
            d
            for d in range(1, 29)
            if schedule(datetime.datetime(2024, 2, d))  # Feb 2024: 1st is a Thursday (4)
        ]
        assert len(days) == 4
        assert all((d - 1 + 4) % 7 == cron_dow for d in days)


@pytest.mark.parametrize(
    ("dow", "expected"),
    [
        ("7", {0}),
        ("0,7", {0}),
        ("1-7", set(range(7))),
        ("0-7", set(range(7))),
        ("6-7", {6, 0}),
        ("1-5", {1, 2, 3, 4, 5}),
        ("1-5/2", {1, 3, 5}),
        ("5-1", {5, 6, 0, 1}),
        ("6-0", {6, 0}),
        ("4-2/2", {4, 6, 1}),
        ("7-2", {0, 1, 2}),
        ("*", set(range(7))),
    ],
)
def test_day_of_week_forms(dow: str, expected: set[int]) -> None:
    schedule = crontab(day_of_week=dow)
    assert matching_weekdays(schedule) == expected
    assert schedule.days_of_week == frozenset(expected)
    assert 7 not in schedule.days_of_week


def test_day_of_week_every_n_is_rejected() -> None:
    for value in ("*/2", "*/1", "*/7"):
        with pytest.raises(ValueError, match="day_of_week"):
            crontab(day_of_week=value)
        with pytest.raises(ValueError):
            crontab(day_of_week=value, strict=True)


def test_day_and_day_of_week_both_required() -> None:
    # huey ANDs every field (unlike Vixie cron, which ORs day and day_of_week).
    schedule = crontab(day="13", day_of_week="5")
    assert schedule(datetime.datetime(2024, 9, 13))  # Friday the 13th
    assert not schedule(datetime.datetime(2024, 10, 13))  # a Sunday
    assert not schedule(datetime.datetime(2024, 9, 20))  # another Friday


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"minute": "60"},
        {"minute": 60},
        {"hour": "24"},
        {"day": "0"},
        {"day": "32"},
        {"month": "0"},
        {"month": "13"},
        {"day_of_week": "8"},
        {"minute": "50-60"},
        {"minute": "60-5"},
        {"hour": "0-24"},
        {"day": "0-5"},
        {"month": "12-13"},
        {"day_of_week": "0-8"},
        {"minute": "0,99"},
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_out_of_range_raises_even_when_not_strict(kwargs: dict[str, str], strict: bool) -> None:
    with pytest.raises(ValueError, match="out of range"):
        crontab(strict=strict, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("piece", ["0-10/0", "*/0"])
def test_zero_step_raises(piece: str) -> None:
    with pytest.raises(ValueError, match="step"):
        crontab(minute=piece)


@pytest.mark.parametrize(
    "junk", ["x", "1-", "-1", "1-5/", "*/", "1-5/2x", "5x", "**", "1.5", "?", "L", "mon", "1/2"]
)
def test_invalid_syntax_raises_in_strict_mode(junk: str) -> None:
    with pytest.raises(ValueError, match="not valid"):
        crontab(minute=junk, strict=True)


@pytest.mark.parametrize("junk", ["x", "1-5/2x", "5x", "1/2", "mon"])
def test_invalid_pieces_are_ignored_when_not_strict(junk: str) -> None:
    # Pieces must match in full: '5x' is not read as '5'.
    assert matching_minutes(crontab(minute=f"{junk},7")) == {7}


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"minute": "x"}, "x"),
        ({"hour": "5x"}, "5x"),
        ({"day": ""}, ""),
        ({"month": "jan"}, "jan"),
        ({"day_of_week": "mon-fri"}, "mon-fri"),
        ({"minute": "1-5/2x"}, "1-5/2x"),
    ],
)
def test_field_with_no_values_raises(kwargs: dict[str, str], text: str) -> None:
    with pytest.raises(ValueError) as info:
        crontab(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == f"{text} matches no values"


@pytest.mark.parametrize("value", [None, 1.5, ["0"], True])
def test_wrong_types_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="minute must be a str or an int"):
        crontab(minute=value)  # type: ignore[arg-type]


def test_strict_mode_accepts_all_valid_syntax() -> None:
    schedule = crontab(
        minute="*/15,7",
        hour="22-2,12",
        day="1-10/3",
        month="*",
        day_of_week="1-5",
        strict=True,
    )
    assert schedule.minutes == frozenset({0, 7, 15, 30, 45})
    assert schedule.hours == frozenset({22, 23, 0, 1, 2, 12})
    assert schedule.days == frozenset({1, 4, 7, 10})
    assert schedule.days_of_week == frozenset({1, 2, 3, 4, 5})


# --- shortcuts and object behaviour ---------------------------------------------------------


def test_hourly_shortcut() -> None:
    hourly = crontab.hourly()
    assert hourly == crontab(minute="0")
    assert matching_minutes(hourly) == {0}
    assert matching_hours(hourly) == set(range(24))


def test_daily_shortcut() -> None:
    daily = crontab.daily()
    assert daily == crontab(minute="0", hour="0")
    assert daily(datetime.datetime(2024, 7, 4, 0, 0))
    assert not daily(datetime.datetime(2024, 7, 4, 1, 0))
    assert not daily(datetime.datetime(2024, 7, 4, 0, 1))


def test_shortcuts_accept_overrides() -> None:
    assert crontab.daily(hour="3") == crontab(minute="0", hour="3")
    assert crontab.hourly(day_of_week="1-5") == crontab(minute="0", day_of_week="1-5")


def test_equality_and_hash_follow_parsed_values() -> None:
    assert crontab(minute="*/30") == crontab(minute="0,30")
    assert hash(crontab(minute="*/30")) == hash(crontab(minute="0,30"))
    assert crontab(day_of_week="7") == crontab(day_of_week="0")
    assert crontab(minute="1") != crontab(minute="2")
    assert crontab() != "crontab()"


def test_schedule_pickles() -> None:
    schedule = crontab(minute="*/5", hour="9-17", day_of_week="1-5")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        clone = pickle.loads(pickle.dumps(schedule, protocol))
        assert clone == schedule
        assert repr(clone) == repr(schedule)
        assert clone(datetime.datetime(2024, 1, 2, 9, 5))  # Tuesday
    # The function itself pickles by reference under its public name.
    assert pickle.loads(pickle.dumps(crontab)) is crontab


def test_exported_from_public_modules() -> None:
    import huey
    import huey.api

    assert huey.crontab is crontab
    assert huey.api.crontab is crontab
