"""JSON answers of the HTTP API, with the headers every API answer carries."""

from __future__ import annotations

import json

from aiohttp import web

API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def dumps(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), allow_nan=False)


def json_response(document: object, status: int = 200) -> web.Response:
    return web.Response(
        text=dumps(document), status=status, content_type="application/json", headers=API_HEADERS
    )


def error_response(status: int, message: str, **extra: object) -> web.Response:
    return json_response({"error": message, **extra}, status)
