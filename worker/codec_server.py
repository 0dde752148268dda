"""The codec server: the Temporal UI (and ``temporal --codec-endpoint``) decrypt through it.

Temporal's codec-server protocol: ``POST <endpoint>/encode`` and ``POST <endpoint>/decode``,
each taking and answering the proto3 JSON of ``temporal.api.common.v1.Payloads`` —
``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`` (every
bytes field base64). The endpoint here is ``<api base>/codec``. Both routes run through the
same codec as fireline's own client, and both need an identified caller, exactly as the rest
of the API does (a bearer token when ``auth.tokens`` is configured): decrypting shows
incident contents, encoding lets a payload into a history. The UI calls from its own origin,
so the routes answer CORS for the configured Temporal UI origins, and only these routes do.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime,
# and ``Caller`` is local to ``codec_router``.
import logging
from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from worker.codec import EncryptionError
from worker.errors import BadRequest

log = logging.getLogger("fireline.codec")

PREFIX = "/codec"
# What the Temporal UI sends: the user's token (when configured), the JSON body, and the
# namespace it is showing.
_CORS_HEADERS = ["Authorization", "Content-Type", "X-Namespace"]

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["payloads"],
                    "properties": {
                        "payloads": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "metadata": {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "string",
                                            "format": "byte",
                                        },
                                    },
                                    "data": {"type": "string", "format": "byte"},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


def install_codec_server(
    app: FastAPI,
    codec: PayloadCodec | None,
    caller: Callable[..., str],
    origins: Sequence[str] = (),
) -> None:
    """Serve ``/codec/encode`` and ``/codec/decode`` when a codec is configured.

    ``caller`` is the API's authentication dependency; ``origins`` the Temporal UIs allowed
    to call from a browser.
    """
    if codec is None:
        return
    app.include_router(codec_router(codec, caller))
    app.add_middleware(_CodecCors, origins=list(origins))


def codec_router(codec: PayloadCodec, caller: Callable[..., str]) -> APIRouter:
    """The two codec-server routes, behind ``caller``."""
    router = APIRouter(prefix=PREFIX, tags=["codec"])
    Caller = Annotated[str, Depends(caller)]  # noqa: N806 - a type alias, named as one

    @router.post("/encode", openapi_extra=_BODY_DOC)
    async def encode(
        request: Request,
        actor: Caller,
        namespace: Annotated[str | None, Header(alias="X-Namespace")] = None,
    ) -> JSONResponse:
        """Encrypt payloads with the active key (Temporal codec-server protocol)."""
        payloads = await _payloads(request)
        encoded = await codec.encode(payloads.payloads)
        log.info("codec: %s encoded %d payload(s) (namespace %s)", actor, len(encoded), namespace)
        return _answer(encoded)

    @router.post("/decode", openapi_extra=_BODY_DOC)
    async def decode(
        request: Request,
        actor: Caller,
        namespace: Annotated[str | None, Header(alias="X-Namespace")] = None,
    ) -> JSONResponse:
        """Decrypt payloads with any configured key (Temporal codec-server protocol)."""
        payloads = await _payloads(request)
        try:
            decoded = await codec.decode(payloads.payloads)
        except EncryptionError as exc:
            raise BadRequest(str(exc)) from None
        # Who read incident contents through the UI is worth an audit line; what they read
        # is not logged.
        log.info("codec: %s decoded %d payload(s) (namespace %s)", actor, len(decoded), namespace)
        return _answer(decoded)

    return router


async def _payloads(request: Request) -> Payloads:
    body = await request.body()
    try:
        payloads = json_format.Parse(body, Payloads())
    except json_format.ParseError as exc:
        raise BadRequest(
            'body: expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]} '
            f"(proto3 JSON of Payloads): {exc}"
        ) from None
    return payloads


def _answer(payloads: Sequence[Payload]) -> JSONResponse:
    return JSONResponse({"payloads": [json_format.MessageToDict(p) for p in payloads]})


class _CodecCors:
    """CORS for the codec routes only; the rest of the API stays same-origin."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self._app = app
        self._cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=_CORS_HEADERS,
            # The UI's "include cross-origin credentials" option sends cookies.
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
            await self._cors(scope, receive, send)
        else:
            await self._app(scope, receive, send)
