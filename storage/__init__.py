"""Everything that persists or reads back: SQLite (sessions, plans, rollups, spool), InfluxDB, the data manager.

``storage`` may import the value types of ``drivers`` (Snapshot), never a driver that does I/O and
never ``controller``: the controller's own types reach storage as the records of ``storage.records``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable


class StorageError(Exception):
    """Root of every error raised by the storage package."""


async def write_or_log(what: str, write: Awaitable[object], log: logging.Logger) -> bool:
    """Await a storage write the caller can go on without: a failure (full disk, I/O error) is
    logged on ``log`` as one line, ``<what> not stored: <reason>``. True when it was stored."""
    try:
        await write
    except StorageError as exc:
        log.warning("%s not stored: %s", what, exc)
        return False
    return True
