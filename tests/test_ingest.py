"""Sources: CSV, JSON lines and Parquet files (plain, .gz, .zip) ingested under a contract.

Rows that do not parse go to the rejects with file, line and reason; every accepted row is
there; a file that cannot be ingested at all fails the run and changes nothing.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Cli, ProjectFactory

CONTRACT = """\
    columns:
      id: {type: integer, required: true}
      amount: double
      name: string
"""


# these tests look at rejects one by one: the limit on a file's share of rejects is off,
# except in the tests about it
NO_LIMIT = "    max_reject_pct: 100\n"


def source_project(make_project: ProjectFactory, path: str = "incoming/*",
                   extra: str = NO_LIMIT) -> Path:
    """A project with one source ``orders`` reading files from ``incoming/``."""
    root = make_project({
        "andon.yaml": f"name: t\nsources:\n  orders:\n    path: {path}\n{CONTRACT}{extra}",
    })
    (root / "incoming").mkdir()
    return root


def run(cli: Cli, root: Path) -> tuple[int, str]:
    code, out, err = cli("run", "-p", root, "-q")
    return code, out + err


def rows(cli: Cli, root: Path, sql: str) -> Any:
    code, out, err = cli("query", sql, "-p", root, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def rejects(cli: Cli, root: Path, source: str = "orders") -> Any:
    code, out, err = cli("rejects", source, "-p", root, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def latest(cli: Cli, root: Path) -> Any:
    code, out, err = cli("runs", "show", "latest", "-p", root, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def tables(cli: Cli, root: Path) -> Any:
    code, out, _ = cli("tables", "-p", root, "--format", "json")
    return json.loads(out) if code == 0 else None


BAD_CSV = (
    "id,amount,name\n"
    "1,2.5,a\n"
    "2,abc,b\n"  # line 3: garbage in a typed column
    "3,1.0\n"  # line 4: wrong column count
    ",4.0,d\n"  # line 5: required id missing
    "5,5.0,e\n"
    "x7,1,f\n"  # line 7: "x7" in an integer column
    "8,,\n"
)


def test_csv_rejects_have_file_line_and_reason_and_are_counted(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project)
    (root / "incoming/orders.csv").write_text(BAD_CSV)
    code, out = run(cli, root)
    assert code == 0, out
    got = rejects(cli, root)
    assert [(r["file"], r["line"]) for r in got] == [
        ("orders.csv", 3), ("orders.csv", 4), ("orders.csv", 5), ("orders.csv", 7)]
    by_line = {r["line"]: r for r in got}
    assert "abc" in by_line[3]["reason"] and by_line[3]["column"] == "amount"
    assert "Columns" in by_line[4]["reason"] and by_line[4]["raw"] == "3,1.0"
    assert "required" in by_line[5]["reason"] and "id" in by_line[5]["reason"]
    assert "x7" in by_line[7]["reason"]
    step = latest(cli, root)["steps"][0]
    assert step["rejects"] == 4
    data_lines = BAD_CSV.count("\n") - 1
    assert step["rows"] == data_lines - 4 == 3
    assert rows(cli, root, "SELECT id, amount, name FROM orders ORDER BY id") == [
        {"id": 1, "amount": 2.5, "name": "a"},
        {"id": 5, "amount": 5.0, "name": "e"},
        {"id": 8, "amount": None, "name": None},
    ]


def test_jsonl_rejects_non_objects_bad_types_and_missing_required(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project)
    lines = [
        '{"id": 1, "amount": 2.5, "name": "a"}',
        '{"id": "abc", "amount": 1}',  # 2: garbage in integer
        "[1, 2]",  # 3: not an object
        "not json at all",  # 4
        '{"amount": 3}',  # 5: required id missing
        '{"id": 6, "amount": "x"}',  # 6: garbage in double
        '{"id": 7}',
        '"just a string"',  # 8
    ]
    (root / "incoming/events.jsonl").write_text("\n".join(lines) + "\n")
    code, out = run(cli, root)
    assert code == 0, out
    got = {r["line"]: r for r in rejects(cli, root)}
    assert sorted(got) == [2, 3, 4, 5, 6, 8]
    assert all(r["file"] == "events.jsonl" for r in got.values())
    assert "cannot convert abc" in got[2]["reason"]
    assert got[3]["reason"] == got[4]["reason"] == got[8]["reason"] == "not a JSON object"
    assert got[4]["raw"] == "not json at all"
    assert "required column id missing" in got[5]["reason"]
    assert "column amount" in got[6]["reason"]
    step = latest(cli, root)["steps"][0]
    assert (step["rows"], step["rejects"]) == (len(lines) - 6, 6)
    assert rows(cli, root, "SELECT id, amount FROM orders ORDER BY id") == [
        {"id": 1, "amount": 2.5}, {"id": 7, "amount": None}]


def test_parquet_values_are_cast_to_the_contract(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project)
    pq.write_table(pa.table({
        "id": ["30", None, "32", "33"],
        "amount": ["1.5", "2", "zz", "4"],
        "name": ["p", "q", "r", "s"],
        "extra": [1, 2, 3, 4],
    }), root / "incoming/batch.parquet")
    code, out = run(cli, root)
    assert code == 0, out
    got = rejects(cli, root)
    assert [(r["file"], r["line"]) for r in got] == [("batch.parquet", 2), ("batch.parquet", 3)]
    assert "required column id missing" in got[0]["reason"]
    assert "cannot convert zz to DOUBLE" in got[1]["reason"]
    assert rows(cli, root, "SELECT id, amount, name FROM orders ORDER BY id") == [
        {"id": 30, "amount": 1.5, "name": "p"}, {"id": 33, "amount": 4.0, "name": "s"}]
    code, out, _ = cli("show", "orders", "-p", root, "--format", "json")
    schema = {c["name"]: c["type"] for c in json.loads(out)["schema"]}
    assert schema["id"] == "BIGINT" and schema["amount"] == "DOUBLE"
    assert "extra" not in schema  # only the contract's columns


def test_parquet_without_a_required_column_fails(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project)
    pq.write_table(pa.table({"amount": [1.0]}), root / "incoming/batch.parquet")
    code, out = run(cli, root)
    assert code == 1
    assert "batch.parquet" in out and "required column(s) id" in out


def test_gz_and_zip_files_are_read_like_plain_ones(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project)
    (root / "incoming/a.csv").write_text("id,amount,name\n1,1.0,plain\n")
    (root / "incoming/b.csv.gz").write_bytes(gzip.compress(b"id,amount,name\n2,2.0,gz\nx,1,bad\n"))
    with zipfile.ZipFile(root / "incoming/c.csv.zip", "w") as z:
        z.writestr("inner/c.csv", "id,amount,name\n3,3.0,zip\n")
    (root / "incoming/d.jsonl.gz").write_bytes(gzip.compress(b'{"id": 4, "name": "jgz"}\n[]\n'))
    with zipfile.ZipFile(root / "incoming/e.jsonl.zip", "w") as z:
        z.writestr("e.jsonl", '{"id": 5, "name": "jzip"}\n')
    code, out = run(cli, root)
    assert code == 0, out
    assert rows(cli, root, "SELECT id, name, _landed_file AS f FROM orders ORDER BY id") == [
        {"id": 1, "name": "plain", "f": "a.csv"},
        {"id": 2, "name": "gz", "f": "b.csv.gz"},
        {"id": 3, "name": "zip", "f": "c.csv.zip"},
        {"id": 4, "name": "jgz", "f": "d.jsonl.gz"},
        {"id": 5, "name": "jzip", "f": "e.jsonl.zip"},
    ]
    assert {(r["file"], r["line"]) for r in rejects(cli, root)} == {("b.csv.gz", 3),
                                                                   ("d.jsonl.gz", 2)}


def test_a_zip_with_two_files_is_refused(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project)
    with zipfile.ZipFile(root / "incoming/two.csv.zip", "w") as z:
        z.writestr("a.csv", "id\n1\n")
        z.writestr("b.csv", "id\n2\n")
    code, out = run(cli, root)
    assert code == 1
    assert "two.csv.zip" in out and "exactly one file" in out and "holds 2" in out


def test_single_file_source_and_declared_types(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({"andon.yaml": """
        name: t
        sources:
          days:
            path: data/days.csv
            columns:
              day: {type: date, required: true}
              n: integer
              ok: boolean
              price: decimal(10,2)
            max_reject_pct: 100
    """})
    (root / "data").mkdir()
    (root / "data/days.csv").write_text(
        "day,n,ok,price\n2024-01-31,1,true,1.25\n2024-02-30,2,false,2\n2024-03-01,NA,,3.5\n")
    code, out = run(cli, root)
    assert code == 0, out
    code, out, _ = cli("show", "days", "-p", root, "--format", "json")
    schema = {c["name"]: c["type"] for c in json.loads(out)["schema"]}
    assert schema == {"day": "DATE", "n": "BIGINT", "ok": "BOOLEAN", "price": "DECIMAL(10,2)",
                      "_landed_file": "VARCHAR"}
    got = rows(cli, root, "SELECT CAST(day AS VARCHAR) AS day, n, ok FROM days ORDER BY day")
    assert got == [{"day": "2024-01-31", "n": 1, "ok": True},
                   {"day": "2024-03-01", "n": None, "ok": None}]
    (bad,) = rejects(cli, root, "days")
    assert bad["line"] == 3 and "2024-02-30" in bad["reason"]


def test_missing_source_file_names_the_file(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({"andon.yaml": """
        name: t
        sources:
          days:
            path: data/days.csv
            columns: {day: date}
    """})
    code, out = run(cli, root)
    assert code == 1
    assert "source 'days'" in out and "data/days.csv" in out and "does not exist" in out


def test_missing_source_folder_names_source_and_folder(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = make_project({"andon.yaml": "name: t\nsources:\n  orders:\n    path: drop/box/*.csv\n"
                                       "    columns: {id: integer}\n"})
    code, out = run(cli, root)
    assert code == 1
    assert "source 'orders'" in out and "drop/box" in out and "does not exist" in out
    assert latest(cli, root)["status"] == "failed"
    assert tables(cli, root) is None  # no environment was created


def test_no_file_yet_publishes_an_empty_typed_table(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project)
    code, out = run(cli, root)
    assert code == 0, out
    assert rows(cli, root, "SELECT count(*) AS n FROM orders") == [{"n": 0}]
    code, out, _ = cli("show", "orders", "-p", root, "--format", "json")
    assert {c["name"]: c["type"] for c in json.loads(out)["schema"]}["id"] == "BIGINT"


@pytest.mark.parametrize(
    ("name", "content", "message", "line"),
    [
        ("empty.csv", b"", "empty (0 bytes)", None),
        ("empty.jsonl", b"", "empty (0 bytes)", None),
        ("blank.csv", b"\n\n1,2,3\n", "no header line", 1),
        ("nohead.csv", b"amount,name\n1.0,a\n", "lacks required column(s) id", 1),
        ("dupe.csv", b"id,id,name\n1,2,a\n", "repeats column(s) id", 1),
        ("latin1.csv", "id,amount,n\xe4me\n1,2,a\n".encode("latin-1"),
         "byte 0xe4 at column 12 is not valid utf-8", 1),
        ("broken.csv.gz", b"this is not gzip", "cannot read", 1),
        ("broken.csv.zip", b"PK not a zip", "not a valid zip", None),
        ("broken.parquet", b"PAR1 garbage", "not a readable Parquet", None),
        ("data.xlsx", b"whatever", "cannot tell the format", None),
    ],
)
def test_a_file_that_cannot_be_ingested_fails_the_run_and_lands_nothing(
    make_project: ProjectFactory, cli: Cli, name: str, content: bytes, message: str,
    line: int | None,
) -> None:
    root = source_project(make_project)
    (root / "incoming/good.csv").write_text("id,amount,name\n1,1.0,a\n")
    assert run(cli, root)[0] == 0
    before = tables(cli, root)
    (root / "incoming/later.csv").write_text("id,amount,name\n2,2.0,b\n")
    (root / "incoming" / name).write_bytes(content)
    code, out = run(cli, root)
    assert code == 1
    where = f"{name}:{line}" if line else f"{name},"
    assert where in out and message in out, out
    assert ".andon" not in out  # named as the sender knows it, not by its landed copy
    assert latest(cli, root)["status"] == "failed"
    assert tables(cli, root) == before
    assert rows(cli, root, "SELECT id FROM orders") == [{"id": 1}]
    landed = {p.name for p in (root / ".andon/landing/orders").rglob("*") if p.is_file()}
    assert landed == {"good.csv"}  # none of the failed batch landed
    # the sender replaces the file: the next run takes it
    (root / "incoming" / name).unlink()
    (root / "incoming/fixed.csv").write_text("id,amount,name\n3,3.0,c\n")
    code, out = run(cli, root)
    assert code == 0, out
    assert rows(cli, root, "SELECT id FROM orders ORDER BY id") == [{"id": 1}, {"id": 2},
                                                                    {"id": 3}]


def test_header_only_file_is_an_empty_batch(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project)
    (root / "incoming/a.csv").write_text("id,amount,name\n")
    code, out = run(cli, root)
    assert code == 0, out
    step = latest(cli, root)["steps"][0]
    assert (step["rows"], step["rejects"]) == (0, 0)


def test_optional_columns_may_be_absent_from_the_header(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project)
    (root / "incoming/a.csv").write_text("name,id\nx,1\ny,2\n")
    assert run(cli, root)[0] == 0
    assert rows(cli, root, "SELECT id, amount, name FROM orders ORDER BY id") == [
        {"id": 1, "amount": None, "name": "x"}, {"id": 2, "amount": None, "name": "y"}]


def test_max_reject_pct_stops_the_run(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project, extra="    max_reject_pct: 10\n")
    (root / "incoming/a.csv").write_text("id,amount,name\n1,1,a\n2,2,b\n")
    assert run(cli, root)[0] == 0
    before = tables(cli, root)
    (root / "incoming/b.csv").write_text("id,amount,name\n3,x,c\n4,4,d\n")  # 1 of 4 = 25 %
    code, out = run(cli, root)
    assert code == 1
    assert "b.csv, step 'orders': 1 of 2 rows rejected" in out and "max_reject_pct 10" in out
    assert "andon rejects orders" in out
    assert tables(cli, root) == before
    assert rows(cli, root, "SELECT count(*) AS n FROM orders") == [{"n": 2}]
    # the rejects are there to look at
    assert [(r["file"], r["line"]) for r in rejects(cli, root)] == [("b.csv", 2)]


def test_rejects_of_an_unknown_source(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project)
    code, _, err = cli("rejects", "ordres", "-p", root)
    assert code == 1 and "no source named 'ordres'" in err and "orders" in err


def test_rejects_are_recorded_once_when_an_ingest_is_reused(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project)
    (root / "incoming/a.csv").write_text("id,amount,name\n1,x,a\n2,2,b\n")
    assert run(cli, root)[0] == 0
    (root / "incoming/b.csv").write_text("id,amount,name\n3,3,c\n")
    assert run(cli, root)[0] == 0  # a.csv's part is reused, not re-ingested
    assert len(rejects(cli, root)) == 1
    step = latest(cli, root)["steps"][0]
    assert (step["rows"], step["rejects"]) == (2, 1)


def test_required_missing_line_numbers_account_for_earlier_rejects(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project)
    text = "id,amount,name\n" + "".join(
        f"{i},{'bad' if i % 7 == 0 else i},n\n" if i % 5 else f",{i},n\n" for i in range(1, 41))
    (root / "incoming/a.csv").write_text(text)
    assert run(cli, root)[0] == 0
    got = {r["line"]: r["reason"] for r in rejects(cli, root)}
    expected = {i + 1 for i in range(1, 41) if i % 5 == 0 or i % 7 == 0}
    assert set(got) == expected
    for line, reason in got.items():
        i = line - 1
        assert ("required" in reason) == (i % 5 == 0), (line, reason)
    step = latest(cli, root)["steps"][0]
    assert step["rows"] + step["rejects"] == 40 and step["rejects"] == len(expected)


def test_latin1_and_utf16_exports_are_read_with_their_declared_encoding(
    make_project: ProjectFactory, cli: Cli
) -> None:
    for encoding, spelled in (("latin-1", "latin1"), ("utf-16", "UTF-16")):
        root = source_project(make_project, extra=f"    csv: {{encoding: {spelled}}}\n")
        text = "id,amount,name\n1,1.5,Müller\n2,2.5,Zoë\n3,,Ærø\n"
        (root / "incoming/a.csv").write_bytes(text.encode(encoding))
        code, out = run(cli, root)
        assert code == 0, out
        assert rows(cli, root, "SELECT id, name FROM orders ORDER BY id") == [
            {"id": 1, "name": "Müller"}, {"id": 2, "name": "Zoë"}, {"id": 3, "name": "Ærø"}]
        assert rejects(cli, root) == []
        # the landed bytes stay as received
        (landed,) = [p for p in (root / ".andon/landing").rglob("a.csv")]
        assert landed.read_bytes() == text.encode(encoding)


def test_a_byte_of_another_encoding_is_a_reject_on_its_own_line(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project)
    lines = [f"{i},1.0,name{i}" for i in range(1, 100)]
    lines[38] = "39,1.0,Gr\xc0ve"  # line 40 of the file, well past the first kilobyte
    (root / "incoming/b.csv").write_bytes(("id,amount,name\n" + "\n".join(lines) + "\n")
                                          .encode("latin-1"))
    code, out = run(cli, root)
    assert code == 0, out
    (bad,) = rejects(cli, root)
    assert (bad["file"], bad["line"]) == ("b.csv", 40) and "not utf-8" in bad["reason"]
    assert rows(cli, root, "SELECT count(*) AS n FROM orders") == [{"n": 98}]


def test_an_undeclared_utf16_file_is_refused_naming_line_and_encoding(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project)
    (root / "incoming/a.csv").write_bytes("id,amount,name\n1,1.0,a\n".encode("utf-16"))
    code, out = run(cli, root)
    assert code == 1
    assert "a.csv:1, step 'orders': byte 0xff at column 1 is not valid utf-8" in out
    assert "csv: {encoding: latin-1} (or utf-16)" in out


def test_an_unknown_encoding_is_a_config_error(make_project: ProjectFactory, cli: Cli) -> None:
    root = source_project(make_project, extra="    csv: {encoding: latin-2}\n")
    code, out = run(cli, root)
    assert code == 1
    assert "unknown encoding 'latin-2'" in out and "did you mean 'latin-1'" in out
    assert "andon.yaml:" in out


def test_a_file_of_mostly_rejected_rows_stops_the_line_by_default(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = source_project(make_project, extra="")
    good = "".join(f"{i},1.0,a\n" for i in range(1, 201))
    (root / "incoming/a.csv").write_text(f"id,amount,name\n{good}x,1,a\n")  # 1 of 201
    assert run(cli, root)[0] == 0
    before = tables(cli, root)
    # every row of the new file is rejected: under 2% of the source, all of the file
    (root / "incoming/b.csv").write_text("id,amount,name\nx,1,a\ny,2,b\nz,3,c\n")
    code, out = run(cli, root)
    assert code == 1
    assert "b.csv, step 'orders': 3 of 3 rows rejected (100.0% > max_reject_pct 10)" in out
    assert "andon landing withdraw orders b.csv" in out
    assert tables(cli, root) == before
    assert [r["line"] for r in rejects(cli, root) if r["file"] == "b.csv"] == [2, 3, 4]
    # the source may allow more
    with (root / "andon.yaml").open("a") as f:
        f.write("    max_reject_pct: 100\n")
    assert run(cli, root)[0] == 0
    assert rows(cli, root, "SELECT count(*) AS n FROM orders") == [{"n": 200}]
