"""Drill scenarios: the shipped ones load; a broken one is refused with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.drills import DrillError, load_drills


def test_the_shipped_scenarios_load_and_mark_every_alert_as_a_drill() -> None:
    drills = load_drills()
    assert "bad-deploy" in drills
    for scenario in drills.values():
        assert all(p["labels"]["drill"] == "true" for p in scenario.payloads())


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: other\nalerts: [{labels: {alertname: X}}]\n", "name: 'other' must match"),
        ("name: broken\nalerts: []\n", "alerts: List should have at least 1 item"),
        ("name: broken\nalerts: [{labels: {alertname: X}, colour: red}]\n", "alerts.0.colour"),
        ("name: broken\nalerts: [\n", "not YAML"),
    ],
)
def test_a_broken_scenario_names_its_file_and_field(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(DrillError) as caught:
        load_drills(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "broken.yaml"))
    assert problem in str(caught.value)
