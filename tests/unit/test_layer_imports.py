"""The core imports the standard library only.

The other layering rules are import-linter contracts (pyproject's ``[tool.importlinter]``, run
by ``make lint``); this one is not expressible there: it allows every standard module and
nothing else.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "clickstream" / "python"
PURE = ("clickstream.core",)


def imports() -> dict[str, set[str]]:
    """Every module of the layer and the modules it imports (at any level of its code)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((LAYER / "clickstream").rglob("*.py")):
        parts = path.relative_to(LAYER).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[module] = found
    return graph


def outside_stdlib(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] not in sys.stdlib_module_names}


def under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_core_is_pure_standard_library_and_imports_only_the_core() -> None:
    # GIVEN every module of clickstream.core
    graph = imports()
    core = {m: deps for m, deps in graph.items() if under(m, *PURE)}
    assert {"clickstream.core.events", "clickstream.core.window_counting"} <= set(core)
    # THEN each imports the standard library and clickstream.core only
    offending = {
        m: {d for d in outside_stdlib(deps) if not under(d, *PURE)} for m, deps in core.items()
    }
    assert {m: d for m, d in offending.items() if d} == {}
