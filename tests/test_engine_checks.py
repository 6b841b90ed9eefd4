"""Checks build their SQL with sqlglot and run it through the engine interface: a column named
with quotes, spaces or non-ASCII letters, a value holding quotes (``x' OR '1'='1``) and a
project folder whose path holds quotes pass through every check type and the profile as
data, never as SQL; and no module outside ``andon.engines`` imports the driver."""

from __future__ import annotations

import ast
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest

from andon.checks.registry import BUILTIN
from tests.conftest import Cli

SRC = Path(__file__).resolve().parents[1] / "src" / "andon"

ORIGIN = 'the "origin"'  # a double quote in a name
WHO = "it's x"  # a single quote in a name
DELAY = "délai ✈"  # a space and non-ASCII letters
TRAP = 'n" IS NULL OR "id'  # a name that is SQL if pasted between double quotes
START, END = "start at", "end at"
KEY = 'it\'s "key"'
INJECT = "x' OR '1'='1"  # a value that is SQL if pasted between single quotes


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def y(value: Any) -> str:
    """A YAML scalar (JSON is YAML): names and values are written as data."""
    return json.dumps(value, ensure_ascii=False)


ROWS = [
    (1, "EWR", "O'Brien", 1.5, "2024-01-01 10:00", "2024-01-01 12:00", "a"),
    (2, "JFK", INJECT, 2.5, "2024-01-02 10:00", "2024-01-02 09:00", "b"),
    (3, 'a"b', "plain", None, "2024-01-03 10:00", None, "b"),
    (4, None, INJECT, 4.0, "2024-01-04 10:00", "2024-01-04 11:00", None),
]


def step_sql(rows: list[tuple[Any, ...]]) -> str:
    def value(v: Any, kind: str) -> str:
        if v is None:
            return "NULL"
        return {"num": str(v), "text": text(str(v)), "ts": f"TIMESTAMP {text(str(v))}"}[kind]

    kinds = ("num", "text", "text", "num", "ts", "ts", "text")
    lines = [f"({', '.join(value(v, k) for v, k in zip(r, kinds, strict=True))})"
             for r in rows]
    names = ", ".join(ident(n) for n in ("id", ORIGIN, WHO, DELAY, START, END, TRAP))
    # typed first row so every column has its type even when a value is NULL
    return (f"SELECT id::INTEGER AS id, {ident(ORIGIN)}, {ident(WHO)}, "
            f"{ident(DELAY)}::DOUBLE AS {ident(DELAY)}, {ident(START)}, {ident(END)}, "
            f"{ident(TRAP)} FROM (VALUES\n  " + ",\n  ".join(lines) + f"\n) AS v({names})\n")


REFS = (f"SELECT * FROM (VALUES ('plain'), ('O''Brien')) AS v({ident(KEY)})\n")

W = "severity: warn"

CHECKS = [
    ("nn_origin", {"type": "not_null", "column": ORIGIN}),
    ("nn_trap", {"type": "not_null", "column": TRAP}),
    ("uq_who", {"type": "unique", "column": WHO}),
    ("uq_pair", {"type": "unique", "columns": [WHO, TRAP]}),
    ("av_who", {"type": "accepted_values", "column": WHO, "values": ["plain", INJECT]}),
    ("av_origin", {"type": "accepted_values", "column": ORIGIN,
                   "values": ["EWR", "JFK", 'a"b']}),
    ("rv_obrien", {"type": "rejected_values", "column": WHO, "values": ["O'Brien"]}),
    ("rv_inject", {"type": "rejected_values", "column": WHO, "values": [INJECT, None]}),
    ("bt_delay", {"type": "between", "column": DELAY, "min": 2, "max": 4}),
    ("bt_text", {"type": "between", "column": WHO, "min": "O'Brien", "max": "plain"}),
    ("rx_who", {"type": "regex", "column": WHO, "pattern": "[^']*"}),
    ("len_who", {"type": "length_between", "column": WHO, "min": 6, "max": 7}),
    ("order", {"type": "temporal_order", "start": START, "end": END}),
    ("expr", {"type": "expression", "expr": f"{ident(WHO)} <> {text(INJECT)}"}),
    ("rows", {"type": "row_count", "min": 4, "max": 4}),
    ("mean", {"type": "mean_between", "column": DELAY, "min": 2.66, "max": 2.67}),
    ("sum", {"type": "sum_between", "column": DELAY, "min": 8, "max": 8}),
    ("median", {"type": "median_between", "column": DELAY, "min": 2.5, "max": 2.5}),
    ("q50", {"type": "quantile_between", "column": DELAY, "q": 0.5, "min": 2.5, "max": 2.5}),
    ("sd", {"type": "stddev_between", "column": DELAY, "min": 1.258, "max": 1.259}),
    ("distinct", {"type": "distinct_count_between", "column": ORIGIN, "min": 3, "max": 3}),
    ("nulls", {"type": "null_share_max", "column": DELAY, "max": 0.25}),
    ("fresh", {"type": "freshness", "column": START, "max_age": "100000d"}),
    ("rel", {"type": "relationship", "column": WHO, "to": f"refs.{KEY}"}),
    ("sql_rows", {"type": "sql",
                  "sql": f"SELECT * FROM {{{{ table }}}} WHERE {ident(WHO)} = {text(INJECT)}"}),
    ("sql_metric", {"type": "sql", "metric": True, "min": 1, "max": 1,
                    "sql": f"SELECT count(*) FROM {{{{ ref('refs') }}}} "
                           f"WHERE {ident(KEY)} = 'O''Brien'"}),
    ("balance", {"type": "balance", "other": "refs", "expr": f"count({ident(WHO)})",
                 "other_expr": "count(*) + 2"}),
    ("schema", {"type": "schema", "expected": {WHO: "VARCHAR", DELAY: "DOUBLE"}}),
    ("type", {"type": "type", "column": DELAY, "expected": {"type": "DOUBLE"}}),
    ("drift", {"type": "distribution_drift", "column": WHO}),
    ("ks", {"type": "distribution_drift", "column": DELAY, "method": "ks", "max": 0.5}),
    ("psi_num", {"type": "distribution_drift", "column": DELAY, "bins": 2}),
    ("schema_drift", {"type": "schema_drift"}),
    ("volume", {"type": "volume_change", "max_change_pct": 50}),
    ("added", {"type": "rows_added", "min": 0}),
]

PY_CHECKS = f'''
import andon
import pandas as pd


@andon.checks.check(table="odd", severity="warn")
def late(df: pd.DataFrame) -> pd.DataFrame:
    return df[df[{DELAY!r}] > 2]
'''


def checks_yaml() -> str:
    items = []
    for name, spec in CHECKS:
        fields = ", ".join(f"{k}: {y(v)}" for k, v in spec.items())
        items.append(f"- {{name: {name}, {fields}, {W}}}")
    return "\n".join(items)


def make(tmp_path: Path, rows: list[tuple[Any, ...]]) -> Path:
    """A project in a folder whose path holds both kinds of quote and a non-ASCII letter."""
    root = tmp_path / "it's a \"project\" ✈"
    files = {
        "andon.yaml": "name: odd\n",
        "pipelines/p/odd.sql": "/* ---\nchecks:\n" + textwrap.indent(checks_yaml(), "  ")
        + "\n--- */\n" + step_sql(rows),
        "pipelines/p/refs.sql": REFS,
        "checks/odd_checks.py": PY_CHECKS,
    }
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return root


def run(cli: Cli, root: Path, *args: str) -> dict[str, dict[str, Any]]:
    _code, out, err = cli("run", "-p", root, "--format", "json", *args)
    assert out.strip(), err
    result = json.loads(out)
    assert "checks" in result, result
    return {c["name"]: c for c in result["checks"]}


EXPECTED: dict[str, tuple[str, float | None]] = {  # status, metric
    "nn_origin": ("failed", 1), "nn_trap": ("failed", 1), "uq_who": ("failed", 1),
    "uq_pair": ("passed", 0), "av_who": ("failed", 1), "av_origin": ("passed", 0),
    "rv_obrien": ("failed", 1), "rv_inject": ("failed", 2), "bt_delay": ("failed", 1),
    "bt_text": ("failed", 2), "rx_who": ("failed", 3), "len_who": ("failed", 3),
    "order": ("failed", 1), "expr": ("failed", 2), "rows": ("passed", 4),
    "mean": ("passed", 8 / 3), "sum": ("passed", 8), "median": ("passed", 2.5),
    "q50": ("passed", 2.5), "sd": ("passed", math.sqrt(19 / 12)),
    "distinct": ("passed", 3), "nulls": ("passed", 0.25), "rel": ("failed", 2),
    "sql_rows": ("failed", 2), "sql_metric": ("passed", 1), "balance": ("passed", 0),
    "schema": ("passed", 0), "type": ("passed", 0), "late": ("failed", 2),
}


def test_quoted_names_and_values_pass_through_every_check_type(tmp_path: Path,
                                                                cli: Cli) -> None:
    got = run(cli, make(tmp_path, ROWS))
    errors = {n: c["message"] for n, c in got.items() if c["status"] == "error"}
    assert not errors
    for name, (status, metric) in EXPECTED.items():
        assert (got[name]["status"], got[name]["metric"]) == (status, pytest.approx(metric)), \
            (name, got[name])
    assert got["fresh"]["status"] == "passed"
    for name in ("drift", "ks", "psi_num", "schema_drift", "volume", "added"):
        assert got[name]["status"] == "passed", got[name]  # no previous artifact yet
    # the failing rows shown are the ones the values name, quotes and all
    assert [r[WHO] for r in got["av_who"]["sample"]] == ["O'Brien"]
    assert sorted(r[WHO] for r in got["rv_inject"]["sample"]) == [INJECT, INJECT]
    assert sorted(r[WHO] for r in got["rel"]["sample"]) == [INJECT, INJECT]
    assert got["uq_who"]["sample"] == [{WHO: INJECT, "duplicates": 2}]
    assert [r["id"] for r in got["order"]["sample"]] == [2]
    # every type of the catalog ran here
    assert {c["type"] for c in got.values()} == set(BUILTIN)


def test_drift_against_the_previous_artifact_with_quoted_values(tmp_path: Path,
                                                                 cli: Cli) -> None:
    root = make(tmp_path, ROWS)
    run(cli, root)
    assert cli("env", "create", "dev", "-p", root)[0] == 0  # prod is protected: change in dev
    # one more row: INJECT three times in five, and a delay of 9
    step = root / "pipelines" / "p" / "odd.sql"
    more = [*ROWS, (5, "EWR", INJECT, 9.0, "2024-01-05 10:00", "2024-01-05 11:00", "c")]
    step.write_text(step.read_text().split("--- */\n")[0] + "--- */\n" + step_sql(more))
    got = run(cli, root, "--env", "dev")
    # PSI over WHO: O'Brien and plain 1/4 -> 1/5, INJECT 2/4 -> 3/5
    psi = 2 * (0.2 - 0.25) * math.log(0.2 / 0.25) + (0.6 - 0.5) * math.log(0.6 / 0.5)
    assert got["drift"]["metric"] == pytest.approx(psi, abs=1e-3)
    assert got["drift"]["status"] == "passed"
    # KS over DELAY: [1.5, 2.5, 4] -> [1.5, 2.5, 4, 9]: the largest gap is at 4 (3/4 vs 1)
    assert got["ks"]["metric"] == pytest.approx(0.25)
    assert got["psi_num"]["status"] == "passed" and got["psi_num"]["metric"] > 0
    assert got["volume"]["metric"] == pytest.approx(25.0)
    assert got["rows"]["status"] == "failed" and got["av_who"]["metric"] == 1


def test_profile_of_quoted_names_and_values(tmp_path: Path, cli: Cli) -> None:
    root = make(tmp_path, ROWS)
    run(cli, root)
    code, out, err = cli("profile", "odd", "-p", root, "--format", "json")
    assert code == 0, err
    cols = {c["column"]: c for c in json.loads(out)["columns"]}
    assert list(cols) == ["id", ORIGIN, WHO, DELAY, START, END, TRAP]
    assert cols[WHO]["top_values"][0] == [INJECT, 2]
    assert (cols[WHO]["min"], cols[WHO]["max"]) == ("O'Brien", INJECT)
    assert (cols[DELAY]["nulls"], cols[DELAY]["mean"]) == (1, pytest.approx(8 / 3))
    assert cols[DELAY]["stddev"] == pytest.approx(math.sqrt(19 / 12))
    assert sorted(cols[ORIGIN]["top_values"]) == [["EWR", 1], ["JFK", 1], ['a"b', 1]]


def test_a_large_table_is_profiled_from_row_ranges(tmp_path: Path, cli: Cli) -> None:
    """Past SAMPLE_ROWS rows the profile samples row ranges spread through the files (the
    engine's ``scan_rows``): quantiles come from those rows, counts from every row."""
    root = tmp_path / "it's big"
    (root / "pipelines" / "p").mkdir(parents=True)
    (root / "andon.yaml").write_text("name: big\n")
    (root / "pipelines" / "p" / "big.sql").write_text(
        f"SELECT i::BIGINT AS {ident(WHO)}, 'v' || (i % 7) AS {ident(ORIGIN)} "
        "FROM range(50000) t(i)\n")
    code, _out, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    code, out, err = cli("profile", "big", "-p", root, "--format", "json")
    assert code == 0, err
    prof = json.loads(out)
    cols = {c["column"]: c for c in prof["columns"]}
    assert prof["rows"] == 50000 and cols[WHO]["count"] == 50000
    quantiles = cols[WHO]["quantiles"]
    # ten runs of 1,000 rows, one every 5,000: the median lies in the middle runs
    assert 20000 <= quantiles["0.5"] <= 30000, quantiles
    assert quantiles["0.05"] < 5000 and quantiles["0.95"] >= 45000
    shares = {v: n for v, n in cols[ORIGIN]["top_values"]}
    assert sum(shares.values()) <= 10000 and len(shares) == 5


def test_a_predicate_written_as_text_is_parsed_and_counted() -> None:
    """A third-party row check may return SQL text (DuckDB's dialect): it joins the scan as
    a parsed expression; text that does not parse is refused with the check's words."""
    from sqlglot import exp

    from andon.checks.kinds.rows import NotNull, NotNullSpec
    from andon.checks.model import Check
    from andon.checks.registry import get
    from andon.engines import create
    from andon.engines.sql import parse
    from andon.errors import ConfigError

    class Missing(NotNull):
        def predicate(self, c: Check, schema: Any) -> str:
            return f"{ident(self.of(c).column)} IS NULL OR {ident(WHO)} = {text(INJECT)}"

    class Broken(NotNull):
        def predicate(self, c: Check, schema: Any) -> str:
            return f"{ident(self.of(c).column)} IS NULL OR ("

    c = Check(name="t", table="odd", spec=NotNullSpec(type="not_null", column=ORIGIN),
              kind=get("not_null"), file=Path("odd.sql"))
    rows = parse(f"SELECT * FROM (VALUES ('EWR', 'O''Brien'), (NULL, 'plain'), "
                 f"('JFK', {text(INJECT)}), ('LGA', 'x')) AS v({ident(ORIGIN)}, {ident(WHO)})")
    engine = create()
    try:
        query = exp.select(Missing().compile(c, [])).from_(exp.Subquery(this=rows))
        assert engine.cursor().execute(query).fetchone() == (2,)
    finally:
        engine.close()
    with pytest.raises(ConfigError, match="predicate does not parse"):
        Broken().compile(c, [])


def driver_imports(root: Path) -> list[str]:
    """Modules outside ``andon/engines`` that import duckdb (at any depth)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if "engines" in path.relative_to(root).parts[:1]:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "duckdb" or n.startswith("duckdb.") for n in names):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_the_checks_import_no_driver() -> None:
    assert driver_imports(SRC / "checks") == []


def test_no_module_outside_the_engines_imports_the_driver() -> None:
    found = driver_imports(SRC)
    assert found == [], f"import duckdb outside andon/engines: {', '.join(found)}"


def test_the_driver_scan_finds_an_import(tmp_path: Path) -> None:
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "duckdb.py").write_text("import duckdb\n")
    (tmp_path / "a.py").write_text("def f() -> None:\n    from duckdb import connect\n")
    (tmp_path / "b.py").write_text("import duckdbx\n")
    assert driver_imports(tmp_path) == ["a.py:2"]
