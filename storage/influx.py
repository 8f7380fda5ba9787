"""Line-protocol sink for InfluxDB: batching, gzip, bounded memory, a spool in SQLite, replay in order.

Two write paths: the v2 write API through influxdb-client (InfluxDB 2.x/3.x, 1.8+ compatibility,
VictoriaMetrics; url, org, bucket, token; the library is imported only when that path is used) and
the 1.x ``/write?db=&rp=`` endpoint through aiohttp (url, database, retention policy, user/password).
Lines come from ``storage.lineprotocol`` at millisecond precision (measurements and fields:
``storage.records``).

Delivery rules:
- While the spool is empty and the server takes batches, lines go straight from memory.
- When a batch fails (connection, timeout, 5xx, 401/403/404, 429) it and everything buffered go to
  the spool, and from then on new lines queue behind it, so the server sees points in order.
- Replay sends the spool oldest first and deletes a batch only after the server accepted it.
- A 400 is permanent for some line of the batch: the batch is split in halves until the bad lines
  are isolated; those are moved to ``spool_rejected`` with the server's message and counted.
  Re-sending an accepted half is harmless (same series and time overwrite).
- The memory buffer holds at most ``max_buffer_points`` lines; beyond that it spills to the spool.
- Lines added while the buffer is being spooled (``add`` does not wait for the lock) stay in the
  buffer: the buffer is taken whole before each spool write, and put back in front on failure.
"""

from __future__ import annotations

import asyncio
import enum
import gzip
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import numpy as np

from drivers.backoff import Backoff
from storage import StorageError
from storage.lineprotocol import PRECISION
from storage.records import FloatArray, require_utc, to_ms
from storage.resilience import BreakerState, CircuitBreaker

if TYPE_CHECKING:
    from influxdb_client.client.write_api_async import WriteApiAsync
    from influxdb_client.rest import ApiException

log = logging.getLogger(__name__)


class InfluxError(StorageError):
    """An InfluxDB request failed; the message names the server and the reason."""


class InfluxApi(enum.StrEnum):
    V2 = "v2"
    V1 = "v1"


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    url: str
    api: InfluxApi = InfluxApi.V2
    org: str = "hemsd"  # v2
    bucket: str = "hemsd"  # v2
    token: str = ""  # v2
    database: str = "hemsd"  # v1
    retention_policy: str = ""  # v1
    username: str = ""  # v1
    password: str = ""  # v1
    batch_size: int = 5000
    flush_interval_s: float = 5.0
    timeout_s: float = 10.0
    gzip: bool = True
    max_buffer_points: int = 20_000
    retries: int = 2
    retry_base_s: float = 0.2
    breaker_threshold: int = 3
    breaker_reset_s: float = 1.0
    breaker_max_reset_s: float = 60.0
    replay_batches_per_flush: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "api", InfluxApi(self.api))
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"influx url must start with http:// or https://, got {self.url!r}")
        object.__setattr__(self, "url", self.url.rstrip("/"))
        for name in (
            "batch_size",
            "max_buffer_points",
            "retries",
            "breaker_threshold",
            "replay_batches_per_flush",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"influx {name} must be >= 1, got {getattr(self, name)!r}")
        for name in (
            "flush_interval_s",
            "timeout_s",
            "retry_base_s",
            "breaker_reset_s",
            "breaker_max_reset_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"influx {name} must be > 0, got {value!r}")
        if self.max_buffer_points < self.batch_size:
            raise ValueError(
                f"influx max_buffer_points ({self.max_buffer_points}) must be >= batch_size ({self.batch_size})"
            )

    @property
    def target(self) -> str:
        where = f"bucket {self.bucket}" if self.api is InfluxApi.V2 else f"database {self.database}"
        return f"{self.url} ({self.api.value}, {where})"


class Spool(Protocol):
    """Durable, ordered storage of lines waiting for the server (implemented by SqliteStore)."""

    async def spool_append(self, lines: Sequence[str]) -> int: ...

    async def spool_peek(self, limit: int) -> list[tuple[int, str]]: ...

    async def spool_delete(self, first_id: int, last_id: int) -> None: ...

    async def spool_depth(self) -> int: ...

    async def spool_reject(self, rejected: Sequence[tuple[str, str]]) -> None: ...


class WriteOutcome(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # permanent for some line of the batch (400, 413)
    FAILED = "failed"  # the server is unreachable or unhappy; try again later


def classify(status: int, body: str) -> tuple[WriteOutcome, str]:
    if 200 <= status < 300:
        return WriteOutcome.ACCEPTED, ""
    message = f"HTTP {status}: {body.strip()[:300]}"
    if status in (400, 413):
        return WriteOutcome.REJECTED, message
    return WriteOutcome.FAILED, message


_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class _Writer(Protocol):
    async def write(self, lines: Sequence[str]) -> tuple[WriteOutcome, str]: ...

    async def close(self) -> None: ...


class _V2Writer:
    def __init__(self, settings: InfluxSettings) -> None:
        # ~11 MB of imports, paid only by a daemon that writes through the v2 API
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync  # noqa: PLC0415
        from influxdb_client.rest import ApiException  # noqa: PLC0415

        self.settings = settings
        self._api_exception: type[ApiException] = ApiException
        # the write API is annotated with the WritePrecision class, whose constants are these strings
        self._precision: Any = PRECISION
        self._client = InfluxDBClientAsync(
            url=settings.url,
            token=settings.token,
            org=settings.org,
            enable_gzip=settings.gzip,
            timeout=int(settings.timeout_s * 1000),
        )
        self._api: WriteApiAsync = self._client.write_api()

    async def write(self, lines: Sequence[str]) -> tuple[WriteOutcome, str]:
        try:
            await self._api.write(
                bucket=self.settings.bucket,
                org=self.settings.org,
                record="\n".join(lines),
                write_precision=self._precision,
            )
        except self._api_exception as exc:
            body = (
                exc.body.decode(errors="replace")
                if isinstance(exc.body, bytes)
                else str(exc.body or exc.reason)
            )
            return classify(int(exc.status or 0), body)
        except _NETWORK_ERRORS as exc:
            return WriteOutcome.FAILED, f"{type(exc).__name__}: {exc}"
        return WriteOutcome.ACCEPTED, ""

    async def close(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]


class _V1Writer:
    def __init__(self, settings: InfluxSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self._session = session
        self._params = {"db": settings.database, "precision": PRECISION}
        if settings.retention_policy:
            self._params["rp"] = settings.retention_policy
        self._auth = aiohttp.BasicAuth(settings.username, settings.password) if settings.username else None

    async def write(self, lines: Sequence[str]) -> tuple[WriteOutcome, str]:
        outcome, error = await self._post(lines)
        if outcome is WriteOutcome.FAILED and "database not found" in error and await self.create_database():
            outcome, error = await self._post(lines)
        return outcome, error

    async def create_database(self) -> bool:
        """``CREATE DATABASE`` (a no-op when it exists), for a server where nobody created it yet;
        when the server refuses, one line says what to run."""
        query = f"CREATE DATABASE {_quote_ident(self.settings.database)}"
        try:
            async with self._session.post(
                f"{self.settings.url}/query", params={"q": query}, auth=self._auth
            ) as response:
                text = await response.text()
                if response.status == 200 and '"error"' not in text:
                    log.info(
                        "influx: created database %s on %s", self.settings.database, self.settings.target
                    )
                    return True
        except _NETWORK_ERRORS as exc:
            text = f"{type(exc).__name__}: {exc}"
        log.warning(
            "influx: database %s does not exist on %s and cannot be created (%s); create it with: "
            "influx -execute '%s'",
            self.settings.database, self.settings.target, text.strip()[:200], query,
        )  # fmt: skip
        return False

    async def _post(self, lines: Sequence[str]) -> tuple[WriteOutcome, str]:
        body = "\n".join(lines).encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.settings.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        try:
            async with self._session.post(
                f"{self.settings.url}/write", params=self._params, data=body, headers=headers, auth=self._auth
            ) as response:
                return classify(response.status, await response.text())
        except _NETWORK_ERRORS as exc:
            return WriteOutcome.FAILED, f"{type(exc).__name__}: {exc}"

    async def close(self) -> None:
        return None


def _quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxSink:
    def __init__(self, settings: InfluxSettings, spool: Spool) -> None:
        self.settings = settings
        self.spool = spool
        self.breaker = CircuitBreaker(
            f"influx {settings.url}",
            failure_threshold=settings.breaker_threshold,
            reset_s=settings.breaker_reset_s,
            max_reset_s=settings.breaker_max_reset_s,
        )
        self._buffer: list[str] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._writer: _Writer | None = None
        self._depth = 0
        self.written = 0
        self.replayed = 0
        self.rejected = 0
        self.spooled = 0
        self.dropped = 0
        self.last_write: datetime | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s))
        self._writer = (
            _V2Writer(self.settings)
            if self.settings.api is InfluxApi.V2
            else _V1Writer(self.settings, self._session)
        )
        self._depth = await self.spool.spool_depth()
        self._task = asyncio.create_task(self._run(), name="influx-sink")

    async def close(self) -> None:
        """Stop the flusher; what the server does not take now stays in the spool for the next start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush(replay=False)
        except StorageError as exc:  # what it could not spool is still in the buffer: tried once more below
            log.warning("influx sink: the last flush failed: %s", exc)
        finally:
            async with self._lock:
                if self._buffer:
                    try:
                        await self._spool_buffer()
                    except StorageError as exc:  # e.g. a full disk: shutting down goes on regardless
                        self.dropped += len(self._buffer)
                        log.error(
                            "influx sink: %d points neither written nor spooled at shutdown, lost: %s",
                            len(self._buffer),
                            exc,
                        )
                        self._buffer = []
            if self._writer is not None:
                await self._writer.close()
            if self._session is not None:
                await self._session.close()
            self._writer = self._session = None

    async def add(self, lines: Sequence[str]) -> None:
        self._buffer.extend(lines)
        if len(self._buffer) >= self.settings.batch_size:
            self._wake.set()
        if len(self._buffer) > self.settings.max_buffer_points:
            async with self._lock:
                if len(self._buffer) <= self.settings.max_buffer_points:
                    return
                try:
                    await self._spool_buffer()
                except StorageError as exc:  # the spool is failing too: memory stays bounded
                    overflow = len(self._buffer) - 2 * self.settings.max_buffer_points
                    if overflow > 0:
                        del self._buffer[:overflow]
                        self.dropped += overflow
                    log.error("influx spool unavailable (%s); %d points dropped in total", exc, self.dropped)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def spool_depth(self) -> int:
        return self._depth

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.flush_interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except StorageError as exc:  # the spool's database failed; try again next round
                log.warning("influx sink: the spool failed: %s", exc)
            except Exception:  # the flusher must outlive any one bad round
                log.exception("influx sink: flush failed")
            if self._depth > 0 and self.breaker.state is BreakerState.CLOSED:
                self._wake.set()  # keep replaying without waiting a whole interval

    async def flush(self, *, replay: bool = True) -> None:
        """Send what is buffered, or spool it; then replay a bounded number of spooled batches."""
        async with self._lock:
            if self._buffer and (self._depth > 0 or not self.breaker.allow()):
                await self._spool_buffer()
            while self._buffer:
                batch = self._buffer[: self.settings.batch_size]
                if not await self._deliver(batch):
                    await self._spool_buffer()
                    return
                del self._buffer[: len(batch)]
            for _ in range(self.settings.replay_batches_per_flush if replay else 0):
                if self._depth <= 0 or not self.breaker.allow():
                    return
                rows = await self.spool.spool_peek(self.settings.batch_size)
                if not rows:
                    self._depth = 0
                    return
                if not await self._deliver([line for _, line in rows]):
                    return
                await self.spool.spool_delete(rows[0][0], rows[-1][0])
                self._depth = max(0, self._depth - len(rows))
                self.replayed += len(rows)

    async def _spool_buffer(self) -> None:
        """Move the whole buffer to the spool (the lock held). What ``add`` appends meanwhile stays
        buffered; on failure the lines go back in front of it, in order."""
        lines, self._buffer = self._buffer, []
        try:
            await self._to_spool(lines)
        except BaseException:
            self._buffer[:0] = lines
            raise

    async def _to_spool(self, lines: Sequence[str]) -> None:
        dropped = await self.spool.spool_append(lines)
        self.spooled += len(lines)
        self._depth += len(lines) - dropped
        if dropped:
            self.dropped += dropped
            log.error(
                "influx spool full: dropped the %d oldest points (%d dropped in total)", dropped, self.dropped
            )

    async def _deliver(self, lines: Sequence[str]) -> bool:
        """True when every line was accepted or moved aside as rejected."""
        outcome, error = await self._write(lines)
        if outcome is WriteOutcome.ACCEPTED:
            self.breaker.success()
            self.written += len(lines)
            self.last_write = datetime.now(UTC)
            return True
        if outcome is WriteOutcome.REJECTED:
            self.breaker.success()  # the server is up and answering
            if len(lines) == 1:
                await self.spool.spool_reject([(lines[0], error)])
                self.rejected += 1
                log.warning("influx rejected a point (%s): %s", error, lines[0][:200])
                return True
            middle = len(lines) // 2
            return await self._deliver(lines[:middle]) and await self._deliver(lines[middle:])
        self.breaker.failure(error)
        return False

    async def _write(self, lines: Sequence[str]) -> tuple[WriteOutcome, str]:
        if self._writer is None:
            return WriteOutcome.FAILED, "sink not started"
        attempts = 1 if self.breaker.state is BreakerState.HALF_OPEN else self.settings.retries
        outcome, error = WriteOutcome.FAILED, ""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(Backoff(self.settings.retry_base_s).delay_s(attempt))
            outcome, error = await self._writer.write(lines)
            if outcome is not WriteOutcome.FAILED:
                break
        return outcome, error

    def report(self) -> dict[str, object]:
        return {
            "target": self.settings.target,
            "circuit": self.breaker.report(),
            "buffered": len(self._buffer),
            "spool_depth": self._depth,
            "written": self.written,
            "replayed": self.replayed,
            "spooled": self.spooled,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "last_write": self.last_write.isoformat() if self.last_write else None,
        }

    async def query_raw(
        self, measurement: str, fields: Sequence[str], tags: Mapping[str, str], start: datetime, end: datetime
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        """Raw points in [start, end) with InfluxQL ``/query``: (times in epoch seconds, values per field).

        InfluxDB 1.x answers with database/user/password; 2.x through its 1.x-compatible endpoint with
        the token and the bucket as database (needs a DBRP mapping). Servers without InfluxQL (e.g.
        VictoriaMetrics) raise InfluxError.
        """
        if self._session is None:
            raise InfluxError(f"{self.settings.target}: sink not started")
        start_ns = to_ms(require_utc(start, "start")) * 1_000_000
        end_ns = to_ms(require_utc(end, "end")) * 1_000_000
        where = " AND ".join([f"{_quote_ident(k)} = {_quote_string(v)}" for k, v in sorted(tags.items())])
        where = (where + " AND " if where else "") + f"time >= {start_ns} AND time < {end_ns}"
        select = ", ".join(_quote_ident(f) for f in fields)
        query = f"SELECT {select} FROM {_quote_ident(measurement)} WHERE {where}"  # noqa: S608 - quoted above
        s = self.settings
        params = {"q": query, "epoch": "ms", "db": s.database if s.api is InfluxApi.V1 else s.bucket}
        headers: dict[str, str] = {}
        auth = None
        if s.api is InfluxApi.V2:
            headers["Authorization"] = f"Token {s.token}"
        elif s.username:
            auth = aiohttp.BasicAuth(s.username, s.password)
        if s.api is InfluxApi.V1 and s.retention_policy:
            params["rp"] = s.retention_policy
        try:
            async with self._session.get(
                f"{s.url}/query", params=params, headers=headers, auth=auth
            ) as response:
                text = await response.text()
                if response.status != 200:
                    raise InfluxError(
                        f"{s.target}: query failed: HTTP {response.status}: {text.strip()[:200]}"
                    )
                body: dict[str, Any] = await response.json(content_type=None)
        except _NETWORK_ERRORS as exc:
            raise InfluxError(f"{s.target}: query failed: {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:
            raise InfluxError(f"{s.target}: query answer is not JSON: {exc}") from exc
        return _parse_query(body, measurement, fields, s.target)


def _parse_query(
    body: Mapping[str, Any], measurement: str, fields: Sequence[str], target: str
) -> tuple[FloatArray, dict[str, FloatArray]]:
    results = body.get("results") or [{}]
    if "error" in results[0]:
        raise InfluxError(f"{target}: query failed: {results[0]['error']}")
    series = results[0].get("series") or []
    if not series:
        return np.empty(0), {f: np.empty(0) for f in fields}
    columns: list[str] = series[0].get("columns", [])
    if any(s.get("name") != measurement for s in series) or not columns or columns[0] != "time":
        # e.g. VictoriaMetrics answers every /query with a list of databases
        raise InfluxError(f"{target}: the answer is not a SELECT from {measurement!r}: no InfluxQL support?")
    rows = [row for s in series for row in s["values"]]
    try:
        data = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InfluxError(f"{target}: query answer holds non-numeric values: {exc}") from exc
    data = data.reshape(-1, len(columns))
    data = data[np.argsort(data[:, 0], kind="stable")]
    return data[:, 0] / 1000.0, {f: data[:, columns.index(f)] for f in fields if f in columns}
