"""The ``crontab()`` schedule parser used by periodic tasks.

``crontab(minute, hour, day, month, day_of_week)`` parses its fields once and returns a
:class:`Crontab` predicate: calling it with a datetime says whether the schedule fires in that
minute. The predicate only does five set look-ups, so the scheduler can call it for every
periodic task every minute.

Syntax of a field (huey 3.4+ semantics): a comma-separated list of pieces, each one of

- ``*``: every value of the field;
- ``N``: one value;
- ``a-b`` and ``a-b/s``: an inclusive range with an optional step. When ``a > b`` the range
  wraps around (``22-2`` is 22, 23, 0, 1, 2; for ``day_of_week`` it wraps after 6);
- ``*/n``: every n-th value starting at the field's lowest value (not for ``day_of_week``).

``day_of_week`` counts from Sunday = 0 to Saturday = 6; 7 also means Sunday.
Whitespace around a piece is ignored.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable
from typing import Any, Protocol, cast

__all__ = ["Crontab", "crontab"]

# Names of the fields, in the order of crontab()'s parameters, with their valid values.
_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("day_of_week", 0, 7),
)

# Pieces must match in full (fullmatch), so '1-5/2x' or '5-' never match partially.
_VALUE_RE = re.compile(r"\d+")
_RANGE_RE = re.compile(r"(\d+)-(\d+)(?:/(\d+))?")
_EVERY_RE = re.compile(r"\*/(\d+)")


def _check_bounds(field: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise ValueError(f"crontab {field}={value} is out of range: valid values are {lo}-{hi}")
    return value


def _check_step(field: str, piece: str, step: int) -> int:
    if step < 1:
        raise ValueError(f"crontab {field}={piece!r}: the step must be 1 or more")
    return step


def _parse_range(field: str, match: re.Match[str], lo: int, hi: int) -> list[int]:
    """Values of an ``a-b`` or ``a-b/s`` piece, wrapping around when ``a > b``."""
    start = _check_bounds(field, int(match.group(1)), lo, hi)
    end = _check_bounds(field, int(match.group(2)), lo, hi)
    step = 1 if match.group(3) is None else _check_step(field, match.group(0), int(match.group(3)))
    if start <= end:
        return list(range(start, end + 1, step))
    # Wrap-around: run to the top of the field, then restart at its bottom. For day_of_week
    # the top is Saturday (6): 7 is only an alias of Sunday, not a day after Saturday.
    top = 6 if field == "day_of_week" else hi
    sequence = [*range(start, top + 1), *range(lo, end + 1)]
    return sequence[::step]


def _parse_piece(field: str, piece: str, lo: int, hi: int, strict: bool) -> list[int]:
    """Values of one comma-separated piece of a field (an empty list when it is ignored)."""
    if piece == "*":
        return list(range(lo, 7 if field == "day_of_week" else hi + 1))
    if _VALUE_RE.fullmatch(piece):
        return [_check_bounds(field, int(piece), lo, hi)]
    match = _RANGE_RE.fullmatch(piece)
    if match:
        return _parse_range(field, match, lo, hi)
    match = _EVERY_RE.fullmatch(piece)
    if match:
        if field == "day_of_week":
            raise ValueError(
                f"crontab day_of_week={piece!r}: '*/n' is not supported for day_of_week; "
                "list the days instead, e.g. '0,2,4,6' or '1-5/2'"
            )
        step = _check_step(field, piece, int(match.group(1)))
        return list(range(lo, hi + 1, step))
    if strict:
        raise ValueError(
            f"crontab {field}={piece!r} is not valid: use '*', 'N', 'a-b', 'a-b/s' or '*/n'"
        )
    return []


def _parse_field(field: str, value: object, lo: int, hi: int, strict: bool) -> frozenset[int]:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(
            f"crontab {field} must be a str or an int, got {type(value).__name__}: {value!r}"
        )
    text = str(value)
    values: set[int] = set()
    for piece in text.split(","):
        values.update(_parse_piece(field, piece.strip(), lo, hi, strict))
    if field == "day_of_week" and 7 in values:
        values.discard(7)
        values.add(0)  # 7 is another name for Sunday.
    if not values:
        raise ValueError(f"{text} matches no values")
    return frozenset(values)


class Crontab:
    """A parsed crontab schedule: ``schedule(dt)`` is True when ``dt`` falls in it.

    Built by :func:`crontab`. The parsed values are exposed as frozensets (``minutes``,
    ``hours``, ``days``, ``months`` and ``days_of_week`` with Sunday = 0). Only the minute
    and coarser parts of the datetime are looked at.
    """

    __slots__ = ("minutes", "hours", "days", "months", "days_of_week", "_spec")

    def __init__(
        self,
        minutes: frozenset[int],
        hours: frozenset[int],
        days: frozenset[int],
        months: frozenset[int],
        days_of_week: frozenset[int],
        spec: tuple[str, ...] = ("*", "*", "*", "*", "*"),
    ) -> None:
        self.minutes = minutes
        self.hours = hours
        self.days = days
        self.months = months
        self.days_of_week = days_of_week
        self._spec = spec

    def __call__(self, dt: datetime.datetime) -> bool:
        # isoweekday() is Monday=1 .. Sunday=7; modulo 7 gives cron's Sunday=0 numbering.
        return (
            dt.month in self.months
            and dt.day in self.days
            and dt.isoweekday() % 7 in self.days_of_week
            and dt.hour in self.hours
            and dt.minute in self.minutes
        )

    def _key(self) -> tuple[frozenset[int], ...]:
        return (self.minutes, self.hours, self.days, self.months, self.days_of_week)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Crontab):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        args = ", ".join(
            f"{name}={value!r}" for (name, _, _), value in zip(_FIELDS, self._spec, strict=True)
        )
        return f"crontab({args})"

    def __getstate__(self) -> tuple[Any, ...]:
        return (*self._key(), self._spec)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.minutes, self.hours, self.days, self.months, self.days_of_week, self._spec) = state


def _crontab(
    minute: str | int = "*",
    hour: str | int = "*",
    day: str | int = "*",
    month: str | int = "*",
    day_of_week: str | int = "*",
    strict: bool = False,
) -> Crontab:
    """Parse a cron-style schedule and return a predicate ``f(datetime) -> bool``.

    :param minute: 0-59.
    :param hour: 0-23.
    :param day: day of the month, 1-31.
    :param month: 1-12.
    :param day_of_week: 0-7, where 0 and 7 are Sunday and 6 is Saturday.
    :param strict: raise ``ValueError`` for a piece that is not valid syntax instead of
        silently ignoring it.
    :raises ValueError: a value is out of range, a step is 0, ``*/n`` is used for
        ``day_of_week``, a field matches no values at all, or (strict) a piece is invalid.
    :raises TypeError: a field is neither a str nor an int.
    """
    raw = (minute, hour, day, month, day_of_week)
    parsed = [
        _parse_field(name, value, lo, hi, strict)
        for (name, lo, hi), value in zip(_FIELDS, raw, strict=True)
    ]
    minutes, hours, days, months, days_of_week = parsed
    spec = tuple(str(value) for value in raw)
    return Crontab(minutes, hours, days, months, days_of_week, spec)


class _CrontabFunction(Protocol):
    """Type of :func:`crontab`: the parser plus its ``hourly``/``daily`` shortcuts."""

    hourly: Callable[..., Crontab]
    daily: Callable[..., Crontab]

    def __call__(
        self,
        minute: str | int = ...,
        hour: str | int = ...,
        day: str | int = ...,
        month: str | int = ...,
        day_of_week: str | int = ...,
        strict: bool = ...,
    ) -> Crontab: ...


# Keep the public name on the function object itself so that pickling it, repr() and
# introspection all refer to ``huey._crontab.crontab``.
_crontab.__name__ = _crontab.__qualname__ = "crontab"
crontab = cast(_CrontabFunction, _crontab)
crontab.hourly = functools.partial(crontab, minute="0")
crontab.daily = functools.partial(crontab, minute="0", hour="0")
