"""ENTSO-E Transparency Platform: day-ahead prices (documentType A44) for any bidding zone.

The answer is a Publication_MarketDocument (XML) with TimeSeries per classification sequence,
each holding Periods with a resolution (PT15M, PT30M, PT60M) and Points. Curve type A03 omits a
position whose price equals the previous one: such gaps repeat the previous price. One response
may hold several sequences and resolutions; the configured sequence (1 = the SDAC auction) is
used, at the finest resolution that covers the whole day. "No data" comes back as an
Acknowledgement_MarketDocument with reason code 999.
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from drivers.days import day_window
from drivers.http import HttpClient
from drivers.prices.base import HttpBase, SourceConfigBase, http_get, number, utc_instant
from drivers.prices.types import (
    MarketSlot,
    PriceDataError,
    PriceError,
    PriceFetchError,
    PriceUnavailableError,
)
from drivers.prices.validation import validate_day


@dataclass(frozen=True, slots=True)
class BiddingZone:
    alias: str
    eic: str


BIDDING_ZONES: tuple[BiddingZone, ...] = (
    BiddingZone("PL", "10YPL-AREA-----S"),
    BiddingZone("DE-LU", "10Y1001A1001A82H"),
    BiddingZone("AT", "10YAT-APG------L"),
    BiddingZone("BE", "10YBE----------2"),
    BiddingZone("NL", "10YNL----------L"),
    BiddingZone("FR", "10YFR-RTE------C"),
    BiddingZone("CH", "10YCH-SWISSGRIDZ"),
    BiddingZone("CZ", "10YCZ-CEPS-----N"),
    BiddingZone("SK", "10YSK-SEPS-----K"),
    BiddingZone("HU", "10YHU-MAVIR----U"),
    BiddingZone("SI", "10YSI-ELES-----O"),
    BiddingZone("HR", "10YHR-HEP------M"),
    BiddingZone("RO", "10YRO-TEL------P"),
    BiddingZone("BG", "10YCA-BULGARIA-R"),
    BiddingZone("GR", "10YGR-HTSO-----Y"),
    BiddingZone("ES", "10YES-REE------0"),
    BiddingZone("PT", "10YPT-REN------W"),
    BiddingZone("IT-NORD", "10Y1001A1001A73I"),
    BiddingZone("DK1", "10YDK-1--------W"),
    BiddingZone("DK2", "10YDK-2--------M"),
    BiddingZone("SE1", "10Y1001A1001A44P"),
    BiddingZone("SE2", "10Y1001A1001A45N"),
    BiddingZone("SE3", "10Y1001A1001A46L"),
    BiddingZone("SE4", "10Y1001A1001A47J"),
    BiddingZone("NO1", "10YNO-1--------2"),
    BiddingZone("NO2", "10YNO-2--------T"),
    BiddingZone("NO3", "10YNO-3--------J"),
    BiddingZone("NO4", "10YNO-4--------9"),
    BiddingZone("NO5", "10Y1001A1001A48H"),
    BiddingZone("FI", "10YFI-1--------U"),
    BiddingZone("EE", "10Y1001A1001A39I"),
    BiddingZone("LV", "10YLV-1001A00074"),
    BiddingZone("LT", "10YLT-1001A0008Q"),
)

RESOLUTIONS = {
    "PT15M": timedelta(minutes=15),
    "PT30M": timedelta(minutes=30),
    "PT60M": timedelta(minutes=60),
    "PT1H": timedelta(minutes=60),
}
NO_DATA_REASON = "999"


def zone_eic(zone: str) -> str:
    """An alias from BIDDING_ZONES or a 16-character EIC code, as the EIC code."""
    for candidate in BIDDING_ZONES:
        if zone.upper() == candidate.alias:
            return candidate.eic
    if len(zone) == 16 and zone[:3] == "10Y":
        return zone
    known = ", ".join(z.alias for z in BIDDING_ZONES)
    raise ValueError(f"unknown bidding zone {zone!r}: use a 16-character EIC code (10Y...) or one of {known}")


class EntsoeConfig(SourceConfigBase):
    """ENTSO-E day-ahead prices; the platform's personal security token is given as ``token`` or
    read from ``token_file`` (e.g. a systemd credential: ``/run/credentials/hemsd.service/entsoe``).
    """

    type: Literal["entsoe"] = "entsoe"
    token: Annotated[SecretStr, Field(min_length=1)] | None = None
    token_file: Path | None = None
    zone: str
    timezone: str = "Europe/Brussels"
    sequence: Annotated[int, Field(ge=1, le=9)] = 1
    base_url: HttpBase = "https://web-api.tp.entsoe.eu/api"

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        if (self.token is None) == (self.token_file is None):
            raise ValueError("give exactly one of token and token_file")
        return self

    def secret_token(self) -> str:
        """The token; a token file is read on each call, so a rotated credential is picked up."""
        if self.token is not None:
            return self.token.get_secret_value()
        assert self.token_file is not None
        try:
            text = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PriceFetchError(
                f"entsoe: cannot read token_file {self.token_file}: {exc.strerror}"
            ) from exc
        if not text:
            raise PriceFetchError(f"entsoe: token_file {self.token_file} is empty")
        return text

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_eic(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ET.Element, path: str, where: str, default: str | None = None) -> str:
    node: ET.Element | None = element
    for name in path.split("/"):
        node = _child(node, name) if node is not None else None
    if node is None or node.text is None:
        if default is not None:
            return default
        raise PriceDataError(f"{where}: element {path!r} is missing")
    return node.text.strip()


@dataclass(frozen=True, slots=True)
class Curve:
    sequence: int
    resolution: timedelta
    currency: str
    prices: dict[datetime, float]  # period start UTC -> currency/kWh


def _read_period(period: ET.Element, curve_type: str, where: str) -> tuple[timedelta, dict[datetime, float]]:
    start = utc_instant(_text(period, "timeInterval/start", where), "timeInterval.start", where)
    end = utc_instant(_text(period, "timeInterval/end", where), "timeInterval.end", where)
    resolution_text = _text(period, "resolution", where)
    resolution = RESOLUTIONS.get(resolution_text)
    if resolution is None:
        raise PriceDataError(f"{where}: unsupported resolution {resolution_text!r}")
    count, remainder = divmod(end - start, resolution)
    if remainder or count <= 0:
        raise PriceDataError(f"{where}: interval {start}..{end} is not a whole number of {resolution_text}")
    by_position: dict[int, float] = {}
    for point in _children(period, "Point"):
        position_text = _text(point, "position", where)
        if not position_text.isdigit() or not 1 <= int(position_text) <= count:
            raise PriceDataError(f"{where}: Point position {position_text!r} outside 1..{count}")
        position = int(position_text)
        if position in by_position:
            raise PriceDataError(f"{where}: Point position {position} appears twice")
        by_position[position] = number(_text(point, "price.amount", where), "price.amount", where) / 1000.0
    prices: dict[datetime, float] = {}
    previous: float | None = None
    for position in range(1, count + 1):
        value = by_position.get(position)
        if value is None:
            if curve_type != "A03" or previous is None:
                raise PriceDataError(f"{where}: Point position {position} missing (curveType {curve_type})")
            value = previous
        prices[start + (position - 1) * resolution] = value
        previous = value
    return resolution, prices


def parse_a44(body: str, *, where: str) -> list[Curve]:
    """All day-ahead curves of an A44 document, merged per (sequence, resolution)."""
    try:
        root = ET.fromstring(body)  # noqa: S314 - expat resolves no external entities
    except ET.ParseError as exc:
        raise PriceDataError(f"{where}: response is not well-formed XML ({exc}): {body[:80]!r}") from None
    kind = _local(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        code = _text(root, "Reason/code", where, default="?")
        reason = _text(root, "Reason/text", where, default="(no text)")
        if code == NO_DATA_REASON:
            raise PriceUnavailableError(f"{where}: no data published: {reason}")
        raise PriceFetchError(f"{where}: request refused (reason {code}): {reason}")
    if kind != "Publication_MarketDocument":
        raise PriceDataError(f"{where}: unexpected document {kind!r}")
    curves: dict[tuple[int, timedelta], Curve] = {}
    for index, series in enumerate(_children(root, "TimeSeries")):
        at = f"{where} TimeSeries {index + 1}"
        if _text(series, "contract_MarketAgreement.type", at, default="A01") != "A01":
            continue  # not a day-ahead contract
        unit = _text(series, "price_Measure_Unit.name", at)
        if unit != "MWH":
            raise PriceDataError(f"{at}: price unit {unit!r}, expected 'MWH'")
        currency = _text(series, "currency_Unit.name", at)
        sequence_text = _text(series, "classificationSequence_AttributeInstanceComponent.position", at, "1")
        if not sequence_text.isdigit():
            raise PriceDataError(f"{at}: classification sequence {sequence_text!r} is not a number")
        curve_type = _text(series, "curveType", at, default="A01")
        for period in _children(series, "Period"):
            resolution, prices = _read_period(period, curve_type, at)
            key = (int(sequence_text), resolution)
            curve = curves.setdefault(key, Curve(key[0], resolution, currency, {}))
            if curve.currency != currency:
                raise PriceDataError(
                    f"{at}: currency {currency} differs from {curve.currency} of the same sequence"
                )
            overlap = curve.prices.keys() & prices.keys()
            if overlap:
                raise PriceDataError(f"{at}: Periods overlap at {min(overlap):%Y-%m-%dT%H:%MZ}")
            curve.prices.update(prices)
    if not curves:
        raise PriceDataError(f"{where}: document holds no day-ahead TimeSeries")
    return list(curves.values())


def select_day(
    curves: list[Curve], *, day: date, tz: ZoneInfo, sequence: int, source: str
) -> tuple[MarketSlot, ...]:
    """The configured sequence's finest-resolution curve that covers ``day`` completely."""
    start, end = day_window(day, tz)
    candidates = sorted((c for c in curves if c.sequence == sequence), key=lambda c: c.resolution)
    if not candidates:
        present = ", ".join(str(s) for s in sorted({c.sequence for c in curves}))
        raise PriceDataError(
            f"{source} {day}: classification sequence {sequence} absent (present: {present})"
        )
    first_error: PriceError | None = None
    for curve in candidates:
        slots = [
            MarketSlot(start=at, end=at + curve.resolution, price=price, currency=curve.currency)
            for at, price in curve.prices.items()
            if start <= at < end
        ]
        try:
            return validate_day(slots, day=day, tz=tz, source=source)
        except PriceError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


class EntsoeSource:
    def __init__(self, config: EntsoeConfig, http: HttpClient) -> None:
        self.config = config
        self.name = config.name or "entsoe"
        self.timezone = ZoneInfo(config.timezone)
        self.eic = zone_eic(config.zone)
        self.cache_key: str | None = f"entsoe_{self.eic.replace('-', '')}_seq{config.sequence}"
        self._http = http

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]:
        start, end = day_window(day, self.timezone)
        params = {
            "documentType": "A44",
            "in_Domain": self.eic,
            "out_Domain": self.eic,
            "periodStart": f"{start:%Y%m%d%H%M}",
            "periodEnd": f"{end:%Y%m%d%H%M}",
            "securityToken": await asyncio.to_thread(self.config.secret_token),
        }
        response = await http_get(
            self._http, self.name, self.config.base_url, params=params, ok_statuses=frozenset({200, 400})
        )
        where = f"{self.name} {day.isoformat()}"
        if response.status != 200:
            # A refused request (bad zone, bad period) is explained in an Acknowledgement document.
            with contextlib.suppress(PriceDataError):
                parse_a44(response.text, where=where)
            raise PriceFetchError(f"{where}: HTTP {response.status}: {response.text[:200]!r}")
        curves = parse_a44(response.text, where=where)
        return select_day(curves, day=day, tz=self.timezone, sequence=self.config.sequence, source=self.name)
