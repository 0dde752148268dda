"""How a Temporal failure reaches a person: as the error they can act on."""

from __future__ import annotations

from typing import cast

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from worker.config import FirelineConfig
from worker.errors import Conflict, NotFound, Unavailable
from worker.incident_service import IncidentService


@pytest.fixture
def service() -> IncidentService:
    # translate() talks to nobody; the client is never used.
    return IncidentService(cast(Client, None), FirelineConfig(), "fireline")


@pytest.mark.parametrize(
    "message",
    [
        "workflow execution already completed",
        # An Update admitted just before the run closed is dropped by the server.
        "update 9742cb65-a538-43e2-ba43-e8ad4cc78bb3 not found",
    ],
)
def test_a_call_that_meets_a_closed_workflow_says_it_is_closed(
    service: IncidentService, message: str
) -> None:
    error = service.translate(RPCError(message, RPCStatusCode.NOT_FOUND, b""), "run INC-7-r1")
    assert isinstance(error, Conflict)
    assert str(error) == "run INC-7-r1 is closed"


def test_a_workflow_that_never_existed_is_not_found(service: IncidentService) -> None:
    exc = RPCError("workflow not found for ID: incident-INC-9", RPCStatusCode.NOT_FOUND, b"")
    error = service.translate(exc, "INC-9")
    assert isinstance(error, NotFound)
    assert str(error) == "no incident INC-9"
    assert str(service.translate(exc, "run INC-9-r2", missing="no run INC-9-r2")) == (
        "no run INC-9-r2"
    )


def test_an_unreachable_server_is_unavailable(service: IncidentService) -> None:
    exc = RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    error = service.translate(exc, "INC-9")
    assert isinstance(error, Unavailable)
    assert "Temporal is not answering" in str(error)
