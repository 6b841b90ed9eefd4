"""The feature store: feature views over an environment's tables, point-in-time training
sets, materialisation to an online store and online reads. Definitions: ``features/*.yaml``.

    andon.features.training_set("delay_model", entities="flights", output="train.parquet")
    andon.features.stores("delay_model", [{"origin": "JFK", "carrier": "AA", ...}])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, Failed

if TYPE_CHECKING:
    import pyarrow as pa

    from andon.features.catalog import Definitions, FeatureView, OnDemand
    from andon.features.latest import Materialized
    from andon.features.stores import OnlineStore
    from andon.features.training import TrainingSet
    from andon.project import Project

__all__ = ["Online", "definitions", "get", "list_features", "materialize", "monitor", "online",
           "show", "training_set"]


def _project(project: Project | str | Path | None) -> Project:
    from andon.project import Project as P

    return project if isinstance(project, P) else P.load(project)


def _schemas(project: Project, environment: str | None) -> tuple[dict[str, dict[str, str]],
                                                                dict[str, Any]]:
    from andon.published import env_tables

    published = env_tables(project, environment)
    return ({name: {c: t for c, t in art["schema"]} for name, art in published.items()},
            published)


def definitions(project: Project | str | Path | None = None, environment: str | None = None,
                *, check: bool = True) -> Definitions:
    """The project's feature definitions, checked against the tables ``environment``
    publishes (a view over a missing key or timestamp column is an error with file:line)."""
    from andon.errors import EnvironmentNotFound
    from andon.features import catalog as d

    proj = _project(project)
    defs = d.load(proj)
    if check:
        try:
            schemas, _ = _schemas(proj, environment)
        except EnvironmentNotFound:
            schemas = {}
        d.check_tables(defs, {t: list(s.items()) for t, s in schemas.items()},
                       list(proj.dag.steps))
    return defs


def list_features(project: Project | str | Path | None = None, search: str | None = None,
                  environment: str | None = None) -> list[dict[str, Any]]:
    """Every feature (stored and on-demand) with its view, type, owner and description;
    ``search`` keeps those whose name, view, description or tags contain it."""
    defs = definitions(project, environment)
    rows: list[dict[str, Any]] = []
    for view in defs.views.values():
        for f in view.features:
            rows.append({"feature": f"{view.name}.{f.name}", "kind": "view", "type": f.type,
                         "entities": ", ".join(view.entities), "owner": view.owner or "",
                         "tags": ", ".join(f.tags + view.tags), "description": f.description})
    for od in defs.on_demand.values():
        rows.append({"feature": od.name, "kind": "on-demand", "type": od.type,
                     "entities": "", "owner": "", "tags": "", "description": od.description})
    for s in defs.services.values():
        rows.append({"feature": s.name, "kind": "service", "type": "",
                     "entities": "", "owner": s.owner or "", "tags": "",
                     "description": s.description})
    if search:
        needle = search.lower()
        rows = [r for r in rows if any(needle in str(v).lower() for v in r.values())]
    return rows


def show(name: str, project: Project | str | Path | None = None,
         environment: str | None = None) -> dict[str, Any]:
    """A feature view, service, or feature by name, with where it is defined."""
    from andon.errors import NotFound, did_you_mean

    defs = definitions(project, environment)
    if name in defs.views:
        v = defs.views[name]
        return {"view": v.name, "table": v.table, "entities": list(v.entities),
                "join_keys": list(v.join_keys), "timestamp": v.timestamp, "created": v.created,
                "available_after_s": v.available_after.total_seconds(),
                "ttl_s": v.ttl.total_seconds() if v.ttl else None, "owner": v.owner,
                "tags": list(v.tags), "description": v.description,
                "defined_at": f"{v.where.file}:{v.where.line}",
                "features": [{"name": f.name, "type": f.type, "expr": f.expr,
                              "description": f.description} for f in v.features]}
    if name in defs.services:
        s = defs.services[name]
        return {"service": s.name, "description": s.description, "owner": s.owner,
                "features": list(s.features), "defined_at": f"{s.where.file}:{s.where.line}"}
    try:
        f = defs.feature(name)
    except NotFound:
        raise NotFound(f"no feature, view or service named {name!r}",
                       hint=did_you_mean(name, list(defs.views) + list(defs.services))
                       or "list them: andon features list") from None
    return {"feature": f.name, "type": f.type, "description": f.description,
            "defined_at": f"{f.where.file}:{f.where.line}"}


def training_set(features: str | Sequence[str], entities: str | Path,
                 output: str | Path | None = None, *, timestamp: str = "event_timestamp",
                 project: Project | str | Path | None = None,
                 environment: str | None = None) -> TrainingSet | pa.Table:
    """Point-in-time correct features for every row of ``entities`` (a Parquet/CSV file or a
    table of the environment), in input order. With ``output`` (.parquet or .csv) the rows
    are streamed there and a ``TrainingSet`` summary is returned; without, an Arrow table."""
    from andon.engines import EngineError, create
    from andon.features import training as t
    from andon.warehouse import Warehouse

    proj = _project(project)
    defs = definitions(proj, environment)
    refs = [features] if isinstance(features, str) else list(features)
    wanted = defs.resolve(refs)
    schemas, published = _schemas(proj, environment)
    views, _, _ = t.views_of(defs, wanted)
    wh = Warehouse(proj.warehouse)
    tables: dict[str, list[str]] = {}
    for view in views:
        if view.table not in published:
            raise AndonError(f"feature view {view.name!r}: table {view.table!r} is not built "
                             "in this environment", file=view.where.file, line=view.where.line,
                             hint=f"build it: andon run +{view.table}")
        tables[view.table] = [str(wh.path(f)) for f in published[view.table]["files"]]
    entity_name = str(entities)
    if entity_name in published and not Path(entity_name).suffix:
        tables.setdefault(entity_name, [str(wh.path(f)) for f in
                                        published[entity_name]["files"]])
        entity_sql = t.q(entity_name)
    else:
        path = Path(entities).resolve()
        if not path.is_file():
            from andon.errors import did_you_mean

            raise AndonError(f"entity rows {entity_name!r}: no such file or table",
                             hint=did_you_mean(entity_name, published)
                             or "give a .parquet or .csv file, or a table: andon tables")
        entity_sql = t.scan(path)
    engine = create(threads=proj.config.threads, memory_limit=proj.config.memory_limit)
    try:
        result, nulls = t.run(engine.session(tables), defs, wanted, entity_sql, timestamp,
                              schemas, None if output is None else Path(output))
        if not isinstance(result, int):
            return result
    except EngineError as e:
        raise Failed(f"the training set query failed: {e.first_line}",
                     hint="check the features' expressions and types (andon features show "
                          "VIEW)") from e
    finally:
        engine.close()
    return t.TrainingSet(result, nulls, tuple(f.name for f in wanted), str(output))


def _state_dir(project: Project, environment: str) -> Path:
    """Where materialisation and serving keep their state for ``environment``."""
    return project.root / ".andon" / "features" / environment


def online_store(project: Project) -> OnlineStore:
    from andon.features.stores import open_store

    return open_store(project.config.online_store, project.root, project.name)


def materialize(views: Sequence[str] | None = None, *,
                project: Project | str | Path | None = None,
                environment: str | None = None) -> list[Materialized]:
    """Write the latest value per entity of each view (all by default) to the online store;
    only the entities whose values changed since the last materialisation are written."""
    from andon.engines import EngineError, create
    from andon.errors import NotFound, did_you_mean
    from andon.features.latest import materialize_view
    from andon.warehouse import Warehouse

    proj = _project(project)
    env = environment or proj.config.default_environment
    defs = definitions(proj, env)
    names = list(views) if views else list(defs.views)
    for n in names:
        if n not in defs.views:
            raise NotFound(f"no feature view named {n!r}", hint=did_you_mean(n, defs.views)
                           or "list them: andon features list")
    schemas, published = _schemas(proj, env)
    wh = Warehouse(proj.warehouse)
    store = online_store(proj)
    engine = create(threads=proj.config.threads, memory_limit=proj.config.memory_limit)
    done: list[Materialized] = []
    try:
        for n in names:
            view = defs.views[n]
            if view.table not in published:
                raise AndonError(f"feature view {n!r}: table {view.table!r} is not built in "
                                 f"environment {env!r}", file=view.where.file,
                                 line=view.where.line, hint=f"build it: andon run +{view.table}")
            art = published[view.table]
            session = engine.session({view.table: [str(wh.path(f)) for f in art["files"]]})
            try:
                done.append(materialize_view(session, store, view, schemas[view.table], env,
                                             _state_dir(proj, env),
                                             str(art["fingerprint"])))
            except EngineError as e:
                raise Failed(f"materialising feature view {n!r} failed: {e.first_line}",
                             file=view.where.file, line=view.where.line,
                             hint="check its features' expressions and types") from e
            finally:
                session.close()
    finally:
        engine.close()
        store.close()
    return done


def monitor(training: str | Path | None = None, *, project: Project | str | Path | None = None,
            environment: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
    """Record feature checks in the check history of ``environment``: the freshness of each
    materialised view (failed past its TTL), the training-serving skew of each view whose
    reads were logged (served values vs offline values for the same keys and times) and,
    given a training set file, the drift (PSI) of each numeric feature between it and the
    values served. Returns the results."""
    from andon.engines import EngineError, create
    from andon.features import health as m
    from andon.features.skew import skew
    from andon.warehouse import Warehouse

    proj = _project(project)
    env = environment or proj.config.default_environment
    defs = definitions(proj, env)
    state = _state_dir(proj, env)
    results = m.freshness(defs, state, now)
    path = None if training is None else Path(training)
    if path is not None and not path.is_file():
        raise AndonError(f"no training set file {str(training)!r}",
                         hint="give a .parquet or .csv file: andon features training-set")
    schemas, published = _schemas(proj, env)
    wh = Warehouse(proj.warehouse)
    tables = {v.table: [str(wh.path(f)) for f in published[v.table]["files"]]
              for v in defs.views.values() if v.table in published}
    engine = create(threads=proj.config.threads, memory_limit=proj.config.memory_limit)
    try:
        session = engine.session(tables)
        try:
            results += skew(session, defs, state, schemas,
                            {t: str(published[t]["fingerprint"]) for t in tables})
        except EngineError as e:
            raise Failed(f"comparing served values with offline ones failed: "
                         f"{e.first_line}") from e
        if path is not None:
            try:
                results += m.drift(session, defs, path.resolve(), state)
            except EngineError as e:
                raise Failed(f"reading {path.name} failed: {e.first_line}") from e
    finally:
        engine.close()
    proj.store.checks.add(results, run_id=None, environment=env)
    return [{"check": r.check_name, "table": r.step, "status": r.status, "metric": r.metric,
             "message": r.message} for r in results]


class _Plan:
    """What a read of some features needs: the views, each stored feature's view (by index),
    the on-demand features, and the output order."""

    def __init__(self, views: list[FeatureView], stored: list[tuple[str, int]],
                 on_demand: list[OnDemand], names: list[str]) -> None:
        self.views = views
        self.stored = stored
        self.on_demand = on_demand
        self.names = names
        self.reorder = [n for n, _ in stored] != names


class Online:
    """Reads of one project's online store, kept open (a model server holds one)."""

    def __init__(self, project: Project | str | Path | None = None,
                 environment: str | None = None, *, log_sample: float | None = None) -> None:
        from andon.features.skew import ServedLog, served_dir
        from andon.features.stores import SqliteStore

        self.project = _project(project)
        self.environment = environment or self.project.config.default_environment
        self.defs = definitions(self.project, self.environment, check=False)
        self.store = online_store(self.project)
        rate = self.defs.serving.log_sample if log_sample is None else log_sample
        self.log = ServedLog(served_dir(_state_dir(self.project, self.environment)), rate)
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self.local = isinstance(self.store, SqliteStore)  # reads are local and sub-millisecond

    def _plan(self, features: str | Sequence[str]) -> _Plan:
        from andon.features import training as t

        refs = (features,) if isinstance(features, str) else tuple(features)
        plan = self._plans.get(refs)
        if plan is None:
            wanted = self.defs.resolve(list(refs))
            views, stored, on_demand = t.views_of(self.defs, wanted)
            index = {v.name: i for i, v in enumerate(views)}
            plan = _Plan(views, [(f.name, index[f.view]) for f in stored], on_demand,
                         [f.name for f in wanted])
            if len(self._plans) < 1_000:
                self._plans[refs] = plan
        return plan

    def get(self, features: str | Sequence[str], entities: Sequence[Mapping[str, Any]],
            at: datetime | None = None) -> list[dict[str, Any]]:
        """Per entity, in order: ``features`` (name → value; None when missing or past the
        view's TTL) and ``status`` per view (present, missing, expired)."""
        from andon.features.stores import decode, key_of

        plan = self._plan(features)
        at = at or datetime.now(UTC)
        now = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()  # naive: UTC
        values: list[list[dict[str, Any] | None]] = []
        statuses: list[list[str]] = []
        for view in plan.views:
            keys = key_of(view, entities)
            found = self.store.read(self.environment, view.name, keys)
            oldest = now - view.ttl.total_seconds() if view.ttl else None
            mine: list[dict[str, Any] | None] = []
            status: list[str] = []
            for key in keys:
                raw = found.get(key)
                if raw is None:
                    mine.append(None)
                    status.append("missing")
                    continue
                value = decode(raw)
                ts = value.get("__ts")
                if oldest is not None and ts is not None and float(ts) < oldest:
                    mine.append(None)
                    status.append("expired")
                else:
                    mine.append(value)
                    status.append("present")
            values.append(mine)
            statuses.append(status)
        names = [view.name for view in plan.views]
        out: list[dict[str, Any]] = []
        for i in range(len(entities)):
            row: dict[str, Any] = {}
            for name, v in plan.stored:
                found_values = values[v][i]
                row[name] = None if found_values is None else found_values.get(name)
            out.append({"features": row,
                        "status": {n: statuses[j][i] for j, n in enumerate(names)}})
        if plan.on_demand:
            self._on_demand(plan, entities, out, now)
        if self.log.sampled():  # a sample of served vectors, for the skew check
            self.log.offer(now, entities, plan.views, values, statuses)
        if plan.reorder:
            for r in out:
                r["features"] = {n: r["features"][n] for n in plan.names}
        return out

    @staticmethod
    def _on_demand(plan: _Plan, entities: Sequence[Mapping[str, Any]],
                   out: list[dict[str, Any]], now: float) -> None:
        from andon.features import training as t

        columns: dict[str, list[Any]] = {
            name: [r["features"][name] for r in out] for name, _ in plan.stored}
        for e_key in {k for e in entities for k in e}:
            columns.setdefault(e_key, [e.get(e_key) for e in entities])
        columns[t.TS] = [datetime.fromtimestamp(now, UTC).replace(tzinfo=None)] * len(out)
        computed = t.compute_on_demand(columns, plan.on_demand, len(out))
        for i, row in enumerate(out):
            for od in plan.on_demand:
                row["features"][od.name] = computed[od.name][i]

    def close(self) -> None:
        self.log.close()
        self.store.close()


def online(features: str | Sequence[str], entities: Sequence[Mapping[str, Any]], *,
           project: Project | str | Path | None = None, environment: str | None = None,
           at: datetime | None = None) -> list[dict[str, Any]]:
    """Feature values of ``entities`` (dicts of join keys) from the online store, in order:
    per entity ``features`` (name → value; None when missing or past the view's TTL) and
    ``status`` per view (present, missing, expired). On-demand features are computed here."""
    reader = Online(project, environment)
    try:
        return reader.get(features, entities, at)
    finally:
        reader.close()


get = online
