"""The DAG of steps: dependency checks, cycles, topological order and selection."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from andon.errors import DagError, did_you_mean
from andon.steps import Step


@dataclass(frozen=True)
class Dag:
    steps: Mapping[str, Step]

    @staticmethod
    def build(steps: Iterable[Step]) -> Dag:
        by_name: dict[str, Step] = {}
        for s in steps:
            if s.name in by_name:
                other = by_name[s.name]
                raise DagError(
                    f"two steps are named {s.name!r}: {other.file} and {s.file}",
                    file=s.file,
                    step=s.name,
                    hint="step names are table names and must be unique; rename one file",
                )
            by_name[s.name] = s
        for s in by_name.values():
            for ref in s.refs:
                if ref.name == s.name:
                    raise DagError(
                        f"step {s.name!r} reads from itself",
                        file=s.file, line=ref.line, column=ref.column, step=s.name,
                        hint="use materialized: incremental to build on earlier output",
                    )
                if ref.name not in by_name:
                    hint = did_you_mean(ref.name, by_name)
                    raise DagError(
                        f"unknown table {ref.name!r}",
                        file=s.file,
                        line=ref.line,
                        column=ref.column,
                        step=s.name,
                        hint=hint or "tables are the names of steps and sources of this project",
                    )
        dag = Dag(by_name)
        dag.order  # noqa: B018 - raises on cycles
        return dag

    @cached_property
    def order(self) -> tuple[str, ...]:
        sorter = graphlib.TopologicalSorter({n: s.parents for n, s in self.steps.items()})
        try:
            return tuple(sorter.static_order())
        except graphlib.CycleError as e:
            # graphlib lists each member before the step that reads it: data flow order
            members: list[str] = list(e.args[1])[:-1]
            start = members.index(min(members))  # the same cycle reads the same every time
            members = members[start:] + members[:start]
            cycle = [*members, members[0]]
            # point at the first member's reference to the member before it
            reader = self.steps[cycle[0]]
            ref = next((r for r in reader.refs if r.name == members[-1]), None)
            raise DagError(
                "cycle in the DAG: " + " → ".join(cycle) + " (each step reads the one before it)",
                file=reader.file,
                line=ref.line if ref else None,
                column=ref.column if ref else None,
                step=reader.name,
                hint="a step cannot depend on its own output; break the cycle",
            ) from None

    @cached_property
    def children(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {n: [] for n in self.steps}
        for name in self.order:
            for p in self.steps[name].parents:
                out[p].append(name)
        return {k: tuple(v) for k, v in out.items()}

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.steps[name].parents)
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.steps[n].parents)
        return seen

    def descendants(self, name: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.children[name])
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.children[n])
        return seen

    def select(self, selectors: Sequence[str]) -> tuple[str, ...]:
        """Steps chosen by selectors, in DAG order; no selectors means every step.

        ``name``, ``+name`` (with ancestors), ``name+`` (with descendants), ``+name+``,
        ``tag:daily``, ``zone:formatted``, ``pipeline:flights``.
        """
        if not selectors:
            return self.order
        chosen: set[str] = set()
        for raw in selectors:
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            if not parts:
                raise DagError(
                    f"empty selection {raw!r}",
                    hint="name steps: NAME, +NAME, NAME+, tag:T, zone:Z, pipeline:P",
                )
            for sel in parts:
                chosen |= self._select_one(sel)
        return tuple(n for n in self.order if n in chosen)

    def _select_one(self, sel: str) -> set[str]:
        for prefix, attr in (("tag:", "tags"), ("zone:", "zone"), ("pipeline:", "pipeline")):
            if sel.startswith(prefix):
                value = sel[len(prefix):]
                found = {
                    n for n, s in self.steps.items()
                    if (value in s.config.tags if attr == "tags" else getattr(s, attr) == value)
                }
                if not found:
                    known: set[str] = set()
                    for s in self.steps.values():
                        known |= set(s.config.tags) if attr == "tags" else {getattr(s, attr)}
                    hint = did_you_mean(value, known)
                    raise DagError(
                        f"no step has {sel!r}",
                        hint=hint or f"known: {', '.join(sorted(known)) or 'none'}",
                    )
                return found
        if ":" in sel:
            prefix = sel.split(":", 1)[0]
            hint = did_you_mean(prefix, ("tag", "zone", "pipeline"))
            raise DagError(
                f"unknown selector {sel!r}",
                hint=(hint + " " if hint else "")
                + "selectors: NAME, +NAME, NAME+, tag:T, zone:Z, pipeline:P",
            )
        up, down = sel.startswith("+"), sel.endswith("+")
        name = sel.removeprefix("+").removesuffix("+")
        if name not in self.steps:
            hint = did_you_mean(name, self.steps)
            raise DagError(
                f"no step named {name!r}",
                hint=hint or "list the steps with: andon plan",
            )
        out = {name}
        if up:
            out |= self.ancestors(name)
        if down:
            out |= self.descendants(name)
        return out
