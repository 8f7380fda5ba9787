"""Time series in SQLite: rollups of sampled series, slot values, and samples brought in by imports.

Rollup rows are keyed by (series, bucket, source). Live data is source 1; each import source gets
its own id, so re-importing replaces only that source's buckets, and where live and imported data
cover the same bucket, reads take the live row (the lowest source id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import aiosqlite
import numpy as np

from storage.records import FloatArray, Resolution
from storage.rollups import Buckets, aggregate, is_power_field
from storage.schema import LIVE_SOURCE_ID, ROLLUP_TABLES
from storage.sqlite import SqliteStore

SeriesKey = tuple[str, str]  # (measurement, field)


@dataclass(frozen=True, slots=True, eq=False)
class SampledBatch:
    measurement: str
    times: FloatArray  # epoch seconds
    columns: Mapping[str, FloatArray]  # NaN = no sample of that field at that time
    prev_times: Mapping[str, float]  # time of each field's previous sample (energy continuity)


@dataclass(frozen=True, slots=True, eq=False)
class SlotBatch:
    measurement: str
    times_ms: Sequence[int]
    columns: Mapping[str, FloatArray]
    keep_existing: bool = False  # imports do not overwrite values the daemon stored


_UPSERT = """INSERT INTO {table} (series, bucket, source, n, total, lo, hi, last, last_t, pos_wh, neg_wh)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (series, bucket, source) DO UPDATE SET n = n + excluded.n, total = total + excluded.total,
        lo = min(lo, excluded.lo), hi = max(hi, excluded.hi),
        last = CASE WHEN excluded.last_t >= last_t THEN excluded.last ELSE last END,
        last_t = max(last_t, excluded.last_t),
        pos_wh = pos_wh + excluded.pos_wh, neg_wh = neg_wh + excluded.neg_wh"""

_COLUMNS = "series, bucket, n, total, lo, hi, last, last_t, IFNULL(pos_wh, 0.0), IFNULL(neg_wh, 0.0)"
# Where imports overlap live data a bucket has several rows: take the lowest source id (live).
_SELECT_PREFERRED = """SELECT {columns}, MIN(source) FROM {table}
    WHERE series IN ({series}) AND bucket >= ? AND bucket < ? GROUP BY series, bucket ORDER BY series, bucket"""
_SELECT_LIVE = """SELECT {columns} FROM {table}
    WHERE series IN ({series}) AND bucket >= ? AND bucket < ? ORDER BY series, bucket"""
_OTHER_SOURCES = """SELECT EXISTS (SELECT 1 FROM {table}
    WHERE series IN ({series}) AND bucket >= ? AND bucket < ? AND source <> {live})"""


class SeriesStore:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._series: dict[SeriesKey, int] = {}
        self._sources: dict[str, int] = {"live": LIVE_SOURCE_ID}

    async def _series_ids(self, db: aiosqlite.Connection, keys: Sequence[SeriesKey]) -> dict[SeriesKey, int]:
        missing = [k for k in keys if k not in self._series]
        if missing:
            await db.executemany("INSERT OR IGNORE INTO series (measurement, field) VALUES (?, ?)", missing)
            for key in missing:
                async with db.execute(
                    "SELECT id FROM series WHERE measurement = ? AND field = ?", key
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None:
                    self._series[key] = int(row[0])
        return {k: self._series[k] for k in keys}

    async def _source_id(self, db: aiosqlite.Connection, name: str) -> int:
        if name not in self._sources:
            await db.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", (name,))
            async with db.execute("SELECT id FROM sources WHERE name = ?", (name,)) as cursor:
                row = await cursor.fetchone()
            self._sources[name] = int(row[0]) if row else LIVE_SOURCE_ID
        return self._sources[name]

    def _forget_ids(self) -> None:
        """After a failed transaction the ids it created do not exist."""
        self._series.clear()
        self._sources = {"live": LIVE_SOURCE_ID}

    async def known_series(self) -> list[SeriesKey]:
        rows = await self.store.fetchall("SELECT measurement, field FROM series ORDER BY measurement, field")
        return [(str(r[0]), str(r[1])) for r in rows]

    def _minute_cutoff_s(self) -> float:
        return (self.store.now() - timedelta(days=self.store.retention.minute_days)).timestamp()

    def _bucket_rows(
        self,
        series: int,
        source: int,
        times: FloatArray,
        values: FloatArray,
        *,
        power: bool,
        max_gap_s: float,
        prev_time: float | None,
    ) -> dict[str, list[tuple[object, ...]]]:
        rows: dict[str, list[tuple[object, ...]]] = {}
        cutoff = self._minute_cutoff_s()
        for resolution in (Resolution.MIN1, Resolution.MIN15, Resolution.HOUR1):
            buckets = aggregate(
                times, values, resolution.seconds, energy=power, max_gap_s=max_gap_s, prev_time=prev_time
            )
            table_rows = buckets.rows(series, source)
            if resolution is Resolution.MIN1:  # beyond the 1-min retention only coarser buckets are kept
                table_rows = [r for r in table_rows if float(r[1]) >= cutoff - 60]
            rows[ROLLUP_TABLES[resolution.value]] = list(table_rows)
        return rows

    async def add_samples(
        self,
        measurement: str,
        times: FloatArray,
        columns: Mapping[str, FloatArray],
        *,
        max_gap_s: float,
        prev_times: Mapping[str, float] | None = None,
        source: str = "live",
    ) -> None:
        """Merge samples (epoch seconds; NaN = no sample) into the rollups in one transaction."""
        await self.write_batch(
            [SampledBatch(measurement, times, columns, prev_times or {})],
            [],
            max_gap_s=max_gap_s,
            source=source,
        )

    async def add_slot_values(
        self,
        measurement: str,
        times_ms: Sequence[int],
        columns: Mapping[str, FloatArray],
        *,
        keep_existing: bool = False,
    ) -> None:
        """Store slot values; a value for a slot time already stored is replaced (or kept)."""
        batch = SlotBatch(measurement, times_ms, columns, keep_existing)
        await self.write_batch([], [batch], max_gap_s=0.0)

    async def write_batch(
        self,
        sampled: Sequence[SampledBatch],
        slotted: Sequence[SlotBatch],
        *,
        max_gap_s: float,
        source: str = "live",
    ) -> None:
        """Samples into the rollups and slot values, all in one transaction (all or nothing)."""
        updated = round(self.store.now().timestamp() * 1000)
        try:
            async with self.store.transaction() as db:
                source_id = await self._source_id(db, source)
                for batch in sampled:
                    ids = await self._series_ids(db, [(batch.measurement, f) for f in batch.columns])
                    for name, values in batch.columns.items():
                        rows = self._bucket_rows(
                            ids[(batch.measurement, name)],
                            source_id,
                            batch.times,
                            values,
                            power=is_power_field(name),
                            max_gap_s=max_gap_s,
                            prev_time=batch.prev_times.get(name),
                        )
                        for table, table_rows in rows.items():
                            await db.executemany(_UPSERT.format(table=table), table_rows)
                for slots in slotted:
                    ids = await self._series_ids(db, [(slots.measurement, f) for f in slots.columns])
                    for name, values in slots.columns.items():
                        series = ids[(slots.measurement, name)]
                        verb = "INSERT OR IGNORE" if slots.keep_existing else "INSERT OR REPLACE"
                        await db.executemany(
                            f"{verb} INTO slot_values (series, t_ms, value, updated_ms) VALUES (?, ?, ?, ?)",
                            [
                                (series, int(t), float(v), updated)
                                for t, v in zip(slots.times_ms, values, strict=True)
                                if np.isfinite(v)
                            ],
                        )
        except BaseException:
            self._forget_ids()
            raise

    async def ingest_imported(
        self,
        source: str,
        measurement: str,
        times: FloatArray,
        columns: Mapping[str, FloatArray],
        *,
        max_gap_s: float,
    ) -> int:
        """Keep imported samples and rebuild this source's rollups where they fall. Idempotent.

        Returns the number of samples that were new.
        """
        t_ms = np.round(np.asarray(times, dtype=np.float64) * 1000).astype(np.int64)
        try:
            async with self.store.transaction() as db:
                ids = await self._series_ids(db, [(measurement, f) for f in columns])
                source_id = await self._source_id(db, source)
                added = 0
                for name, values in columns.items():
                    series = ids[(measurement, name)]
                    mask = np.isfinite(values)
                    if not bool(mask.any()):
                        continue
                    before = db.total_changes
                    await db.executemany(
                        "INSERT OR IGNORE INTO imported_samples (source, series, t_ms, value) VALUES (?, ?, ?, ?)",
                        zip(
                            [source_id] * int(mask.sum()),
                            [series] * int(mask.sum()),
                            t_ms[mask].tolist(),
                            np.asarray(values)[mask].tolist(),
                            strict=True,
                        ),
                    )
                    added += db.total_changes - before
                    lo = int(t_ms[mask].min() // 3_600_000) * 3600
                    hi = (int(t_ms[mask].max() // 3_600_000) + 1) * 3600
                    await self._rebuild(
                        db, series, source_id, lo, hi, power=is_power_field(name), max_gap_s=max_gap_s
                    )
                return int(added)
        except BaseException:
            self._forget_ids()
            raise

    async def _rebuild(
        self,
        db: aiosqlite.Connection,
        series: int,
        source: int,
        lo: int,
        hi: int,
        *,
        power: bool,
        max_gap_s: float,
    ) -> None:
        for table in ROLLUP_TABLES.values():
            await db.execute(
                f"DELETE FROM {table} WHERE series = ? AND source = ? AND bucket >= ? AND bucket < ?",  # noqa: S608
                (series, source, lo, hi),
            )
        async with db.execute(
            "SELECT t_ms, value FROM imported_samples WHERE source = ? AND series = ? AND t_ms >= ? AND t_ms < ? "
            "ORDER BY t_ms",
            (source, series, lo * 1000, hi * 1000),
        ) as cursor:
            samples = np.array(await cursor.fetchall(), dtype=np.float64).reshape(-1, 2)
        async with db.execute(
            "SELECT MAX(t_ms) FROM imported_samples WHERE source = ? AND series = ? AND t_ms < ?",
            (source, series, lo * 1000),
        ) as cursor:
            row = await cursor.fetchone()
        prev = float(row[0]) / 1000 if row and row[0] is not None else None
        rows = self._bucket_rows(
            series,
            source,
            samples[:, 0] / 1000,
            samples[:, 1],
            power=power,
            max_gap_s=max_gap_s,
            prev_time=prev,
        )
        for table, table_rows in rows.items():
            await db.executemany(_UPSERT.format(table=table), table_rows)

    async def _lookup_series(self, keys: Sequence[SeriesKey]) -> dict[SeriesKey, int]:
        found: dict[SeriesKey, int] = {}
        for key in keys:
            if key in self._series:
                found[key] = self._series[key]
                continue
            row = await self.store.fetchone("SELECT id FROM series WHERE measurement = ? AND field = ?", key)
            if row is not None:
                found[key] = self._series[key] = int(row[0])
        return found

    async def read_rollups(
        self, resolution: Resolution, keys: Sequence[SeriesKey], start_s: float, end_s: float
    ) -> dict[SeriesKey, Buckets]:
        """Buckets starting in [start_s, end_s) per series; a series never stored is absent."""
        table = ROLLUP_TABLES[resolution.value]
        ids = await self._lookup_series(keys)
        if not ids:
            return {}
        series = ",".join(str(i) for i in ids.values())  # integers from our own table
        bounds = (int(start_s), int(np.ceil(end_s)))
        mixed = await self.store.fetchone(
            _OTHER_SOURCES.format(table=table, series=series, live=LIVE_SOURCE_ID), bounds
        )
        template = _SELECT_PREFERRED if mixed and mixed[0] else _SELECT_LIVE
        width = 11 if template is _SELECT_PREFERRED else 10
        data = await self.store.fetch_floats(
            template.format(columns=_COLUMNS, table=table, series=series), bounds, width
        )
        out: dict[SeriesKey, Buckets] = {}
        for key, series_id in ids.items():
            part = data[data[:, 0] == series_id]
            power = is_power_field(key[1])
            out[key] = Buckets(
                start=part[:, 1].astype(np.int64),
                count=part[:, 2].astype(np.int64),
                total=part[:, 3],
                low=part[:, 4],
                high=part[:, 5],
                last=part[:, 6],
                last_t=part[:, 7],
                pos_wh=part[:, 8] if power else None,
                neg_wh=part[:, 9] if power else None,
            )
        return out

    async def read_slots(
        self, keys: Sequence[SeriesKey], start_s: float, end_s: float
    ) -> dict[SeriesKey, tuple[FloatArray, FloatArray]]:
        """Slot values in [start_s, end_s) per series as (times in epoch seconds, values)."""
        out: dict[SeriesKey, tuple[FloatArray, FloatArray]] = {}
        for key, series in (await self._lookup_series(keys)).items():
            data = await self.store.fetch_floats(
                "SELECT t_ms, value FROM slot_values WHERE series = ? AND t_ms >= ? AND t_ms < ? ORDER BY t_ms",
                (series, int(start_s * 1000), int(np.ceil(end_s * 1000))),
                2,
            )
            out[key] = (data[:, 0] / 1000, data[:, 1])
        return out
