"""A few process counters in Prometheus text format, served at ``/metrics``.

Deliberately tiny (no client library): labelled counters and gauges are all fireline needs.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping


class Counter:
    """A monotonically increasing counter with labels."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.help_text = help_text
        self.labels = labels
        self._values: dict[tuple[str, ...], float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the series with these label values."""
        key = tuple(labels[name] for name in self.labels)
        with self._lock:
            self._values[key] += amount

    def value(self, **labels: str) -> float:
        """The current value of one series."""
        return self._values.get(tuple(labels[name] for name in self.labels), 0.0)

    def render(self) -> str:
        """The exposition-format lines for this counter."""
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} counter"]
        with self._lock:
            for key, value in sorted(self._values.items()):
                lines.append(series(self.name, self.labels, key, value))
        return "\n".join(lines)


class Gauge:
    """A gauge whose whole set of series is replaced at once (a fresh report)."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help_text = help_text
        self.labels = labels
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def replace(self, values: Mapping[tuple[str, ...], float | None]) -> None:
        """Set every series; series missing from ``values`` (or None) disappear."""
        clean = {k: v for k, v in values.items() if v is not None}
        with self._lock:
            self._values = clean

    def value(self, *label_values: str) -> float | None:
        """One series' value, or None when it is not exposed."""
        return self._values.get(tuple(label_values))

    def render(self) -> str:
        """The exposition-format lines for this gauge."""
        lines = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} gauge"]
        with self._lock:
            for key, value in sorted(self._values.items()):
                lines.append(series(self.name, self.labels, key, value))
        return "\n".join(lines)


def series(name: str, labels: tuple[str, ...], key: tuple[str, ...], value: float) -> str:
    """One exposition-format sample line."""
    if not labels:
        return f"{name} {value:g}"
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(labels, key, strict=True))
    return f"{name}{{{pairs}}} {value:g}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Registry:
    """The counters one API process exposes."""

    def __init__(self) -> None:
        self.alerts = Counter(
            "fireline_alerts_received_total",
            "Alerts received, by source and outcome (accepted, rejected, unauthorized).",
            ("source", "outcome"),
        )

    def render(self) -> str:
        """The whole exposition."""
        return self.alerts.render() + "\n"
