"""The dashboard's write endpoints: each JSON body made into the MQTT command's payload, checked
by the same parser and limits and applied through ``controller.control.commands`` (source ``http``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from controller.control.applier import control_limits
from controller.control.commands import CommandRejectedError, NumberSetting, load_goal_payload, parse_command
from controller.frontends.web.responses import json_response
from controller.frontends.web.views import BadParameterError, Query

if TYPE_CHECKING:
    from controller.status.state import SiteState


class WebServer(Protocol):
    """What a write endpoint needs of the server it runs in (``controller.frontends.web.server``)."""

    app: SiteState

    def query(self, request: web.Request, *allowed: str) -> Query: ...


async def apply_command(server: WebServer, key: str, payload: bytes | Callable[[], bytes]) -> web.Response:
    """Apply the command ``key`` of ``payload`` (or of what ``payload()`` makes of the body)."""
    now = server.app.clock.now()
    try:
        raw = payload() if callable(payload) else payload
        command = parse_command(key, raw, control_limits(server.app.config), now)
        summary = await server.app.commands.apply(command, "http")
    except CommandRejectedError as exc:
        status = 503 if exc.field == "storage" else 400
        value = exc.report("http", now)["value"]
        return json_response(
            {"error": str(exc), "parameter": exc.field, "value": value, "reason": exc.reason}, status
        )
    return json_response({"applied": summary})


async def set_mode(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    body = _json_body(await request.read(), ("mode",))
    mode = body.get("mode")
    if not isinstance(mode, str):
        raise BadParameterError(
            "mode", mode, "is required: a string (auto, self_use, force_charge, hold, force_discharge)"
        )
    return await apply_command(server, "mode", mode.encode())


async def set_override(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    return await apply_command(server, "override", await request.read())


async def cancel_override(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    return await apply_command(server, "override_cancel", b"PRESS")


async def set_goal_target(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    return await apply_command(server, "goal_target", await request.read())


async def set_goal_reserve(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    return await apply_command(server, "goal_reserve", await request.read())


async def cancel_goal_target(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    return await apply_command(server, "goal_cancel", b"target")


async def cancel_goal_reserve(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    return await apply_command(server, "goal_cancel", b"reserve")


async def set_load_goal(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    name = request.match_info["name"]
    body = await request.read()
    return await apply_command(server, "load_goal", lambda: load_goal_payload(name, body))


async def cancel_load_goal(server: WebServer, request: web.Request) -> web.StreamResponse:
    by = server.query(request, "by").text("by")
    name = request.match_info["name"]
    payload = name if by is None else json.dumps({"load": name, "by": by})
    return await apply_command(server, "load_goal_cancel", payload.encode())


async def replan(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    return await apply_command(server, "replan", b"PRESS")


async def set_setting(server: WebServer, request: web.Request) -> web.StreamResponse:
    server.query(request)
    name = request.match_info["name"]
    known = tuple(s.value for s in NumberSetting)
    if name not in known:
        raise BadParameterError("name", name, f"must be one of {', '.join(known)}")
    body = _json_body(await request.read(), ("value",))
    if "value" not in body:
        raise BadParameterError("value", None, "is required: a number, or null to remove the price cap")
    value = body["value"]
    if value is None:
        return await apply_command(server, name, b"None")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadParameterError("value", value, "must be a number or null")
    try:
        payload = repr(float(value)).encode()
    except OverflowError:
        raise BadParameterError("value", value, "out of range") from None
    return await apply_command(server, name, payload)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BadParameterError(key, value, "appears more than once")
        out[key] = value
    return out


def _json_body(raw: bytes, allowed: tuple[str, ...]) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, BadParameterError):
            raise
        raise BadParameterError("body", text, f"not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadParameterError("body", text, "must be a JSON object")
    for key in body:
        if key not in allowed:
            raise BadParameterError(key, body[key], f"unknown field; allowed: {', '.join(allowed)}")
    return body
