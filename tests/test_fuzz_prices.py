"""Fuzzing the price parsers and the price cache.

Each parser gets its recorded fixtures with random mutations (any JSON value in place of any
value, keys dropped, huge and non-finite numbers, odd date-times), random XML for ENTSO-E, random
CSV rows, and plain random text. Every parser must return price slots that pass the day's
validation or raise a PriceError (which the service turns into "try the next source"), never
anything else. The disk cache, given any file content, loads a valid day or nothing.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.prices.awattar import parse_marketdata
from drivers.prices.cache import PriceCache
from drivers.prices.csv_file import parse_csv
from drivers.prices.energi_data_service import parse_records
from drivers.prices.entsoe import parse_a44, select_day
from drivers.prices.nordpool import parse_day_ahead
from drivers.prices.octopus_agile import parse_rates
from drivers.prices.pse import parse_report
from drivers.prices.types import MarketSlot, PriceError
from drivers.prices.validation import validate_day

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "prices"
FUZZ = settings(max_examples=350, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _slots(result: object) -> list[MarketSlot]:
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, dict):  # pse: {start: price}
        return []
    assert isinstance(result, list)
    return result


# parser name -> (fixture directory, parse(text) -> result, the day and zone of its fixtures)
PARSERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "awattar": ("awattar", lambda text: parse_marketdata(text, where="fuzz")),
    "eds": ("eds", lambda text: parse_records(text, area="DK1", currency="EUR", where="fuzz")),
    "nordpool": ("nordpool", lambda text: parse_day_ahead(text, area="SE3", currency="EUR", where="fuzz")),
    "octopus": ("octopus", lambda text: parse_rates(text, include_vat=True, where="fuzz")),
    "pse": ("pse", lambda text: parse_report(text, report="csdac-pln", day=date(2025, 11, 19))),
}


@functools.cache
def documents(directory: str) -> list[str]:
    """The fixtures of one source, as JSON text (decoded afresh for each case)."""
    out = []
    for path in sorted((FIXTURES / directory).glob("*.json")):
        try:
            out.append(json.dumps(json.loads(path.read_text(encoding="utf-8"))))
        except ValueError:
            continue
    return out


def paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value[:6]):  # the first few records are representative
            out.extend(paths(item, (*path, index)))
    return out


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.sampled_from([10**400, -(10**400), 0, -1, 2**63, 1e308, -1e308, 5e-324]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["", "NaN", "Infinity", "-0", "1e999", "12,5", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
         "2025-11-19T00:00:00", "2025-11-19T00:07:00Z", "2025-11-19", "Eur/MWh", "EUR", "DK1", "SE3"]
    ),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated(draw: st.DrawFn, directory: str) -> str:
    document = json.loads(draw(st.sampled_from(documents(directory))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(document)))
        if not path:
            document = draw(json_values)
            continue
        parent: Any = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]]  # the path may have gone with an earlier mutation
        except (KeyError, IndexError, TypeError):
            continue
        if draw(st.booleans()) or not isinstance(parent, dict):
            parent[path[-1]] = draw(json_values)
        else:
            del parent[path[-1]]
    return json.dumps(document, allow_nan=True)


def parsed_or_rejected(name: str, text: str) -> None:
    _, parse = PARSERS[name]
    try:
        result = parse(text)
    except PriceError:
        return
    for slot in _slots(result):
        assert math.isfinite(slot.price)
        assert slot.end > slot.start


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(data=st.data())
def test_a_mutated_answer_parses_or_is_a_price_error(name: str, data: st.DataObject) -> None:
    parsed_or_rejected(name, data.draw(mutated(PARSERS[name][0])))


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(max_size=200), json_values.map(lambda v: json.dumps(v, allow_nan=True))))
def test_any_text_parses_or_is_a_price_error(name: str, text: str) -> None:
    parsed_or_rejected(name, text)


A44 = (FIXTURES / "entsoe" / "a44_PL_2025-11-19.xml").read_text(encoding="utf-8")


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(A44)),
            st.integers(0, 12),
            st.sampled_from(["", "<", ">", "</", "Point", "-1", "999999999999", "PT15M", "PT7M", "NaN", "&amp;", "\x00", "2025-11-19T23:00Z", "<Point><position>1</position></Point>"]),
        ),
        min_size=1,
        max_size=5,
    )
)  # fmt: skip
def test_a_mutated_entsoe_document_parses_or_is_a_price_error(edits: list[tuple[int, int, str]]) -> None:
    text = A44
    for position, cut, insert in edits:
        at = min(position, len(text))
        text = text[:at] + insert + text[at + cut :]
    try:
        curves = parse_a44(text, where="fuzz")
        slots = select_day(
            curves, day=date(2025, 11, 19), tz=ZoneInfo("Europe/Warsaw"), sequence=1, source="fuzz"
        )
    except PriceError:
        return
    assert all(math.isfinite(s.price) and s.end > s.start for s in slots)


CSV_HEADERS = ["start,price", "start,end,price,export_price", "price,start", "start", "start,price,price"]


@FUZZ
@given(
    header=st.sampled_from(CSV_HEADERS),
    rows=st.lists(
        st.lists(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(
                    ["2025-11-19T00:00+01:00", "2025-11-19T00:15:00Z", "nan", "inf", "1e309", "0.5", ""]
                ),
            ),
            max_size=5,
        ).map(lambda cells: ",".join(c.replace("\n", " ") for c in cells)),
        max_size=8,
    ),
)
def test_a_csv_file_parses_or_is_a_price_error(header: str, rows: list[str]) -> None:
    text = "\n".join([header, *rows])
    try:
        slots = parse_csv(text, currency="PLN", unit="kWh", resolution=timedelta(minutes=15), where="fuzz")
        validate_day(slots, day=date(2025, 11, 19), tz=ZoneInfo("Europe/Warsaw"), source="fuzz")
    except PriceError:
        return


@settings(max_examples=200, deadline=None)
@given(
    content=st.one_of(
        st.binary(max_size=200), json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
    )
)
def test_a_damaged_cache_file_loads_as_nothing(
    content: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = PriceCache(tmp_path_factory.mktemp("cache", numbered=True))
    day = date(2025, 11, 19)
    path = cache.path("fuzz_source", day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    loaded = asyncio.run(cache.load("fuzz_source", day, ZoneInfo("Europe/Warsaw")))
    assert loaded is None or all(math.isfinite(s.price) for s in loaded)
