"""No import cycles in any room: every module is parsed (ast, never imported), function-level and
TYPE_CHECKING imports included, and the graph of imports between bdv2's own modules must be acyclic.

An edge is what a statement names: ``from .x import y`` depends on ``x`` (and on ``x.y`` when that is a
submodule); ``from . import a`` depends on the submodule ``a`` only. Importing a submodule also runs its
package's ``__init__``; that implicit edge is not counted, or every package face would form a cycle with the
modules it re-exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {"doctor": "bdv2.doctor", "trainer": "bdv2.trainer", "data_tools": "bdv2.data_tools", "bdv2": "bdv2"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__) for every module of every room."""
    out: dict[str, tuple[Path, bool]] = {}
    for folder, package in ROOMS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = (path, path.name == "__init__.py")
    return out


def _targets(name: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
    return subs if len(subs) == len(node.names) else [target, *subs]


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= {t for t in _targets(name, is_package, node, known) if t in known and t != name}
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle_and_accepts_a_chain() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    assert "bdv2.doctor.checks.registry" in graph["bdv2.doctor.checks.rules"]  # from .registry import ...
    assert "bdv2.doctor.probe.snapshot" in graph["bdv2.doctor.checks._common"]  # from ..probe.snapshot import ...
    assert "bdv2.doctor" in graph["bdv2.trainer.launch"]  # inside a function: from bdv2.doctor import examine


def _room(module: str) -> str:
    return next((room for room, package in ROOMS.items() if room != "bdv2" and module.startswith(package)), "bdv2")


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_no_import_cycles(room: str) -> None:
    inside = [c for c in cycles(import_graph()) if any(_room(m) == room for m in c)]
    assert not inside, "import cycles: " + "; ".join(" <-> ".join(c) for c in inside)


def test_the_ground_floor_imports_no_room() -> None:
    """``bdv2/`` is shared by every room, so it may import none of them, function-level imports included: what it
    needs from a room (TensorFlow's distribution, say) the calling room passes in. (``bdv2/cli.py`` names each
    room's command module as a string for importlib, loaded on first use: wiring, not an import statement.)"""
    graph = import_graph()
    ground = [m for m in graph if _room(m) == "bdv2"]
    assert "bdv2.console" in ground and "bdv2.cli" in ground
    reached = {m: sorted(d for d in graph[m] if _room(d) != "bdv2") for m in ground}
    assert not {m: d for m, d in reached.items() if d}, reached
