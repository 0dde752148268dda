"""Errors the service layer raises, each with the HTTP status the API answers with.

::

    FirelineError            (RuntimeError) base; carries ``status`` and ``reason``
    ├── BadRequest           400  the request cannot be acted on as written
    ├── Unauthorized         401  no or wrong credentials
    ├── Forbidden            403  a known caller may not do this, or the user is unknown
    ├── NotFound             404  no such incident
    ├── Conflict             409  not allowed in the incident's current state
    └── Unavailable          503  Temporal or the worker is not answering
"""

from __future__ import annotations


class FirelineError(RuntimeError):
    """Base: an error with an HTTP status and a reason a person can act on."""

    status = 500

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(FirelineError):
    """The request cannot be acted on as written."""

    status = 400


class Unauthorized(FirelineError):
    """No or wrong credentials."""

    status = 401


class Forbidden(FirelineError):
    """The caller may not do this."""

    status = 403


class NotFound(FirelineError):
    """No such thing."""

    status = 404


class Conflict(FirelineError):
    """Not allowed in the current state."""

    status = 409


class Unavailable(FirelineError):
    """A dependency is not answering."""

    status = 503
