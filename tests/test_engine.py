"""The engine interface on its own: errors come out as their kinds, artifacts round trip,
a confined engine reads only what it is given, and the SQL andon builds (sqlglot
expressions) survives names and values full of quotes, spaces and unicode, from a landed
CSV file to a built step."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot import exp

from andon import engines
from andon.engines import (
    CsvOptions,
    Engine,
    EngineError,
    Interrupted,
    InvalidInput,
    ReadFailed,
    UnknownObject,
)
from andon.engines.sql import cast, column, ident, literal
from andon.incremental import inside_sql, window_sql
from tests.conftest import Cli, ProjectFactory

ODD = ["it's \"quoted\"", "a b", "ville d'été", "naïve;,col"]


@pytest.fixture
def engine() -> Iterator[Engine]:
    made = engines.create()
    yield made
    made.close()


def test_a_syntax_error_is_invalid_input(engine: Engine) -> None:
    with pytest.raises(InvalidInput) as e:
        engine.cursor().execute("SELEC 1")
    assert "syntax error" in e.value.first_line.lower()


def test_an_unknown_table_or_column_is_unknown_object(engine: Engine) -> None:
    with pytest.raises(UnknownObject, match="no_such_table"):
        engine.cursor().execute("SELECT * FROM no_such_table")
    with pytest.raises(UnknownObject, match="nope"):
        engine.cursor().execute(exp.select(column("nope")).from_(
            exp.Values(expressions=[exp.Tuple(expressions=[literal(1)])], alias="t")))


def test_a_failed_cast_is_invalid_input_and_a_missing_file_read_failed(
        engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        engine.cursor().execute("SELECT CAST('x' AS INTEGER)").fetchall()
    with pytest.raises(ReadFailed):
        engine.read_arrow([tmp_path / "missing.parquet"])


def test_an_interrupted_query_is_interrupted(engine: Engine) -> None:
    caught: list[BaseException] = []
    session = engine.session()

    def long_query() -> None:
        try:
            session.execute("SELECT sum(i * i) FROM range(1000000000000) AS t(i)").fetchall()
        except BaseException as e:  # the test looks at what it was
            caught.append(e)

    worker = threading.Thread(target=long_query)
    worker.start()
    while worker.is_alive():  # interrupting before the query starts does nothing: again
        engine.interrupt()
        worker.join(0.05)
    assert len(caught) == 1 and isinstance(caught[0], Interrupted), caught


def test_materialize_schema_and_read_arrow_round_trip(engine: Engine, tmp_path: Path) -> None:
    values = [(ODD[0], 42), (ODD[1], "it's \"text\""), (ODD[2], dt.date(2013, 1, 31)),
              (ODD[3], 2.5)]
    query = exp.select(*(exp.alias_(literal(v), ident(name)) for name, v in values))
    out = tmp_path / "out.parquet"
    assert engine.materialize(query, out) == 1
    assert engine.schema([out]) == ((ODD[0], "INTEGER"), (ODD[1], "VARCHAR"),
                                    (ODD[2], "DATE"), (ODD[3], "DECIMAL(2,1)"))
    table = engine.read_arrow([out])
    assert table.column_names == ODD
    assert table.to_pylist() == [{ODD[0]: 42, ODD[1]: "it's \"text\"",
                                  ODD[2]: dt.date(2013, 1, 31), ODD[3]: pytest.approx(2.5)}]
    back = tmp_path / "back.parquet"
    assert engine.write_arrow(table, back) == 1
    assert engine.read_arrow([back]).equals(table)
    assert engine.describe(exp.select("*").from_(engine.scan([out, back]))) \
        == engine.schema([out])


def test_a_confined_engine_reads_only_what_it_is_given(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    for folder in (inside, outside):
        pq.write_table(pa.table({"x": [1, 2]}), folder / "t.parquet")
    confined = engines.create(allowed=[inside])
    try:
        assert confined.read_arrow([inside / "t.parquet"]).num_rows == 2
        with pytest.raises(EngineError, match=r"(?i)permission|access"):
            confined.read_arrow([outside / "t.parquet"])
        with pytest.raises(EngineError):
            confined.cursor().execute("SET enable_external_access = true")
        with pytest.raises(EngineError, match=r"(?i)permission|access"):  # nor write there
            confined.materialize(exp.select(literal(1)), outside / "w.parquet")
        assert not (outside / "w.parquet").exists()
    finally:
        confined.close()


def test_read_csv_keeps_the_lines_it_cannot_parse(engine: Engine, tmp_path: Path) -> None:
    file = tmp_path / "odd.csv"
    header = ",".join('"' + c.replace('"', '""') + '"' for c in ODD)
    file.write_text(f"{header}\n1,\"O'Hara \"\"Jr\"\"\",x,NA\nnot a number,b,c,d\n3,,é,\n",
                    encoding="utf-8")
    columns = [(ODD[0], "INTEGER"), (ODD[1], "VARCHAR"), (ODD[2], "VARCHAR"),
               (ODD[3], "VARCHAR")]
    reader = engine.read_csv(file, columns, CsvOptions(null_values=("", "NA")))
    session = engine.cursor()
    rows = session.execute(exp.select("*").from_(reader)).fetchall()
    assert rows == [(1, "O'Hara \"Jr\"", "x", None), (3, None, "é", None)]
    [reject] = session.parse_rejects()
    assert (reject.line, reject.column, reject.raw) == (3, ODD[0], "not a number,b,c,d")
    assert "not a number" in reject.message
    assert session.parse_rejects() == []  # forgotten once returned


def test_incremental_predicates_quote_the_time_column(engine: Engine, tmp_path: Path) -> None:
    name = "jour d'\"arrivée\""
    out = tmp_path / "t.parquet"
    days = exp.select(exp.alias_(exp.Add(this=literal(dt.date(2013, 1, 1)), expression=cast(
        column("i"), "INTEGER")), ident(name))).from_(exp.Table(
        this=exp.Anonymous(this="range", expressions=[literal(60)]),
        alias=exp.TableAlias(this=ident("r"), columns=[ident("i")])))
    engine.materialize(days, out)

    def count(where: exp.Expression) -> int:
        row = engine.cursor().execute(
            exp.select(exp.Count(this=exp.Star())).from_(engine.scan([out])).where(where)
        ).fetchone()
        return int(row[0]) if row else 0

    assert count(window_sql(name, "DATE", ("2013-01-10", "2013-01-20"))) == 10
    assert count(inside_sql(name, "month", [("2013-02-01", "DATE")])) == 28
    assert count(inside_sql(name, None, [("2013-01-05", "DATE"), (None, "DATE")])) == 1
    assert count(exp.not_(inside_sql(name, "month", []))) == 60


def test_a_source_with_odd_names_and_values_lands_and_builds(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({
        "andon.yaml": (
            "name: t\n"
            "sources:\n"
            "  odd:\n"
            "    path: incoming/*.csv\n"
            "    columns:\n"
            "      'it''s \"id\"': {type: integer, required: true}\n"
            "      'a b': string\n"
            "      'ville d''été': string\n"
            "    max_reject_pct: 100\n"
        ),
        "incoming/odd.csv": (
            "\"it's \"\"id\"\"\",a b,ville d'été\n"
            "1,\"say \"\"hi\"\"\",O'Neil\n"
            "2,\"x, y\",Zürich\n"
            "oops,z,w\n"
            ",missing,id\n"
        ),
        "pipelines/p/renamed.sql": (
            "SELECT \"it's \"\"id\"\"\" AS id, \"a b\" || '!' AS \"quoted 'text'\", "
            "\"ville d'été\" AS \"ville\" FROM odd"
        ),
    })
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 0, out + err
    code, out, err = cli("query", 'SELECT * FROM renamed ORDER BY id', "-p", root,
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [
        {"id": 1, "quoted 'text'": 'say "hi"!', "ville": "O'Neil"},
        {"id": 2, "quoted 'text'": "x, y!", "ville": "Zürich"},
    ]
    code, out, err = cli("rejects", "odd", "-p", root, "--format", "json")
    assert code == 0, err
    got = {r["line"]: r for r in json.loads(out)}
    assert sorted(got) == [4, 5]
    assert got[4]["column"] == "it's \"id\"" and "oops" in got[4]["reason"]
    assert "required" in got[5]["reason"] and "it's \"id\"" in got[5]["reason"]


def test_a_data_diff_compares_columns_with_odd_names(engine: Engine, tmp_path: Path) -> None:
    from andon.diff import _data_diff
    from andon.warehouse import Warehouse

    key, other = ODD[0], ODD[1]
    for name, rows in (("a.parquet", [(1, "x"), (2, "it's"), (3, "gone")]),
                       ("b.parquet", [(1, "x"), (2, "it's \"new\""), (4, "added")])):
        pq.write_table(pa.table({key: [r[0] for r in rows], other: [r[1] for r in rows]}),
                       tmp_path / name)
    schema = [(key, "BIGINT"), (other, "VARCHAR")]
    left = {"files": ["a.parquet"], "schema": schema}
    right = {"files": ["b.parquet"], "schema": schema}
    by_key = _data_diff(engine, Warehouse(tmp_path), left, right, [key])
    assert (by_key["added"], by_key["removed"], by_key["changed"]) == (1, 1, 1)
    assert by_key["sample_added"] == [{key: 4, other: "added"}]
    assert by_key["sample_removed"] == [{key: 3, other: "gone"}]
    assert by_key["sample_changed"] == [{key: 2, f"{other}_before": "it's",
                                         f"{other}_after": "it's \"new\""}]
    whole = _data_diff(engine, Warehouse(tmp_path), left, right, [])
    assert (whole["added"], whole["removed"]) == (2, 2)
