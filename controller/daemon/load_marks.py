"""The loads marked unreliable, kept in the data manager's state table across a restart.

Key ``MARKS_KEY``: each marked load's name with when it is tried again (ISO, or null: when it is
said to be reliable again). Written only when the marks change; a failing storage is logged and
the marks kept in memory.
"""

from __future__ import annotations

import logging
from datetime import datetime

from controller.control.loads import LoadSwitcher
from storage import StorageError
from storage.datamanager import DataManager

log = logging.getLogger(__name__)
MARKS_KEY = "load_marks"


class LoadMarks:
    """The switcher's unreliable marks, as stored."""

    def __init__(self, data: DataManager, switcher: LoadSwitcher) -> None:
        self.data, self.switcher = data, switcher
        self._stored: dict[str, datetime | None] = {}

    async def restore(self) -> None:
        """The loads marked unreliable before a restart, marked again (a mark that does not read
        is dropped, logged)."""
        try:
            stored = await self.data.get_state(MARKS_KEY)
        except StorageError as exc:
            log.warning("loads: the unreliable marks not readable: %s", exc)
            return
        for name, until in (stored or {}).items() if isinstance(stored, dict) else ():
            if name not in self.switcher.loads:
                continue
            try:
                when = None if until is None else datetime.fromisoformat(str(until))
            except ValueError:
                log.warning("load %s: its stored mark %r does not read; dropped", name, until)
                continue
            if when is not None and when.tzinfo is None:
                log.warning("load %s: its stored mark %r has no offset; dropped", name, until)
                continue
            self.switcher.mark_unreliable(name, when)
            log.warning("load %s: still marked unreliable (until %s)", name, until or "said reliable again")
        self._stored = self.switcher.marks()

    async def store(self) -> None:
        """The marks as they are now, when they changed."""
        marks = self.switcher.marks()
        if marks == self._stored:
            return
        try:
            await self.data.put_state(
                MARKS_KEY, {n: None if u is None else u.isoformat() for n, u in sorted(marks.items())}
            )
        except StorageError as exc:
            log.warning("loads: the unreliable marks not stored: %s", exc)
            return
        self._stored = marks
