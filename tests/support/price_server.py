"""A local stand-in for the price APIs: an aiohttp server on a free loopback port.

Tests register routes (path + substrings the decoded query must contain) with replies: a fixture
body, an HTTP status, a delay (to provoke timeouts) or garbage. Replies are served in order and
the last one repeats, so "500 then 200" is two replies. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web

from drivers.http import HttpClient, RetryPolicy
from support.shared import SHARED

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
SHARED_API = SHARED / "data" / "api"

# Short timeouts and backoff: a failing source costs milliseconds, not seconds, in tests.
FAST_POLICY = RetryPolicy(attempts=2, timeout_s=0.5, backoff_s=0.01, max_backoff_s=0.05)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fast_http() -> HttpClient:
    return HttpClient(FAST_POLICY)


@dataclass
class Reply:
    body: str = ""
    status: int = 200
    delay_s: float = 0.0
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    path: str
    match: tuple[str, ...]
    replies: list[Reply]
    calls: int = 0


class PriceApiServer:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    def add(self, path: str, *replies: Reply, match: tuple[str, ...] = ()) -> Route:
        route = Route(path, match, list(replies) or [Reply()])
        self.routes.append(route)
        return route

    def serve(self, path: str, body: str, *, match: tuple[str, ...] = (), **reply: object) -> Route:
        return self.add(path, Reply(body=body, **reply), match=match)  # type: ignore[arg-type]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = urllib.parse.unquote_plus(request.query_string)
        self.requests.append(f"{request.path}?{query}")
        candidates = [
            route
            for route in self.routes
            if route.path == request.path and all(m in query for m in route.match)
        ]
        if not candidates:
            return web.Response(status=404, text=f"no route for {request.path}?{query}")
        route = max(candidates, key=lambda r: len(r.match))
        reply = route.replies[min(route.calls, len(route.replies) - 1)]
        route.calls += 1
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return web.Response(
            status=reply.status,
            body=reply.body.encode("utf-8"),
            content_type=reply.content_type,
            charset="utf-8",
            headers=reply.headers,
        )

    async def __aenter__(self) -> PriceApiServer:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
