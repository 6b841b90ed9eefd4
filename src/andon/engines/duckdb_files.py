"""DuckDB's readers of the files senders deliver (CSV with rejects, text lines, numbered
Parquet rows, JSON fields), as sqlglot expressions for ``andon.engines.duckdb``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlglot import exp

from andon.engines.base import CsvOptions
from andon.engines.sql import literal


def _option(name: str, value: exp.Expression) -> exp.Expression:
    """A named argument of a table function: ``name = value``."""
    return exp.EQ(this=exp.column(name), expression=value)


def read_csv(file: str | Path, columns: Sequence[tuple[str, str]],
             options: CsvOptions) -> exp.Expression:
    """DuckDB's CSV reader with the types given, nothing sniffed, and the lines that do not
    parse stored as rejects (``store_rejects``)."""
    types = exp.Struct(expressions=[
        exp.PropertyEQ(this=exp.Literal.string(name), expression=exp.Literal.string(kind))
        for name, kind in columns])
    args = [
        literal(str(file)),
        _option("header", literal(options.header)),
        _option("columns", types),
        _option("delim", literal(options.delimiter)),
        _option("quote", literal(options.quote)),
        # RFC 4180: a quote inside a quoted field is doubled (DuckDB 1.4 needs it said)
        _option("escape", literal(options.quote)),
        _option("nullstr", exp.Array(expressions=[literal(v) for v in options.null_values])),
        _option("store_rejects", exp.true()),
        _option("auto_detect", exp.false()),
        _option("compression", literal("auto")),
    ]
    if options.encoding != "utf-8":
        args.append(_option("encoding", literal(options.encoding)))
    if options.date_format:
        args.append(_option("dateformat", literal(options.date_format)))
    if options.timestamp_format:
        args.append(_option("timestampformat", literal(options.timestamp_format)))
    return exp.Anonymous(this="read_csv", expressions=args)


def read_lines(file: str | Path) -> exp.Expression:
    """Each line of a text file whole: the CSV reader with a delimiter that does not occur in
    text (ASCII record separator), no quoting and no escaping."""
    reader = exp.Anonymous(this="read_csv", expressions=[
        literal(str(file)),
        _option("columns", exp.Struct(expressions=[
            exp.PropertyEQ(this=exp.Literal.string("text"),
                           expression=exp.Literal.string("VARCHAR"))])),
        _option("header", exp.false()),
        _option("delim", exp.Anonymous(this="chr", expressions=[literal(30)])),
        _option("quote", literal("")),
        _option("escape", literal("")),
        _option("auto_detect", exp.false()),
        _option("compression", literal("auto")),
    ])
    # DuckDB keeps a scan's rows in file order, so numbering them numbers the lines
    number = exp.alias_(exp.Window(this=exp.RowNumber()), "line", quoted=True)
    return exp.select(number, exp.column("text", quoted=True)).from_(reader).subquery()


def scan_numbered(file: str | Path, column: str) -> exp.Expression:
    """One Parquet file's rows with their number from 1 in ``column``: the reader's
    ``file_row_number``, so the file streams through (no window)."""
    reader = exp.Anonymous(this="read_parquet", expressions=[
        literal(str(file)), _option("file_row_number", exp.true())])
    number = exp.alias_(exp.Add(this=exp.column("file_row_number"),
                                expression=literal(1)), column, quoted=True)
    rest = exp.Star(except_=[exp.column("file_row_number")])
    return exp.select(number, rest).from_(reader).subquery()


def json_object(text: exp.Expression) -> exp.Expression:
    """``text`` when it is a JSON object, else NULL (``json_type`` only once it is valid)."""
    is_object = exp.EQ(this=exp.Anonymous(this="json_type", expressions=[text.copy()]),
                       expression=literal("OBJECT"))
    inner = exp.Case().when(is_object, text.copy())
    return exp.Case().when(exp.Anonymous(this="json_valid", expressions=[text.copy()]), inner)


def json_field(document: exp.Expression, key: str) -> exp.Expression:
    """A top-level key's value as text: a JSON path ``$.key`` (quoted unless a plain name)."""
    name = key if key.isidentifier() else '"' + key.replace('"', '\\"') + '"'
    return exp.Anonymous(this="json_extract_string",
                         expressions=[document.copy(), literal("$." + name)])
