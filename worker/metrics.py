"""A few process counters in Prometheus text format, served at ``/metrics``.

Deliberately tiny (no client library): labelled counters are all fireline needs so far.
"""

from __future__ import annotations

import threading
from collections import defaultdict


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
                pairs = ",".join(
                    f'{n}="{_escape(v)}"' for n, v in zip(self.labels, key, strict=True)
                )
                lines.append(f"{self.name}{{{pairs}}} {value:g}")
        return "\n".join(lines)


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
