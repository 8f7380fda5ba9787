"""Disk cache of validated market days, one JSON file per source and day.

Day-ahead prices do not change once published, so a cached complete day is final: a restart
serves it without refetching, and an outage falls back to what is known. Files are written
atomically (temporary file + rename); a file that no longer validates is ignored and moved aside.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drivers.prices.types import MarketSlot, PriceError
from drivers.prices.validation import validate_day

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,120}$")


class PriceCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str, day: date) -> Path:
        if not _KEY_RE.match(key):
            raise ValueError(f"price cache key {key!r} must match {_KEY_RE.pattern}")
        return self.directory / key / f"{day.isoformat()}.json"

    async def load(self, key: str, day: date, tz: ZoneInfo) -> tuple[MarketSlot, ...] | None:
        return await asyncio.to_thread(self._load, key, day, tz)

    async def store(self, key: str, day: date, slots: tuple[MarketSlot, ...]) -> None:
        await asyncio.to_thread(self._store, key, day, slots)

    async def prune(self, before: date) -> int:
        """Delete cached days earlier than ``before``; returns how many files went."""
        return await asyncio.to_thread(self._prune, before)

    def _load(self, key: str, day: date, tz: ZoneInfo) -> tuple[MarketSlot, ...] | None:
        path = self.path(key, day)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            document = json.loads(raw.decode("utf-8"))  # damaged bytes are a ValueError too
            _check_version(document)
            slots = tuple(
                MarketSlot(
                    start=datetime.fromisoformat(start),
                    end=datetime.fromisoformat(end),
                    price=float(price),
                    currency=str(currency),
                    export_price=None if export is None else float(export),
                )
                for start, end, price, export, currency in document["slots"]
            )
            return validate_day(slots, day=day, tz=tz, source=f"cache {key}")
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            OverflowError,
            RecursionError,
            PriceError,
        ) as exc:
            bad = path.with_suffix(".bad")
            log.warning("ignoring unreadable price cache file %s (%s); moved to %s", path, exc, bad.name)
            os.replace(path, bad)
            return None

    def _store(self, key: str, day: date, slots: tuple[MarketSlot, ...]) -> None:
        path = self.path(key, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "version": FORMAT_VERSION,
            "source": key,
            "day": day.isoformat(),
            "stored_at": datetime.now(UTC).isoformat(),
            "slots": [
                [s.start.isoformat(), s.end.isoformat(), s.price, s.export_price, s.currency] for s in slots
            ],
        }
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(document, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _prune(self, before: date) -> int:
        removed = 0
        if not self.directory.is_dir():
            return 0
        for path in self.directory.glob("*/*.json"):
            try:
                day = date.fromisoformat(path.stem)
            except ValueError:
                continue
            if day < before:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _check_version(document: dict[str, object]) -> None:
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"format version {document.get('version')!r}")
