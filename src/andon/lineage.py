"""Column lineage: which input columns each output column of a step comes from, and how.

SQL steps are traced with sqlglot over the real schemas of their input tables (so ``SELECT *``
expands): the query is qualified once, then every output column is followed through CTEs
and subqueries to the base tables. Each edge has the transformation kind of the OpenLineage
column-lineage facet: direct (``identity``, ``transformation``, ``aggregation``) or indirect
(``join``, ``filter``, ``group_by``, ``sort``, ``window``, ``conditional``), an indirect one
standing for the whole output (column ``*``). SQL that sqlglot cannot trace, or an input
whose schema is unknown, falls back to table level with a note: never a failed run. Python
steps declare theirs (``lineage: {output: [table.column, ...]}``) or stay at table level.

Computed per step fingerprint (same code, same inputs: same lineage) and kept in the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, NotFound

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope
    from sqlglot.schema import MappingSchema

    from andon.plan import Plan
    from andon.project import Project
    from andon.steps import Step
    from andon.store import StoreReader

DIRECT = ("identity", "transformation", "aggregation")
INDIRECT = ("join", "filter", "group_by", "sort", "window", "conditional")
ALL = "*"  # an edge to or from the whole table

Schema = dict[str, str]  # column → type, in order


@dataclass(frozen=True)
class Edge:
    """``output`` (a column of the step, or ``*``) comes from ``table.column`` by ``kind``."""

    output: str
    table: str
    column: str
    kind: str
    masking: bool = False  # hashed or masked on the way (sha256, md5, hash, mask...)

    @property
    def indirect(self) -> bool:
        return self.kind in INDIRECT

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"output": self.output, "table": self.table,
                               "column": self.column, "kind": self.kind}
        if self.masking:
            out["masking"] = True
        return out


@dataclass(frozen=True)
class StepLineage:
    """A step's column lineage; ``level`` ``table`` when it could not be traced (``note``)."""

    step: str
    level: str  # column|table
    columns: tuple[str, ...]  # its output columns, in order (empty when not known)
    edges: tuple[Edge, ...]
    note: str = ""
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "fingerprint": self.fingerprint, "level": self.level,
                "columns": list(self.columns), "note": self.note,
                "edges": [e.to_dict() for e in self.edges]}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> StepLineage:
        return StepLineage(
            step=str(d["step"]), level=str(d["level"]),
            columns=tuple(str(c) for c in d.get("columns") or ()),
            edges=tuple(Edge(str(e["output"]), str(e["table"]), str(e["column"]),
                             str(e["kind"]), bool(e.get("masking")))
                        for e in d.get("edges") or ()),
            note=str(d.get("note") or ""), fingerprint=str(d.get("fingerprint") or ""))

    def inputs_of(self, column: str) -> list[Edge]:
        """The edges into one output column: its own and those of the whole table."""
        return [e for e in self.edges if e.output in (column, ALL)]


def table_level(step: Step, note: str, columns: Iterable[str] = ()) -> StepLineage:
    return StepLineage(step.name, "table", tuple(columns),
                       tuple(Edge(ALL, p, ALL, "table") for p in step.parents), note)


# SQL --------------------------------------------------------------------------------------

class _Untraceable(Exception):
    pass


@dataclass
class _Tracer:
    """Follows columns of one qualified query through its scopes to base tables."""

    tables: set[str]
    root: Scope
    memo: dict[tuple[int, str], list[tuple[str, str, str]]] = field(default_factory=dict)
    scopes: dict[int, Scope] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sc in self.root.traverse():
            self.scopes[id(sc.expression)] = sc

    def scope_of(self, col: exp.Column, scope: Scope) -> Scope:
        """The scope a column is read in: a subquery's, when it sits in one."""
        from sqlglot import exp

        select = col.find_ancestor(exp.Select, exp.SetOperation)
        return self.scopes.get(id(select), scope) if select is not None else scope

    def column(self, scope: Scope, col: exp.Column) -> list[tuple[str, str, str]]:
        """(table, column, kind) of the base columns behind ``col`` read in ``scope``."""
        from sqlglot import exp

        source = scope.sources.get(col.table)
        if isinstance(source, exp.Table):
            if source.name in self.tables:
                return [(source.name, col.name, "identity")]
            return []  # a table function (read_parquet...), not an andon table
        if source is None:
            expr = scope.expression
            names = [sel.alias_or_name for sel in expr.selects] if isinstance(
                expr, exp.Select) else []
            if not col.table and col.name in names:  # ORDER BY an output column
                return self.output(scope, col.name)
            if not col.table:  # a name sqlglot could not resolve
                raise _Untraceable(f"column {col.name!r} is not found in any input")
            raise _Untraceable(f"{col.table}.{col.name} cannot be resolved")
        return self.output(source, col.name)

    def output(self, scope: Scope, name: str) -> list[tuple[str, str, str]]:
        """The base columns behind output ``name`` of ``scope`` (a CTE, a subquery, a union)."""

        key = (id(scope), name)
        if key in self.memo:
            return self.memo[key]
        from sqlglot import exp

        self.memo[key] = []  # a recursive CTE ends here
        expr = scope.expression
        names = [sel.alias_or_name for sel in expr.selects] if isinstance(
            expr, exp.Query) else []
        out = self.at(scope, names.index(name)) if name in names else []
        self.memo[key] = out
        return out

    def at(self, scope: Scope, index: int) -> list[tuple[str, str, str]]:
        """The base columns behind the ``index``-th output of ``scope`` (set operations
        match their parts by position)."""
        from sqlglot import exp

        expr = scope.expression
        if isinstance(expr, exp.SetOperation):
            out: list[tuple[str, str, str]] = []
            for part in scope.set_operation_scopes:
                out += self.at(part, index)
            return out
        if not isinstance(expr, exp.Select):
            raise _Untraceable(f"{type(expr).__name__} is not traced")
        selects = expr.selects
        return self.projection(scope, selects[index]) if index < len(selects) else []

    def projection(self, scope: Scope, sel: exp.Expr) -> list[tuple[str, str, str]]:
        from sqlglot import exp

        inner = sel.this if isinstance(sel, exp.Alias) else sel
        if isinstance(inner, exp.Column):
            return self.column(scope, inner)
        aggregate = inner.find(exp.AggFunc) is not None
        out: list[tuple[str, str, str]] = []
        for col in inner.find_all(exp.Column):
            kind = _context_kind(col, inner)
            masked = _masked(col, inner)
            for table, column, below in self.column(self.scope_of(col, scope), col):
                if kind is None:
                    kind_here = ("aggregation" if aggregate or below.startswith("aggregation")
                                 else "transformation")
                else:
                    kind_here = kind
                if masked or below.endswith(MASKED):
                    kind_here += MASKED
                out.append((table, column, kind_here))
        return out

    def indirect(self, scope: Scope) -> list[tuple[str, str, str]]:
        """Columns that decide which rows come out, in every scope of the query."""
        from sqlglot import exp

        parts: tuple[tuple[str, str], ...] = (("joins", "join"), ("where", "filter"),
                                              ("group", "group_by"), ("having", "filter"),
                                              ("qualify", "filter"), ("order", "sort"))
        out: list[tuple[str, str, str]] = []
        for sc in scope.traverse():
            expr = sc.expression
            if not isinstance(expr, exp.Select):
                continue
            for arg, kind in parts:
                value = expr.args.get(arg)
                nodes = value if isinstance(value, list) else [value] if value else []
                for node in nodes:
                    target = node.args.get("on") if arg == "joins" else node
                    if target is None:
                        continue
                    for col in target.find_all(exp.Column):
                        if self.scope_of(col, sc) is not sc:
                            continue  # a subquery's column: its own scope reports it
                        for table, column, _ in self.column(sc, col):
                            out.append((table, column, kind))
        return out


MASKED = "+masked"  # a kind's suffix inside the tracer: the value was hashed or masked
# functions whose result does not reveal their argument (DuckDB's names; sqlglot parses
# sha256/sha1/md5 into SHA2/SHA/MD5 and keeps the others as anonymous functions)
MASKING_FUNCTIONS = frozenset({"hash", "md5_number", "md5_number_upper", "md5_number_lower",
                               "mask", "sha512", "xxhash", "redact", "anonymize"})


def _masked(col: exp.Column, top: exp.Expr) -> bool:
    """Whether ``col`` reaches ``top`` only through a hash or masking function."""
    from sqlglot import exp

    node: exp.Expr | None = col
    while node is not None and node is not top:
        node = node.parent
        if isinstance(node, (exp.MD5, exp.SHA, exp.SHA2, exp.MD5Digest)):
            return True
        if isinstance(node, exp.Anonymous) and node.name.lower() in MASKING_FUNCTIONS:
            return True
    return False


def _context_kind(col: exp.Column, top: exp.Expr) -> str | None:
    """``window`` or ``conditional`` when the column only partitions, orders or decides."""
    from sqlglot import exp

    node: exp.Expr | None = col
    while node is not None and node is not top:
        parent = node.parent
        if isinstance(parent, exp.Window) and node.arg_key in ("partition_by", "order"):
            return "window"
        if isinstance(parent, exp.If) and node.arg_key == "this":
            return "conditional"
        if isinstance(parent, exp.Case) and node.arg_key == "this":
            return "conditional"
        node = parent
    return None


def sql_lineage(step: Step, schemas: Mapping[str, Schema],
                mapping: MappingSchema | None = None) -> StepLineage:
    """Trace a SQL step over its inputs' schemas; table level with a note when it cannot."""
    return trace_sql(step.name, step.sql, step.parents, schemas, mapping,
                     masks=step.config.masks)


def trace_sql(name: str, sql: str, parents: tuple[str, ...], schemas: Mapping[str, Schema],
              mapping: MappingSchema | None = None, *, masks: Iterable[str] = ()
              ) -> StepLineage:
    """Trace one query over the schemas of the tables it may read (``parents``)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
    from sqlglot.optimizer.qualify_columns import qualify_columns
    from sqlglot.optimizer.qualify_tables import qualify_tables
    from sqlglot.optimizer.scope import build_scope
    from sqlglot.schema import MappingSchema

    masked = set(masks)

    def fallback(note: str) -> StepLineage:
        return StepLineage(name, "table", (), tuple(Edge(ALL, p, ALL, "table")
                                                    for p in parents), note)

    missing = [p for p in parents if p not in schemas]
    if missing:
        return fallback("the schema of " + ", ".join(missing) + " is not known yet "
                           "(it has not been built): column lineage follows its first build")
    if mapping is None:
        mapping = MappingSchema({p: dict(schemas[p]) or {"_": "UNKNOWN"}
                                 for p in parents}, dialect="duckdb", normalize=False)
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
        if tree.find(exp.Columns) is not None:
            raise _Untraceable("DuckDB's COLUMNS(...) expression is not traced")
        # qualify's passes that lineage needs (names as DuckDB folds them, tables, columns
        # and stars); its quoting and validation passes are left out: a third of its time
        tree = normalize_identifiers(tree, dialect="duckdb")
        tree = qualify_tables(tree, dialect="duckdb")
        tree = qualify_columns(tree, mapping, dialect="duckdb")
        scope = build_scope(tree)
        if scope is None:
            raise _Untraceable("it is not a query")
        tracer = _Tracer(set(parents), scope)
        columns: list[str] = []
        edges: dict[Edge, None] = {}
        if not isinstance(scope.expression, exp.Query):
            raise _Untraceable("it is not a query")
        for sel in scope.expression.selects:
            out = sel.alias_or_name
            if out == "*":
                raise _Untraceable("SELECT * could not be expanded")
            columns.append(out)
            declared = out in masked
            for table, column, kind in tracer.output(scope, out):
                plain = kind.removesuffix(MASKED)
                edges[Edge(out, table, column, plain, declared or plain != kind)] = None
        for table, column, kind in tracer.indirect(scope):
            edges[Edge(ALL, table, column, kind)] = None
    except (SqlglotError, _Untraceable, RecursionError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return fallback(f"column lineage could not be traced ({first}): table level only")
    return StepLineage(name, "column", tuple(columns), tuple(edges))


def declared_lineage(step: Step) -> StepLineage:
    """A Python step's ``lineage:`` mapping (output → [table.column]); table level without."""
    declared = step.config.lineage
    if not declared:
        return table_level(step, "a Python step: declare `lineage` in @andon.step for "
                           "column lineage")
    edges: list[Edge] = []
    for output, inputs in declared.items():
        for ref in inputs:
            table, sep, column = ref.partition(".")
            if not sep or table not in step.parents:
                raise AndonError(
                    f"step {step.name}: lineage of {output!r} names {ref!r}",
                    hint="name an input of the step as table.column: "
                         + ", ".join(f"{p}.COLUMN" for p in step.parents))
            edges.append(Edge(output, table, column, "transformation",
                              output in step.config.masks))
    return StepLineage(step.name, "column", tuple(declared), tuple(edges))


def step_lineage(step: Step, schemas: Mapping[str, Schema]) -> StepLineage:
    if step.kind == "sql":
        return sql_lineage(step, schemas)
    if step.function is not None or step.kind == "python":
        try:
            return declared_lineage(step)
        except AndonError as e:  # a wrong declaration: said in the note, the rest traced
            return table_level(step, f"{e.message} ({e.hint})")
    return StepLineage(step.name, "column", tuple(schemas.get(step.name, {})), ())  # a source


# a project --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Graph:
    """Every step's lineage; walks columns up and down."""

    steps: dict[str, StepLineage]

    def columns_of(self, table: str) -> tuple[str, ...]:
        s = self.steps.get(table)
        return s.columns if s else ()

    def upstream(self, table: str, column: str) -> list[dict[str, Any]]:
        """Every column ``table.column`` comes from, with the step and kind of each edge."""
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        stack = [(table, column, 0)]
        while stack:
            t, c, depth = stack.pop()
            lin = self.steps.get(t)
            if lin is None:
                continue
            for e in lin.inputs_of(c) if c != ALL else lin.edges:
                out.append({"table": e.table, "column": e.column, "kind": e.kind,
                            "via": t, "into": c if e.output == ALL else e.output,
                            "depth": depth + 1})
                if (e.table, e.column) not in seen and not e.indirect:
                    seen.add((e.table, e.column))
                    stack.append((e.table, e.column, depth + 1))
        return out

    def downstream(self, table: str, column: str) -> list[dict[str, Any]]:
        """Every column that ``table.column`` flows into (directly or by deciding rows)."""
        readers: dict[str, list[StepLineage]] = {}
        for lin in self.steps.values():
            for parent in {e.table for e in lin.edges}:
                readers.setdefault(parent, []).append(lin)
        out: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = {(table, column)}
        stack = [(table, column, 0)]
        while stack:
            t, c, depth = stack.pop()
            for lin in readers.get(t, ()):
                hits = [e for e in lin.edges if e.table == t and e.column in (c, ALL)]
                targets: dict[str, str] = {}
                for e in hits:
                    if e.output == ALL:
                        for col in lin.columns or (ALL,):
                            targets.setdefault(col, e.kind)
                    else:
                        targets[e.output] = e.kind
                for col, kind in targets.items():
                    out.append({"table": lin.step, "column": col, "kind": kind, "from": t,
                                "depth": depth + 1})
                    if (lin.step, col) not in seen:
                        seen.add((lin.step, col))
                        stack.append((lin.step, col, depth + 1))
        return out


def _artifact_schemas(reader: StoreReader, fingerprints: Mapping[str, str]) -> dict[str, Schema]:
    rows = reader.artifacts(fingerprints.values()) if fingerprints else {}
    out: dict[str, Schema] = {}
    for step, fp in fingerprints.items():
        row = rows.get(fp)
        if row is not None:
            out[step] = {str(c[0]): str(c[1]) for c in row["schema"]}
    return out


def compute(project: Project, fingerprints: Mapping[str, str] | None = None,
            schemas: Mapping[str, Schema] | None = None,
            stored: Mapping[str, StepLineage] | None = None) -> Graph:
    """Every step's lineage in DAG order. ``schemas``: the known schemas of built tables;
    a step not built yet gets the columns its lineage derives. ``fingerprints`` names each
    step's version, ``stored`` the lineage already computed for some of them."""
    from sqlglot.schema import MappingSchema

    known: dict[str, Schema] = dict(schemas or {})
    fps = fingerprints or {}
    stored = stored or {}
    out: dict[str, StepLineage] = {}
    for name in project.dag.order:
        step = project.dag.steps[name]
        fp = fps.get(name, "")
        lin = stored.get(fp) if fp else None
        if lin is None:
            if step.kind == "sql" and all(p in known for p in step.parents):
                mapping = MappingSchema(
                    {p: dict(known[p]) or {"_": "UNKNOWN"} for p in step.parents},
                    dialect="duckdb", normalize=False)
                lin = sql_lineage(step, known, mapping)
            else:
                lin = step_lineage(step, known)
            if not lin.columns and name in known:
                lin = StepLineage(lin.step, lin.level, tuple(known[name]), lin.edges, lin.note)
        lin = StepLineage(lin.step, lin.level, lin.columns, lin.edges, lin.note, fp)
        out[name] = lin
        if name not in known and lin.columns:
            known[name] = {c: "UNKNOWN" for c in lin.columns}
    return Graph(out)


def for_environment(project: Project, environment: str | None = None) -> Graph:
    """The lineage of the project's steps over the tables an environment publishes (what
    ``andon lineage`` reads): stored lineage of each published fingerprint is reused."""
    reader = project.reader
    env_name = environment or project.environment or project.config.default_environment
    env = reader.environment(env_name)
    published = reader.commit_steps(env["commit_id"]) if env else {}
    fps = {k: v for k, v in published.items() if k in project.dag.steps}
    stored = _stored(project, fps.values())
    return compute(project, fps, _artifact_schemas(reader, fps), stored)


def _stored(project: Project, fingerprints: Iterable[str]) -> dict[str, StepLineage]:
    rows = project.reader.column_lineage(fingerprints)  # andon lineage never writes
    return {fp: StepLineage.from_dict(r) for fp, r in rows.items()}


def for_plan(project: Project, plan: Plan) -> Graph:
    """The lineage of a plan's steps (built or reused), over the sealed artifacts it knows."""
    fps = {s.name: s.fingerprint for s in plan.steps}
    schemas = {name: {str(c[0]): str(c[1]) for c in plan.known[fp]["schema"]}
               for name, fp in fps.items() if fp in plan.known}
    return compute(project, fps, schemas, _stored(project, fps.values()))


def record(project: Project, plan: Plan) -> Graph:
    """Compute a run's lineage from the artifacts it built and store it per fingerprint."""
    fps = {s.name: s.fingerprint for s in plan.steps}
    reader = project.store.reader()
    schemas = _artifact_schemas(reader, fps)
    repo = project.store.lineage
    have = {fp: StepLineage.from_dict(r) for fp, r in repo.rows(fps.values()).items()}
    graph = compute(project, fps, schemas, have)
    repo.put([lin for lin in graph.steps.values()
              if lin.fingerprint and lin.fingerprint not in have
              and all(p in schemas for p in project.dag.steps[lin.step].parents)])
    return graph


def column_lineage(project: Project, ref: str, *, upstream: bool = True,
                   downstream: bool = True, environment: str | None = None) -> dict[str, Any]:
    """``andon lineage TABLE.COLUMN``: where a column comes from and where it goes."""
    from andon.errors import did_you_mean

    table, _, column = ref.partition(".")
    if table not in project.dag.steps:
        hint = did_you_mean(table, project.dag.steps)
        raise NotFound(f"no step named {table!r}", hint=hint or "list them: andon tables")
    graph = for_environment(project, environment)
    lin = graph.steps[table]
    if column not in lin.columns and lin.level == "column":
        hint = did_you_mean(column, lin.columns)
        raise NotFound(f"{table} has no column {column!r}",
                       hint=hint or "its columns: " + ", ".join(lin.columns))
    out: dict[str, Any] = {"table": table, "column": column, "level": lin.level,
                           "note": lin.note}
    if upstream:
        out["upstream"] = graph.upstream(table, column)
    if downstream:
        out["downstream"] = graph.downstream(table, column)
    return out


def impact(project: Project, plan: Plan) -> list[dict[str, Any]]:
    """The downstream columns each step a plan changes (new code) touches: what a branch's
    change reaches before it is promoted."""
    graph = for_plan(project, plan)
    out: list[dict[str, Any]] = []
    for s in plan.steps:
        prev = plan.known.get(s.previous) if s.previous else None
        if s.action != "build" or (prev is not None and prev["code_hash"] == s.code_hash):
            continue
        touched: dict[tuple[str, str], str] = {}
        for col in graph.columns_of(s.name) or (ALL,):
            for d in graph.downstream(s.name, col):
                touched.setdefault((d["table"], d["column"]), d["kind"])
        out.append({"step": s.name, "columns": list(graph.columns_of(s.name)),
                    "downstream": [{"table": t, "column": c, "kind": k}
                                   for (t, c), k in sorted(touched.items())]})
    return out


__all__ = ["ALL", "DIRECT", "INDIRECT", "Edge", "Graph", "StepLineage", "column_lineage",
           "compute", "for_environment", "for_plan", "impact", "record", "sql_lineage",
           "step_lineage", "trace_sql"]
