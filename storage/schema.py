"""The SQLite schema as an ordered list of migrations; ``PRAGMA user_version`` records the one applied.

Times are integer epoch milliseconds (``*_ms``) in row tables; rollup buckets are epoch seconds.
Add a migration at the end to change the schema; never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def _rollup_table(name: str) -> str:
    return f"""CREATE TABLE {name} (
        series INTEGER NOT NULL, bucket INTEGER NOT NULL, source INTEGER NOT NULL,
        n INTEGER NOT NULL, total REAL NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
        last REAL NOT NULL, last_t REAL NOT NULL, pos_wh REAL, neg_wh REAL,
        PRIMARY KEY (series, bucket, source)) WITHOUT ROWID"""


ROLLUP_TABLES = {"1min": "rollup_1min", "15min": "rollup_15min", "1h": "rollup_1h"}
LIVE_SOURCE_ID = 1  # the lowest source id: where live and imported data overlap, live wins

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions, plans, decisions, events, overrides, state, config history, rollups, slots, spool",
        (
            """CREATE TABLE series (id INTEGER PRIMARY KEY, measurement TEXT NOT NULL, field TEXT NOT NULL,
                UNIQUE (measurement, field))""",
            "CREATE TABLE sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
            f"INSERT INTO sources (id, name) VALUES ({LIVE_SOURCE_ID}, 'live')",  # noqa: S608 - constant
            *(_rollup_table(table) for table in ROLLUP_TABLES.values()),
            """CREATE TABLE slot_values (series INTEGER NOT NULL, t_ms INTEGER NOT NULL, value REAL NOT NULL,
                updated_ms INTEGER NOT NULL, PRIMARY KEY (series, t_ms)) WITHOUT ROWID""",
            """CREATE TABLE imported_samples (source INTEGER NOT NULL, series INTEGER NOT NULL,
                t_ms INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (source, series, t_ms)) WITHOUT ROWID""",
            """CREATE TABLE sessions (id TEXT PRIMARY KEY, kind TEXT NOT NULL, start_ms INTEGER NOT NULL,
                end_ms INTEGER, soc_start REAL NOT NULL, soc_end REAL, grid_kwh REAL NOT NULL,
                pv_kwh REAL NOT NULL, out_kwh REAL NOT NULL, avg_price REAL, cost REAL NOT NULL,
                trigger TEXT NOT NULL, status TEXT NOT NULL, source TEXT NOT NULL, updated_ms INTEGER NOT NULL)""",
            "CREATE INDEX sessions_start ON sessions (start_ms)",
            """CREATE TABLE plans (id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL,
                horizon_start_ms INTEGER NOT NULL, horizon_end_ms INTEGER NOT NULL, inputs_digest TEXT NOT NULL,
                solve_ms REAL NOT NULL, trigger TEXT NOT NULL, explanation TEXT NOT NULL,
                slots_json TEXT NOT NULL, totals_json TEXT NOT NULL)""",
            "CREATE INDEX plans_created ON plans (created_ms)",
            """CREATE TABLE decisions (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, action TEXT NOT NULL,
                reason TEXT NOT NULL, command_json TEXT NOT NULL, plan_id INTEGER, trigger TEXT NOT NULL,
                applied INTEGER NOT NULL, source TEXT NOT NULL, source_key TEXT, UNIQUE (source, source_key))""",
            "CREATE INDEX decisions_time ON decisions (time_ms)",
            """CREATE TABLE events (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,
                severity TEXT NOT NULL, message TEXT NOT NULL, data_json TEXT NOT NULL)""",
            "CREATE INDEX events_time ON events (time_ms)",
            """CREATE TABLE overrides (id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, mode TEXT NOT NULL,
                source TEXT NOT NULL, expires_ms INTEGER, power_w REAL, soc_pct REAL, cancelled_ms INTEGER)""",
            """CREATE TABLE state (key TEXT PRIMARY KEY, value_json TEXT NOT NULL, updated_ms INTEGER NOT NULL)""",
            """CREATE TABLE config_versions (version INTEGER PRIMARY KEY AUTOINCREMENT,
                created_ms INTEGER NOT NULL, source TEXT NOT NULL, digest TEXT NOT NULL, text TEXT NOT NULL)""",
            """CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, queued_ms INTEGER NOT NULL,
                line TEXT NOT NULL)""",
            """CREATE TABLE spool_rejected (id INTEGER PRIMARY KEY, rejected_ms INTEGER NOT NULL,
                line TEXT NOT NULL, error TEXT NOT NULL)""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
