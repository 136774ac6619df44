"""The import structure of the project (issue 16): no cycles, imports one way, modules of
module size.

Every module of ``benchmark``, ``methods`` and ``trajattn`` is parsed (``ast``, never imported),
and each ``import`` / ``from ... import`` naming a project module becomes an edge of the import
graph, module-level or inside a function alike (a function-level import is a dependency that
only shows up late). Imports under ``if TYPE_CHECKING:`` never run, so they are left out of the
cycle check but still count for the layer order.

Layers, lowest first (a module may import its own layer and any below it, never above):
``trajattn`` (imports nothing from the harness) < ``benchmark.io`` < ``benchmark.cameras`` <
``benchmark.config`` < {``benchmark.metrics``, ``benchmark.sfm``} < ``benchmark.sources`` <
``methods`` (adapters: the harness up to sources) < ``benchmark.stages`` <
``benchmark.reporting`` < ``benchmark.cli``. A new package gets its rank in :data:`LAYERS`.

A function-level project import is allowed only for a heavy dependency and says so in a comment
on its line or the line above; everything else is imported at module level.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Packages whose modules are walked.
PACKAGES = ("benchmark", "methods", "trajattn")
#: Folders whose modules must stay at module size (the packages and the benchmark scripts).
SIZED = (*PACKAGES, "bench")
#: Most lines a module may have (issue 16: "none over ~400 lines").
MAX_LINES = 400

#: Layer rank of each module prefix (longest prefix wins); lower never imports higher.
LAYERS = {
    "trajattn": 0,
    "benchmark": 1,  # the package itself (empty __init__)
    "benchmark.io": 1,
    "benchmark.cameras": 2,
    "benchmark.config": 3,
    "benchmark.metrics": 4,
    "benchmark.sfm": 4,
    "benchmark.sources": 5,
    "methods": 6,
    "benchmark.stages": 7,
    "benchmark.reporting": 8,
    "benchmark.cli": 9,
}

#: Known exceptions, each named (none today: keep it that way; a new entry needs a reason in a
#: comment beside it). Keys: ("size", module), ("layer", importer,
#: imported), ("cycle", module) for any module of a cycle, ("lazy", module) for a module with
#: function-level project imports that carry no comment.
KNOWN_EXCEPTIONS: frozenset[tuple[str, ...]] = frozenset({
})  # fmt: skip


@dataclass(frozen=True)
class Edge:
    """One project import: ``source`` imports ``target`` at ``line``."""

    source: str
    target: str
    line: int
    function_level: bool
    type_checking: bool


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of :data:`PACKAGES`."""
    out = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            parts = file.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = file
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import node with (inside a function, under ``if TYPE_CHECKING``)."""

    def visit(nodes: Iterable[ast.AST], in_function: bool, type_checking: bool) -> Iterator:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node, in_function, type_checking
                continue
            func = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from visit(node.body, func, True)
                yield from visit(node.orelse, func, type_checking)
                continue
            yield from visit(ast.iter_child_nodes(node), func, type_checking)

    yield from visit([tree], False, False)


def _project_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that ``name`` is or lies in (None: not a project module)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in modules:
            return candidate
    return None


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    """All project imports of all modules (``from pkg import sub`` points at ``pkg.sub`` when
    that is a module, else at ``pkg``)."""
    edges = []
    for source, file in modules.items():
        tree = ast.parse(file.read_text(), filename=str(file))
        package = source if file.name == "__init__.py" else source.rpartition(".")[0]
        for node, in_function, type_checking in _imports(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{alias.name}" for alias in node.names]
                names = [n if n in modules else base for n in names]
            for name in dict.fromkeys(names):
                target = _project_module(name, modules)
                if target is not None and target != source:
                    edges.append(Edge(source, target, node.lineno, in_function, type_checking))
    return edges


def layer(module: str) -> int:
    """Layer rank of a module (its longest prefix in :data:`LAYERS`)."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in LAYERS:
            return LAYERS[prefix]
    raise KeyError(f"{module}: no layer in LAYERS; add its package there")


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
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
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return module_files()


@pytest.fixture(scope="module")
def edges(modules: dict[str, Path]) -> list[Edge]:
    return import_edges(modules)


# ---- the checker itself, on hand-made graphs ------------------------------------------------


def _edge(a: str, b: str) -> Edge:
    return Edge(a, b, 1, False, False)


def test_cycle_finder_on_known_graphs():
    assert cycles([_edge("a", "b"), _edge("b", "c")]) == []
    assert cycles([_edge("a", "b"), _edge("b", "a"), _edge("b", "c")]) == [["a", "b"]]
    ring = [_edge("a", "b"), _edge("b", "c"), _edge("c", "a"), _edge("x", "y"), _edge("y", "x")]
    assert sorted(cycles(ring)) == [["a", "b", "c"], ["x", "y"]]


def test_edges_see_function_level_relative_and_type_checking_imports(tmp_path):
    modules = {
        "pkg": tmp_path / "pkg" / "__init__.py",
        "pkg.a": tmp_path / "pkg" / "a.py",
        "pkg.b": tmp_path / "pkg" / "b.py",
        "pkg.c": tmp_path / "pkg" / "c.py",
    }
    for file in modules.values():
        file.parent.mkdir(exist_ok=True)
        file.write_text("")
    modules["pkg.a"].write_text(
        "from typing import TYPE_CHECKING\nimport numpy\nfrom . import b\n"
        "if TYPE_CHECKING:\n    from pkg.c import X\n"
        "def f():\n    from pkg import c\n"
    )
    got = {(e.source, e.target, e.function_level, e.type_checking) for e in import_edges(modules)}
    assert got == {
        ("pkg.a", "pkg.b", False, False),
        ("pkg.a", "pkg.c", False, True),
        ("pkg.a", "pkg.c", True, False),
    }


def test_every_module_has_a_layer(modules):
    for name in modules:
        layer(name)  # raises for a package LAYERS does not know


# ---- the project -----------------------------------------------------------------------------


def test_no_import_cycles(edges):
    runtime = [e for e in edges if not e.type_checking]
    found = [c for c in cycles(runtime) if not all(("cycle", m) in KNOWN_EXCEPTIONS for m in c)]
    lines = []
    for component in found:
        members = set(component)
        inner = [e for e in runtime if e.source in members and e.target in members]
        lines.append(
            " <-> ".join(component)
            + ": "
            + "; ".join(
                f"{e.source}:{e.line} -> {e.target}{' (in a function)' if e.function_level else ''}"
                for e in inner
            )
        )
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_trajattn_imports_nothing_from_the_harness(edges):
    wrong = [e for e in edges if e.source.split(".")[0] == "trajattn"
             and e.target.split(".")[0] in ("benchmark", "methods")]  # fmt: skip
    assert not wrong, "\n".join(f"{e.source}:{e.line} imports {e.target}" for e in wrong)


def test_imports_go_one_way_between_layers(edges):
    wrong = [
        e
        for e in edges
        if layer(e.source) < layer(e.target)
        and ("layer", e.source, e.target) not in KNOWN_EXCEPTIONS
    ]
    assert not wrong, "wrong-way imports (lower layer importing a higher one):\n" + "\n".join(
        f"{e.source}:{e.line} (layer {layer(e.source)}) imports {e.target} "
        f"(layer {layer(e.target)})"
        for e in wrong
    )


def test_modules_are_at_most_max_lines():
    too_long = {}
    for folder in SIZED:
        for file in sorted((ROOT / folder).rglob("*.py")):
            name = ".".join(file.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            count = len(file.read_text().splitlines())
            if count > MAX_LINES and ("size", name) not in KNOWN_EXCEPTIONS:
                too_long[name] = count
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def _uncommented_lazy_imports(modules: dict[str, Path], edges: list[Edge]) -> dict[str, list]:
    """Function-level project imports with no comment on their line or the line above, by
    importing module (a lazy import is for a heavy dependency and says so)."""
    out: dict[str, list[str]] = {}
    for e in edges:
        if not e.function_level or e.type_checking:
            continue
        lines = modules[e.source].read_text().splitlines()
        here, above = lines[e.line - 1], lines[e.line - 2] if e.line > 1 else ""
        if "#" not in here and not above.strip().startswith("#"):
            out.setdefault(e.source, []).append(f"{e.line}: {e.target}")
    return out


def test_function_level_project_imports_say_why(modules, edges):
    bare = {m: v for m, v in _uncommented_lazy_imports(modules, edges).items()
            if ("lazy", m) not in KNOWN_EXCEPTIONS}  # fmt: skip
    assert not bare, (
        "function-level project imports without a comment saying why (move them to module "
        f"level unless they load something heavy): {bare}"
    )


def test_known_exceptions_are_still_needed(modules, edges):
    """An exception that no longer applies must be deleted, so the list only shrinks."""
    runtime_cycles = {m for c in cycles([e for e in edges if not e.type_checking]) for m in c}
    wrong_way = {("layer", e.source, e.target) for e in edges if layer(e.source) < layer(e.target)}
    lazy = _uncommented_lazy_imports(modules, edges)
    stale = []
    for entry in KNOWN_EXCEPTIONS:
        kind = entry[0]
        if kind == "size":
            file = modules.get(entry[1])
            if file is None or len(file.read_text().splitlines()) <= MAX_LINES:
                stale.append(entry)
        elif kind == "layer" and entry not in wrong_way:
            stale.append(entry)
        elif kind == "cycle" and entry[1] not in runtime_cycles:
            stale.append(entry)
        elif kind == "lazy" and entry[1] not in lazy:
            stale.append(entry)
    assert not stale, f"known exceptions that no longer apply (delete them): {sorted(stale)}"
