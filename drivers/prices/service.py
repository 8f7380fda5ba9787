"""The price service: a chain of sources with fallback, composed into final 15-minute prices.

For every quarter-hour of the requested site days, sources are tried in the configured order;
for each source and market day the disk cache is read first, then the network. A day that
fails (HTTP error, timeout, garbage, validation) is recorded and the next source is tried, so a
chain such as ``pse -> entsoe -> tou`` degrades to the static tariff instead of failing. Every
slot is then priced by the tariff (fees by zone, VAT, export rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from drivers.days import day_window
from drivers.http import HttpClient
from drivers.prices.cache import PriceCache
from drivers.prices.registry import PricesConfig, build_source
from drivers.prices.tariff import Tariff
from drivers.prices.types import (
    MarketSlot,
    Origin,
    PriceError,
    PriceFetchError,
    PriceResult,
    PriceSlot,
    PriceSource,
    PriceStatus,
    PriceUnavailableError,
    SourceOutcome,
)

log = logging.getLogger(__name__)

SLOT = timedelta(minutes=15)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def split_quarter_hours(slots: Sequence[MarketSlot]) -> list[MarketSlot]:
    """Hourly and half-hourly slots as quarter-hours with the same price."""
    pieces: list[MarketSlot] = []
    for slot in slots:
        count, remainder = divmod(slot.duration, SLOT)
        if remainder:
            raise ValueError(f"slot {slot.start}..{slot.end} is not a whole number of quarter-hours")
        for index in range(count):
            start = slot.start + index * SLOT
            pieces.append(MarketSlot(start, start + SLOT, slot.price, slot.currency, slot.export_price))
    return pieces


class PriceService:
    def __init__(
        self,
        sources: Sequence[PriceSource],
        tariff: Tariff,
        *,
        timezone: ZoneInfo,
        cache: PriceCache | None = None,
        http: HttpClient | None = None,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not sources:
            raise ValueError("PriceService needs at least one source")
        self.sources = tuple(sources)
        self.tariff = tariff
        self.timezone = timezone
        self.cache = cache
        self._http = http
        self._now = now

    @classmethod
    def from_config(
        cls,
        config: PricesConfig,
        *,
        timezone: ZoneInfo,
        currency: str,
        cache_dir: Path | None,
        now: Callable[[], datetime] = _utc_now,
    ) -> PriceService:
        """Sources, tariff, HTTP client and cache as configured; call ``close()`` when done."""
        http = HttpClient(config.http.policy())
        tariff = Tariff(config.tariff, currency=currency, timezone=timezone)
        sources = [
            build_source(source, http=http, tariff_calendar=tariff.calendar, currency=currency)
            for source in config.sources
        ]
        cache = PriceCache(cache_dir) if cache_dir is not None else None
        return cls(sources, tariff, timezone=timezone, cache=cache, http=http, now=now)

    async def __aenter__(self) -> PriceService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def fetch(
        self, first_day: date, last_day: date | None = None, *, fill_unpublished: bool = True
    ) -> PriceResult:
        """Final prices for the site days ``first_day``..``last_day`` (inclusive).

        With ``fill_unpublished`` false, local sources (tou, csv) do not stand in for a day that
        an earlier source reported as not yet published: such a day stays missing (PARTIAL).
        """
        last_day = first_day if last_day is None else last_day
        if last_day < first_day:
            raise ValueError(f"last_day {last_day} is before first_day {first_day}")
        window_start, _ = day_window(first_day, self.timezone)
        _, window_end = day_window(last_day, self.timezone)
        wanted = [window_start + index * SLOT for index in range((window_end - window_start) // SLOT)]
        chosen: dict[datetime, PriceSlot] = {}
        outcomes: list[SourceOutcome] = []
        unpublished: set[date] = set()
        unreachable: set[str] = set()
        for source in self.sources:
            missing = [instant for instant in wanted if instant not in chosen]
            if not missing:
                break
            for day in sorted({instant.astimezone(source.timezone).date() for instant in missing}):
                if not fill_unpublished and source.cache_key is None and day in unpublished:
                    continue
                outcome, priced = await self._source_day(source, day, network=source.name not in unreachable)
                if outcome.unpublished:
                    unpublished.add(day)
                if outcome.unreachable:
                    unreachable.add(source.name)  # its other days: cache only, no more timeouts
                outcomes.append(outcome)
                for slot in priced:
                    if window_start <= slot.start < window_end and slot.start not in chosen:
                        chosen[slot.start] = slot
        slots = tuple(chosen[instant] for instant in wanted if instant in chosen)
        missing_count = len(wanted) - len(slots)
        if not slots:
            status = PriceStatus.ERROR
        elif missing_count:
            status = PriceStatus.PARTIAL
        elif any(slot.source != self.sources[0].name for slot in slots):
            status = PriceStatus.FALLBACK
        else:
            status = PriceStatus.REAL
        return PriceResult(
            slots=slots,
            status=status,
            window_start=window_start,
            window_end=window_end,
            outcomes=tuple(outcomes),
            missing_slots=missing_count,
            fetched_at=self._now(),
        )

    async def fetch_days(self, now: datetime, days: int = 2, *, fill_unpublished: bool = True) -> PriceResult:
        """Today and the following ``days - 1`` site days, as seen at ``now``."""
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        today = now.astimezone(self.timezone).date()
        return await self.fetch(today, today + timedelta(days=days - 1), fill_unpublished=fill_unpublished)

    async def prune_cache(self, keep_days: int, today: date) -> int:
        if self.cache is None:
            return 0
        return await self.cache.prune(today - timedelta(days=keep_days))

    async def _source_day(
        self, source: PriceSource, day: date, *, network: bool
    ) -> tuple[SourceOutcome, tuple[PriceSlot, ...]]:
        try:
            market, origin = await self._market_day(source, day, network=network)
            priced = self.tariff.apply(split_quarter_hours(market), source.name)
        except PriceUnavailableError as exc:
            log.info("prices: %s", exc)
            return SourceOutcome(source.name, day, None, str(exc), unpublished=True), ()
        except PriceFetchError as exc:
            log.warning("prices: %s", exc)
            return SourceOutcome(source.name, day, None, str(exc), unreachable=True), ()
        except PriceError as exc:
            log.warning("prices: %s", exc)
            return SourceOutcome(source.name, day, None, str(exc)), ()
        except Exception as exc:  # a parser bug must not stop the chain
            log.exception("prices: %s %s failed unexpectedly", source.name, day)
            return SourceOutcome(source.name, day, None, f"internal error: {type(exc).__name__}: {exc}"), ()
        return SourceOutcome(source.name, day, origin), priced

    async def _market_day(
        self, source: PriceSource, day: date, *, network: bool = True
    ) -> tuple[tuple[MarketSlot, ...], Origin]:
        key = source.cache_key
        if key is None:
            return await source.fetch_day(day), Origin.LOCAL
        if self.cache is not None:
            cached = await self.cache.load(key, day, source.timezone)
            if cached is not None:
                return cached, Origin.CACHE
        if not network:
            raise PriceFetchError(f"{source.name}: not tried for {day}: unreachable earlier in this fetch")
        slots = await source.fetch_day(day)
        if self.cache is not None:
            try:
                await self.cache.store(key, day, slots)
            except OSError as exc:
                log.warning("prices: cannot cache %s %s: %s", source.name, day, exc)
        return slots, Origin.NETWORK
