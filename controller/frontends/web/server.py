"""The local HTTP API, the dashboard page and live updates, served by the daemon itself (aiohttp).

- Bound to ``[web] host`` (127.0.0.1 by default), TLS when ``[web.tls]`` names a certificate.
- Every request needs ``Authorization: Bearer <token>`` (``[web] token``, best the credential
  file ``web__token``) except the health probe ``/api/health`` and the page's static files,
  which are the same for every installation and hold no data. A token on the health probe is
  checked too, and adds the details.
- Read-only unless ``[web] write_enabled``; the write endpoints (``writes``) turn their JSON bodies into the
  MQTT command payloads, validate them with the same parser and limits, and apply them through
  ``controller.control.commands`` (source ``http``). The token and write switch are read on every
  request, so a reload changes them at once; the listener needs a restart.
- ``/api/stream``: server-sent events ``state`` (after every poll) and ``plan`` (after every
  re-plan); each client has a small queue where the oldest message gives way, so a slow client
  costs a bounded amount of memory.
- The event loop is the control loop's: storage reads for the API (history, analytics) run at
  most STORAGE_READS at a time, so the daemon's own writes never queue behind a crowd of them,
  and a history answer (up to ~100k values) is encoded in a worker thread and kept for repeated
  reads of the same data manager result.

The routes are the table ``ROUTES`` below; the OpenAPI document (static/openapi.json)
describes the same routes, which a test checks. No request parameter reaches a shell, and
storage receives only typed values (see ``controller.frontends.web.views``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from controller import __version__
from controller.frontends.web import writes
from controller.frontends.web.guard import ConnectionGuard, MalformedRequests, descriptor_room
from controller.frontends.web.responses import API_HEADERS, dumps, error_response, json_response
from controller.frontends.web.views import (
    BadParameterError,
    Query,
    clean,
    config_version_json,
    energy_json,
    forecast_json,
    history_data,
    history_request,
    history_status,
    plan_json,
    prices_json,
    quality_fields,
    quality_json,
    session_json,
    state_json,
    voltage_request,
)
from controller.reports.accounting import day_account
from controller.reports.energy import bill_state
from storage import StorageError
from storage.analytics import voltage_report
from storage.records import History

if TYPE_CHECKING:
    from controller.status.state import SiteState

log = logging.getLogger(__name__)

MAX_STREAM_CLIENTS = 16
MAX_CONNECTIONS = 256  # at most; fewer under a low file-descriptor limit (see guard.py)
MAX_CONNECTIONS_PER_CLIENT = 32
HEAD_TIMEOUT_S = 10.0  # to send a request's head once connected
KEEPALIVE_IDLE_S = 15.0  # an idle kept-alive connection is closed after this
STREAM_QUEUE = 8  # messages kept per client; the oldest gives way
KEEPALIVE_S = 15.0
MAX_BODY_BYTES = 4096
STORAGE_READS = 2  # API reads of history at once: the control loop's writes never queue behind many
HISTORY_BODIES = 8  # encoded history answers kept for repeated reads of the data manager's cached results
STATIC_FILES = (  # (package, name, content type): the slot chart is the reports' too
    ("controller.frontends.web", "index.html", "text/html; charset=utf-8"),
    ("controller.frontends.web", "app.js", "text/javascript; charset=utf-8"),
    ("controller.frontends.web", "style.css", "text/css; charset=utf-8"),
    ("controller.frontends.web", "openapi.json", "application/json"),
    ("controller.reports", "chart.js", "text/javascript; charset=utf-8"),
    ("controller.reports", "chart.css", "text/css; charset=utf-8"),
)
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
AUTHENTICATED = web.RequestKey("authenticated", bool)

Handler = Callable[["WebServer", web.Request], Awaitable[web.StreamResponse]]


class EventHub:
    """Fan-out of server-sent events to the connected clients."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[bytes | None]] = set()

    @property
    def clients(self) -> int:
        return len(self._queues)

    def subscribe(self) -> asyncio.Queue[bytes | None] | None:
        if len(self._queues) >= MAX_STREAM_CLIENTS:
            return None
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(STREAM_QUEUE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self._queues.discard(queue)

    def publish(self, event: str, data: str) -> None:
        message = f"event: {event}\ndata: {data}\n\n".encode()
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    def close(self) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    public: bool = False  # served without a token
    write: bool = False  # needs [web] write_enabled


class WebServer:
    """The HTTP server of one application; does nothing unless ``[web] enabled``."""

    name = "web"

    def __init__(self, app: SiteState) -> None:
        self.app = app
        self.hub = EventHub()
        self.port: int | None = None  # the bound port once started
        self.last_error: str | None = None  # why the server is not running although enabled
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self.guard = ConnectionGuard(
            max_total=descriptor_room(MAX_CONNECTIONS),
            max_per_client=MAX_CONNECTIONS_PER_CLIENT,
            head_timeout_s=HEAD_TIMEOUT_S,
        )
        self._static: dict[str, StaticFile] = {}
        self._reads = asyncio.Semaphore(STORAGE_READS)
        self._history_bodies: OrderedDict[tuple[int, tuple[str, ...]], tuple[History, str]] = OrderedDict()
        self._started = time.monotonic()

    @property
    def url(self) -> str | None:
        web_config = self.app.config.web
        if self.port is None:
            return None
        scheme = "https" if web_config.tls else "http"
        host = "127.0.0.1" if web_config.host in ("0.0.0.0", "") else web_config.host  # noqa: S104
        return f"{scheme}://{host}:{self.port}"

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self, stack: AsyncExitStack) -> None:
        config = self.app.config.web
        if not config.enabled:
            return
        stack.push_async_callback(self.stop)
        ssl_context = None
        try:
            if config.tls is not None:
                ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ssl_context.load_cert_chain(config.tls.cert_file, config.tls.key_file)
            self._static = _load_static()
            MalformedRequests.install()
            runner = web.AppRunner(
                self._application(), access_log=None, shutdown_timeout=2.0, keepalive_timeout=KEEPALIVE_IDLE_S
            )
            await runner.setup()
            assert runner.server is not None
            server = await asyncio.get_running_loop().create_server(
                self.guard.wrap(runner.server), config.host, config.port, ssl=ssl_context, backlog=128
            )
        except (OSError, ssl.SSLError) as exc:
            self.last_error = f"web server not started on {config.host}:{config.port}: {exc}"
            log.error("%s", self.last_error)
            return
        self._runner, self._server = runner, server
        self.port = int(server.sockets[0].getsockname()[1]) if server.sockets else config.port
        self._started = time.monotonic()
        if ssl_context is None and config.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "web server on %s without TLS: the token crosses the network in clear text", config.host
            )
        log.info("web server on %s", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        server, self._server = self._server, None
        if server is not None:
            server.close()  # no new connections; the runner ends the open ones
        if runner is not None:
            self.hub.close()
            await runner.cleanup()
        self.port = None

    def _application(self) -> web.Application:
        application = web.Application(middlewares=[self._errors, self._auth], client_max_size=MAX_BODY_BYTES)
        for route in ROUTES:
            application.router.add_route(route.method, route.path, self._bind(route), name=None)
        return application

    def _bind(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await route.handler(self, request)

        return handle

    # --- middlewares ----------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except BadParameterError as exc:
            return json_response(exc.body(), 400)
        except StorageError as exc:
            return error_response(503, f"storage unavailable: {exc}")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, exc.reason)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("web request %s %s failed", request.method, request.path)
            return error_response(500, "internal error (logged by the daemon)")
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        expected = self.app.config.web.token.get_secret_value()
        scheme, _, given = (header or "").partition(" ")
        valid = (
            header is not None
            and scheme.lower() == "bearer"
            and bool(expected)
            # a header that is not UTF-8 arrives with surrogates: compared as its bytes, it never matches
            and hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected.encode())
        )
        request[AUTHENTICATED] = valid
        route = _route_of(request)
        public = route is not None and route.public
        if not valid and (
            not public or (header is not None and route is not None and route.path == "/api/health")
        ):
            reason = "missing bearer token" if header is None else "invalid bearer token"
            response = error_response(401, f"{reason} (Authorization: Bearer <[web] token>)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="hemsd"'
            return response
        if route is not None and route.write and not self.app.config.web.write_enabled:
            return error_response(403, "write endpoints are disabled ([web] write_enabled = false)")
        result: web.StreamResponse = await handler(request)
        return result

    # --- live updates -------------------------------------------------------------------------

    async def after_poll(self) -> None:
        """Push the new state to the stream's clients (nothing to do without clients)."""
        if self.hub.clients and self._runner is not None:
            try:
                self.hub.publish(
                    "state", dumps(await state_json(self.app, self.app.config.web.write_enabled))
                )
            except StorageError as exc:
                log.warning("web: state not pushed: %s", exc)

    async def after_replan(self) -> None:
        if self.hub.clients and self._runner is not None:
            self.hub.publish("plan", dumps(plan_json(self.app)))

    async def reconfigure(self) -> None:
        """Every request reads the configuration in force; address and TLS need a restart."""

    async def publish(self) -> None:
        """The stream pushes on every poll and re-plan; nothing is periodic."""

    async def controls_changed(self, now: datetime) -> None:
        """The next state pushed after the poll carries the controls."""

    # --- handlers -----------------------------------------------------------------------------

    def query(self, request: web.Request, *allowed: str) -> Query:
        return Query(request.query, allowed, self.app.clock.now())

    async def page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name", "index.html")
        static = self._static.get(name)
        if static is None or name == "openapi.json":
            raise web.HTTPNotFound()
        headers = {**PAGE_HEADERS, "ETag": static.etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == static.etag:
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=static.body, content_type=static.content_type.split(";")[0], charset="utf-8", headers=headers
        )

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=self._static["openapi.json"].body, content_type="application/json", headers=API_HEADERS
        )

    async def health(self, request: web.Request) -> web.StreamResponse:
        self.query(request)
        now = self.app.clock.now()
        health = await self.app.health(now)
        document: dict[str, object] = {
            "status": "degraded" if health.stale_sources or health.inverter_unresponsive else "ok",
            "version": __version__,
            "time": clean(now),
            "uptime_s": round(time.monotonic() - self._started, 1),
        }
        if request[AUTHENTICATED]:
            document["detail"] = {
                **clean(health),
                "price_status": self.app.price_status,
                "plan_trigger": self.app.plan_trigger,
                "stream_clients": self.hub.clients,
                "mqtt_error": self.app.frontend_error("homeassistant"),
            }
        return json_response(document)

    async def state(self, request: web.Request) -> web.StreamResponse:
        self.query(request)
        return json_response(await state_json(self.app, self.app.config.web.write_enabled))

    async def plan(self, request: web.Request) -> web.StreamResponse:
        self.query(request)
        return json_response(plan_json(self.app))

    async def prices(self, request: web.Request) -> web.StreamResponse:
        self.query(request)
        return json_response(prices_json(self.app))

    async def forecast(self, request: web.Request) -> web.StreamResponse:
        self.query(request)
        return json_response(forecast_json(self.app))

    async def history(self, request: web.Request) -> web.StreamResponse:
        query = self.query(request, "fields", "start", "end", "resolution", "stats")
        fields, start, end, resolution, stats = history_request(query, self.app.clock.now())
        async with self._reads:
            result = await self.app.data.history(fields, start, end, resolution)
        history = result.data
        if history is None:
            return json_response(history_status(result), 503)
        key = (id(history), tuple(stats))
        kept = self._history_bodies.get(key)
        if kept is None or kept[0] is not history:
            # a month of buckets is ~100k values: encoded off the event loop, kept for equal reads
            body = await asyncio.to_thread(lambda: dumps(history_data(history, stats))[1:-1])
            kept = (history, body)
            self._history_bodies[key] = kept
            while len(self._history_bodies) > HISTORY_BODIES:
                self._history_bodies.popitem(last=False)
        self._history_bodies.move_to_end(key)
        text = dumps(history_status(result))[:-1] + "," + kept[1] + "}"
        return web.Response(text=text, content_type="application/json", headers=API_HEADERS)

    async def sessions(self, request: web.Request) -> web.StreamResponse:
        query = self.query(request, "since", "until", "limit")
        now = self.app.clock.now()
        until = query.time("until", now) if query.text("until") is not None else None
        since = query.time("since", now) if query.text("since") is not None else None
        if since is not None and until is not None and until <= since:
            raise BadParameterError("until", query.text("until"), "must be after since")
        limit = query.integer("limit", 50, 1, 1000)
        records = await self.app.data.sessions(since=since, until=until, limit=limit)
        return json_response({"sessions": [session_json(s) for s in records]})

    async def quality(self, request: web.Request) -> web.StreamResponse:
        query = self.query(request, "day", "fields")
        tz = self.app.config.site.zone
        day = query.day("day", self.app.clock.now().astimezone(tz).date())
        fields = quality_fields(query)
        async with self._reads:
            result = await self.app.data.quality(day, tz, fields)
        return json_response(quality_json(day, result), 503 if result.data is None else 200)

    async def voltage(self, request: web.Request) -> web.StreamResponse:
        query = self.query(request, "start", "end", "nominal_v", "critical")
        start, end, limits, critical = voltage_request(query, self.app.clock.now())
        tz = self.app.config.site.zone
        async with self._reads:
            report = await voltage_report(self.app.data, start, end, tz, limits, critical=critical)
        return json_response(clean(report.to_dict()))

    async def energy(self, request: web.Request) -> web.StreamResponse:
        query = self.query(request, "day")
        tz = self.app.config.site.zone
        day = query.day("day", self.app.clock.now().astimezone(tz).date())
        async with self._reads:
            account = await day_account(self.app.data, day, tz)
        return json_response(
            energy_json(day, account, self.app.config.site.currency), 503 if account is None else 200
        )

    async def bill(self, request: web.Request) -> web.StreamResponse:
        self.query(request)
        config = self.app.config
        scheme, tz = config.settlement.build(), config.site.zone
        async with self._reads:
            month = await self.app.month_bill()
        if month is None:
            return json_response(
                {"status": "EMPTY", "message": "nothing recorded this month yet", "scheme": scheme.name}
            )
        return json_response({"status": "REAL", **bill_state(month, tz, config.site.currency, scheme.name)})

    async def config_history(self, request: web.Request) -> web.StreamResponse:
        query = self.query(request, "limit", "text")
        limit = query.integer("limit", 20, 1, 200)
        with_text = query.choice("text", "false", ("true", "false")) == "true"
        versions = await self.app.data.config_versions(limit=limit)
        return json_response({"versions": [config_version_json(v, with_text) for v in versions]})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self.query(request)
        queue = self.hub.subscribe()
        if queue is None:
            return error_response(503, f"too many live clients (at most {MAX_STREAM_CLIENTS})")
        try:
            response = web.StreamResponse(
                headers={**API_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
            )
            await response.prepare(request)
            state = await state_json(self.app, self.app.config.web.write_enabled)
            await response.write(f"retry: 3000\nevent: state\ndata: {dumps(state)}\n\n".encode())
            await response.write(f"event: plan\ndata: {dumps(plan_json(self.app))}\n\n".encode())
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    message = b": keep-alive\n\n"
                if message is None:
                    break
                await response.write(message)
        except ConnectionResetError:
            pass
        finally:
            self.hub.unsubscribe(queue)
        return response


def _route_of(request: web.Request) -> Route | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    canonical = resource.canonical
    method = request.method
    for route in ROUTES:
        if route.path == canonical and (
            route.method == method or (method == "HEAD" and route.method == "GET")
        ):
            return route
    return None


def _load_static() -> dict[str, StaticFile]:
    files = {}
    for package, name, content_type in STATIC_FILES:
        body = (resources.files(package) / "static" / name).read_bytes()
        files[name] = StaticFile(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return files


ROUTES: tuple[Route, ...] = (
    Route("GET", "/", WebServer.page, public=True),
    Route("GET", "/static/{name}", WebServer.page, public=True),
    Route("GET", "/api/health", WebServer.health, public=True),
    Route("GET", "/api/openapi.json", WebServer.openapi),
    Route("GET", "/api/state", WebServer.state),
    Route("GET", "/api/plan", WebServer.plan),
    Route("GET", "/api/prices", WebServer.prices),
    Route("GET", "/api/forecast", WebServer.forecast),
    Route("GET", "/api/history", WebServer.history),
    Route("GET", "/api/sessions", WebServer.sessions),
    Route("GET", "/api/analytics/quality", WebServer.quality),
    Route("GET", "/api/analytics/energy", WebServer.energy),
    Route("GET", "/api/analytics/bill", WebServer.bill),
    Route("GET", "/api/analytics/voltage", WebServer.voltage),
    Route("GET", "/api/config/history", WebServer.config_history),
    Route("GET", "/api/stream", WebServer.stream),
    Route("POST", "/api/control/mode", writes.set_mode, write=True),
    Route("POST", "/api/control/override", writes.set_override, write=True),
    Route("DELETE", "/api/control/override", writes.cancel_override, write=True),
    Route("POST", "/api/control/replan", writes.replan, write=True),
    Route("POST", "/api/control/goals/target", writes.set_goal_target, write=True),
    Route("DELETE", "/api/control/goals/target", writes.cancel_goal_target, write=True),
    Route("POST", "/api/control/goals/reserve", writes.set_goal_reserve, write=True),
    Route("DELETE", "/api/control/goals/reserve", writes.cancel_goal_reserve, write=True),
    Route("POST", "/api/control/loads/{name}/goal", writes.set_load_goal, write=True),
    Route("DELETE", "/api/control/loads/{name}/goal", writes.cancel_load_goal, write=True),
    Route("PUT", "/api/control/settings/{name}", writes.set_setting, write=True),
)
