"""The structure of ``src/andon``: no import circle (imports inside functions count; those
under ``if TYPE_CHECKING:`` do not), and no database driver outside ``andon.engines`` and
``andon.store``."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "andon").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    """(module or module.name imported, line), skipping TYPE_CHECKING blocks."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.extend((f"{child.module}.{a.name}", child.lineno) for a in child.names)
                found.append((child.module, child.lineno))
            elif isinstance(child, ast.Import):
                found.extend((a.name, child.lineno) for a in child.names)
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, dict[str, int]]:
    mods = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        edges: dict[str, int] = {}
        for target, line in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            # `from andon.x import y`: y is a module of its own, or a name of andon.x
            if target in mods and target != name and not name.startswith(target + "."):
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def _circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    graph = _graph()
    circles = _circles(graph)
    detail = "\n".join(
        "circle: " + ", ".join(c) + "\n" + "\n".join(
            f"  {a} -> {b} (line {graph[a][b]})" for a in c for b in graph[a] if b in c)
        for c in circles)
    assert not circles, detail


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == [
        ["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\n"
                     "def f():\n    from andon.y import z\n")
    assert ("andon.y", 5) in _imports(tree) and all(t != "x" for t, _ in _imports(tree))


def test_drivers_only_in_engines_and_store() -> None:
    # an engine's driver lives in its module of andon.engines
    drivers = {"duckdb": ("andon.engines",), "sqlalchemy": ("andon.store",),
               "psycopg": ("andon.store", "andon.engines.postgresql", "andon.engines.dbread"),
               "pymysql": ("andon.engines.dbread",)}
    wrong = []
    for name, path in _modules().items():
        for target, line in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            root = target.split(".")[0]
            homes = drivers.get(root)
            if homes is not None and not any(name == h or name.startswith(h + ".")
                                             for h in homes):
                wrong.append(f"{name}:{line} imports {target}")
    assert not wrong, "\n".join(wrong)
