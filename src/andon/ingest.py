"""Turn one landed file into a typed Parquet part under the source's contract.

Rows that do not parse (wrong column count, a value that does not fit its type, a missing
required value, a line that is not a JSON object) go to the rejects with file, line and reason.
CSV is parsed by the engine's reader (``Engine.read_csv``), which keeps the lines it cannot
parse; JSON lines and Parquet are read raw and cast with ``TRY_CAST`` so that every failure is
attributable to a line (or row). The queries are sqlglot expressions rendered by the engine.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import shutil
import typing
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlglot import exp

from andon.config import SourceConfig
from andon.engines.base import CsvOptions, Engine, EngineError, Interrupted, ReadFailed
from andon.engines.sql import cast, column, ident, literal
from andon.errors import SourceError, StepError
from andon.store import Row
from andon.warehouse import write_error

LANDED_FILE_COLUMN = "_landed_file"
RESCUE_COLUMN = "_rescued_data"  # evolve: rescue keeps columns the contract lacks here, as JSON
MAX_REJECTS_STORED = 10_000


@dataclass(frozen=True)
class IngestResult:
    rows: int
    rejects: int
    rejected: tuple[Row, ...]  # at most MAX_REJECTS_STORED, with file/line/column/reason/raw


def judge_rejects(source: SourceConfig, files: Sequence[tuple[str, int, int]],
                  step: str) -> None:
    """Stop the line when a file's share of rejected rows is over the source's
    ``max_reject_pct``: a file of rows that mostly do not parse is a broken export, not data.

    ``files`` holds (file name, rows kept, rows rejected) for every file the source reads."""
    pct = source.max_reject_pct
    over = [(name, rows, rejects) for name, rows, rejects in files
            if rejects and 100.0 * rejects / (rows + rejects) > pct]
    if not over:
        return
    name, rows, rejects = over[0]
    others = f" (and {len(over) - 1} more file{'s' if len(over) > 2 else ''})" if len(over) > 1 \
        else ""
    raise StepError(
        f"{rejects} of {rows + rejects} rows rejected "
        f"({100.0 * rejects / (rows + rejects):.1f}% > max_reject_pct {pct:g}){others}",
        file=name,
        step=step,
        hint=f"see them with: andon rejects {step}; if the file should not have been sent, "
             f"take it out with: andon landing withdraw {step} {name} --reason \"...\"; "
             f"or raise max_reject_pct of the source in andon.yaml",
    )


def file_format(source: SourceConfig, path: Path) -> str:
    if source.format:
        return source.format
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zip")]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".csv", ".tsv", ".txt"):
        return "csv"
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext == ".parquet":
        return "parquet"
    raise SourceError(
        f"cannot tell the format of {path.name}",
        file=path,
        hint="set 'format: csv|jsonl|parquet' on the source in andon.yaml",
    )


def _zip_member(z: zipfile.ZipFile, path: Path, display: str, step: str) -> zipfile.ZipInfo:
    members = [m for m in z.infolist() if not m.is_dir()]
    if len(members) != 1:
        raise SourceError(
            f"a zip file must hold exactly one file; {display} holds {len(members)}",
            file=display,
            step=step,
        )
    return members[0]


@contextlib.contextmanager
def _readable(path: Path, scratch: Path, display: str, step: str) -> Iterator[Path]:
    """DuckDB reads plain and .gz files itself; a .zip's single member is extracted first."""
    if path.suffix.lower() != ".zip":
        yield path
        return
    try:
        with zipfile.ZipFile(path) as z:
            member = _zip_member(z, path, display, step)
            target = scratch / Path(member.filename).name
            with z.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as e:
        raise SourceError(f"not a valid zip file: {e}", file=display, step=step) from e
    try:
        yield target
    finally:
        target.unlink(missing_ok=True)


@contextlib.contextmanager
def _open_binary(path: Path, display: str, step: str) -> Iterator[IO[bytes]]:
    """The (decompressed) bytes of a plain, .gz or single-member .zip file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as z, z.open(_zip_member(z, path, display, step)) as f:
                yield f
        elif suffix == ".gz":
            with gzip.open(path, "rb") as g:
                yield typing.cast(IO[bytes], g)
        else:
            with path.open("rb") as f:
                yield f
    except zipfile.BadZipFile as e:
        raise SourceError(f"not a valid zip file: {e}", file=display, step=step) from e


# Python's names of the encodings a source may declare (utf-8 may start with a BOM)
_CODECS = {"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}


def _first_line(path: Path, display: str, step: str, encoding: str = "utf-8") -> str | None:
    """The header line, decoded on its own: a bad byte further down is a rejected row of its
    own line (DuckDB's reader reports it), not a refusal of the whole file."""
    try:
        with _open_binary(path, display, step) as raw:
            if encoding == "utf-16":  # two-byte newlines: let the codec find the line
                line: str = io.TextIOWrapper(raw, encoding="utf-16", newline="").readline()
            else:
                data = raw.readline()
                try:
                    line = data.decode(_CODECS[encoding])
                except UnicodeDecodeError as e:
                    raise decode_error(e, data, display, step, encoding) from e
    except UnicodeDecodeError as e:
        raise SourceError(f"the file is not {encoding}: {e.reason}", file=display, line=1,
                          step=step, hint=_ENCODING_HINT) from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise SourceError(f"cannot read the file: {e}", file=display, line=1, step=step) from e
    return line if line.strip() else None


_ENCODING_HINT = ("if the sender exports another encoding, declare it on the source in "
                  "andon.yaml: csv: {encoding: latin-1} (or utf-16)")


def decode_error(e: UnicodeDecodeError, data: bytes, display: str, step: str,
                 encoding: str) -> SourceError:
    """A decoding failure named by the line it is on (``data`` starts at the file's first
    byte) and the byte, not by an offset into a buffer."""
    before = data[: e.start]
    line = before.count(b"\n") + 1
    column = e.start - (before.rfind(b"\n") + 1) + 1
    byte = data[e.start : e.start + 1].hex()
    return SourceError(
        f"byte 0x{byte} at column {column} is not valid {encoding} ({e.reason})",
        file=display, line=line, step=step, hint=_ENCODING_HINT,
    )


def check_file(source: SourceConfig, path: Path, display: str, step: str) -> None:
    """Refuse a file that cannot be ingested at all, before it lands: unknown format, empty,
    a broken archive, a header (or Parquet schema) without a required column.

    Rows that do not parse are not checked here: they become rejects at ingest.
    """
    fmt = file_format(source, path)
    if path.stat().st_size == 0:
        raise SourceError(
            "the file is empty (0 bytes)",
            file=display,
            step=step,
            hint="a sender that failed midway? replace the file with a complete one",
        )
    if fmt == "csv" and source.csv.header:
        _csv_header(path, display, step, source)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            with _open_binary(path, display, step) as f:
                names = pq.read_schema(f).names
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise SourceError(f"not a readable Parquet file: {e}", file=display,
                              step=step) from e
        _require_columns(source, sorted(set(names)), display, step)
    else:
        try:
            with _open_binary(path, display, step) as f:
                f.read(1)
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise SourceError(f"cannot read the file: {e}", file=display, step=step) from e


def _require_columns(source: SourceConfig, have: Sequence[str], display: str, step: str,
                     line: int | None = None) -> None:
    missing = [c for c, spec in source.columns.items() if spec.required and c not in have]
    if missing:
        where = "the header lacks" if line else "the file lacks"
        raise SourceError(
            f"{where} required column(s) {', '.join(missing)}; it has: {', '.join(have)}",
            file=display,
            line=line,
            step=step,
            hint="fix the file, or the source's 'columns:' contract in andon.yaml",
        )


def _csv_header(path: Path, display: str, source_name: str, source: SourceConfig) -> list[str]:
    """The column names of a CSV file's header line, checked against the contract."""
    opts = source.csv
    first = _first_line(path, display, source_name, opts.encoding)
    if first is None:
        raise SourceError(
            "the file has no header line (it is empty)",
            file=display,
            line=1,
            step=source_name,
            hint="a sender that failed midway? replace the file with a complete one",
        )
    header = next(csv.reader(io.StringIO(first), delimiter=opts.delimiter, quotechar=opts.quote))
    header = [h.strip() for h in header]
    _require_columns(source, header, display, source_name, line=1)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise SourceError(
            f"the header repeats column(s) {', '.join(dupes)}", file=display, line=1,
            step=source_name,
        )
    return header


def ingest_file(
    engine: Engine,
    landed: Path,
    display_name: str,
    source_name: str,
    source: SourceConfig,
    out: Path,
) -> IngestResult:
    """Write the typed rows of ``landed`` to ``out`` (Parquet) with ``engine`` (its thread's
    session); return counts and rejects."""
    fmt = file_format(source, landed)
    check_file(source, landed, display_name, source_name)
    with _readable(landed, out.parent, display_name, source_name) as path:
        if fmt == "csv":
            return _ingest_csv(engine, path, display_name, source_name, source, out)
        if fmt == "jsonl":
            raw = _jsonl_raw(engine, path)
        else:
            raw = _parquet_raw(engine, path, display_name, source_name, source)
        return _ingest_raw(engine, raw, fmt == "jsonl", display_name, source_name, source, out)


def _alias(e: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(e, ident(name))


def _landed(display: str) -> exp.Expr:
    return _alias(literal(display), LANDED_FILE_COLUMN)


def _ingest_csv(
    engine: Engine,
    path: Path,
    display: str,
    source_name: str,
    source: SourceConfig,
    out: Path,
) -> IngestResult:
    opts = source.csv
    contract = source.columns
    file_cols = _csv_header(path, display, source_name, source) if opts.header else list(contract)
    types = [(c, contract[c].duckdb_type if c in contract else "VARCHAR") for c in file_cols]
    options = CsvOptions(header=opts.header, delimiter=opts.delimiter, quote=opts.quote,
                         null_values=tuple(opts.null_values), encoding=opts.encoding,
                         date_format=opts.date_format, timestamp_format=opts.timestamp_format)
    select = [
        column(c) if c in file_cols
        else _alias(cast(None, spec.duckdb_type, dialect=engine.dialect), c)
        for c, spec in contract.items()
    ]
    select += _rescued(source, [(c, column(c)) for c in file_cols if c not in contract])
    query = exp.select(*select, _landed(display)).from_(engine.read_csv(path, types, options))
    session = engine.cursor()
    session.parse_rejects()  # forget what an earlier file that failed left
    required = [c for c, spec in contract.items() if spec.required]
    try:
        rows = _copy(engine, query, out, source_name)
    except Interrupted:
        raise
    except EngineError as e:
        raise SourceError(f"cannot parse the file: {_reason(str(e))}", file=display,
                          step=source_name) from e
    rejected: dict[int, Row] = {}
    for r in session.parse_rejects():
        if r.line in rejected:
            rejected[r.line]["reason"] += "; " + _reason(r.message)
            continue
        rejected[r.line] = _reject(source_name, display, r.line, r.column, _reason(r.message),
                                   r.raw)
    if required:
        rows, extra = _drop_required_nulls(engine, out, required, display, source_name, contract,
                                           header_lines=1 if opts.header else 0,
                                           rejected_lines=sorted(rejected))
        for row in extra:
            rejected[row["line"]] = row
    ordered = [rejected[k] for k in sorted(rejected)]
    return IngestResult(rows=rows, rejects=len(ordered),
                        rejected=tuple(ordered[:MAX_REJECTS_STORED]))


def _rescued(source: SourceConfig, extras: Sequence[tuple[str, exp.Expr]]) -> list[exp.Expr]:
    """With ``evolve: rescue``, the column of what the contract lacks: a JSON object of the
    file's other columns (null when it has none)."""
    if source.evolve != "rescue":
        return []
    if not extras:
        return [_alias(cast(None, "VARCHAR"), RESCUE_COLUMN)]
    pairs = [e for name, value in extras for e in (literal(name), value)]
    return [_alias(cast(exp.Anonymous(this="json_object", expressions=pairs), "VARCHAR"),
                   RESCUE_COLUMN)]


def _reason(message: str) -> str:
    return message.split("\n")[0].strip()


def _reject(source: str, file: str, line: int | None, column: Any, reason: str, raw: Any) -> Row:
    return {
        "source": source,
        "file": file,
        "line": line,
        "column_name": column,
        "reason": reason,
        "raw": None if raw is None else str(raw)[:2000],
    }


def _copy(engine: Engine, query: exp.Expression, out: Path, step: str) -> int:
    """Write the rows of ``query`` to ``out``; a failed write (disk full, read-only) is a
    WarehouseError, not a parse error of the file."""
    try:
        return engine.materialize(query, out, compression="zstd")
    except ReadFailed as e:
        err = write_error(e, out.parent, step)
        if err is None:
            raise
        raise err from e


def _fetchone(engine: Engine, query: exp.Expression) -> int:
    row = engine.cursor().execute(query).fetchone()
    return int(row[0]) if row else 0


_LINE = "_andon_line"  # the row number a scan of a Parquet file adds


def _drop_required_nulls(
    engine: Engine,
    out: Path,
    required: list[str],
    display: str,
    source_name: str,
    contract: Any,
    *,
    header_lines: int,
    rejected_lines: list[int],
) -> tuple[int, list[Row]]:
    """Rows missing a required value leave the part and join the rejects (rare path)."""
    missing = exp.or_(*(column(c).is_(exp.null()) for c in required))
    numbered = engine.scan_numbered(out, _LINE)
    bad = engine.cursor().execute(
        exp.select("*").from_(numbered).where(missing.copy()).order_by(column(_LINE))
        .limit(MAX_REJECTS_STORED)
    ).fetchall()
    total = _fetchone(engine, exp.select(exp.Count(this=exp.Star())).from_(engine.scan([out])))
    if not bad:
        return total, []
    names = [_LINE, *contract, LANDED_FILE_COLUMN]
    out_rows: list[Row] = []
    skipped = iter(rejected_lines)
    next_skip = next(skipped, None)
    shift = 0
    for rec in bad:
        values = dict(zip(names, rec, strict=False))
        n = int(values[_LINE])
        # the file line of data row n: header + n + rejected lines that came before it
        while next_skip is not None and next_skip <= header_lines + n + shift:
            shift += 1
            next_skip = next(skipped, None)
        empty = [c for c in required if values.get(c) is None]
        out_rows.append(
            _reject(source_name, display, header_lines + n + shift, empty[0],
                    f"required column(s) {', '.join(empty)} missing", None)
        )
    tmp = out.with_suffix(".filtered.parquet")
    kept = _copy(engine, exp.select("*").from_(engine.scan([out])).where(exp.not_(missing)),
                 tmp, source_name)
    tmp.replace(out)
    return kept, out_rows


def _jsonl_raw(engine: Engine, path: Path) -> exp.Select:
    """One row per non-blank line: its number, its text, whether it is a JSON object and
    the object (``doc``)."""
    text = column("text")
    lines = exp.select(column("line"), _alias(text.copy(), "raw"),
                       _alias(engine.json_object(text.copy()), "doc")
                       ).from_(engine.read_lines(path)).where(
        exp.NEQ(this=exp.Trim(this=text.copy()), expression=literal("")))
    ok = _alias(exp.not_(column("doc").is_(exp.null())), "ok")
    return exp.select(column("line"), column("raw"), ok, column("doc")).from_(lines.subquery())


def _parquet_raw(engine: Engine, path: Path, display: str, source_name: str,
                 source: SourceConfig) -> exp.Select:
    numbered = engine.scan_numbered(path, _LINE)
    try:
        have = {c for c, _ in engine.describe(exp.select("*").from_(numbered))}
        have.discard(_LINE)
    except Interrupted:
        raise
    except EngineError as e:
        raise SourceError(f"not a readable Parquet file: {e}", file=display,
                          step=source_name) from e
    _require_columns(source, sorted(have), display, source_name)
    cols = [_alias(column(c) if c in have else exp.null(), "c_" + c) for c in source.columns]
    if source.evolve == "rescue":  # the file's other columns, for _rescued_data
        cols += [_alias(column(c), "x_" + c) for c in sorted(have) if c not in source.columns]
    # the row number comes from the reader: no window, the file streams through
    return exp.select(_alias(column(_LINE), "line"), _alias(exp.null(), "raw"),
                      _alias(exp.true(), "ok"), *cols).from_(numbered)


def _ingest_raw(
    engine: Engine,
    raw: exp.Select,
    is_json: bool,
    display: str,
    source_name: str,
    source: SourceConfig,
    out: Path,
) -> IngestResult:
    """Cast raw values to the contract; rows with any failure become rejects."""
    raw_of: dict[str, exp.Expression] = {
        c: engine.json_field(column("doc"), c) if is_json else column("c_" + c)
        for c in source.columns}
    typed = [_alias(cast(raw_of[c].copy(), spec.duckdb_type, safe=True, dialect=engine.dialect),
                    c) for c, spec in source.columns.items()]
    raws = [_alias(raw_of[c].copy(), "raw_" + c) for c in source.columns]
    if source.evolve != "rescue":
        extras: list[tuple[str, exp.Expr]] = []
    elif is_json:
        keys = engine.cursor().execute(exp.select(exp.Distinct(expressions=[exp.Unnest(
            expressions=[exp.Anonymous(this="json_keys", expressions=[column("doc")])])]))
            .from_(raw.subquery()).where(column("ok"))).fetchall()
        extras = [(k, engine.json_field(column("doc"), k)) for (k,) in sorted(keys)
                  if k not in source.columns]
    else:
        names = [s.alias for s in raw.expressions if s.alias.startswith("x_")]
        extras = [(n[2:], column(n)) for n in names]
    rescue = _rescued(source, extras)
    carried = ([column("doc")] if is_json else [e.copy() for _, e in extras]) if rescue \
        else []
    raw_table = exp.select(column("line"), column("raw"), column("ok"), *typed, *raws,
                           *carried).from_(raw.subquery())
    problems: list[exp.Expression] = []
    if is_json:
        problems.append(exp.Case().when(exp.not_(column("ok")), literal("not a JSON object")))
    for c, spec in source.columns.items():
        given = exp.not_(column("raw_" + c).is_(exp.null()))
        text = exp.DPipe(this=exp.DPipe(this=literal(f"column {c}: cannot convert "),
                                        expression=cast(column("raw_" + c), "VARCHAR")),
                         expression=literal(" to " + spec.duckdb_type))
        problems.append(exp.Case().when(exp.and_(given, column(c).is_(exp.null())), text))
        if spec.required:
            problems.append(exp.Case().when(
                exp.and_(column("ok"), column("raw_" + c).is_(exp.null())),
                literal(f"required column {c} missing")))
    # concat_ws skips NULLs: the reasons that apply, joined (empty when none does)
    reason = exp.Anonymous(this="concat_ws", expressions=[literal("; "), *problems])
    # nothing is materialised: one streaming pass writes the good rows (in file order, as
    # the engine preserves insertion order), another counts and samples the rejects
    classified = exp.select("*", _alias(reason, "reason")).from_(raw_table.subquery())

    def rows_where(good: bool) -> exp.Select:
        test = exp.EQ if good else exp.NEQ
        return exp.select(*[column(c) for c in source.columns], *rescue, _landed(display)
                          ).from_(classified.subquery()).where(
            test(this=column("reason"), expression=literal("")))

    rows = _copy(engine, rows_where(True), out, source_name)
    bad_rows = exp.select("*").from_(classified.subquery()).where(
        exp.NEQ(this=column("reason"), expression=literal("")))
    count = _fetchone(engine, exp.select(exp.Count(this=exp.Star())).from_(bad_rows.subquery()))
    bad = engine.cursor().execute(
        exp.select(column("line"), column("reason"), column("raw")).from_(bad_rows.subquery())
        .order_by(column("line")).limit(MAX_REJECTS_STORED)
    ).fetchall() if count else []
    rejected = tuple(_reject(source_name, display, int(n), None, r, raw) for n, r, raw in bad)
    return IngestResult(rows=rows, rejects=count, rejected=rejected)
