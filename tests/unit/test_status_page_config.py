"""The status_page config section: validation names the field; helpers map services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from worker.config import format_validation_error
from worker.status_page_config import StatusPageConfig, components_for_service

SHOP: dict[str, Any] = {
    "title": "Example Shop Status",
    "groups": [{"id": "shop", "name": "Shop"}],
    "components": [
        {"id": "checkout", "name": "Checkout", "group": "shop", "services": ["checkout", "cart"]},
        {"id": "payments-api", "name": "Payments API", "group": "shop", "services": ["checkout"]},
        {"id": "website", "name": "Website", "services": ["web"]},
    ],
    "maintenance": [
        {
            "title": "Database upgrade",
            "components": ["checkout"],
            "starts_at": "2026-12-01T02:00:00Z",
            "ends_at": "2026-12-01T03:00:00Z",
        }
    ],
}


def problems(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        StatusPageConfig.model_validate(raw)
    return format_validation_error("fireline.yaml", caught.value)


def test_a_valid_section_builds_the_workflow_input() -> None:
    config = StatusPageConfig.model_validate(SHOP)
    inp = config.start_input()
    assert [c.id for c in inp.components] == ["checkout", "payments-api", "website"]
    assert [(g.id, g.name) for g in inp.groups] == [("shop", "Shop")]
    (maintenance,) = inp.maintenance
    assert maintenance.id == "database-upgrade-202612010200"
    assert maintenance.starts_at == datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert config.provider == "builtin"


@pytest.mark.parametrize(
    ("service", "expected"),
    [("checkout", ["checkout", "payments-api"]), ("web", ["website"]), ("search", [])],
)
def test_components_for_service(service: str, expected: list[str]) -> None:
    assert components_for_service(StatusPageConfig.model_validate(SHOP), service) == expected


def test_duplicate_ids_are_named() -> None:
    raw = {**SHOP, "components": [*SHOP["components"], {"id": "website", "name": "Site"}]}
    assert problems(raw) == "fireline.yaml: components: id 'website' is used more than once"


def test_an_unknown_group_is_named() -> None:
    raw = {**SHOP, "groups": []}
    assert problems(raw) == (
        "fireline.yaml: components[0].group: unknown group 'shop'; "
        "components[1].group: unknown group 'shop'"
    )


def test_an_unknown_component_in_maintenance_is_named() -> None:
    entry = {**SHOP["maintenance"][0], "components": ["checkout", "search"]}
    assert problems({**SHOP, "maintenance": [entry]}) == (
        "fireline.yaml: maintenance[0].components[1]: unknown component 'search'"
    )


def test_maintenance_must_end_after_it_starts_and_carry_a_timezone() -> None:
    entry = {**SHOP["maintenance"][0], "ends_at": "2026-12-01T01:00:00Z"}
    assert problems({**SHOP, "maintenance": [entry]}) == (
        "fireline.yaml: maintenance[0]: ends_at must be after starts_at"
    )
    naive = {**SHOP["maintenance"][0], "starts_at": "2026-12-01T02:00:00"}
    assert "maintenance[0].starts_at: Input should have timezone info" in problems(
        {**SHOP, "maintenance": [naive]}
    )


def test_atlassian_needs_its_settings_and_a_statuspage_id_per_component() -> None:
    message = problems({**SHOP, "provider": "atlassian"})
    assert "atlassian: required when provider is atlassian" in message
    assert (
        "components[2].statuspage_id: required when provider is atlassian (component 'website')"
        in message
    )


def test_the_atlassian_api_key_must_be_readable() -> None:
    raw = {
        **SHOP,
        "components": [{"id": "website", "name": "Website", "statuspage_id": "cmp0web"}],
        "maintenance": [],
        "provider": "atlassian",
        "atlassian": {"page_id": "qfn30z5r6s5h", "api_key": {"sha256": "0" * 64}},
    }
    assert problems(raw) == (
        "fireline.yaml: atlassian.api_key: give env or file: "
        "fireline must send this secret, not just check it"
    )
    raw["atlassian"] = {"page_id": "qfn30z5r6s5h", "api_key": {"env": "STATUSPAGE_API_KEY"}}
    config = StatusPageConfig.model_validate(raw)
    assert config.statuspage_ids() == {"website": "cmp0web"}
    assert config.atlassian is not None
    assert config.atlassian.base_url == "https://api.statuspage.io/v1"


def test_unknown_keys_are_rejected() -> None:
    raw = {**SHOP, "components": [{"id": "website", "name": "Website", "servces": ["web"]}]}
    assert problems(raw) == "fireline.yaml: components[0].servces: unknown key 'servces'"
