"""The ActiveJob sample in Python: the values interop/ruby/activejob.rb's ``AjInterop.sample``
holds in Ruby, one per ActiveJob serializer. Both must stay in step.

``sample(rails)`` is what a Python worker must receive from Ruby's
``AjSampleJob.perform_later(*args, **kwargs)`` on that Rails version (and what Python sends so
that Ruby's ``perform`` receives the Ruby sample). ``same(a, b)`` compares exactly: types, UTC
offsets and zone names too, which ``==`` ignores (Symbol("a") == "a", datetimes compare instants).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gokogeri.activejob import (
    Duration,
    GlobalID,
    IndifferentHash,
    RubyDateTime,
    RubyModule,
    RubyRange,
    Symbol,
    TimeWithZone,
)

USER = "AjInterop::User"


def sample(rails: tuple[int, ...]) -> tuple[list[Any], dict[str, Any]]:
    """(args, kwargs) as a Python worker receives them from Rails ``rails``."""
    if rails >= (7, 1):
        # 7.1+ sends the zone's name: the value comes back in Europe/Paris.
        paris: Any = TimeWithZone.of(
            datetime(2026, 6, 1, 14, 30, tzinfo=ZoneInfo("Europe/Paris")), "Europe/Paris"
        )
    else:
        # 6.1/7.0 send only the offset.
        paris = TimeWithZone.of(datetime(2026, 6, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))))
    args: list[Any] = [
        42,
        "text",
        1.5,
        None,
        True,
        Symbol("vip"),
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        RubyDateTime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        date(2026, 2, 28),
        paris,
        Duration.of(183600, [("days", 2), ("hours", 3)]),
        Duration.of(90, [("seconds", 90)]),
        # Rails < 7.1 has no BigDecimalSerializer: it sends the number as a JSON string.
        Decimal("123.456") if rails >= (7, 1) else "123.456",
        RubyModule(USER),
        {Symbol("a"): 1, "b": [1, Symbol("c")]},
        IndifferentHash({"x": 1, "y": IndifferentHash({"z": 2})}),
        GlobalID("gokogeri", USER, "42"),
        [1, [date(2026, 3, 4), {"k": Symbol("s")}]],
    ]
    if rails >= (7, 0):
        args += [
            RubyRange(1, 10, False),
            RubyRange(1.5, 2.5, True),
            RubyRange(date(2026, 1, 1), date(2026, 12, 31), False),
        ]
    kwargs: dict[str, Any] = {
        "locale": "fr",
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "sym": Symbol("vip"),
        "user": GlobalID("gokogeri", USER, "7"),
    }
    return args, kwargs


def outgoing(rails: tuple[int, ...]) -> tuple[list[Any], dict[str, Any]]:
    """What Python passes to perform_later so that Ruby's perform gets the Ruby sample: the
    same values, with a Decimal for the BigDecimal on every version (Rails < 7.1 gets it as
    the string its own perform would see)."""
    args, kwargs = sample(rails)
    args[13] = Decimal("123.456")
    return args, kwargs


def differences(got: Any, want: Any, where: str = "value") -> list[str]:
    """Every place ``got`` differs from ``want``, by type, offset and zone as well as value."""
    if type(got) is not type(want):
        return [f"{where}: {type(got).__name__} {got!r} != {type(want).__name__} {want!r}"]
    if isinstance(want, list):
        if len(got) != len(want):
            return [f"{where}: {len(got)} items != {len(want)}"]
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in differences(g, w, f"{where}[{i}]")
        ]
    if isinstance(want, dict):
        if list(got) != list(want) or [type(k) for k in got] != [type(k) for k in want]:
            return [f"{where}: keys {list(got)!r} != {list(want)!r}"]
        return [d for k in want for d in differences(got[k], want[k], f"{where}[{k!r}]")]
    if isinstance(want, RubyRange):
        return (
            differences(got.begin, want.begin, f"{where}.begin")
            + differences(got.end, want.end, f"{where}.end")
            + ([f"{where}.exclude_end"] if got.exclude_end != want.exclude_end else [])
        )
    if isinstance(want, datetime) and (
        got != want
        or got.utcoffset() != want.utcoffset()
        or getattr(got, "zone", None) != getattr(want, "zone", None)
    ):
        return [f"{where}: {got!r} != {want!r}"]
    if isinstance(want, Duration) and (
        got != want or got.parts != want.parts or got.value != want.value
    ):
        return [f"{where}: {got!r} != {want!r}"]
    if got != want:
        return [f"{where}: {got!r} != {want!r}"]
    return []
