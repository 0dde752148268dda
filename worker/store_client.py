"""The client side of fireline's singleton store workflows (silences, on-call overrides).

Each store is one long-lived workflow per task queue, started by its first Update
(update-with-start). This is the one place that talks to them and turns Temporal's
errors into ``worker.errors``: a validator's ``ApplicationError`` type picks the error
class, a store that does not exist yet reads as empty, and anything else is Unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from worker.errors import FirelineError, NotFound, Unavailable


class StoreClient:
    """Updates and queries for one store workflow.

    Update and query methods are typed ``Any``: temporalio's overloads tie each call to one
    workflow class, and this client serves every store.
    """

    def __init__(
        self,
        client: Client,
        *,
        workflow_id: str,
        task_queue: str,
        run: Callable[..., Any],
        start_input: BaseModel,
        what: str,
        errors: Mapping[str, type[FirelineError]],
        default_error: type[FirelineError],
    ) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self.task_queue = task_queue
        self._run = run
        self._start_input = start_input
        self._what = what
        self._errors = errors
        self._default_error = default_error

    async def update_with_start(
        self, update: Any, arg: BaseModel, *, request_id: str | None = None
    ) -> Any:
        """Run an Update, starting the store if this is its first use."""
        start = WithStartWorkflowOperation(
            self._run,
            self._start_input,
            id=self.workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            return await self.client.execute_update_with_start_workflow(
                update, arg, start_workflow_operation=start, id=request_id
            )
        except (WorkflowUpdateFailedError, RPCError) as exc:
            raise self._translate(exc) from None

    async def update(self, update: Any, arg: BaseModel, *, missing: str) -> Any:
        """Run an Update on an existing store; ``missing`` is the NotFound reason if absent."""
        handle = self.client.get_workflow_handle(self.workflow_id)
        try:
            return await handle.execute_update(update, arg)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(missing) from None
            raise self._translate(exc) from None
        except WorkflowUpdateFailedError as exc:
            raise self._translate(exc) from None

    async def query(self, query: Any, *args: Any, timeout: timedelta | None = None) -> list[Any]:
        """Run a list query; a store not started yet holds nothing."""
        handle = self.client.get_workflow_handle(self.workflow_id)
        try:
            result: list[Any] = await handle.query(query, *args, rpc_timeout=timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []
            raise Unavailable(f"Temporal did not answer for {self._what}: {exc.message}") from None
        except WorkflowQueryFailedError as exc:
            raise Unavailable(f"the {self._what} query failed: {exc.message}") from None
        return result

    def _translate(self, exc: Exception) -> FirelineError:
        if isinstance(exc, WorkflowUpdateFailedError) and isinstance(exc.cause, ApplicationError):
            error = self._errors.get(exc.cause.type or "", self._default_error)
            return error(exc.cause.message)
        if isinstance(exc, RPCError):
            return Unavailable(f"Temporal did not answer for {self._what}: {exc.message}")
        return Unavailable(str(exc))
