"""The data manager: the one entry point the daemon uses to store and read back what it measures and decides.

Writes: ``record(snapshot)`` puts a reading into the in-memory ring buffer (raw, hours), queues it
for the SQLite rollups (committed every ``commit_interval_s`` in one transaction, so a crash loses
at most that interval) and hands its line to the Influx sink. ``record_points`` does the same for
prices, forecasts and plan slots (kept per slot in SQLite, not in the ring).

Reads return ``DataResult``: ``history(fields, start, end, resolution="auto")`` picks the resolution
from the span (``storage.history.AUTO_RESOLUTION``) and the source: raw samples from memory, else from InfluxDB when
configured and reachable, else 1-min rollups (FALLBACK); rollups from SQLite, where a 1-min request
beyond the 1-min retention falls back to 15 min. Results are cached (LRU with TTL).

SQLite calls go through retries with exponential backoff and a circuit breaker; the Influx sink has
its own (``storage.influx``). Everything here runs on one event loop and is safe to call from any
of the daemon's jobs concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TypeVar

import numpy as np

from drivers.days import day_window
from drivers.inverter.types import Snapshot
from storage import StorageError
from storage.history import Shape, assemble, choose_resolution
from storage.influx import InfluxError, InfluxSettings, InfluxSink
from storage.lineprotocol import encode
from storage.metrics import Timings, TtlCache
from storage.quality import FieldQuality, assess
from storage.records import (
    MEASUREMENT_BY_NAME,
    ConfigVersion,
    DataResult,
    DataStatus,
    DecisionRecord,
    EventRecord,
    FloatArray,
    History,
    JsonValue,
    OverrideRecord,
    PlanRecord,
    Point,
    Resolution,
    SeriesKind,
    SessionRecord,
    SessionStatus,
    Severity,
    require_utc,
    series_name,
    snapshot_point,
    split_series_name,
)
from storage.recovery import backups
from storage.resilience import CircuitBreaker, retry
from storage.ring import RawRing
from storage.rollups import Buckets, aggregate
from storage.series import SampledBatch, SeriesKey, SeriesStore, SlotBatch
from storage.sqlite import BACKUP_DIRNAME, DatabaseError, Retention, SqliteStore, database_path, utc_now

log = logging.getLogger(__name__)
T = TypeVar("T")


class StorageUnavailableError(StorageError):
    """SQLite is failing and its circuit is open; the message carries the last error."""


@dataclass(frozen=True, slots=True)
class StorageOptions:
    state_dir: Path
    site: str = "home"
    device: str = "inverter"
    sample_interval_s: float = 10.0  # the inverter poll interval: what "complete" means
    commit_interval_s: float = 2.0
    ring_hours: float = 48.0
    max_gap_s: float = 60.0  # energy is not integrated across longer gaps
    retention: Retention = field(default_factory=Retention)
    spool_max_points: int = 5_000_000
    backup_interval_h: float = 24.0
    backup_keep: int = 7
    influx: InfluxSettings | None = None
    cache_entries: int = 128
    cache_ttl_s: float = 30.0
    max_pending: int = 100_000  # samples waiting for SQLite while it fails
    busy_timeout_ms: int = 5000

    def __post_init__(self) -> None:
        for name in (
            "sample_interval_s",
            "commit_interval_s",
            "ring_hours",
            "max_gap_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"storage {name} must be > 0, got {value!r}")
        if not self.site or not self.device:
            raise ValueError(f"storage site and device must not be empty, got {self.site!r}, {self.device!r}")

    @property
    def db_path(self) -> Path:
        return database_path(self.state_dir)


@dataclass(slots=True)
class _Pending:
    sampled: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    slotted: dict[str, list[tuple[int, dict[str, float]]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sampled) + sum(len(v) for v in self.slotted.values())


class DataManager:
    def __init__(
        self, options: StorageOptions, *, now: Callable[[], datetime] = utc_now, owner: bool = False
    ) -> None:
        """``owner``: the daemon's data manager, which locks, checks and if need be recovers the
        database at start (see ``storage.recovery``); readers such as the CLI are not owners."""
        self.options = options
        self.now = now
        self.device = options.device
        self.store = SqliteStore(
            options.db_path,
            retention=options.retention,
            spool_max_points=options.spool_max_points,
            now=now,
            busy_timeout_ms=options.busy_timeout_ms,
            owner=owner,
        )
        self.series = SeriesStore(self.store)
        self.sink = InfluxSink(options.influx, self.store) if options.influx else None
        self.breaker = CircuitBreaker(
            f"sqlite {options.db_path}", failure_threshold=3, reset_s=1.0, max_reset_s=30.0
        )
        self.timings = Timings()
        # the caches age on the data manager's clock: results are about its "now", and a simulated
        # clock running faster than real time would otherwise keep every entry until evicted by count
        self.cache: TtlCache[tuple[object, ...], DataResult[History]] = TtlCache(
            options.cache_entries, options.cache_ttl_s, clock=self._clock_s
        )
        self._ring = RawRing(options.ring_hours)
        self._pending = _Pending()
        self._prev_times: dict[str, float] = {}
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._started_s: float | None = None
        self._last_snapshot: Snapshot | None = None
        self._last_commit: datetime | None = None
        self._last_backup: Path | None = None
        self._quality_cache: TtlCache[date, list[FieldQuality]] = TtlCache(4, 300.0, clock=self._clock_s)
        self.recorded = 0
        self.dropped_samples = 0
        self.write_error: str | None = None  # the last commit failed (reads may still work: a full disk)
        self.left_out: dict[str, int] = {}  # snapshot fields not stored (NaN, unknown name), per name

    def _clock_s(self) -> float:
        return self.now().timestamp()

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        recovery = self.store.recovery
        if recovery is not None:
            data: dict[str, JsonValue] = {"reason": recovery.reason, "moved_to": str(recovery.moved_to)}
            data["restored"] = str(recovery.restored) if recovery.restored else None
            event = EventRecord(self.now(), "storage.recovered", recovery.message(), Severity.ERROR, data)
            await self.store.add_event(event)
        if self.sink is not None:
            await self.sink.start()
        self._started_s = self.now().timestamp()
        # retention and backups (maintain) are the owner's to schedule: the daemon's housekeeping job
        self._tasks = [
            asyncio.create_task(
                self._every(self.options.commit_interval_s, self.flush), name="storage-commit"
            )
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        try:
            await self.flush()
        finally:
            if self.sink is not None:
                await self.sink.close()
            await self.store.close()

    async def __aenter__(self) -> DataManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _every(self, seconds: float, job: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except StorageError as exc:
                log.warning("storage job %s failed: %s", getattr(job, "__name__", job), exc)
            except Exception:  # a storage job must never end the loop
                log.exception("storage job %s failed", getattr(job, "__name__", job))

    def set_device(self, device: str) -> None:
        """The device tag for points from now on (the inverter serial once it is known)."""
        if not device:
            raise ValueError("device must not be empty")
        self.device = device

    # --- writes ----------------------------------------------------------------------------------

    async def record(self, snapshot: Snapshot, extra: Mapping[str, float] | None = None) -> None:
        """Keep one inverter reading (with ``extra`` fields measured beside it, such as
        ``flex_loads_w``): ring buffer, rollups (at the next commit), Influx sink."""
        with self.timings.measure("record"):
            point = snapshot_point(snapshot, self.options.site, self.device, extra)
            self._last_snapshot = snapshot
            fields = snapshot.fields() if not extra else {**snapshot.fields(), **extra}
            if len(point.fields) != len(fields):
                self._note_left_out(fields, point)
            await self._accept([point])

    def _note_left_out(self, fields: dict[str, float], point: Point) -> None:
        for name in fields.keys() - point.fields.keys():
            self.left_out[name] = self.left_out.get(name, 0) + 1
            if self.left_out[name] == 1:
                log.warning(
                    "snapshot field %s = %r not stored: not finite or not a published field",
                    name,
                    fields[name],
                )

    async def record_points(self, points: Iterable[Point]) -> None:
        """Keep points of any measurement (``snapshot``, ``price``, ``forecast``, ``plan``)."""
        with self.timings.measure("record_points"):
            await self._accept(list(points))

    async def _accept(self, points: Sequence[Point]) -> None:
        for point in points:
            t = point.time.timestamp()
            fields = dict(point.fields)
            if MEASUREMENT_BY_NAME[point.measurement].kind is SeriesKind.SAMPLED:
                self._ring.append(t, fields)
                self._pending.sampled.append((t, fields))
            else:
                self._pending.slotted.setdefault(point.measurement, []).append((round(t * 1000), fields))
            self.recorded += 1
        overflow = len(self._pending.sampled) - self.options.max_pending
        if overflow > 0:
            del self._pending.sampled[:overflow]
            self.dropped_samples += overflow
            log.error(
                "SQLite is not taking samples: dropped the %d oldest (%d in total)",
                overflow,
                self.dropped_samples,
            )
        if self.sink is not None:
            await self.sink.add([encode(p) for p in points])

    async def flush(self) -> None:
        """Commit what is queued for SQLite now (the commit job does this every commit interval)."""
        async with self._flush_lock:
            if not len(self._pending) or not self.breaker.allow():
                return
            pending, self._pending = self._pending, _Pending()
            sampled = self._sampled_batch(pending.sampled)
            slotted = [self._slot_batch(m, rows) for m, rows in pending.slotted.items()]
            try:
                with self.timings.measure("commit"):
                    await retry(
                        lambda: self.series.write_batch(
                            [sampled] if sampled else [], slotted, max_gap_s=self.options.max_gap_s
                        ),
                        attempts=3,
                        base_delay_s=0.05,
                        retry_on=(DatabaseError,),
                        what="commit",
                    )
            except DatabaseError as exc:
                self.breaker.failure(str(exc))
                self.write_error = str(exc)
                pending.sampled.extend(self._pending.sampled)
                for m, rows in self._pending.slotted.items():
                    pending.slotted.setdefault(m, []).extend(rows)
                self._pending = pending  # kept for the next attempt, in order
                return
            self.breaker.success()
            self.write_error = None
            self._last_commit = self.now()
            if sampled is not None:
                for name, values in sampled.columns.items():
                    valid = np.flatnonzero(np.isfinite(values))
                    if valid.size:
                        self._prev_times[name] = float(sampled.times[valid[-1]])

    def _sampled_batch(self, rows: list[tuple[float, dict[str, float]]]) -> SampledBatch | None:
        if not rows:
            return None
        rows = sorted(rows, key=lambda r: r[0])
        times = np.array([t for t, _ in rows], dtype=np.float64)
        columns: dict[str, FloatArray] = {}
        for i, (_, fields) in enumerate(rows):
            for name, value in fields.items():
                column = columns.get(name)
                if column is None:
                    column = columns[name] = np.full(times.size, np.nan)
                column[i] = value
        return SampledBatch("snapshot", times, columns, dict(self._prev_times))

    @staticmethod
    def _slot_batch(measurement: str, rows: list[tuple[int, dict[str, float]]]) -> SlotBatch:
        names = sorted({n for _, fields in rows for n in fields})
        columns = {n: np.array([f.get(n, np.nan) for _, f in rows], dtype=np.float64) for n in names}
        return SlotBatch(measurement, [t for t, _ in rows], columns)

    async def ingest(
        self,
        times: FloatArray,
        columns: dict[str, FloatArray],
        *,
        source: str = "live",
        max_gap_s: float | None = None,
    ) -> None:
        """Bulk-load snapshot samples (epoch seconds; NaN = no sample) straight into the rollups."""
        for name in columns:
            split_series_name(name)
        await self._db(
            "ingest",
            lambda: self.series.add_samples(
                "snapshot", times, columns, max_gap_s=max_gap_s or self.options.max_gap_s, source=source
            ),
        )
        self.cache.clear()

    # --- reads -----------------------------------------------------------------------------------

    def latest(self) -> DataResult[Snapshot]:
        """The newest reading recorded, with its age."""
        snapshot = self._last_snapshot
        if snapshot is None:
            return DataResult(None, DataStatus.ERROR, "memory", message="nothing recorded yet")
        age = (self.now() - snapshot.time).total_seconds()
        return DataResult(snapshot, DataStatus.REAL, "memory", age_s=age)

    async def history(
        self, fields: Sequence[str], start: datetime, end: datetime, resolution: str | Resolution = "auto"
    ) -> DataResult[History]:
        """History of ``fields`` (``pv_w``, ``grid_v1``, ``price.import_price``, ...) over [start, end)."""
        start, end = require_utc(start, "start"), require_utc(end, "end")
        if end <= start:
            raise ValueError(f"history end {end.isoformat()} must be after start {start.isoformat()}")
        if not fields:
            raise ValueError("history needs at least one field")
        keys = [split_series_name(f) for f in fields]
        if resolution == "auto":
            res = choose_resolution((end - start).total_seconds())
        else:
            try:
                res = Resolution(resolution)
            except ValueError:
                raise ValueError(
                    f"resolution {resolution!r} is not one of auto, {', '.join(r.value for r in Resolution)}"
                ) from None
        cache_key: tuple[object, ...] = (tuple(fields), start, end, res)
        cached = self.cache.get(cache_key)
        if cached is not None:
            return DataResult(
                cached.data, cached.status, cached.source, cached.age_s, cached.message, cached=True
            )
        with self.timings.measure(f"history.{res.value}"):
            try:
                result = await self._history(keys, start, end, res)
            except StorageError as exc:
                return DataResult(None, DataStatus.ERROR, "sqlite", message=str(exc))
        self.cache.put(cache_key, result)
        return result

    async def _history(
        self, keys: list[SeriesKey], start: datetime, end: datetime, res: Resolution
    ) -> DataResult[History]:
        now_s = self.now().timestamp()
        s0, s1 = start.timestamp(), end.timestamp()
        sampled = [k for k in keys if MEASUREMENT_BY_NAME[k[0]].kind is SeriesKind.SAMPLED]
        slotted = [k for k in keys if k not in sampled]
        notes: list[str] = []
        source = "sqlite"
        raw: tuple[FloatArray, dict[str, FloatArray]] | None = None
        if res is Resolution.RAW and sampled:
            raw, source = await self._raw_sampled(sampled, start, end, s0, notes)
            if raw is None:
                res = Resolution.MIN1
                notes.append("raw samples unavailable: 1-min rollups instead")
        if res is Resolution.MIN1 and s0 < now_s - self.options.retention.minute_days * 86400:
            res = Resolution.MIN15
            notes.append("1-min rollups expired: 15-min rollups instead")

        per_field: dict[SeriesKey, Buckets | tuple[FloatArray, FloatArray]] = {}
        if res is Resolution.RAW:
            if raw is not None:
                for key in sampled:
                    per_field[key] = (raw[0], raw[1].get(key[1], np.full(raw[0].size, np.nan)))
            slots = await self._db("read_slots", lambda: self.series.read_slots(slotted, s0, s1))
            per_field.update(slots)
        else:
            width = res.seconds
            lo = math.floor(s0 / width) * width
            buckets = await self._db("read_rollups", lambda: self.series.read_rollups(res, sampled, lo, s1))
            per_field.update(buckets)
            slots = await self._db("read_slots", lambda: self.series.read_slots(slotted, lo, s1))
            for key, (t, v) in slots.items():
                per_field[key] = aggregate(t, v, width, energy=False, max_gap_s=0.0)
        shape = Shape(start, end, res, now_s, self.options.sample_interval_s, self.options.max_gap_s)
        return assemble(keys, sampled, per_field, shape, source, notes)

    async def _raw_sampled(
        self, sampled: list[SeriesKey], start: datetime, end: datetime, s0: float, notes: list[str]
    ) -> tuple[tuple[FloatArray, dict[str, FloatArray]] | None, str]:
        oldest = self._ring.oldest
        names = [k[1] for k in sampled]
        slack = self.options.sample_interval_s
        # the ring holds everything since it started, and nothing from before this process started
        started_before = self._started_s is not None and s0 >= self._started_s - slack
        within_span = s0 >= self.now().timestamp() - self._ring.span_s
        if within_span and (started_before or (oldest is not None and oldest <= s0 + slack)):
            return self._ring.window(s0, end.timestamp(), names), "memory"
        if self.sink is not None and self.sink.breaker.allow():
            try:
                with self.timings.measure("influx.query"):
                    return await self.sink.query_raw(
                        "snapshot", names, {"site": self.options.site}, start, end
                    ), "influx"
            except InfluxError as exc:
                notes.append(f"influx: {exc}")
        return None, "sqlite"

    async def quality(
        self, day: date, tz: tzinfo = UTC, fields: Sequence[str] | None = None
    ) -> DataResult[list[FieldQuality]]:
        """Data quality of the snapshot fields on one local day, from the 1-min rollups."""
        start, end = day_window(day, tz)
        s0, s1 = start.timestamp(), min(end.timestamp(), self.now().timestamp())
        try:
            if fields is None:
                known = await self._db("known_series", self.series.known_series)
                keys = [k for k in known if k[0] == "snapshot"]
            else:
                keys = [split_series_name(f) for f in fields]
            minutes = await self._db(
                "read_rollups", lambda: self.series.read_rollups(Resolution.MIN1, keys, s0, end.timestamp())
            )
        except StorageError as exc:
            return DataResult(None, DataStatus.ERROR, "sqlite", message=str(exc))
        empty = aggregate(np.empty(0), np.empty(0), 60, energy=False, max_gap_s=0.0)
        report = [
            assess(
                series_name(*k),
                day,
                minutes.get(k, empty),
                s0,
                s1,
                sample_interval_s=self.options.sample_interval_s,
            )
            for k in keys
        ]
        expired = s0 < self.now().timestamp() - self.options.retention.minute_days * 86400
        status = DataStatus.PARTIAL if expired else DataStatus.REAL
        return DataResult(report, status, "sqlite:1min", message="1-min rollups expired" if expired else "")

    # --- sessions, plans, decisions, events, overrides, state, configuration ----------------------

    async def _db(self, name: str, operation: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            raise StorageUnavailableError(
                f"SQLite {self.options.db_path} unavailable: {self.breaker.last_error}"
            )
        with self.timings.measure(f"sqlite.{name}"):
            try:
                result = await retry(
                    operation, attempts=3, base_delay_s=0.05, retry_on=(DatabaseError,), what=f"sqlite {name}"
                )
            except DatabaseError as exc:
                self.breaker.failure(str(exc))
                raise
        self.breaker.success()
        return result

    async def save_session(self, session: SessionRecord, state: tuple[str, JsonValue] | None = None) -> None:
        """Insert or update (by id) a charging/discharging session, with a ``state`` (key, value) in
        the same transaction when given; durable on return."""
        await self._db("save_session", lambda: self.store.upsert_session(session, state))

    async def session(self, session_id: str) -> SessionRecord | None:
        return await self._db("session", lambda: self.store.session(session_id))

    async def sessions(
        self, *, since: datetime | None = None, until: datetime | None = None, limit: int = 100
    ) -> list[SessionRecord]:
        return await self._db("sessions", lambda: self.store.sessions(since=since, until=until, limit=limit))

    async def open_sessions(self) -> list[SessionRecord]:
        return await self._db("sessions", lambda: self.store.sessions(status=SessionStatus.OPEN, limit=1000))

    async def save_plan(self, plan: PlanRecord) -> int:
        return await self._db("save_plan", lambda: self.store.add_plan(plan))

    async def latest_plan(self) -> PlanRecord | None:
        plans = await self._db("plans", lambda: self.store.plans(limit=1))
        return plans[0] if plans else None

    async def save_decision(self, decision: DecisionRecord) -> None:
        await self._db("save_decision", lambda: self.store.add_decisions([decision]))

    async def decisions(self, *, since: datetime | None = None, limit: int = 100) -> list[DecisionRecord]:
        return await self._db("decisions", lambda: self.store.decisions(since=since, limit=limit))

    async def log_event(self, event: EventRecord) -> None:
        await self._db("log_event", lambda: self.store.add_event(event))

    async def events(
        self, *, since: datetime | None = None, kinds: Sequence[str] = (), limit: int = 100
    ) -> list[EventRecord]:
        return await self._db("events", lambda: self.store.events(since=since, kinds=kinds, limit=limit))

    async def save_override(self, override: OverrideRecord) -> int:
        return await self._db("save_override", lambda: self.store.add_override(override))

    async def cancel_override(self, override_id: int, at: datetime) -> bool:
        return await self._db("cancel_override", lambda: self.store.cancel_override(override_id, at))

    async def overrides(self, *, limit: int = 20) -> list[OverrideRecord]:
        return await self._db("overrides", lambda: self.store.overrides(limit=limit))

    async def put_state(self, key: str, value: JsonValue) -> None:
        await self._db("put_state", lambda: self.store.put_state(key, value))

    async def get_state(self, key: str) -> JsonValue:
        return await self._db("get_state", lambda: self.store.get_state(key))

    async def save_config_version(self, text: str, source: str) -> ConfigVersion:
        return await self._db("config", lambda: self.store.add_config_version(text, source))

    async def config_versions(self, *, limit: int = 50) -> list[ConfigVersion]:
        return await self._db("config", lambda: self.store.config_versions(limit=limit))

    # --- maintenance and health -------------------------------------------------------------------

    async def maintain(self) -> None:
        """Apply retention, and back up when the newest backup is older than the backup interval."""
        deleted = await self._db("retention", self.store.apply_retention)
        if any(deleted.values()):
            log.info("retention deleted %s", {k: v for k, v in deleted.items() if v})
        directory = self.options.state_dir / BACKUP_DIRNAME
        newest = await asyncio.to_thread(_newest_backup_mtime, directory)
        due = newest is None or self.now().timestamp() - newest >= self.options.backup_interval_h * 3600
        if due and self.options.backup_keep > 0:
            self._last_backup = await self.backup()

    async def backup(self) -> Path:
        path = await self._db(
            "backup",
            lambda: self.store.backup(self.options.state_dir / BACKUP_DIRNAME, self.options.backup_keep),
        )
        log.info("database backed up to %s", path)
        return path

    async def health(self) -> dict[str, object]:
        """Per backend state, spool depth, last successful writes, cache and query statistics, quality."""
        today = self.now().date()
        quality = self._quality_cache.get(today)
        if quality is None:
            result = await self.quality(today)
            quality = result.data or []
            if result.ok:
                self._quality_cache.put(today, quality)
        oldest, newest = self._ring.oldest, self._ring.newest
        return {
            "time": self.now().isoformat(),
            "sqlite": {
                **self.breaker.report(),
                "path": str(self.options.db_path),
                "pending": len(self._pending),
                "write_error": self.write_error,
                "dropped_samples": self.dropped_samples,
                "fields_left_out": dict(self.left_out),
                "last_commit": self._last_commit.isoformat() if self._last_commit else None,
                "last_backup": str(self._last_backup) if self._last_backup else None,
            },
            "influx": self.sink.report() if self.sink else {"configured": False},
            "ring": {
                "samples": len(self._ring),
                "oldest": datetime.fromtimestamp(oldest, UTC).isoformat() if oldest else None,
                "newest": datetime.fromtimestamp(newest, UTC).isoformat() if newest else None,
            },
            "cache": self.cache.report(),
            "queries": {k: v for k, v in self.timings.summary().items() if k.startswith("history")},
            "quality": [q.as_dict() for q in quality],
        }

    def perf_summary(self) -> dict[str, object]:
        """Timings of every operation (median, p95, max in ms) and throughput counters."""
        return {
            "timings": self.timings.summary(),
            "recorded": self.recorded,
            "cache": self.cache.report(),
            "influx": self.sink.report() if self.sink else None,
        }


def _newest_backup_mtime(directory: Path) -> float | None:
    return max((p.stat().st_mtime for p in backups(directory)), default=None)
