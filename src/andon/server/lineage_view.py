"""A table's column lineage drawn as SVG on its page: the columns of the tables it reads on
the left, its own columns in the middle, the columns that read them on the right, one edge
per direct dependency (its kind in the edge's class and title)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from andon.lineage import Graph

BOX_W = 230  # a column's box
ROW_H = 20  # a column's row
HEAD_H = 24  # a table's title row
GAP = 14  # between two tables of one side
SPAN = 140  # between two sides: room for the edges


@dataclass
class View:
    width: int = 0
    height: int = 0
    tables: list[dict[str, Any]] = field(default_factory=list)  # x, y, h, name, side
    columns: list[dict[str, Any]] = field(default_factory=list)  # x, y, table, name, side
    edges: list[dict[str, Any]] = field(default_factory=list)  # x1, y1, x2, y2, kind, title


def view(graph: Graph, table: str) -> View:
    """The layout of ``table``'s direct column lineage, up and down one step."""
    lin = graph.steps.get(table)
    own = list(lin.columns) if lin else []
    ups: dict[str, list[str]] = {}
    up_edges = []
    for e in (lin.edges if lin else ()):
        if e.indirect or e.column == "*" or e.output == "*":
            continue
        ups.setdefault(e.table, [])
        if e.column not in ups[e.table]:
            ups[e.table].append(e.column)
        up_edges.append(e)
    downs: dict[str, list[str]] = {}
    down_edges = []
    for reader in graph.steps.values():
        for e in reader.edges:
            if e.table != table or e.indirect or e.column == "*" or e.output == "*":
                continue
            downs.setdefault(reader.step, [])
            if e.output not in downs[reader.step]:
                downs[reader.step].append(e.output)
            down_edges.append((reader.step, e))
    out = View()
    spots: dict[tuple[str, str, str], tuple[int, int]] = {}  # (side, table, col) → x, y

    def side(name: str, groups: dict[str, list[str]], x: int) -> int:
        y = 0
        for t, cols in groups.items():
            h = HEAD_H + ROW_H * len(cols)
            out.tables.append({"x": x, "y": y, "h": h, "name": t, "side": name})
            for i, c in enumerate(cols):
                cy = y + HEAD_H + ROW_H * i
                out.columns.append({"x": x, "y": cy, "table": t, "name": c, "side": name})
                spots[(name, t, c)] = (x, cy + ROW_H // 2)
            y += h + GAP
        return y

    mid = BOX_W + SPAN if ups else 0
    heights = [side("up", ups, 0), side("self", {table: own}, mid)]
    right = mid + BOX_W + SPAN
    heights.append(side("down", downs, right))
    for e in up_edges:
        a, b = spots.get(("up", e.table, e.column)), spots.get(("self", table, e.output))
        if a and b:
            out.edges.append(_edge(a, b, e.kind, e.masking,
                                   f"{e.table}.{e.column} → {table}.{e.output}"))
    for child, e in down_edges:
        a, b = spots.get(("self", table, e.column)), spots.get(("down", child, e.output))
        if a and b:
            out.edges.append(_edge(a, b, e.kind, e.masking,
                                   f"{table}.{e.column} → {child}.{e.output}"))
    out.width = (right if downs else mid) + BOX_W
    out.height = max(heights) - GAP if max(heights) else HEAD_H
    return out


def _edge(a: tuple[int, int], b: tuple[int, int], kind: str, masking: bool,
          title: str) -> dict[str, Any]:
    return {"x1": a[0] + BOX_W, "y1": a[1], "x2": b[0], "y2": b[1], "kind": kind,
            "masking": masking, "title": f"{title} ({kind}{', masked' if masking else ''})"}


__all__ = ["BOX_W", "ROW_H", "View", "view"]
