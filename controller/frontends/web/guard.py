"""Connections to the web server, bounded: no unauthenticated client can starve the daemon.

Every connection is counted, in total and per client address, and refused (closed at once) above
either cap; one that has not sent a complete request head within ``head_timeout_s`` is closed
(a half-sent request holds a file descriptor for nothing). The total cap stays well below the
process's file-descriptor limit, so the inverter, storage and MQTT always find descriptors.
Refusals are logged as one line a minute with their count, never one per connection.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

DESCRIPTORS_KEPT = 128  # for the inverter, SQLite, InfluxDB, MQTT, price and weather requests
LOG_EVERY_S = 60.0
HEAD_END = b"\r\n\r\n"


def descriptor_room(wanted: int) -> int:
    """``wanted`` connections, or fewer when the file-descriptor limit leaves less room."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, soft - DESCRIPTORS_KEPT))


@dataclass
class ConnectionGuard:
    max_total: int
    max_per_client: int
    head_timeout_s: float
    open_by_client: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # since the last log line
    timed_out: int = 0
    refused_total: int = 0
    _logged_at: float = 0.0

    @property
    def open_total(self) -> int:
        return sum(self.open_by_client.values())

    def admit(self, client: str) -> bool:
        if self.open_total >= self.max_total or self.open_by_client.get(client, 0) >= self.max_per_client:
            self.refused += 1
            self.refused_total += 1
            self._report()
            return False
        self.open_by_client[client] = self.open_by_client.get(client, 0) + 1
        return True

    def release(self, client: str) -> None:
        left = self.open_by_client.get(client, 0) - 1
        if left > 0:
            self.open_by_client[client] = left
        else:
            self.open_by_client.pop(client, None)

    def too_slow(self) -> None:
        self.timed_out += 1
        self._report()

    def _report(self) -> None:
        now = time.monotonic()
        if now - self._logged_at < LOG_EVERY_S:
            return
        self._logged_at = now
        log.warning(
            "web: %d connection(s) refused (over %d in total or %d per client) and %d closed without a "
            "request within %.0f s since the last report",
            self.refused, self.max_total, self.max_per_client, self.timed_out, self.head_timeout_s,
        )  # fmt: skip
        self.refused = self.timed_out = 0

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` that guards ``factory``'s connections."""
        return lambda: _GuardedConnection(self, factory)


class _GuardedConnection(asyncio.Protocol):
    def __init__(self, guard: ConnectionGuard, factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._factory = factory
        self._inner: asyncio.Protocol | None = None
        self._client = ""
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if not self._guard.admit(self._client):
            _drop(transport)
            return
        self._inner = self._factory()
        self._inner.connection_made(transport)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.head_timeout_s, self._close_slow, transport)

    def _close_slow(self, transport: asyncio.BaseTransport) -> None:
        self._timer = None
        self._guard.too_slow()
        _drop(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._timer is not None:
            if HEAD_END in self._tail + data:
                self._timer.cancel()
                self._timer = None
            self._tail = data[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inner is not None:
            self._guard.release(self._client)
            self._inner.connection_lost(exc)
            self._inner = None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def _drop(transport: asyncio.BaseTransport) -> None:
    """Close at once, without flushing (there is nothing to say to this client)."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()


class MalformedRequests(logging.Filter):
    """aiohttp logs a traceback for every request it cannot parse (and answers it 400): keep one
    line a minute with the count instead, for the requests only (a real failure still logs)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0  # since the last report
        self._logged_at = -LOG_EVERY_S

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        self.count += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "web: %d malformed request(s) answered 400 since the last report (%s)",
                self.count,
                error.message,
            )
            self.count = 0
        return False

    @classmethod
    def install(cls) -> None:
        server_log = logging.getLogger("aiohttp.server")
        if not any(isinstance(f, cls) for f in server_log.filters):
            server_log.addFilter(cls())
