"""The import graph keeps the design's direction: controller -> storage -> drivers.

drivers import nothing of ours outside drivers; storage imports no controller module and, of the
drivers, only the leaf modules that define values (no module that does I/O).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# driver modules that only define values, which storage may import
DRIVER_VALUE_MODULES = {
    "drivers",
    "drivers.backoff",
    "drivers.days",
    "drivers.inverter.types",
    "drivers.prices.types",
    "drivers.weather.types",
}


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


def test_no_import_cycle_between_modules() -> None:
    """No module reaches itself through imports, type-checking imports included (import-linter's
    layer contracts in pyproject.toml keep the rooms in order; this keeps each room acyclic)."""
    import grimp  # noqa: PLC0415 - installed with import-linter, a test dependency

    graph = grimp.build_graph("controller", "storage", "drivers", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(root: str) -> None:  # Tarjan's strongly connected components, iteratively
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert len(edges) > 50
    assert not cycles
