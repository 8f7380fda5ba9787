"""A what-if variant's tariff: the prices it pays and is paid, and the scheme that settles it.

Tariffs are written ``IMPORT[/EXPORT][@SCHEME]``, each side ``recorded`` (the stored or scenario
prices), a fixed price (``0.85``), or a price per zone of a calendar preset
(``G12:peak=1.10,offpeak=0.62``); the export side defaults to ``recorded``. ``@SCHEME`` settles
the variant under a published settlement scheme (``recorded@be_flanders_capacity``); without it
the site's ``[settlement]`` applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from controller.settlement.schemes import SCHEME_PRESETS, Scheme, scheme_preset
from drivers.prices.zones import PRESET_NAMES, CalendarConfig

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PriceRule:
    """One side of a tariff: the recorded prices, one fixed price, or a price per calendar zone."""

    fixed: float | None = None  # None and no preset: recorded
    preset: str | None = None
    zone_prices: tuple[tuple[str, float], ...] = ()

    def prices(self, recorded: FloatArray, epoch_s: npt.NDArray[np.int64], tz: ZoneInfo) -> FloatArray:
        if self.fixed is not None:
            return np.full(recorded.size, self.fixed)
        if self.preset is None:
            return recorded
        calendar = CalendarConfig(preset=self.preset).build(tz)
        price = dict(self.zone_prices)
        hours = np.floor(epoch_s / 900.0).astype(np.int64)  # zones change on quarter-hours at most
        unique, inverse = np.unique(hours, return_inverse=True)
        per = [price[calendar.zone_at(datetime.fromtimestamp(int(q) * 900, UTC))] for q in unique]
        return np.asarray(per, dtype=np.float64)[inverse]


RECORDED_PRICES = PriceRule()


def _parse_rule(text: str, side: str) -> PriceRule:
    text = text.strip()
    if text == "recorded":
        return RECORDED_PRICES
    if ":" not in text:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"tariff {side} {text!r}: not 'recorded', a price or PRESET:zone=price,..."
            ) from None
        if not math.isfinite(value):
            raise ValueError(f"tariff {side} {text!r}: the price must be finite")
        return PriceRule(fixed=value)
    preset, _, pairs = text.partition(":")
    if preset not in PRESET_NAMES:
        raise ValueError(
            f"tariff {side} {text!r}: unknown zone preset {preset!r} (known: {', '.join(PRESET_NAMES)})"
        )
    zones = CalendarConfig(preset=preset).zones
    prices: dict[str, float] = {}
    for pair in pairs.split(","):
        zone, _, price = pair.partition("=")
        try:
            prices[zone.strip()] = float(price)
        except ValueError:
            raise ValueError(f"tariff {side} {text!r}: {pair!r} is not zone=price") from None
    if sorted(prices) != sorted(zones):
        raise ValueError(f"tariff {side} {text!r}: {preset} needs a price for each of {', '.join(zones)}")
    return PriceRule(preset=preset, zone_prices=tuple(sorted(prices.items())))


@dataclass(frozen=True, slots=True)
class VariantTariff:
    text: str
    import_rule: PriceRule = RECORDED_PRICES
    export_rule: PriceRule = RECORDED_PRICES
    scheme: Scheme | None = None  # None: the site's settlement

    def settled_by(self, site: Scheme) -> Scheme:
        return site if self.scheme is None else self.scheme


RECORDED = VariantTariff("recorded")


def parse_tariff(text: str) -> VariantTariff:
    """``IMPORT[/EXPORT][@SCHEME]``, e.g. ``recorded``, ``0.85/0.20``,
    ``G12:peak=1.10,offpeak=0.62/recorded``, ``recorded@be_flanders_capacity``."""
    prices, at, scheme_name = text.partition("@")
    scheme = None
    if at:
        try:
            scheme = scheme_preset(scheme_name.strip())
        except ValueError:
            known = ", ".join(p.name for p in SCHEME_PRESETS)
            raise ValueError(
                f"tariff {text!r}: unknown settlement scheme {scheme_name!r} (known: {known})"
            ) from None
    import_text, _, export_text = prices.partition("/")
    return VariantTariff(
        text.strip(),
        _parse_rule(import_text, "import"),
        _parse_rule(export_text or "recorded", "export"),
        scheme,
    )
