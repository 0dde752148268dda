"""Kubernetes failures as Temporal ``ApplicationError``\\ s, classified in one place.

Every error a Kubernetes action raises is one of these; ``type`` is the class name, which
runbook retry policies and tests match on::

    temporalio.exceptions.ApplicationError
     └── KubernetesActionError          base of every failure here; never raised itself
          ├── InvalidActionInput        the step's ``with`` inputs do not fit; non_retryable
          ├── KubernetesTransientError  408, 429, 5xx, no answer at all; retried
          │    └── KubernetesConflict   409: someone wrote first; re-read and decide again
          ├── KubernetesPermanentError  every other 4xx (403, 422, ...); non_retryable
          │    └── KubernetesNotFound   404: the named object does not exist
          ├── RevisionNotFound          rollback target is not among the ReplicaSets;
          │                             non_retryable, nothing changed
          ├── DeploymentPaused          rollback or restart of a paused Deployment;
          │                             non_retryable (kubectl refuses these too)
          ├── RolloutNotObserved        the controller has not acted on a change yet; retried
          ├── RolloutFailed             ProgressDeadlineExceeded, or another revision took
          │                             over; non_retryable
          └── RolloutDeadlineExceeded   wait_rollout's own deadline passed; non_retryable

The HTTP status rule is :func:`activities.http.is_transient_status`, the same one every
notification provider uses, so "what is worth retrying" has one definition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from temporalio.exceptions import ApplicationError

from activities.http import is_transient_status, parse_retry_after

logger = logging.getLogger(__name__)

# Enough of the apiserver's message to diagnose, not enough to flood the timeline.
_MAX_DETAIL = 300


class KubernetesActionError(ApplicationError):
    """Base of every failure a Kubernetes action raises; ``type`` is the class name."""

    retryable: ClassVar[bool] = False

    def __init__(
        self, message: str, *details: Any, next_retry_delay: timedelta | None = None
    ) -> None:
        """Build the error; whether Temporal retries it is fixed by the class."""
        super().__init__(
            message,
            *details,
            type=type(self).__name__,
            non_retryable=not self.retryable,
            next_retry_delay=next_retry_delay,
        )


class InvalidActionInput(KubernetesActionError):
    """The step's inputs do not fit the action; the message names the field."""


class KubernetesTransientError(KubernetesActionError):
    """The cluster did not answer, or answered with a status worth retrying."""

    retryable = True


class KubernetesConflict(KubernetesTransientError):
    """An optimistic-concurrency precondition failed: the object changed under us."""


class KubernetesPermanentError(KubernetesActionError):
    """The cluster refused the request in a way no retry can fix."""


class KubernetesNotFound(KubernetesPermanentError):
    """The named object does not exist."""


class RevisionNotFound(KubernetesActionError):
    """A rollback target revision is not among the Deployment's ReplicaSets."""


class DeploymentPaused(KubernetesActionError):
    """The Deployment is paused; its template changes would not roll out."""


class RolloutNotObserved(KubernetesActionError):
    """The Deployment controller has not observed a change in time."""

    retryable = True


class RolloutFailed(KubernetesActionError):
    """The rollout cannot finish: its progress deadline passed or it was superseded."""


class RolloutDeadlineExceeded(KubernetesActionError):
    """The rollout did not finish within the wait's deadline."""


def api_error(
    status: int, reason: str, body: str | None, headers: Mapping[str, str] | None, what: str
) -> KubernetesActionError:
    """Classify an apiserver answer about ``what`` (e.g. ``deployment shop/checkout``)."""
    detail = _status_message(body) or reason or "no body"
    if status == 404:
        error: KubernetesActionError = KubernetesNotFound(f"{what} not found ({detail})")
    elif status == 409:
        error = KubernetesConflict(f"{what}: conflict, retrying from a fresh read ({detail})")
    elif status == 0 or is_transient_status(status):
        # status 0 is the client's own "no HTTP answer" (e.g. a TLS failure mid-handshake).
        retry_after = None
        if status == 429 and headers is not None:
            retry_after = parse_retry_after(_header(headers, "retry-after"))
        text = f"{what}: Kubernetes API answered HTTP {status}: {detail}"
        if retry_after is not None:
            text += f" (retry after {int(retry_after.total_seconds())}s)"
        error = KubernetesTransientError(text, next_retry_delay=retry_after or None)
    else:
        error = KubernetesPermanentError(f"{what}: Kubernetes API answered HTTP {status}: {detail}")
    logger.warning("%s", error.message)
    return error


def unreachable(exc: Exception, what: str) -> KubernetesTransientError:
    """The error for a request that got no HTTP answer (reset, refused, timed out)."""
    # urllib3 wraps the socket error; its own text says which host and why.
    reason = str(exc) or type(exc).__name__
    error = KubernetesTransientError(
        f"{what}: Kubernetes API unreachable: {type(exc).__name__}: {reason}"[:1000]
    )
    logger.warning("%s", error.message)
    return error


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _status_message(body: str | None) -> str:
    # The apiserver answers errors with a `Status` object whose `message` is the useful part.
    if not body:
        return ""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    text = str(parsed.get("message") or "") if isinstance(parsed, dict) else body.strip()
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    return text
