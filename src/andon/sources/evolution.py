"""Schema evolution of a source (``evolve:`` in andon.yaml), for every kind of source.

Each file is compared, before it lands, with the source's schema as it stands: the contract's
columns, plus the columns and types earlier files brought. What differs is a change, recorded
with the file that brought it (``andon sources history NAME``):

- ``added``: a column the contract does not have (``add_columns``: it joins the source,
  older rows read null; ``rescue``: its values go to ``_rescued_data`` as JSON, ``rescued``);
- ``removed``: a column the file lacks (kept, null for the file's rows); ``restored`` when
  it comes back;
- ``widened``: a wider type of the same family (tinyint → smallint → integer → bigint →
  hugeint → real → double, decimal → double, date → timestamp → timestamptz).

``strict`` refuses any change; every policy refuses a type that is not a widening (text in a
number column: a narrowing). A refused file stops the line with the diff, naming the file,
and nothing of its batch lands.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from andon.config import ColumnSpec, SourceConfig, duckdb_type
from andon.errors import SourceError
from andon.store import Row, Store
from andon.store.sources import SourceRepository

RESCUE_COLUMN = "_rescued_data"

_NUMERIC = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE"]
_TEMPORAL = ["DATE", "TIMESTAMP", "TIMESTAMPTZ"]
# a DuckDB type as a contract type name (andon.config.TYPE_ALIASES)
_CONTRACT_NAME = {"TINYINT": "tinyint", "SMALLINT": "smallint", "INTEGER": "bigint",
                  "BIGINT": "bigint", "HUGEINT": "hugeint", "FLOAT": "real", "DOUBLE": "double",
                  "VARCHAR": "varchar", "BOOLEAN": "boolean", "DATE": "date", "TIME": "time",
                  "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamptz", "UUID": "uuid",
                  "BLOB": "blob"}


@dataclass(frozen=True)
class Change:
    change: str  # added, removed, restored, widened, rescued, narrowed
    column: str
    old_type: str | None
    new_type: str | None

    def line(self) -> str:
        mark = {"added": "+", "rescued": "+", "removed": "-", "restored": "+"}.get(
            self.change, "~")
        types = (f" {self.old_type} -> {self.new_type}" if self.old_type and self.new_type
                 else f" {self.new_type or self.old_type}" if self.new_type or self.old_type
                 else "")
        return f"  {mark} {self.column}{types} ({self.change})"


def _arrow_type(t: object) -> str | None:
    """A pyarrow type as a DuckDB type name; None for a column of nulls only."""
    import pyarrow as pa

    assert isinstance(t, pa.DataType)
    if pa.types.is_null(t):
        return None
    if pa.types.is_integer(t):
        bits = t.bit_width + (1 if pa.types.is_unsigned_integer(t) else 0)
        return _NUMERIC[min((bits - 1).bit_length() - 3, 4)] if bits <= 64 else "HUGEINT"
    if pa.types.is_floating(t):
        return "FLOAT" if t.bit_width <= 32 else "DOUBLE"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_time(t):
        return "TIME"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BLOB"
    return "VARCHAR"  # text, and nested values (read as JSON text)


def file_schema(path: Path, fmt: str, source: SourceConfig,
                display: str, step: str) -> dict[str, str | None]:
    """Column → DuckDB type of a file (None: unknown, as CSV columns are text until cast)."""
    from andon.ingest import _csv_header, _open_binary

    if fmt == "csv":
        if not source.csv.header:
            return dict.fromkeys(source.columns)
        return dict.fromkeys(_csv_header(path, display, step, source))
    try:
        with _open_binary(path, display, step) as f:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                schema = pq.read_schema(f)
            else:
                import pyarrow.json as pj

                schema = pj.read_json(f).schema
    except (OSError, ValueError) as e:
        raise SourceError(f"cannot read the file's schema: {str(e).splitlines()[0]}",
                          file=display, step=step) from e
    return {name: _arrow_type(schema.field(name).type) for name in schema.names}


def _rank(t: str) -> tuple[str, float] | None:
    if t in _NUMERIC:
        return "number", _NUMERIC.index(t)
    if t.startswith("DECIMAL"):
        return "number", 5.5
    if t in _TEMPORAL:
        return "time", _TEMPORAL.index(t)
    return None


def compare_type(have: str, new: str) -> str | None:
    """None when ``new`` values fit a ``have`` column; ``widened`` when ``new`` is a wider
    type of the same family; ``narrowed`` otherwise."""
    if have == new or have == "VARCHAR":
        return None
    a, b = _rank(have), _rank(new)
    if a is None or b is None or a[0] != b[0]:
        return "narrowed"
    return None if b[1] <= a[1] else "widened"


@dataclass
class SchemaState:
    """The columns a source has now (name → DuckDB type) and the latest change of each."""

    columns: dict[str, str]
    latest: dict[str, str]
    rescued: set[str]

    def apply(self, c: Change) -> None:
        self.latest[c.column] = c.change
        if c.change in ("added", "widened") and c.new_type:
            self.columns[c.column] = c.new_type
        elif c.change == "rescued":
            self.rescued.add(c.column)


def state_of(source: SourceConfig, history: Sequence[Row]) -> SchemaState:
    state = SchemaState({c: s.duckdb_type for c, s in source.columns.items()}, {}, set())
    for r in history:
        state.apply(Change(r["change"], r["column_name"], r["old_type"], r["new_type"]))
    return state


def changes_of(state: SchemaState, schema: dict[str, str | None],
               policy: str) -> list[Change]:
    out: list[Change] = []
    for col, typ in schema.items():
        if col not in state.columns:
            if col not in state.rescued:
                kind = "rescued" if policy == "rescue" else "added"
                out.append(Change(kind, col, None, typ or "VARCHAR"))
            continue
        have = state.columns[col]
        verdict = compare_type(have, typ) if typ else None
        if verdict:
            out.append(Change(verdict, col, have, typ))
        if state.latest.get(col) == "removed":
            out.append(Change("restored", col, None, have))
    for col, typ in state.columns.items():
        if col not in schema and state.latest.get(col) != "removed":
            out.append(Change("removed", col, typ, None))
    return out


def review(store: Store, name: str, files: Sequence[tuple[Path, str, SourceConfig]],
           ) -> list[list[Change]]:
    """The changes each file of a batch brings (in order), or a SourceError naming the first
    file whose change the policy refuses. ``files``: (path, display name, its contract)."""
    from andon.ingest import file_format

    if not files or files[0][2].evolve is None:
        return [[] for _ in files]
    source = files[0][2]
    policy = source.evolve or "add_columns"
    state = state_of(source, live_changes(store, name))
    out: list[list[Change]] = []
    for path, display, spec in files:
        schema = file_schema(path, file_format(spec, path), spec, display, name)
        found = changes_of(state, schema, policy)
        breaking = [c for c in found if c.change == "narrowed"
                    or (policy == "strict" and c.change != "restored")]
        if breaking:
            raise SourceError(
                f"the schema of {display} breaks the contract of source {name!r} "
                f"(evolve: {policy}):\n" + "\n".join(c.line() for c in found),
                file=display, step=name,
                hint=("a narrowing never passes: fix the file, or change the column's type "
                      "in andon.yaml" if any(c.change == "narrowed" for c in breaking) else
                      "fix the file, or accept the change: update 'columns:' in andon.yaml "
                      "or set evolve: add_columns") + "; nothing of this batch landed")
        for c in found:
            state.apply(c)
        out.append(found)
    return out


def record(store: Store, name: str, landed: Sequence[Row],
           changes: Sequence[Sequence[Change]]) -> None:
    """Keep the changes with the files (landed rows) that brought them."""
    now = time.time()
    rows = [{"source": name, "sha256": row["sha256"], "file": Path(row["original_path"]).name,
             "change": c.change, "column_name": c.column, "old_type": c.old_type,
             "new_type": c.new_type, "at": now}
            for row, found in zip(landed, changes, strict=True) for c in found]
    SourceRepository(store.engine).add_changes(rows)


def live_changes(store: Store, name: str) -> list[Row]:
    """The changes the files still read brought (a withdrawn file's are not the source's;
    a superseded one's are: the file that supersedes it brought nothing new)."""
    live = [r["sha256"] for r in store.landed_files(name) if r.get("withdrawn_at") is None]
    return SourceRepository(store.engine).changes(name, live)


def effective_source(store: Store, name: str, source: SourceConfig
                     ) -> tuple[SourceConfig, str]:
    """The contract a build ingests with: the declared columns, plus the columns and wider
    types the files brought; and a hash of the changes (part of the address of each
    ingested part: a new column re-ingests older files, null in it)."""
    if source.evolve is None:
        return source, ""
    history = live_changes(store, name)
    state = state_of(source, history)
    columns = dict(source.columns)
    for col, typ in state.columns.items():
        if col not in columns or columns[col].duckdb_type != typ:
            prior = columns.get(col, ColumnSpec())
            columns[col] = prior.model_copy(update={"type": contract_type(typ)})
    key = json.dumps([[r["change"], r["column_name"], r["new_type"]] for r in history])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16] if history else ""
    return source.model_copy(update={"columns": columns}), digest


def contract_type(duck: str) -> str:
    name = _CONTRACT_NAME.get(duck, duck.lower())
    duckdb_type(name)  # a valid contract type, or ValueError
    return name


def history(store: Store, name: str) -> list[Row]:
    """Every recorded change of a source, oldest first."""
    return [{"at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r["at"])),
             "file": r["file"], "sha256": r["sha256"], "change": r["change"],
             "column": r["column_name"], "old_type": r["old_type"],
             "new_type": r["new_type"]}
            for r in SourceRepository(store.engine).changes(name)]


def kept(rows: Sequence[Row], recorded: Sequence[Row], changes: Sequence[Sequence[Change]]
         ) -> tuple[list[Row], list[Sequence[Change]]]:
    """The rows this landing recorded (not landed meanwhile by another run) and their
    changes; ``changes`` is empty or one list per row."""
    if not changes:
        return [], []
    pairs = [(r, c) for r, k, c in zip(rows, recorded, changes, strict=True) if k is r]
    return [r for r, _ in pairs], [c for _, c in pairs]
