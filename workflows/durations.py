"""Durations as operators write them: ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``.

The same units Alertmanager and Prometheus accept (``ms s m h d w y``; a day is 24 h), so a
duration copied from an Alertmanager config means the same thing here. Pure: imported by
workflow code and config models alike.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {
    "y": timedelta(days=365),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
# Units must appear largest first, each at most once, as in Prometheus' ParseDuration.
_PATTERN = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m`` style text; ``0`` and ``0s`` are zero."""
    text = text.strip()
    if text == "0":
        return timedelta(0)
    match = _PATTERN.match(text)
    if not text or match is None:
        raise ValueError(
            f"'{text}' is not a duration: use a number and a unit, largest unit first, "
            "e.g. 30s, 5m, 1h30m, 2d (units: ms s m h d w y)"
        )
    total = timedelta(0)
    for amount, unit in zip(match.groups(), _UNITS.values(), strict=True):
        if amount:
            total += int(amount) * unit
    return total


def format_duration(value: timedelta) -> str:
    """Render a timedelta the way ``parse_duration`` reads it (``1h30m``)."""
    if value <= timedelta(0):
        return "0s"
    rest_ms = value // timedelta(milliseconds=1)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = _UNITS[unit] // timedelta(milliseconds=1)
        amount, rest_ms = divmod(rest_ms, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _coerce(value: Any) -> Any:
    # Numbers keep pydantic's meaning (seconds); strings get the operator's units.
    if isinstance(value, str) and not value.startswith("P"):
        return parse_duration(value)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A timedelta field that reads ``1h30m`` and writes it back the same way in JSON."""
