"""durably's layers (README, "Package layout"): imports point downward only, and no two
modules import each other, directly or around a loop, even under ``TYPE_CHECKING``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent

CYCLE_EXEMPTIONS: dict[tuple[str, str], str] = {
    # Known imports that close a loop, each naming its proposed fix; empty: keep it so (an
    # exemption that matches no import fails test_cycle_exemptions_are_current).
}


def test_layer_contract() -> None:
    """import-linter checks the `layers` contract in pyproject.toml's [tool.importlinter]."""
    script = (
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr


def import_graph() -> dict[str, set[str]]:
    """Each module of durably and the modules of durably it imports (lazy and type-only too)."""
    graph = grimp.build_graph("durably", cache_dir=None)
    return {
        module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycles_finds_a_loop() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    edges = import_graph()
    for importer, imported in CYCLE_EXEMPTIONS:
        edges[importer].discard(imported)
    loops = cycles(edges)
    described = [
        " / ".join(f"{a} -> {b}" for a in loop for b in sorted(edges[a]) if b in loop)
        for loop in loops
    ]
    assert not loops, "import cycles: " + "; ".join(described)


def test_cycle_exemptions_are_current() -> None:
    edges = import_graph()
    stale = [pair for pair in CYCLE_EXEMPTIONS if pair[1] not in edges[pair[0]]]
    assert not stale, f"exempted imports that are gone (remove them): {stale}"
