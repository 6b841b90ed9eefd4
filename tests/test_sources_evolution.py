"""Schema evolution of sources (evolve: add_columns | strict | rescue), on file sources:
changes recorded with the file that brought them, breaking ones stopping the line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import andon
from tests.conftest import Cli, ProjectFactory


def _project(make_project: ProjectFactory, evolve: str, fmt: str = "jsonl") -> Path:
    root = make_project({
        "andon.yaml": f"""
        name: t
        sources:
          orders:
            path: incoming/*.{fmt}
            evolve: {evolve}
            columns:
              id: {{type: integer, required: true}}
              amount: integer
              note: string
        """,
    })
    (root / "incoming").mkdir()
    return root


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    return andon.query(andon.Project.load(root), sql)[1]


def _history(cli: Cli, root: Path) -> list[dict[str, object]]:
    code, out, err = cli("sources", "history", "orders", "-p", root, "--format", "json")
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_add_columns_widening_and_removed_columns(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = _project(make_project, "add_columns")
    _jsonl(root / "incoming/a.jsonl", [{"id": 1, "amount": 5, "note": "x"}])
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _history(cli, root) == []
    # b brings a new column, widens amount to double and drops note
    _jsonl(root / "incoming/b.jsonl", [{"id": 2, "amount": 2.5, "discount": 0.1}])
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    history = _history(cli, root)
    assert {(h["file"], h["change"], h["column"], h["old_type"], h["new_type"])
            for h in history} == {
        ("b.jsonl", "added", "discount", None, "DOUBLE"),
        ("b.jsonl", "widened", "amount", "BIGINT", "DOUBLE"),
        ("b.jsonl", "removed", "note", "VARCHAR", None),
    }
    # older rows read null in the new column; the removed column is kept, null
    assert _rows(root, "SELECT id, amount, note, discount FROM orders ORDER BY id") == [
        (1, 5.0, "x", None), (2, 2.5, None, 0.1)]
    code, out, _ = cli("sources", "history", "orders", "-p", root)
    assert "discount" in out and "widened" in out


def test_strict_stops_the_line_in_the_middle_of_a_batch(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = _project(make_project, "strict")
    _jsonl(root / "incoming/1.jsonl", [{"id": 1, "amount": 5, "note": "x"}])
    _jsonl(root / "incoming/2.jsonl", [{"id": 2, "amount": 6, "note": "y", "extra": True}])
    _jsonl(root / "incoming/3.jsonl", [{"id": 3, "amount": 7, "note": "z"}])
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert "the schema of 2.jsonl breaks the contract of source 'orders' (evolve: strict)" \
        in err
    assert "+ extra BOOLEAN (added)" in err
    assert "nothing of this batch landed" in " ".join(err.split())
    store = andon.Project.load(root).store
    assert store.landed_files("orders") == []
    assert _history(cli, root) == []
    (root / "incoming/2.jsonl").unlink()
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _rows(root, "SELECT count(*) FROM orders") == [(2,)]


def test_a_narrowing_stops_every_policy(make_project: ProjectFactory, cli: Cli) -> None:
    root = _project(make_project, "add_columns", fmt="parquet")
    pq.write_table(pa.table({"id": [1], "amount": ["a lot"]}), root / "incoming/n.parquet")
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert "~ amount BIGINT -> VARCHAR (narrowed)" in err
    assert "n.parquet" in err and "a narrowing never passes" in " ".join(err.split())


def test_rescue_keeps_unexpected_columns_as_json(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = _project(make_project, "rescue", fmt="parquet")
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int32()), "amount": [3, 4],
                             "color": ["red", None]}), root / "incoming/r.parquet")
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    rows = _rows(root, "SELECT id, amount, _rescued_data FROM orders ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [(1, 3), (2, 4)]
    assert json.loads(str(rows[0][2])) == {"color": "red"}
    assert [(h["change"], h["column"]) for h in _history(cli, root)] == [
        ("rescued", "color"), ("removed", "note")]
    # JSON lines and CSV rescue the same way
    csv_root = _project(make_project, "rescue", fmt="csv")
    (csv_root / "incoming/c.csv").write_text("id,amount,note,shade\n1,2,x,blue\n")
    assert cli("run", "-p", csv_root, "-q")[0] == 0
    assert json.loads(str(_rows(csv_root, "SELECT _rescued_data FROM orders")[0][0])) == {
        "shade": "blue"}
    js = _project(make_project, "rescue")
    _jsonl(js / "incoming/j.jsonl", [{"id": 1, "size": 3}, {"id": 2}])
    assert cli("run", "-p", js, "-q")[0] == 0
    got = _rows(js, "SELECT id, _rescued_data FROM orders ORDER BY id")
    assert json.loads(str(got[0][1])) == {"size": "3"}
