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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from andon.classify import SAMPLE_ROWS, classify
from andon.errors import NotFound, did_you_mean

if TYPE_CHECKING:
    from andon.lineage import Graph
    from andon.project import Project
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


def classes(project: Project, table: str, art: Row) -> dict[str, Row]:
    """The PII classes of an artifact's columns: stored per fingerprint, else detected
    from a sample of its text columns (and stored)."""
    repo = _repo(project)
    found = repo.classification(art["fingerprint"])
    if found is not None:
        return found
    from sqlglot import exp

    from andon.engines import create
    from andon.engines.base import EngineError
    from andon.engines.sql import ident
    from andon.engines.sql import table as table_ref
    from andon.warehouse import Warehouse

    schema = [(str(n), str(t)) for n, t in art["schema"]]
    texts = [n for n, t in schema if t.upper().startswith(("VARCHAR", "TEXT", "STRING"))]
    sample: dict[str, list[Any]] = {}
    if texts and art["files"]:
        wh = Warehouse(project.warehouse)
        engine = create(threads=2, allowed=[wh.path(f) for f in art["files"]])
        try:
            cur = engine.session({table: [str(wh.path(f)) for f in art["files"]]})
            q = exp.select(*[ident(c) for c in texts]).from_(table_ref(table)).limit(
                SAMPLE_ROWS)
            rows = cur.execute(q).fetchall()
            sample = {c: [r[i] for r in rows] for i, c in enumerate(texts)}
        except EngineError:  # an artifact the engine cannot scan: judged by names alone
            sample = {}
        finally:
            engine.close()
    out = {c: k.to_dict() for c, k in classify([n for n, _ in schema], sample).items()}
    repo.put_classification(art["fingerprint"], table, out)
    return out


def column_tags(project: Project, graph: Graph,
                detected: Mapping[str, Mapping[str, Row]]) -> dict[str, dict[str, list[Tag]]]:
    """Every table's column tags, in DAG order: declared (``column_tags:``, ``pii:``,
    a source's ``pii: true``), flowed from the inputs, and detected (a tag is listed once,
    by the first of these that gives it)."""
    out: dict[str, dict[str, list[Tag]]] = {}
    for name in project.dag.order:
        step = project.dag.steps[name]
        lin = graph.steps.get(name)
        tags: dict[str, dict[str, Tag]] = {}

        def add(col: str, tag: Tag, into: dict[str, dict[str, Tag]] = tags) -> None:
            into.setdefault(col, {}).setdefault(tag.tag, tag)

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
                upstream = out.get(e.table, {})
                sources = (upstream.items() if e.column == "*"
                           else [(e.column, upstream.get(e.column, []))])
                targets = lin.columns if e.output == "*" else (e.output,)
                for col, inherited in sources:
                    for up in inherited:
                        for target in targets:
                            add(target, Tag(up.tag, "flowed", f"{e.table}.{col}",
                                            up.confidence))
        for col, found in (detected.get(name) or {}).items():  # upstream explains more
            add(col, Tag(str(found["tag"]), "detected", "", float(found["confidence"])))
        out[name] = {c: sorted(t.values(), key=lambda x: x.tag) for c, t in tags.items()}
    return out


def masked_columns(tags: Mapping[str, list[Tag]]) -> set[str]:
    """The columns whose values are shown masked: any PII tag."""
    return {c for c, ts in tags.items()
            if any(t.tag == "pii" or t.tag.startswith(PII) for t in ts)}


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


__all__ = ["ALIGNMENTS", "LAYERS", "Catalog", "Tag", "alignment_of", "classes",
           "column_tags", "describe", "documents", "layer_of", "load", "masked_columns",
           "search"]
