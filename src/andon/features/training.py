"""Point-in-time training sets: for every entity row, each feature's latest value as of that
row's timestamp (DuckDB ASOF JOIN), streamed to Parquet or CSV in input order.

Time-zone rule: every timestamp is compared in UTC. A ``TIMESTAMP WITH TIME ZONE`` is converted
to UTC; a timestamp without a zone (and a date, at midnight) is taken to be UTC already.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, ConfigError, Failed, NotFound, did_you_mean
from andon.features.catalog import Definitions, Feature, FeatureView, OnDemand

if TYPE_CHECKING:
    import pyarrow as pa

    from andon.engines.base import Session

ROW, TS = "__andon_row", "__andon_ts"
EVENT_TIMESTAMP = "event_timestamp"  # an on-demand input: the entity row's timestamp (UTC)


@dataclass(frozen=True)
class TrainingSet:
    rows: int
    null_key_rows: int  # entity rows with a null key or timestamp: kept, with null features
    features: tuple[str, ...]
    output: str | None


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def utc(column_sql: str, engine_type: str) -> str:
    """The column as a UTC timestamp without zone (the module's time-zone rule)."""
    t = engine_type.upper()
    if "TIME ZONE" in t or t.startswith("TIMESTAMPTZ"):
        return f"timezone('UTC', {column_sql})"
    return f"CAST({column_sql} AS TIMESTAMP)"


def seconds(delta_seconds: float) -> str:
    return f"INTERVAL '{int(delta_seconds)} seconds'"


def scan(path: Path) -> str:
    """A DuckDB scan of an entity file (Parquet or CSV, by its suffix)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return f"read_parquet({lit(str(path))})"
    if suffix in (".csv", ".tsv", ".txt"):
        return f"read_csv({lit(str(path))}, auto_detect = true)"
    raise ConfigError(f"{path.name}: entity rows must be a Parquet or CSV file",
                      hint="use a .parquet or .csv file, or name a table of the environment")


def views_of(defs: Definitions, features: Sequence[Feature | OnDemand]
             ) -> tuple[list[FeatureView], list[Feature], list[OnDemand]]:
    """The views to join, every stored feature needed (asked, or an input of an on-demand
    one) and the on-demand features, in order."""
    stored: list[Feature] = []
    on_demand: list[OnDemand] = []
    for f in features:
        if isinstance(f, OnDemand):
            on_demand.append(f)
            for ref in f.inputs:
                if ref == EVENT_TIMESTAMP:
                    continue
                try:
                    dep = defs.feature(ref, f.where)
                except NotFound:
                    continue  # a column of the entity rows (checked when they are read)
                if isinstance(dep, Feature) and dep not in stored:
                    stored.append(dep)
        elif f not in stored:
            stored.append(f)
    views: list[FeatureView] = []
    for f in stored:
        view = defs.views[f.view]
        if view not in views:
            views.append(view)
    return views, stored, on_demand


def view_cte(view: FeatureView, i: int, features: Sequence[Feature],
             schema: Mapping[str, str]) -> str:
    """One view's feature rows: keys, the time a value became known (UTC), typed values; one
    row per key and time (the latest created timestamp wins a tie)."""
    cols = [f"{q(k)} AS __k{i}_{j}" for j, k in enumerate(view.join_keys)]
    if view.timestamp:
        known = utc(q(view.timestamp), schema[view.timestamp])
        if view.available_after.total_seconds():
            known += " + " + seconds(view.available_after.total_seconds())
        cols.append(f"{known} AS __t{i}")
    cols += [f"CAST({f.expr} AS {f.sql_type}) AS __f{i}_{j}" for j, f in enumerate(features)]
    keys = ", ".join(q(k) for k in view.join_keys)
    if view.timestamp is None:
        dedup = f"QUALIFY row_number() OVER (PARTITION BY {keys}) = 1"
    elif view.created:
        dedup = (f"QUALIFY row_number() OVER (PARTITION BY {keys}, {q(view.timestamp)} "
                 f"ORDER BY {q(view.created)} DESC NULLS LAST) = 1")
    else:
        dedup = ""
    return f"__v{i} AS (SELECT {', '.join(cols)} FROM {q(view.table)} {dedup})"


def query(defs: Definitions, features: Sequence[Feature | OnDemand], entity_sql: str,
          entity_schema: Mapping[str, str], timestamp: str,
          table_schemas: Mapping[str, Mapping[str, str]], keep_ts: bool = False) -> str:
    """The SELECT of a training set over ``entity_sql`` (rows in input order)."""
    views, stored, _ = views_of(defs, features)
    if timestamp not in entity_schema:
        raise ConfigError(f"the entity rows have no timestamp column {timestamp!r}",
                          hint=did_you_mean(timestamp, entity_schema)
                          or "name it with --timestamp; columns: " + ", ".join(entity_schema))
    clash = [f.name for f in stored if f.name in entity_schema]
    if clash:
        raise ConfigError(f"the entity rows already have columns named like features: "
                          f"{', '.join(clash)}", hint="rename or drop those columns")
    ctes = [f"e AS (SELECT *, row_number() OVER () AS {ROW}, "
            f"{utc(q(timestamp), entity_schema[timestamp])} AS {TS} FROM {entity_sql})"]
    joins: list[str] = []
    selects: list[str] = []
    for i, view in enumerate(views):
        mine = [f for f in stored if f.view == view.name]
        for k in view.join_keys:
            if k not in entity_schema:
                raise ConfigError(f"the entity rows lack key column {k!r} of feature view "
                                  f"{view.name!r}", hint=did_you_mean(k, entity_schema)
                                  or "add it; columns: " + ", ".join(entity_schema))
        ctes.append(view_cte(view, i, mine, table_schemas[view.table]))
        on = [f"e.{q(k)} = __v{i}.__k{i}_{j}" for j, k in enumerate(view.join_keys)]
        if view.timestamp:
            joins.append(f"ASOF LEFT JOIN __v{i} ON {' AND '.join(on)} AND e.{TS} >= __v{i}.__t{i}")
        else:
            joins.append(f"LEFT JOIN __v{i} ON {' AND '.join(on)}")
        for j, f in enumerate(mine):
            value = f"__v{i}.__f{i}_{j}"
            if view.ttl is not None and view.timestamp:
                value = (f"CASE WHEN __v{i}.__t{i} >= e.{TS} - "
                         f"{seconds(view.ttl.total_seconds())} THEN {value} END")
            selects.append(f"{value} AS {q(f.name)}")
    hidden = f", e.{TS} AS {TS}" if keep_ts else ""
    return (f"WITH {', '.join(ctes)} SELECT e.* EXCLUDE ({ROW}, {TS}){hidden}"
            + "".join(", " + s for s in selects)
            + f" FROM e {' '.join(joins)} ORDER BY e.{ROW}")


def describe(session: Session, sql: str) -> dict[str, str]:
    res = session.execute(f"DESCRIBE SELECT * FROM {sql}")
    return {str(r[0]): str(r[1]) for r in res.fetchall()}


def null_key_rows(session: Session, defs: Definitions, features: Sequence[Feature | OnDemand],
                  entity_sql: str, timestamp: str) -> int:
    views, _, _ = views_of(defs, features)
    keys = sorted({k for v in views for k in v.join_keys} | {timestamp})
    cond = " OR ".join(f"{q(k)} IS NULL" for k in keys)
    row = session.execute(f"SELECT count(*) FROM {entity_sql} WHERE {cond}").fetchone()
    return int(row[0]) if row else 0


def write(session: Session, sql: str, output: Path,
          on_demand: Sequence[OnDemand], drop: Sequence[str]) -> int:
    """Stream the query to ``output`` (Parquet or CSV by suffix), atomically; on-demand
    features are computed batch by batch between the engine and the file."""
    fmt = "csv" if output.suffix.lower() == ".csv" else "parquet"
    output.parent.mkdir(parents=True, exist_ok=True)
    part = output.with_name(f".{output.name}.part")
    try:
        if not on_demand:
            options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet"
            row = session.execute(f"COPY ({sql}) TO {lit(str(part))} ({options})").fetchone()
            rows = int(row[0]) if row else 0
        else:
            staged = output.with_name(f".{output.name}.stage.parquet")
            try:
                session.execute(f"COPY ({sql}) TO {lit(str(staged))} (FORMAT parquet)")
                rows = _apply_on_demand(staged, part, fmt, on_demand, drop)
            finally:
                staged.unlink(missing_ok=True)
        os.replace(part, output)
    finally:
        part.unlink(missing_ok=True)
    return rows


def compute_on_demand(columns: Mapping[str, Sequence[Any]], on_demand: Sequence[OnDemand],
                      n: int) -> dict[str, list[Any]]:
    """Each on-demand feature over ``n`` rows, from the columns it names."""
    out: dict[str, list[Any]] = {}
    for od in on_demand:
        args = {}
        for ref in od.inputs:
            name = ref.rpartition(".")[2]
            source = TS if ref == EVENT_TIMESTAMP else name
            if source not in columns:
                raise ConfigError(f"on-demand feature {od.name!r}: no input {ref!r}",
                                  file=od.where.file, line=od.where.line,
                                  hint="inputs are features, columns of the entity rows, or "
                                       "event_timestamp")
            args[name] = list(columns[source])
        try:
            values = list(od.function(**args))
        except Exception as e:  # the user's function: report it with its definition
            raise Failed(f"on-demand feature {od.name!r} raised {type(e).__name__}: {e}",
                         file=od.where.file, line=od.where.line,
                         hint="fix the function; it gets one list per input") from e
        if len(values) != n:
            raise Failed(f"on-demand feature {od.name!r} returned {len(values)} values for "
                         f"{n} rows", file=od.where.file, line=od.where.line,
                         hint="return one value per row")
        out[od.name] = values
    return out


def arrow_type(feature_type: str) -> pa.DataType:
    """The Arrow type of a feature type (on-demand values are typed like stored ones)."""
    import pyarrow as pa

    return {"boolean": pa.bool_(), "integer": pa.int64(), "double": pa.float64(),
            "string": pa.string(), "date": pa.date32(),
            "timestamp": pa.timestamp("us")}[feature_type]


def _apply_on_demand(staged: Path, out: Path, fmt: str, on_demand: Sequence[OnDemand],
                     drop: Sequence[str]) -> int:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    writer: Any = None
    rows = 0
    try:
        for batch in pq.ParquetFile(staged).iter_batches(batch_size=65_536):
            table = pa.Table.from_batches([batch])
            columns = {name: table.column(name).to_pylist() for name in table.column_names}
            values = compute_on_demand(columns, on_demand, table.num_rows)
            for od in on_demand:
                table = table.append_column(
                    od.name, pa.array(values[od.name], type=arrow_type(od.type)))
            table = table.drop_columns([c for c in drop if c in table.column_names])
            if writer is None:
                writer = (pcsv.CSVWriter(out, table.schema) if fmt == "csv"
                          else pq.ParquetWriter(out, table.schema))
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise AndonError("the training set is empty", hint="give at least one entity row")
    return rows


def result_table(session: Session, sql: str, on_demand: Sequence[OnDemand],
                 drop: Sequence[str]) -> pa.Table:
    import pyarrow as pa

    table = session.execute(sql).arrow()
    if on_demand:
        columns = {name: table.column(name).to_pylist() for name in table.column_names}
        values = compute_on_demand(columns, on_demand, table.num_rows)
        for od in on_demand:
            table = table.append_column(
                od.name, pa.array(values[od.name], type=arrow_type(od.type)))
    return table.drop_columns([c for c in drop if c in table.column_names])


def run(session: Session, defs: Definitions, wanted: Sequence[Feature | OnDemand],
        entity_sql: str, timestamp: str, schemas: Mapping[str, Mapping[str, str]],
        output: Path | None) -> tuple[int | pa.Table, int]:
    """The training set of ``entity_sql``: streamed to ``output`` (→ rows written) or, without
    it, an Arrow table; and the count of entity rows with a null key or timestamp."""
    _, stored, on_demand = views_of(defs, wanted)
    sql = query(defs, wanted, entity_sql, describe(session, entity_sql), timestamp, schemas,
                keep_ts=bool(on_demand))
    nulls = null_key_rows(session, defs, wanted, entity_sql, timestamp)
    drop = [TS] + [f.name for f in stored if f not in wanted]
    if output is None:
        return result_table(session, sql, on_demand, drop), nulls
    return write(session, sql, output, on_demand, drop), nulls
