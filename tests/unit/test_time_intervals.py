"""Table tests for Alertmanager-compatible time intervals."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, ValidationError

from workflows.time_intervals import (
    TimeInterval,
    TimeIntervalSpec,
    TimeRange,
    contains,
    first_match,
)

NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """Build a UTC instant; noon by default so the date is unambiguous in most zones."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def times(start: str, end: str) -> dict[str, list[dict[str, str]]]:
    """Build the ``times`` field of a spec with one range."""
    return {"times": [{"start_time": start, "end_time": end}]}


# (spec as configured, instant, contained?)
SPEC_CASES: list[tuple[str, dict[str, Any], datetime, bool]] = [
    # empty spec / empty lists: no restriction
    ("empty spec, 2026", {}, utc(2026, 3, 8, 7, 30), True),
    ("empty spec, leap day", {}, utc(2028, 2, 29, 0, 0), True),
    ("empty lists", {"weekdays": [], "times": [], "years": []}, utc(1999, 12, 31, 23, 59), True),
    # times: start inclusive, end exclusive
    ("times start inclusive", times("09:00", "17:00"), utc(2026, 1, 5, 9, 0), True),
    ("times last minute", times("09:00", "17:00"), utc(2026, 1, 5, 16, 59), True),
    ("times end exclusive", times("09:00", "17:00"), utc(2026, 1, 5, 17, 0), False),
    ("times before start", times("09:00", "17:00"), utc(2026, 1, 5, 8, 59), False),
    ("24:00 end, last minute", times("22:00", "24:00"), utc(2026, 1, 5, 23, 59), True),
    ("24:00 end, next midnight", times("22:00", "24:00"), utc(2026, 1, 6, 0, 0), False),
    ("whole day at midnight", times("00:00", "24:00"), utc(2026, 1, 6, 0, 0), True),
    (
        "any of several times",
        {
            "times": [
                {"start_time": "00:00", "end_time": "01:00"},
                {"start_time": "22:00", "end_time": "24:00"},
            ]
        },
        utc(2026, 1, 5, 0, 30),
        True,
    ),
    # weekdays: names, inclusive ranges, case-insensitive; 2026-03-02 is a Monday
    ("weekday range, monday", {"weekdays": ["monday:friday"]}, utc(2026, 3, 2), True),
    ("weekday range, friday", {"weekdays": ["monday:friday"]}, utc(2026, 3, 6), True),
    ("weekday range, saturday", {"weekdays": ["monday:friday"]}, utc(2026, 3, 7), False),
    ("weekday range, sunday", {"weekdays": ["monday:friday"]}, utc(2026, 3, 8), False),
    ("week starts sunday", {"weekdays": ["sunday:monday"]}, utc(2026, 3, 8), True),
    ("weekday case-insensitive", {"weekdays": ["SATURDAY"]}, utc(2026, 3, 7), True),
    ("weekday list", {"weekdays": ["saturday", "Sunday"]}, utc(2026, 3, 8), True),
    ("weekday list miss", {"weekdays": ["saturday", "sunday"]}, utc(2026, 3, 9), False),
    # days_of_month: positive, negative from the end, ranges
    ("day range in", {"days_of_month": ["1:5"]}, utc(2026, 1, 5), True),
    ("day range out", {"days_of_month": ["1:5"]}, utc(2026, 1, 6), False),
    ("last day, feb 2026", {"days_of_month": ["-1"]}, utc(2026, 2, 28), True),
    ("last day, feb 2028 leap, 28th", {"days_of_month": ["-1"]}, utc(2028, 2, 28), False),
    ("last day, feb 2028 leap, 29th", {"days_of_month": ["-1"]}, utc(2028, 2, 29), True),
    ("last three days, feb 2026, 26th", {"days_of_month": ["-3:-1"]}, utc(2026, 2, 26), True),
    ("last three days, feb 2026, 25th", {"days_of_month": ["-3:-1"]}, utc(2026, 2, 25), False),
    ("last three days, feb 2028, 27th", {"days_of_month": ["-3:-1"]}, utc(2028, 2, 27), True),
    ("last three days, feb 2028, 26th", {"days_of_month": ["-3:-1"]}, utc(2028, 2, 26), False),
    ("last three days, march, 29th", {"days_of_month": ["-3:-1"]}, utc(2026, 3, 29), True),
    ("positive to negative", {"days_of_month": ["2:-2"]}, utc(2026, 2, 27), True),
    ("positive to negative, last", {"days_of_month": ["2:-2"]}, utc(2026, 2, 28), False),
    ("31st absent in april", {"days_of_month": ["31"]}, utc(2026, 4, 30), False),
    ("-31 absent in april", {"days_of_month": ["-31"]}, utc(2026, 4, 1), False),
    ("-31 is the 1st in may", {"days_of_month": ["-31"]}, utc(2026, 5, 1), True),
    ("-31:-1 whole of april", {"days_of_month": ["-31:-1"]}, utc(2026, 4, 1), True),
    ("29:31 absent in feb 2026", {"days_of_month": ["29:31"]}, utc(2026, 2, 28), False),
    ("-31:-28 in feb 2026 is the 1st", {"days_of_month": ["-31:-28"]}, utc(2026, 2, 1), True),
    ("-31:-28 in feb 2026 not 2nd", {"days_of_month": ["-31:-28"]}, utc(2026, 2, 2), False),
    # months: names or numbers, ranges
    ("month range end", {"months": ["january:march"]}, utc(2026, 3, 31), True),
    ("month range after", {"months": ["january:march"]}, utc(2026, 4, 1), False),
    ("month number", {"months": ["12"]}, utc(2026, 12, 1), True),
    ("month numeric range", {"months": ["1:3"]}, utc(2026, 2, 1), True),
    ("month name any case", {"months": ["December"]}, utc(2026, 12, 1), True),
    ("month mixed range", {"months": ["june:9"]}, utc(2026, 10, 1), False),
    # years
    ("year", {"years": ["2026"]}, utc(2026, 6, 1), True),
    ("other year", {"years": ["2026"]}, utc(2027, 6, 1), False),
    ("year range", {"years": ["2025:2027"]}, utc(2027, 12, 31), True),
    # every non-empty field must match
    (
        "all fields match",
        {
            "weekdays": ["monday"],
            "days_of_month": ["1:7"],
            "months": ["march"],
            **times("11:00", "13:00"),
        },
        utc(2026, 3, 2),
        True,
    ),
    (
        "one field fails",
        {"weekdays": ["monday"], "days_of_month": ["8:14"], "months": ["march"]},
        utc(2026, 3, 2),
        False,
    ),
    # location: every field is judged on the zone's wall clock
    (
        "tokyo morning",
        {"location": "Asia/Tokyo", **times("09:00", "17:00")},
        utc(2026, 1, 5, 0, 30),
        True,
    ),
    (
        "tokyo night",
        {"location": "Asia/Tokyo", **times("09:00", "17:00")},
        utc(2026, 1, 5, 12),
        False,
    ),
    (
        "tokyo weekday",
        {"location": "Asia/Tokyo", "weekdays": ["monday"]},
        utc(2026, 3, 8, 23, 30),
        True,
    ),
    (
        "auckland day",
        {"location": "Pacific/Auckland", "days_of_month": ["1"]},
        utc(2026, 2, 28, 12),
        True,
    ),
    (
        "auckland month",
        {"location": "Pacific/Auckland", "months": ["march"]},
        utc(2026, 2, 28, 12),
        True,
    ),
    (
        "auckland year",
        {"location": "Pacific/Auckland", "years": ["2027"]},
        utc(2026, 12, 31, 12),
        True,
    ),
    (
        "instant given in another zone",
        times("13:00", "14:00"),
        datetime(2026, 3, 9, 9, 30, tzinfo=NEW_YORK),
        True,
    ),
]

MARKET = {"location": "America/New_York", **times("09:30", "16:00")}
SKIPPED_HOUR = {"location": "America/New_York", **times("02:00", "03:00")}
REPEATED_HOUR = {"location": "America/New_York", **times("01:00", "02:00")}

# America/New_York: 2026-03-08 02:00 EST jumps to 03:00 EDT; 2026-11-01 02:00 EDT falls back to
# 01:00 EST. The wall clock decides, so the UTC instants of 09:30 move by an hour.
DST_CASES: list[tuple[str, dict[str, Any], datetime, bool]] = [
    ("sat before spring: 08:30 EST", MARKET, utc(2026, 3, 7, 13, 30), False),
    ("sat before spring: 09:30 EST", MARKET, utc(2026, 3, 7, 14, 30), True),
    ("sat before spring: 15:59 EST", MARKET, utc(2026, 3, 7, 20, 59), True),
    ("spring day: 09:30 EDT", MARKET, utc(2026, 3, 8, 13, 30), True),
    ("spring day: 09:29 EDT", MARKET, utc(2026, 3, 8, 13, 29), False),
    ("spring day: 16:00 EDT", MARKET, utc(2026, 3, 8, 20, 0), False),
    ("spring day: 15:59 EDT", MARKET, utc(2026, 3, 8, 19, 59), True),
    ("skipped hour: 01:59 EST", SKIPPED_HOUR, utc(2026, 3, 8, 6, 59), False),
    ("skipped hour: 03:00 EDT", SKIPPED_HOUR, utc(2026, 3, 8, 7, 0), False),
    ("skipped hour exists day before", SKIPPED_HOUR, utc(2026, 3, 7, 7, 30), True),
    ("fall day: 00:59 EDT", REPEATED_HOUR, utc(2026, 11, 1, 4, 59), False),
    ("fall day: first 01:00 EDT", REPEATED_HOUR, utc(2026, 11, 1, 5, 0), True),
    ("fall day: first 01:59 EDT", REPEATED_HOUR, utc(2026, 11, 1, 5, 59), True),
    ("fall day: second 01:00 EST", REPEATED_HOUR, utc(2026, 11, 1, 6, 0), True),
    ("fall day: second 01:59 EST", REPEATED_HOUR, utc(2026, 11, 1, 6, 59), True),
    ("fall day: 02:00 EST", REPEATED_HOUR, utc(2026, 11, 1, 7, 0), False),
    ("fall day: 09:30 EST", MARKET, utc(2026, 11, 1, 14, 30), True),
    ("fall day: 08:30 EST", MARKET, utc(2026, 11, 1, 13, 30), False),
    ("day before fall: 09:30 EDT", MARKET, utc(2026, 10, 31, 13, 30), True),
]


@pytest.mark.parametrize(
    ("spec", "at", "expected"),
    [pytest.param(spec, at, expected, id=name) for name, spec, at, expected in SPEC_CASES],
)
def test_spec_contains(spec: dict[str, Any], at: datetime, expected: bool) -> None:
    interval = TimeInterval(name="window", time_intervals=[TimeIntervalSpec.model_validate(spec)])
    assert contains(interval, at) is expected


@pytest.mark.parametrize(
    ("spec", "at", "expected"),
    [pytest.param(spec, at, expected, id=name) for name, spec, at, expected in DST_CASES],
)
def test_dst_follows_wall_clock(spec: dict[str, Any], at: datetime, expected: bool) -> None:
    assert TimeIntervalSpec.model_validate(spec).contains(at) is expected


OFF_HOURS = TimeInterval.model_validate(
    {
        "name": "out-of-business-hours",
        "time_intervals": [
            {"weekdays": ["saturday", "sunday"]},
            {"times": [{"start_time": "17:00", "end_time": "24:00"}]},
            {"times": [{"start_time": "00:00", "end_time": "09:00"}]},
        ],
    }
)


@pytest.mark.parametrize(
    ("at", "spec_index"),
    [
        pytest.param(utc(2026, 3, 7, 12), 0, id="saturday noon"),
        pytest.param(utc(2026, 3, 9, 20), 1, id="monday evening"),
        pytest.param(utc(2026, 3, 9, 8), 2, id="monday early"),
        pytest.param(utc(2026, 3, 7, 20), 0, id="saturday evening: first spec wins"),
        pytest.param(utc(2026, 3, 9, 12), None, id="monday noon"),
    ],
)
def test_interval_matches_any_spec(at: datetime, spec_index: int | None) -> None:
    expected = None if spec_index is None else OFF_HOURS.time_intervals[spec_index]
    assert first_match(OFF_HOURS, at) is expected
    assert contains(OFF_HOURS, at) is (spec_index is not None)


def test_interval_without_specs_contains_nothing() -> None:
    assert contains(TimeInterval(name="never", time_intervals=[]), utc(2026, 1, 1)) is False


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda at: contains(OFF_HOURS, at), id="contains"),
        pytest.param(lambda at: first_match(OFF_HOURS, at), id="first_match"),
        pytest.param(lambda at: TimeIntervalSpec().contains(at), id="spec.contains"),
        pytest.param(
            lambda at: contains(TimeInterval(name="never", time_intervals=[]), at),
            id="no specs",
        ),
    ],
)
def test_naive_datetime_rejected(call: Any) -> None:
    with pytest.raises(
        ValueError, match=re.escape("at must be timezone-aware, got naive 2026-03-09T12:00:00")
    ):
        call(datetime(2026, 3, 9, 12, 0))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="empty"),
        pytest.param(MARKET | {"weekdays": ["Monday:FRIDAY"]}, id="market hours, case kept"),
        pytest.param(
            {
                "days_of_month": ["-3:-1", "1", "2:-2"],
                "months": ["january:3", "December"],
                "years": ["2025:2027"],
                "location": "Pacific/Auckland",
                **times("00:00", "24:00"),
            },
            id="every field",
        ),
    ],
)
def test_round_trips_through_json_unchanged(data: dict[str, Any]) -> None:
    interval = TimeInterval.model_validate({"name": "w", "time_intervals": [data]})
    dumped = interval.model_dump(mode="json")
    assert dumped["time_intervals"][0] == TimeIntervalSpec().model_dump(mode="json") | data
    assert TimeInterval.model_validate(dumped) == interval
    assert TimeInterval.model_validate_json(interval.model_dump_json()) == interval


def test_models_are_frozen() -> None:
    spec = TimeIntervalSpec(weekdays=["monday"])
    with pytest.raises(ValidationError, match="Instance is frozen"):
        spec.weekdays = ["tuesday"]  # type: ignore[misc]


def _range(start: str, end: str) -> dict[str, Any]:
    return {"times": [{"start_time": start, "end_time": end}]}


FORMAT = "is not a time of day as HH:MM (00:00 to 24:00)"
ORDER = "(a range cannot cross midnight; split it in two)"
DAY = "a day of the month (1 to 31, or -31 to -1 counting back from the last day)"
MONTH = "a month (january to december, or 1 to 12)"

# (model, input, error location, pydantic's message)
INVALID: list[tuple[str, type[BaseModel], dict[str, Any], tuple[str | int, ...], str]] = [
    # times
    ("one-digit hour", TimeIntervalSpec, _range("9:30", "17:00"), ("times", 0, "start_time"),
     f"Value error, start_time: '9:30' {FORMAT}"),
    ("past 24:00", TimeIntervalSpec, _range("09:00", "24:01"), ("times", 0, "end_time"),
     f"Value error, end_time: '24:01' {FORMAT}"),
    ("hour 25", TimeIntervalSpec, _range("09:00", "25:00"), ("times", 0, "end_time"),
     f"Value error, end_time: '25:00' {FORMAT}"),
    ("minute 60", TimeIntervalSpec, _range("12:60", "13:00"), ("times", 0, "start_time"),
     f"Value error, start_time: '12:60' {FORMAT}"),
    ("seconds", TimeIntervalSpec, _range("09:00:00", "10:00"), ("times", 0, "start_time"),
     f"Value error, start_time: '09:00:00' {FORMAT}"),
    ("crosses midnight", TimeIntervalSpec, _range("17:00", "09:00"), ("times", 0),
     f"Value error, end_time '09:00' is not after start_time '17:00' {ORDER}"),
    ("empty range", TimeIntervalSpec, _range("09:00", "09:00"), ("times", 0),
     f"Value error, end_time '09:00' is not after start_time '09:00' {ORDER}"),
    ("start 24:00", TimeRange, {"start_time": "24:00", "end_time": "24:00"}, (),
     f"Value error, end_time '24:00' is not after start_time '24:00' {ORDER}"),
    ("missing end", TimeRange, {"start_time": "09:00"}, ("end_time",), "Field required"),
    ("unknown time key", TimeRange, {"start_time": "09:00", "end_time": "10:00", "tz": "UTC"},
     ("tz",), "Extra inputs are not permitted"),
    # weekdays
    ("funday", TimeIntervalSpec, {"weekdays": ["funday"]}, ("weekdays",),
     "Value error, weekdays: 'funday' is not a weekday"),
    ("funday in range", TimeIntervalSpec, {"weekdays": ["monday", "Monday:Funday"]},
     ("weekdays",), "Value error, weekdays: 'Funday' is not a weekday in 'Monday:Funday'"),
    ("weekday number", TimeIntervalSpec, {"weekdays": ["1"]}, ("weekdays",),
     "Value error, weekdays: '1' is not a weekday"),
    ("weekday abbreviation", TimeIntervalSpec, {"weekdays": ["mon"]}, ("weekdays",),
     "Value error, weekdays: 'mon' is not a weekday"),
    ("weekday wraps", TimeIntervalSpec, {"weekdays": ["saturday:sunday"]}, ("weekdays",),
     "Value error, weekdays: 'saturday:sunday' ends before it starts"
     " (a week runs sunday to saturday)"),
    ("three-part range", TimeIntervalSpec, {"weekdays": ["monday:tuesday:friday"]},
     ("weekdays",),
     "Value error, weekdays: 'monday:tuesday:friday' is not a single value or a 'start:end' range"),
    # days_of_month
    ("day 0", TimeIntervalSpec, {"days_of_month": ["0"]}, ("days_of_month",),
     f"Value error, days_of_month: '0' is not {DAY}"),
    ("day 32", TimeIntervalSpec, {"days_of_month": ["1:32"]}, ("days_of_month",),
     f"Value error, days_of_month: '32' is not {DAY} in '1:32'"),
    ("day -32", TimeIntervalSpec, {"days_of_month": ["-32"]}, ("days_of_month",),
     f"Value error, days_of_month: '-32' is not {DAY}"),
    ("day name", TimeIntervalSpec, {"days_of_month": ["first"]}, ("days_of_month",),
     f"Value error, days_of_month: 'first' is not {DAY}"),
    ("day empty string", TimeIntervalSpec, {"days_of_month": [""]}, ("days_of_month",),
     f"Value error, days_of_month: '' is not {DAY}"),
    ("negative to positive", TimeIntervalSpec, {"days_of_month": ["-3:5"]}, ("days_of_month",),
     "Value error, days_of_month: '-3:5' has a negative start, so its end must be negative too"),
    ("days reversed", TimeIntervalSpec, {"days_of_month": ["5:3"]}, ("days_of_month",),
     "Value error, days_of_month: '5:3' ends before it starts in a 28-day month"),
    ("negative days reversed", TimeIntervalSpec, {"days_of_month": ["-1:-3"]},
     ("days_of_month",),
     "Value error, days_of_month: '-1:-3' ends before it starts in a 28-day month"),
    ("reversed in february", TimeIntervalSpec, {"days_of_month": ["25:-5"]}, ("days_of_month",),
     "Value error, days_of_month: '25:-5' ends before it starts in a 28-day month"),
    # months
    ("smarch", TimeIntervalSpec, {"months": ["smarch"]}, ("months",),
     f"Value error, months: 'smarch' is not {MONTH}"),
    ("month 13", TimeIntervalSpec, {"months": ["13"]}, ("months",),
     f"Value error, months: '13' is not {MONTH}"),
    ("month 0", TimeIntervalSpec, {"months": ["0:3"]}, ("months",),
     f"Value error, months: '0' is not {MONTH} in '0:3'"),
    ("months wrap", TimeIntervalSpec, {"months": ["november:february"]}, ("months",),
     "Value error, months: 'november:february' ends before it starts"
     " (a year runs january to december)"),
    # years
    ("year word", TimeIntervalSpec, {"years": ["next"]}, ("years",),
     "Value error, years: 'next' is not a year (1 to 9999)"),
    ("year 0", TimeIntervalSpec, {"years": ["0"]}, ("years",),
     "Value error, years: '0' is not a year (1 to 9999)"),
    ("year 10000", TimeIntervalSpec, {"years": ["2026:10000"]}, ("years",),
     "Value error, years: '10000' is not a year (1 to 9999) in '2026:10000'"),
    ("years reversed", TimeIntervalSpec, {"years": ["2027:2025"]}, ("years",),
     "Value error, years: '2027:2025' ends before it starts"),
    # location
    ("unknown zone", TimeIntervalSpec, {"location": "Mars/Olympus"}, ("location",),
     "Value error, location: 'Mars/Olympus' is not an IANA time zone"),
    ("host zone", TimeIntervalSpec, {"location": "Local"}, ("location",),
     "Value error, location: 'Local' is not an IANA time zone"),
    ("lower-case utc", TimeIntervalSpec, {"location": "utc"}, ("location",),
     "Value error, location: 'utc' is not an IANA time zone"),
    ("empty zone", TimeIntervalSpec, {"location": ""}, ("location",),
     "Value error, location: '' is not an IANA time zone"),
    ("zone directory", TimeIntervalSpec, {"location": "America"}, ("location",),
     "Value error, location: 'America' is not an IANA time zone"),
    ("zone path", TimeIntervalSpec, {"location": "../etc/passwd"}, ("location",),
     "Value error, location: '../etc/passwd' is not an IANA time zone"),
    # unknown keys and names
    ("alertmanager time_zone key", TimeIntervalSpec, {"time_zone": "UTC"}, ("time_zone",),
     "Extra inputs are not permitted"),
    ("unnamed interval", TimeInterval, {"name": "", "time_intervals": []}, ("name",),
     "String should have at least 1 character"),
    ("nested bad spec", TimeInterval, {"name": "w", "time_intervals": [{"weekdays": ["x"]}]},
     ("time_intervals", 0, "weekdays"), "Value error, weekdays: 'x' is not a weekday"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "data", "loc", "message"),
    [pytest.param(m, d, loc, msg, id=name) for name, m, d, loc, msg in INVALID],
)
def test_invalid_config_names_field_and_value(
    model: type[BaseModel], data: dict[str, Any], loc: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        model.model_validate(data)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [(loc, message)]
