"""The import graph keeps the design's direction: controller -> storage -> drivers.

drivers import nothing of ours outside drivers; storage imports no controller module and, of the
drivers, only the leaf modules that define values (no module that does I/O).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# driver modules that only define values, which storage may import
DRIVER_VALUE_MODULES = {"drivers", "drivers.inverter.types", "drivers.prices.types", "drivers.weather.types"}


def imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[module] = {n for n in names if n.split(".")[0] in ("controller", "storage", "drivers")}
    return found


def test_drivers_import_only_drivers() -> None:
    bad = {
        m: sorted(n for n in names if not n.startswith("drivers")) for m, names in imports("drivers").items()
    }
    assert not {m: n for m, n in bad.items() if n}


def test_storage_imports_no_controller_and_only_driver_values() -> None:
    problems = {}
    for module, names in imports("storage").items():
        wrong = sorted(
            n
            for n in names
            if n.startswith("controller") or (n.startswith("drivers") and n not in DRIVER_VALUE_MODULES)
        )
        if wrong:
            problems[module] = wrong
    assert not problems


def test_every_package_module_is_reached() -> None:
    # the test above would pass vacuously if the walk found nothing
    assert len(imports("controller")) > 10
    assert len(imports("storage")) > 5
    assert len(imports("drivers")) > 10
