"""Checking responses against the OpenAPI document of the web API (the JSON Schema subset it uses).

Supported: $ref, type (a name or a list of names), enum, properties, required,
additionalProperties (false or a schema), items, oneOf, allOf, format date-time / date.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).resolve().parents[2] / "controller" / "frontends" / "web" / "static" / "openapi.json"
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return document


def _type_ok(value: object, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def problems(document: dict[str, Any], schema: dict[str, Any], value: object, where: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty when it fits)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return problems(document, document["components"]["schemas"][name], value, where)
    if "oneOf" in schema:
        fits = [not problems(document, option, value, where) for option in schema["oneOf"]]
        return [] if fits.count(True) == 1 else [f"{where}: fits {fits.count(True)} of the oneOf options"]
    found: list[str] = []
    for part in schema.get("allOf", ()):
        found += problems(document, part, value, where)
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_type_ok(value, n) for n in names):
            return [*found, f"{where}: {type(value).__name__} is not {names}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and schema.get("format") in ("date-time", "date"):
        try:
            parsed = (datetime if schema["format"] == "date-time" else date).fromisoformat(value)
            if isinstance(parsed, datetime) and parsed.tzinfo is None:
                found.append(f"{where}: date-time without offset {value!r}")
        except ValueError:
            found.append(f"{where}: not an ISO {schema['format']}: {value!r}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                found.append(f"{where}: missing {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                found += problems(document, properties[name], item, f"{where}.{name}")
            elif extra is False:
                found.append(f"{where}: unexpected property {name!r}")
            elif isinstance(extra, dict):
                found += problems(document, extra, item, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += problems(document, schema["items"], item, f"{where}[{i}]")
    return found


def response_schema(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    schema: dict[str, Any] = response["content"]["application/json"]["schema"]
    return schema
