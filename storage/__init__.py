"""Everything that persists or reads back: SQLite (sessions, plans, rollups, spool), InfluxDB, the data manager.

``storage`` may import the value types of ``drivers`` (Snapshot), never a driver that does I/O and
never ``controller``: the controller's own types reach storage as the records of ``storage.records``.
"""


class StorageError(Exception):
    """Root of every error raised by the storage package."""
