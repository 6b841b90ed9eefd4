"""A layered layout of the DAG of steps for the pipeline page, computed on the server so the
page is one SVG and no graph library runs in the browser.

Layers are longest paths from the sources; within a layer, steps are ordered by the mean
position of their parents (the barycenter heuristic, a few sweeps down and up), which keeps
most edges short and uncrossed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NODE_W = 168
NODE_H = 30
GAP_X = 64
GAP_Y = 14
SWEEPS = 4


@dataclass(frozen=True)
class Node:
    name: str
    layer: int
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    parent: str
    child: str
    path: str  # an SVG path: a cubic curve from the parent's right side to the child's left


@dataclass(frozen=True)
class Layout:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: float
    height: float


def layers(parents: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Step → its layer: 0 for a step without parents (in the graph), else one past its
    deepest parent. ``parents`` must be acyclic (the project's DAG is)."""
    layer: dict[str, int] = {}

    def depth(name: str) -> int:
        stack = [name]
        while stack:
            current = stack[-1]
            pending = [p for p in parents.get(current, ()) if p in parents and p not in layer]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            layer[current] = 1 + max((layer[p] for p in parents.get(current, ())
                                      if p in parents), default=-1)
        return layer[name]

    for name in parents:
        if name not in layer:
            depth(name)
    return layer


def _barycenter(neighbours: Sequence[str], rank: Mapping[str, int], own: int) -> float:
    """The mean rank of a step's neighbours in the layer beside it (its own rank if none)."""
    near = [rank[p] for p in neighbours if p in rank]
    return sum(near) / len(near) if near else own


def layout(parents: Mapping[str, Sequence[str]]) -> Layout:
    """Positions of every step of ``parents`` (step → its parents; parents outside the
    mapping are ignored, as when the page shows a selection)."""
    layer = layers(parents)
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for name in sorted(layer):
        columns[layer[name]].append(name)
    children: dict[str, list[str]] = {n: [] for n in parents}
    for name, ps in parents.items():
        for p in ps:
            if p in children:
                children[p].append(name)
    rank = {name: i for column in columns for i, name in enumerate(column)}
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        order = columns[1:] if down else list(reversed(columns[:-1]))
        near = parents if down else children
        for column in order:
            column.sort(key=lambda name: _barycenter(near[name], rank, rank[name]))
            for i, name in enumerate(column):
                rank[name] = i
    tallest = max((len(c) for c in columns), default=0)
    height = tallest * (NODE_H + GAP_Y) + GAP_Y
    nodes: dict[str, Node] = {}
    for i, column in enumerate(columns):
        top = (height - len(column) * (NODE_H + GAP_Y) + GAP_Y) / 2  # centre each layer
        for j, name in enumerate(column):
            nodes[name] = Node(name, i, GAP_X / 2 + i * (NODE_W + GAP_X),
                               top + j * (NODE_H + GAP_Y))
    edges = []
    for name in sorted(parents):
        for p in parents[name]:
            if p not in nodes:
                continue
            a, b = nodes[p], nodes[name]
            x1, y1 = a.x + NODE_W, a.y + NODE_H / 2
            x2, y2 = b.x, b.y + NODE_H / 2
            mid = (x1 + x2) / 2
            edges.append(Edge(p, name, f"M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} "
                                       f"{mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"))
    width = len(columns) * (NODE_W + GAP_X)
    return Layout(tuple(nodes.values()), tuple(edges), width, max(height, NODE_H + 2 * GAP_Y))


__all__ = ["NODE_H", "NODE_W", "Edge", "Layout", "Node", "layers", "layout"]
