"""The HTTP face of the emulator: apiserver paths, verbs and discovery, as JSON."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp

from worker.k8s_emulator.api import ResourceApi
from worker.k8s_emulator.errors import (
    ApiError,
    BadRequestError,
    MethodNotAllowedError,
    NotFoundError,
)
from worker.k8s_emulator.faults import FaultInjector, FaultMiddleware
from worker.k8s_emulator.resources import ALL_RESOURCES, Obj, ResourceType, lookup

logger = logging.getLogger(__name__)

EMULATED_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-fireline-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_VERBS = ["create", "delete", "get", "list", "patch", "update"]


@dataclass(frozen=True)
class _Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def create_app(api: ResourceApi, injector: FaultInjector) -> ASGIApp:
    """The ASGI application: fault injection in front of the apiserver routes."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def serve(request: Request, path: str) -> Response:
        try:
            return await _dispatch(api, request)
        except ApiError as error:
            return _json(error.status(), error.code)
        except Exception as error:  # the server boundary: answer as the apiserver would
            logger.exception("k8s emulator failed on %s %s", request.method, request.url.path)
            failure = ApiError(f"Internal error occurred: {error}")
            return _json(failure.status(), failure.code)

    return FaultMiddleware(app, injector)


async def _dispatch(api: ResourceApi, request: Request) -> Response:
    segments = [s for s in request.url.path.split("/") if s]
    method = request.method
    if method == "GET":
        discovered = _discovery(segments, request)
        if discovered is not None:
            return discovered
    route = _route(segments)
    query = request.query_params
    dry_run = "All" in query.getlist("dryRun")
    rt, namespace, name, sub = route.rt, route.namespace or "", route.name, route.subresource
    if name is None:
        if method == "GET":
            if query.get("watch") in ("true", "1"):
                raise MethodNotAllowedError("watch is not emulated; poll with list instead")
            return _json(
                api.list(
                    rt,
                    route.namespace if rt.namespaced else None,
                    label_selector=query.get("labelSelector", ""),
                    field_selector=query.get("fieldSelector", ""),
                    limit=_int(query.get("limit", "0"), "limit"),
                    continue_token=query.get("continue", ""),
                )
            )
        if method == "POST" and (route.namespace is not None or not rt.namespaced):
            created = api.create(rt, namespace, await _body(request), dry_run=dry_run)
            return _json(created, 201)
        raise MethodNotAllowedError(f"{method} is not supported on the {rt.plural} collection")
    if method == "GET":
        if sub == "scale":
            return _json(api.get_scale(rt, namespace, name))
        return _json(api.get(rt, namespace, name))
    if method == "PUT":
        body = await _body(request)
        if sub == "scale":
            return _json(api.update_scale(rt, namespace, name, body, dry_run=dry_run))
        return _json(api.update(rt, namespace, name, body, subresource=sub, dry_run=dry_run))
    if method == "PATCH":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await _body(request)
        if sub == "scale":
            return _json(api.patch_scale(rt, namespace, name, content_type, body, dry_run=dry_run))
        return _json(
            api.patch(rt, namespace, name, content_type, body, subresource=sub, dry_run=dry_run)
        )
    if method == "DELETE" and sub is None:
        options = await _body(request, optional=True)
        return _json(api.delete(rt, namespace, name, options, dry_run=dry_run))
    raise MethodNotAllowedError(f"{method} is not supported here")


def _route(segments: list[str]) -> _Route:
    if len(segments) >= 2 and segments[0] == "api":
        group, version, rest = "", segments[1], segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise _unknown_path()
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise _unknown_path()
    rt = lookup(group, version, rest[0])
    if rt is None or (namespace is not None and not rt.namespaced):
        raise _unknown_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if name is not None and rt.namespaced and namespace is None:
        raise _unknown_path()
    if sub is not None and sub not in rt.subresources:
        raise _unknown_path()
    return _Route(rt, namespace, name, sub)


def _unknown_path() -> NotFoundError:
    return NotFoundError("the server could not find the requested resource", {})


def _discovery(segments: list[str], request: Request) -> Response | None:
    if segments in (["healthz"], ["livez"], ["readyz"]):
        return Response("ok", media_type="text/plain")
    if segments == ["version"]:
        return _json(EMULATED_VERSION)
    if segments == ["api"]:
        return _json(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": request.url.netloc}
                ],
            }
        )
    groups = sorted({rt.group for rt in ALL_RESOURCES if rt.group})
    if segments == ["apis"]:
        return _json(
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_group(g) for g in groups],
            }
        )
    if len(segments) == 2 and segments[0] == "apis" and segments[1] in groups:
        return _json({"kind": "APIGroup", "apiVersion": "v1", **_group(segments[1])})
    if segments == ["api", "v1"]:
        return _json(_resource_list("", "v1"))
    if len(segments) == 3 and segments[0] == "apis" and segments[1] in groups:
        return _json(_resource_list(segments[1], segments[2]))
    return None


def _group(name: str) -> Obj:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


def _resource_list(group: str, version: str) -> Obj:
    resources: list[Obj] = []
    for rt in ALL_RESOURCES:
        if (rt.group, rt.version) != (group, version):
            continue
        resources.append(
            {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": _VERBS,
            }
        )
        for sub in sorted(rt.subresources):
            entry: Obj = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": "Scale" if sub == "scale" else rt.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                entry.update({"group": "autoscaling", "version": "v1"})
            resources.append(entry)
    if not resources:
        raise _unknown_path()
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


async def _body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return None
        raise BadRequestError("the request has no body")
    try:
        return json.loads(raw)
    except ValueError as error:
        raise BadRequestError(f"the request body is not valid JSON: {error}") from error


def _int(text: str, name: str) -> int:
    if not text.isdigit():
        raise BadRequestError(f"{name} must be a non-negative integer, got {text!r}")
    return int(text)


def _json(body: Obj, code: int = 200) -> Response:
    return Response(json.dumps(body), status_code=code, media_type="application/json")
