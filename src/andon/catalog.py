"""The catalog: what each table of an environment is (layer, alignment, owner, steward,
description), what its columns hold (PII tags, declared, detected or flowing down through
column lineage unless a step masks them), and search over all of it (``andon catalog``).

Tags flow from a column to the columns computed from it (direct edges only: a filter or a
join reveals no values); an edge through sha256/md5/hash()/mask() or a column the step
declares in ``masks:`` stops them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from andon.classify import SAMPLE_ROWS, classify
from andon.errors import NotFound, did_you_mean

if TYPE_CHECKING:
    from sqlglot import exp

    from andon.checks.context import Audit
    from andon.engines.base import Session
    from andon.lineage import Graph, StepLineage
    from andon.project import Project
    from andon.steps import Step
    from andon.store import Row
    from andon.store.catalog import CatalogRepository

LAYERS = ("bronze", "silver", "gold")
# the zones andon knows by name; others take their layer from their place in `zones:`
ZONE_LAYERS = {"landing": "bronze", "formatted": "silver", "exploitation": "gold",
               "features": "gold", "models": "gold"}
ALIGNMENTS = ("source-aligned", "aggregate", "consumer-aligned")
PII = "pii:"


@dataclass(frozen=True)
class Tag:
    """A column's tag and where it comes from: ``declared``, ``detected`` (with its
    confidence) or ``from`` an upstream column."""

    tag: str
    origin: str  # declared|detected|flowed
    source: str = ""  # table.column it flowed from
    confidence: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tag": self.tag, "origin": self.origin,
                               "confidence": self.confidence}
        if self.source:
            out["from"] = self.source
        return out


def _repo(project: Project) -> CatalogRepository:
    from andon.store.catalog import CatalogRepository

    return CatalogRepository(project.store.engine)


def layer_of(project: Project, zone: str) -> str:
    if zone in ZONE_LAYERS:
        return ZONE_LAYERS[zone]
    zones = list(project.config.zones)
    index = zones.index(zone) if zone in zones else len(LAYERS) - 1
    return LAYERS[min(index, len(LAYERS) - 1)]


def alignment_of(project: Project, graph: Graph, table: str,
                 known: dict[str, str] | None = None) -> str:
    """Declared, else inferred: a source, or a step that only reshapes source-aligned
    tables row by row, is source-aligned; one that aggregates is an aggregate; the rest
    (joins and shapes made for a use) are consumer-aligned."""
    known = {} if known is None else known
    if table in known:
        return known[table]
    step = project.dag.steps[table]
    lin = graph.steps.get(table)
    if step.config.alignment:
        found: str = step.config.alignment
    elif not step.parents:
        found = "source-aligned"
    elif lin is not None and any(e.kind in ("aggregation", "group_by") for e in lin.edges):
        found = "aggregate"
    elif (len(step.parents) == 1 and lin is not None and lin.level == "column"
          and not any(e.kind == "join" for e in lin.edges)
          and alignment_of(project, graph, step.parents[0], known) == "source-aligned"):
        found = "source-aligned"
    else:
        found = "consumer-aligned"
    known[table] = found
    return found


def detect(cur: Session, src: exp.Expression, schema: Sequence[tuple[str, str]]
           ) -> dict[str, Row]:
    """The PII classes of one artifact (``src``: the engine's scan of it), from its column
    names and the first ``SAMPLE_ROWS`` values of its text columns; an artifact the engine
    cannot scan is judged by its names alone."""
    from sqlglot import exp

    from andon.engines.base import EngineError
    from andon.engines.sql import ident

    texts = [n for n, t in schema if t.upper().startswith(("VARCHAR", "TEXT", "STRING"))]
    sample: dict[str, list[Any]] = {}
    if texts:
        try:
            q = exp.select(*[ident(c) for c in texts]).from_(src).limit(SAMPLE_ROWS)
            rows = cur.execute(q).fetchall()
            sample = {c: [r[i] for r in rows] for i, c in enumerate(texts)}
        except EngineError:
            sample = {}
    return {c: k.to_dict() for c, k in classify([n for n, _ in schema], sample).items()}


def classes(project: Project, table: str, art: Row) -> dict[str, Row]:
    """The PII classes of an artifact's columns: stored per fingerprint (a run classifies
    what it builds), else detected now from a sample (an artifact built before runs did)."""
    repo = _repo(project)
    found = repo.classification(art["fingerprint"])
    if found is not None:
        return found
    from andon.engines import create
    from andon.warehouse import Warehouse

    schema = [(str(n), str(t)) for n, t in art["schema"]]
    wh = Warehouse(project.warehouse)
    if (art.get("format") or "parquet") != "parquet":  # a table of the engine's database
        out = detect_names(schema)  # (a run classifies what it builds from its values)
        repo.put_classification(art["fingerprint"], table, out)
        return out
    files = [wh.path(f) for f in art["files"]]
    engine = create(threads=2, allowed=files)
    try:
        out = detect(engine.cursor(), engine.scan([str(f) for f in files]), schema) \
            if files else detect_names(schema)
    finally:
        engine.close()
    repo.put_classification(art["fingerprint"], table, out)
    return out


def detect_names(schema: Sequence[tuple[str, str]]) -> dict[str, Row]:
    """The classes an artifact without files gets: by its column names alone."""
    return {c: k.to_dict() for c, k in classify([n for n, _ in schema], {}).items()}


def step_tags(step: Step, lin: StepLineage | None,
              upstream: Mapping[str, Mapping[str, list[Tag]]],
              detected: Mapping[str, Row] | None) -> dict[str, list[Tag]]:
    """One table's column tags: declared (``column_tags:``, ``pii:``, a source's
    ``pii: true``), flowed from its inputs' tags (``upstream``) along ``lin``, and detected
    (a tag is listed once, by the first of these that gives it)."""
    tags: dict[str, dict[str, Tag]] = {}

    def add(col: str, tag: Tag) -> None:
        tags.setdefault(col, {}).setdefault(tag.tag, tag)

    for col, declared in step.config.column_tags.items():
        for tag in declared:
            add(col, Tag(tag, "declared"))
    for col in step.config.pii:
        add(col, Tag("pii", "declared"))
    if step.source is not None:
        for col, c in step.source.columns.items():
            if c.pii:
                add(col, Tag("pii", "declared"))
    if lin is not None:
        for e in lin.edges:
            if e.indirect or e.masking or e.output in step.config.masks:
                continue
            inputs = upstream.get(e.table, {})
            sources = (inputs.items() if e.column == "*"
                       else [(e.column, inputs.get(e.column, []))])
            targets = lin.columns if e.output == "*" else (e.output,)
            for col, inherited in sources:
                for up in inherited:
                    for target in targets:
                        add(target, Tag(up.tag, "flowed", f"{e.table}.{col}", up.confidence))
    for col, found in (detected or {}).items():  # upstream explains more
        add(col, Tag(str(found["tag"]), "detected", "", float(found["confidence"])))
    return {c: sorted(t.values(), key=lambda x: x.tag) for c, t in tags.items()}


def column_tags(project: Project, graph: Graph,
                detected: Mapping[str, Mapping[str, Row]]) -> dict[str, dict[str, list[Tag]]]:
    """Every table's column tags (``step_tags``), in DAG order."""
    out: dict[str, dict[str, list[Tag]]] = {}
    for name in project.dag.order:
        out[name] = step_tags(project.dag.steps[name], graph.steps.get(name), out,
                              detected.get(name))
    return out


def masked_columns(tags: Mapping[str, list[Tag]]) -> set[str]:
    """The columns whose values are shown masked: any PII tag."""
    return {c for c, ts in tags.items()
            if any(t.tag == "pii" or t.tag.startswith(PII) for t in ts)}


class AuditPii:
    """The PII columns of the artifacts an audit checks (a run, a promotion, ``andon
    test``), for the samples and messages of their checks: declared, flowed from the
    inputs' tags along the step's column lineage, and detected by classifying the artifact
    on its first use (stored per fingerprint: later look-ups read it). Thread-safe; the
    step's declared PII and its sources' ``pii: true`` columns always count."""

    def __init__(self, project: Project, audit: Audit) -> None:
        self.project = project
        self.audit = audit
        self.lock = threading.Lock()
        self.known: dict[tuple[str, str], dict[str, list[Tag]]] = {}
        self.working: dict[tuple[str, str], threading.Lock] = {}

    def __call__(self, table: str) -> set[str]:
        return masked_columns(self.tags(table)) | self.project.pii_of(table)

    def tags(self, table: str) -> dict[str, list[Tag]]:
        step = self.project.dag.steps.get(table)
        if step is None:
            return {}
        m = self.audit.manifests.get(table)
        key = (table, m.fingerprint if m is not None else "")
        with self.lock:
            if key in self.known:
                return self.known[key]
            one = self.working.setdefault(key, threading.Lock())
        with one:  # one thread works a table out; others wait for it, not for every table
            if key in self.known:
                return self.known[key]
            upstream = {p: self.tags(p) for p in step.parents}
            lin = None
            if m is not None and any(upstream.values()):  # nothing to flow: no tracing
                lin = self._lineage(step, m.fingerprint, m.schema)
            found = self._classes(table) if m is not None else None
            out = step_tags(step, lin, upstream, found)
            with self.lock:
                self.known[key] = out
            return out

    def _classes(self, table: str) -> dict[str, Row]:
        m = self.audit.manifests[table]
        repo = _repo(self.project)
        found = repo.classification(m.fingerprint)
        if found is None:
            schema = [(str(n), str(t)) for n, t in m.schema]
            found = detect(self.audit.engine.cursor(), self.audit.source(table), schema) \
                if m.files else detect_names(schema)
            repo.put_classification(m.fingerprint, table, found)
        return found

    def _lineage(self, step: Step, fingerprint: str, schema: Sequence[tuple[str, str]]
                 ) -> StepLineage:
        from andon.lineage import StepLineage, step_lineage

        stored = self.project.store.lineage.rows([fingerprint]).get(fingerprint)
        if stored is not None:
            return StepLineage.from_dict(stored)
        schemas = {p: {str(n): str(t) for n, t in m.schema} for p in step.parents
                   if (m := self.audit.manifests.get(p)) is not None}
        schemas[step.name] = {str(n): str(t) for n, t in schema}
        lin = step_lineage(step, schemas)
        if not lin.columns:  # table level: every column may hold what the inputs hold
            lin = StepLineage(lin.step, lin.level, tuple(schemas[step.name]), lin.edges,
                              lin.note)
        return lin


def known_pii(project: Project, table: str, fingerprint: str | None) -> set[str]:
    """A table's PII columns as far as they are known without tracing: declared, and
    detected in the artifact ``fingerprint`` when it was classified."""
    found = _repo(project).classification(fingerprint) if fingerprint else None
    return project.pii_of(table) | {c for c, k in (found or {}).items()
                                    if str(k["tag"]).startswith(PII)}


@dataclass(frozen=True)
class Catalog:
    """An environment's tables as the catalog knows them."""

    environment: str
    graph: Graph
    tables: dict[str, Row]  # published artifacts
    tags: dict[str, dict[str, list[Tag]]]

    def masked(self, table: str) -> set[str]:
        return masked_columns(self.tags.get(table, {}))


def load(project: Project, environment: str | None = None) -> Catalog:
    from andon.environments import env_tables
    from andon.lineage import for_environment

    env = environment or project.config.default_environment
    published = env_tables(project, env)
    graph = for_environment(project, env)
    detected = {name: classes(project, name, art) for name, art in published.items()
                if name in project.dag.steps}
    return Catalog(env, graph, published, column_tags(project, graph, detected))


def describe(project: Project, table: str, environment: str | None = None,
             catalog: Catalog | None = None) -> Row:
    """``andon catalog show TABLE``: what the table is, who answers for it, its columns with
    their tags and where each comes from."""
    cat = catalog or load(project, environment)
    if table not in project.dag.steps:
        hint = did_you_mean(table, project.dag.steps)
        raise NotFound(f"no table named {table!r}", hint=hint or "list them: andon tables")
    step = project.dag.steps[table]
    art = cat.tables.get(table)
    lin = cat.graph.steps.get(table)
    tags = cat.tags.get(table, {})
    types = {str(n): str(t) for n, t in (art["schema"] if art else [])}
    names = list(types) or list(lin.columns if lin else ())
    columns = []
    for col in names:
        edges = lin.inputs_of(col) if lin is not None else []
        columns.append({
            "name": col, "type": types.get(col),
            "tags": [t.to_dict() for t in tags.get(col, [])],
            "masked": col in cat.masked(table),
            "from": [{"table": e.table, "column": e.column, "kind": e.kind,
                      "masking": e.masking} for e in edges if not e.indirect]})
    return {
        "table": table, "environment": cat.environment, "built": art is not None,
        "description": step.config.description, "zone": step.zone,
        "layer": layer_of(project, step.zone),
        "alignment": alignment_of(project, cat.graph, table),
        "alignment_declared": step.config.alignment is not None,
        "owner": step.config.owner, "steward": step.config.steward,
        "tags": list(step.config.tags),
        "upstream": list(step.parents),
        "downstream": list(project.dag.children.get(table, ())),
        "lineage": {"level": lin.level if lin else "table", "note": lin.note if lin else "",
                    "indirect": [e.to_dict() for e in (lin.edges if lin else ())
                                 if e.indirect]},
        "columns": columns,
    }


def documents(project: Project, cat: Catalog) -> list[Row]:
    """What search finds: a document per table and per column. Its name (a table's, a
    column's) weighs more than its text; both are indexed as written and as words, so
    ``finance-data@example.com`` is found by ``finance data`` on every store."""
    from andon.store.catalog import words

    def doc(kind: str, table: str, column: str, name: str, parts: list[str]) -> Row:
        text = " ".join(p for p in parts if p)
        return {"kind": kind, "table": table, "column": column,
                "name": f"{name} {' '.join(words(name))}",
                "body": f"{text} {' '.join(words(text))}", "text": text}

    docs: list[Row] = []
    for name in project.dag.order:
        if name not in cat.tables:
            continue
        d = describe(project, name, catalog=cat)
        docs.append(doc("table", name, "", name, [
            d["description"], d["zone"], d["layer"], d["alignment"],
            f"owner {d['owner']}" if d["owner"] else "",
            f"steward {d['steward']}" if d["steward"] else "", *d["tags"]]))
        for c in d["columns"]:
            docs.append(doc("column", name, c["name"], c["name"],
                            [f"column of {name}", c["type"] or "",
                             *[t["tag"] for t in c["tags"]]]))
    return docs


_META = "meta"  # the document that says which documents are indexed


def search(project: Project, text: str, environment: str | None = None,
           limit: int = 20) -> list[Row]:
    """Tables and columns matching every word of ``text``, best first. The index follows
    the environment: it is rebuilt when what it would hold changed."""
    cat = load(project, environment)
    docs = documents(project, cat)
    digest = hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()
    repo = _repo(project)
    if repo.indexed(cat.environment) != digest:
        repo.replace_docs(cat.environment, [*docs, {"kind": _META, "table": "", "name": "",
                                                    "body": digest}])
    return repo.search(cat.environment, text, limit)


__all__ = ["ALIGNMENTS", "LAYERS", "AuditPii", "Catalog", "Tag", "alignment_of", "classes",
           "column_tags", "describe", "detect", "documents", "known_pii", "layer_of", "load",
           "masked_columns", "search", "step_tags"]
