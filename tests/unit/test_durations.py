from datetime import timedelta

import pytest
from pydantic import BaseModel

from workflows.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w2d", timedelta(days=9)),
        ("1y", timedelta(days=365)),
        ("250ms", timedelta(milliseconds=250)),
        ("1m30s500ms", timedelta(minutes=1, seconds=30, milliseconds=500)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "1.5h", "30m1h", "5 minutes", "-1m", "1h1h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=f"^'{text}' is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(milliseconds=1500), "1s500ms"),
    ],
)
def test_format_duration_round_trips(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


class _Model(BaseModel):
    wait: Duration


def test_duration_field_reads_units_and_seconds_and_writes_units() -> None:
    assert _Model.model_validate({"wait": "1h"}).wait == timedelta(hours=1)
    assert _Model.model_validate({"wait": 90}).wait == timedelta(seconds=90)
    assert _Model(wait=timedelta(minutes=5)).model_dump(mode="json") == {"wait": "5m"}
    assert _Model.model_validate(
        _Model(wait=timedelta(minutes=5)).model_dump(mode="json")
    ).wait == (timedelta(minutes=5))
