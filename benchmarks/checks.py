"""Data checks side by side: andon vs a hand-written one-pass DuckDB query, Great Expectations
1.x (pandas), Soda Core (DuckDB) and pandera (pandas); plus profiling vs one full scan.

    python benchmarks/checks.py                     # 5M rows, all tools, profile at 10M x 20
    python benchmarks/checks.py --rows 20000000
    python benchmarks/checks.py --no-third-party    # andon and DuckDB only
    python benchmarks/checks.py --readme            # also append the results to README.md

The same ten checks everywhere (all pass on the generated data, and each tool must say so):
not null, unique, between, accepted values, regex, row count, mean between, type,
relationship (to a 10,000-row customers table), null share.

Every tool reads the same bytes: the Parquet files of the artifact andon built from the
generated table. andon, DuckDB and Soda scan those files on every run; the pandas tools get
the table already loaded (load time shown apart, not counted). Only the checks are timed,
never andon's build. Third-party tools live in benchmarks/.venvs/<tool> (created with pip on
first use) and run in a subprocess with a generated script. Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "checks"
VENVS = HERE / ".venvs"

STATUSES = ["new", "paid", "shipped", "delivered", "returned"]
CODE_RE = "[A-Z]{2}[0-9]{4}"
CUSTOMERS = 10_000
AMOUNT_MIN, AMOUNT_MAX = 0, 10_000
MEAN_MIN, MEAN_MAX = 4_000, 6_000
EMAIL_NULL_MAX = 0.05

ANDON_CHECKS = f"""\
  - {{type: not_null, column: id}}
  - {{type: unique, column: id}}
  - {{type: between, column: amount, min: {AMOUNT_MIN}, max: {AMOUNT_MAX}}}
  - {{type: accepted_values, column: status, values: [{", ".join(STATUSES)}]}}
  - {{type: regex, column: code, pattern: '{CODE_RE}'}}
  - {{type: row_count, min: 1}}
  - {{type: mean_between, column: amount, min: {MEAN_MIN}, max: {MEAN_MAX}}}
  - {{type: type, column: amount, expected: {{type: DOUBLE}}}}
  - {{type: relationship, column: customer_id, to: customers.customer_id}}
  - {{type: null_share_max, column: email, max: {EMAIL_NULL_MAX}}}"""


# --- helpers ------------------------------------------------------------------------------------


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def machine() -> str:
    load = os.getloadavg()[0]
    note = "" if load < 1.0 else " (busy: timings inflated)"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{sys.version.split()[0]}, duckdb {duckdb.__version__}, load {load:.2f}{note}")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def venv_python(name: str, requirements: Sequence[str], probe: str) -> Path:
    """benchmarks/.venvs/<name>/bin/python, created and pip-installed on first use."""
    VENVS.mkdir(parents=True, exist_ok=True)
    (VENVS / ".gitignore").write_text("*\n")
    python = VENVS / name / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", f"import {probe}"],
                                          capture_output=True).returncode == 0:
        return python
    print(f"  installing {' '.join(requirements)} into {VENVS / name} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return python


def sql_list(files: Sequence[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


# --- data and the andon project -----------------------------------------------------------------


def generate(rows: int, folder: Path) -> None:
    """orders (rows) and customers (10,000) as Parquet, deterministic, every check passing."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    statuses = "[" + ", ".join(f"'{s}'" for s in STATUSES) + "]"
    con.execute(f"""COPY (
        SELECT i AS id,
               (hash(i * 7 + 1) % {CUSTOMERS})::BIGINT AS customer_id,
               ((hash(i) % 1000000) / 100.0)::DOUBLE AS amount,
               {statuses}[1 + (i % 5)::INTEGER] AS status,
               chr((65 + i % 26)::INTEGER) || chr((65 + (i // 26) % 26)::INTEGER)
                   || lpad((i % 10000)::VARCHAR, 4, '0') AS code,
               CASE WHEN i % 100 = 7 THEN NULL ELSE 'user' || i || '@example.com' END AS email,
               TIMESTAMP '2024-01-01' + to_seconds(i) AS created_at
        FROM range({rows}) t(i)) TO '{folder / "orders.parquet"}' (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT i::BIGINT AS customer_id, 'customer ' || i AS name
                    FROM range({CUSTOMERS}) t(i)) TO '{folder / "customers.parquet"}'
                    (FORMAT parquet)""")
    con.close()


def generate_wide(rows: int, path: Path) -> None:
    """20 columns: 6 BIGINT, 6 DOUBLE, 5 VARCHAR, 2 TIMESTAMP, 1 BOOLEAN."""
    cols = [f"(hash(i + {k}) % 1000000)::BIGINT AS b{k}" for k in range(6)]
    cols += [f"((hash(i * {k + 3}) % 100000) / 7.0)::DOUBLE AS d{k}" for k in range(6)]
    cols += [f"CASE WHEN i % 50 = {k} THEN NULL ELSE 'v' || (hash(i + {k}) % {10 ** (k + 1)})"
             f" END AS s{k}" for k in range(5)]
    cols += [f"TIMESTAMP '2020-01-01' + to_seconds(i * {k + 1}) AS t{k}" for k in range(2)]
    cols += ["(i % 3 = 0) AS flag"]
    con = duckdb.connect()
    con.execute(f"COPY (SELECT {', '.join(cols)} FROM range({rows}) t(i)) TO '{path}' "
                "(FORMAT parquet)")
    con.close()


def build_project(root: Path, data: Path) -> None:
    """A project whose steps read the generated Parquet; orders carries the ten checks."""
    if (root / "pipelines").exists():
        return
    folder = root / "pipelines" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    # the generated files are sources (steps and checks read only the warehouse)
    tables = ["customers", "orders"] + (["wide"] if (data / "wide.parquet").exists() else [])
    from andon.engines.duckdb import parquet_schema

    def source(t: str) -> str:
        path = data / f"{t}.parquet"
        cols = ", ".join(f'"{n}": {{type: {k.lower()}}}' for n, k in parquet_schema(path) or ())
        return f"  raw_{t}: {{path: '{path}', format: parquet, columns: {{{cols}}}}}\n"

    (root / "andon.yaml").write_text(
        "name: checkbench\nsources:\n" + "".join(source(t) for t in tables))
    (folder / "customers.sql").write_text("SELECT * FROM raw_customers\n")
    (folder / "orders.sql").write_text(
        f"/* ---\nchecks:\n{ANDON_CHECKS}\n--- */\nSELECT * FROM raw_orders\n")
    if "wide" in tables:
        (folder / "wide.sql").write_text("SELECT * FROM raw_wide\n")
    done = subprocess.run([sys.executable, "-m", "andon", "run", "-p", str(root), "-q"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"andon run failed:\n{done.stdout}\n{done.stderr}")


def artifact_files(root: Path, table: str) -> list[str]:
    import andon
    from andon.retest import env_tables
    from andon.runner import manifest_of
    from andon.warehouse import Warehouse

    project = andon.Project.load(root)
    m = manifest_of(env_tables(project, None)[table])
    return [str(Warehouse(project.warehouse).path(f)) for f in m.files]


# --- andon and the hand-written query -----------------------------------------------------------


def run_andon(root: Path, repeat: int) -> tuple[list[float], str]:
    import andon
    from andon.retest import test_environment

    project = andon.Project.load(root)

    def once() -> list[Any]:
        return test_environment(project, None, ["orders"])

    times, results = timed(once, repeat)
    bad = [f"{r.name}: {r.status} {r.message}" for r in results if r.status != "passed"]
    assert len(results) == 10, [r.name for r in results]
    return times, "all 10 passed" if not bad else "; ".join(bad)


def run_duckdb(orders: list[str], customers: list[str], threads: int,
               repeat: int) -> tuple[list[float], str]:
    src, csrc = f"read_parquet({sql_list(orders)})", f"read_parquet({sql_list(customers)})"
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    one_pass = f"""SELECT count(*) AS row_count,
        count(*) FILTER (WHERE id IS NULL) AS id_nulls,
        count(id) - count(DISTINCT id) AS id_duplicates,
        count(*) FILTER (WHERE amount < {AMOUNT_MIN} OR amount > {AMOUNT_MAX}) AS amount_out,
        count(*) FILTER (WHERE status IS NOT NULL AND status NOT IN ({statuses})) AS bad_status,
        count(*) FILTER (WHERE code IS NOT NULL AND NOT regexp_full_match(code, '{CODE_RE}'))
            AS bad_code,
        avg(amount) AS amount_mean,
        count(*) FILTER (WHERE email IS NULL) / count(*) AS email_null_share
        FROM {src}"""
    anti_join = f"""SELECT count(*) FROM {src} o WHERE o.customer_id IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM {csrc} c WHERE c.customer_id = o.customer_id)"""
    col_type = f"SELECT column_type FROM (DESCRIBE SELECT amount FROM {src})"
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")

    def once() -> tuple[Any, ...]:
        row = con.execute(one_pass).fetchone()
        orphans = con.execute(anti_join).fetchone()
        typ = con.execute(col_type).fetchone()
        assert row and orphans and typ
        return (*row, orphans[0], typ[0])

    times, out = timed(once, repeat)
    con.close()
    n, nulls, dups, out_range, bad_status, bad_code, mean, share, orphans, typ = out
    ok = (n >= 1 and nulls == dups == out_range == bad_status == bad_code == orphans == 0
          and MEAN_MIN <= mean <= MEAN_MAX and share <= EMAIL_NULL_MAX and typ == "DOUBLE")
    return times, "all 10 passed" if ok else f"FAILED: {out}"


# --- third-party tools, each in its own venv ----------------------------------------------------

PRELUDE = """\
import json, sys, time
orders_files, customers_files, repeat = json.loads(sys.argv[1]), json.loads(sys.argv[2]), \\
    int(sys.argv[3])
STATUSES = {statuses!r}
CODE_RE = {code_re!r}
load_s = 0.0
"""

LOAD = """\
import pyarrow.parquet as pq, pyarrow as pa
def load(files):
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pandas()
t0 = time.perf_counter()
df = load(orders_files)
customer_ids = load(customers_files)["customer_id"].tolist()
load_s = time.perf_counter() - t0
"""

GX = """\
import logging, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import great_expectations as gx
import great_expectations.expectations as gxe
context = gx.get_context(mode="ephemeral")
batch_def = context.data_sources.add_pandas("p").add_dataframe_asset("orders") \\
    .add_batch_definition_whole_dataframe("all")
suite = context.suites.add(gx.ExpectationSuite(name="orders"))
for e in [
    gxe.ExpectColumnValuesToNotBeNull(column="id"),
    gxe.ExpectColumnValuesToBeUnique(column="id"),
    gxe.ExpectColumnValuesToBeBetween(column="amount", min_value={amin}, max_value={amax}),
    gxe.ExpectColumnValuesToBeInSet(column="status", value_set=STATUSES),
    gxe.ExpectColumnValuesToMatchRegex(column="code", regex="^" + CODE_RE + "$"),
    gxe.ExpectTableRowCountToBeBetween(min_value=1),
    gxe.ExpectColumnMeanToBeBetween(column="amount", min_value={mmin}, max_value={mmax}),
    gxe.ExpectColumnValuesToBeOfType(column="amount", type_="float64"),
    gxe.ExpectColumnValuesToBeInSet(column="customer_id", value_set=customer_ids),
    gxe.ExpectColumnValuesToNotBeNull(column="email", mostly={mostly}),
]:
    suite.add_expectation(e)
vd = context.validation_definitions.add(gx.ValidationDefinition(data=batch_def, suite=suite,
                                                                name="v"))
times = []
for _ in range(repeat):
    t0 = time.perf_counter()
    res = vd.run(batch_parameters={{"dataframe": df}})
    times.append(time.perf_counter() - t0)
failed = [r.expectation_config.type for r in res.results if not r.success]
n = len(res.results)
print(json.dumps({{"load": load_s, "times": times,
                  "verdict": f"all {{n}} passed" if not failed and n == 10 else
                  f"FAILED: {{failed}} of {{n}}",
                  "version": gx.__version__}}))
"""

PANDERA = """\
import warnings
warnings.filterwarnings("ignore")
import pandera
import pandera.pandas as pa_
customers = set(customer_ids)
schema = pa_.DataFrameSchema({{
    "id": pa_.Column("int64", nullable=False, unique=True),
    "amount": pa_.Column("float64", [pa_.Check.in_range({amin}, {amax}),
                                     pa_.Check(lambda s: {mmin} <= s.mean() <= {mmax},
                                               name="mean_between")]),
    "status": pa_.Column(checks=pa_.Check.isin(STATUSES), nullable=True),
    "code": pa_.Column(checks=pa_.Check.str_matches("^" + CODE_RE + "$"), nullable=True),
    "customer_id": pa_.Column("int64", pa_.Check.isin(customers)),
    "email": pa_.Column(nullable=True, checks=pa_.Check(
        lambda s: s.isna().mean() <= {share}, name="null_share")),
}}, checks=[pa_.Check(lambda d: len(d) >= 1, name="row_count")])
times = []
verdict = "all 10 passed"
for _ in range(repeat):
    t0 = time.perf_counter()
    try:
        schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as e:
        verdict = "FAILED: " + str(e.failure_cases.head(10).to_dict("records"))
    times.append(time.perf_counter() - t0)
print(json.dumps({{"load": load_s, "times": times, "verdict": verdict,
                  "version": pandera.__version__}}))
"""

SODA = """\
import logging
logging.disable(logging.WARNING)
import duckdb
from soda.scan import Scan
from importlib.metadata import version
def flist(files):
    return "[" + ", ".join("'" + f + "'" for f in files) + "]"
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute(f"CREATE VIEW orders AS SELECT * FROM read_parquet({{flist(orders_files)}})")
con.execute(f"CREATE VIEW customers AS SELECT * FROM read_parquet({{flist(customers_files)}})")
statuses = ", ".join(STATUSES)
checks = f'''
checks for orders:
  - row_count >= 1
  - missing_count(id) = 0
  - duplicate_count(id) = 0
  - invalid_count(amount) = 0:
      valid min: {amin}
      valid max: {amax}
  - invalid_count(status) = 0:
      valid values: [{{statuses}}]
  - invalid_count(code) = 0:
      valid regex: '^{{CODE_RE}}$'
  - avg(amount) between {mmin} and {mmax}
  - schema:
      fail:
        when wrong column type:
          amount: DOUBLE
  - values in (customer_id) must exist in customers (customer_id)
  - missing_percent(email) <= {pct}
'''
times = []
for _ in range(repeat):
    scan = Scan()
    scan.set_data_source_name("duckdb")
    scan.add_duckdb_connection(con, data_source_name="duckdb")
    scan.add_sodacl_yaml_str(checks)
    t0 = time.perf_counter()
    scan.execute()
    times.append(time.perf_counter() - t0)
results = scan.get_scan_results()["checks"]
bad = [c["name"] for c in results if c["outcome"] != "pass"]
verdict = (f"all {{len(results)}} passed" if not bad and len(results) == 10 else
           f"FAILED: {{bad}} of {{len(results)}}; " + scan.get_logs_text()[-800:])
print(json.dumps({{"load": 0.0, "times": times, "verdict": verdict,
                  "version": version("soda-core-duckdb")}}))
"""

TOOLS: dict[str, tuple[list[str], str, str, bool]] = {
    # name: (requirements, import probe, script, loads into pandas)
    "great_expectations": (["great_expectations>=1,<2", "pandas", "pyarrow"],
                           "great_expectations", GX, True),
    "soda": (["soda-core-duckdb"], "soda.scan", SODA, False),
    "pandera": (["pandera[pandas]", "pandas", "pyarrow"], "pandera.pandas", PANDERA, True),
}


def run_tool(name: str, orders: list[str], customers: list[str], threads: int,
             repeat: int) -> dict[str, Any]:
    reqs, probe, body, _ = TOOLS[name]
    python = venv_python(name, reqs, probe)
    params = dict(amin=AMOUNT_MIN, amax=AMOUNT_MAX, mmin=MEAN_MIN, mmax=MEAN_MAX,
                  mostly=1 - EMAIL_NULL_MAX, share=EMAIL_NULL_MAX, pct=100 * EMAIL_NULL_MAX,
                  threads=threads)
    script = (PRELUDE.format(statuses=STATUSES, code_re=CODE_RE)
              + (LOAD if TOOLS[name][3] else "") + body.format(**params))
    path = WORK / f"run_{name}.py"
    path.write_text(script)
    done = subprocess.run([str(python), str(path), json.dumps(orders), json.dumps(customers),
                           str(repeat)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- profiling vs one full scan -----------------------------------------------------------------


def run_profile(root: Path, repeat: int, threads: int) -> dict[str, Any]:
    import andon
    from andon.checks import history
    from andon.checks.run import Audit, evaluate
    from andon.engines.duckdb import DuckDBEngine
    from andon.retest import env_tables
    from andon.runner import manifest_of
    from andon.warehouse import Warehouse

    project = andon.Project.load(root)
    m = manifest_of(env_tables(project, None)["wide"])
    files = [str(Warehouse(project.warehouse).path(f)) for f in m.files]
    cols = ", ".join(f'"{n}"' for n, _ in m.schema)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    scan_sql = f"SELECT count(*), sum(hash({cols})) FROM read_parquet({sql_list(files)})"
    scan_times, _ = timed(lambda: con.execute(scan_sql).fetchone(), repeat)
    con.close()

    real = history.profile_of
    history.profile_of = lambda *_a, **_k: None  # type: ignore[assignment]  # profile anew

    def once() -> None:
        engine = DuckDBEngine(threads=project.config.threads,
                              memory_limit=project.config.memory_limit)
        try:
            audit = Audit(store=project.store, engine=engine,
                          warehouse=Warehouse(project.warehouse), environment="prod",
                          run_id=None, manifests={"wide": m})
            evaluate(audit, "wide", [], with_profile=True)
        finally:
            engine.close()

    try:
        prof_times, _ = timed(once, repeat)
    finally:
        history.profile_of = real  # type: ignore[assignment]
    prof = real(project.store, m.fingerprint)
    assert prof is not None and len(prof.profile["columns"]) == 20
    return {"rows": m.rows, "columns": len(m.schema), "scan": scan_times,
            "profile": prof_times, "scan_sql": "SELECT count(*), sum(hash(<all 20 columns>))"}


# --- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows of the checked table")
    ap.add_argument("--profile-rows", type=int, default=10_000_000,
                    help="rows of the 20-column profiled table (0: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool (median reported)")
    ap.add_argument("--no-third-party", action="store_true",
                    help="skip Great Expectations, Soda and pandera")
    ap.add_argument("--only", nargs="*", choices=list(TOOLS), help="third-party tools to run")
    ap.add_argument("--readme", action="store_true", help="append the results to README.md")
    args = ap.parse_args(argv)

    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / ".gitignore").write_text("*\n")
    data = WORK / f"data-{args.rows}"
    root = WORK / f"project-{args.rows}"
    print(machine())
    if not (data / "orders.parquet").exists():
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate(args.rows, data)
    if args.profile_rows and not (data / "wide.parquet").exists():
        print(f"generating {args.profile_rows:,} rows x 20 columns ...", flush=True)
        generate_wide(args.profile_rows, data / "wide.parquet")
    print("building the andon project (not timed) ...", flush=True)
    build_project(root, data)
    orders, customers = artifact_files(root, "orders"), artifact_files(root, "customers")
    import andon

    threads = andon.Project.load(root).config.threads

    rows: list[tuple[str, float, str, str]] = []  # tool, median s, note, verdict
    t, verdict = run_andon(root, args.repeat)
    rows.append(("andon (test_environment)", median(t), "", verdict))
    print(f"  andon          {median(t):7.2f} s  {verdict}", flush=True)
    t, verdict = run_duckdb(orders, customers, threads, args.repeat)
    rows.append(("DuckDB hand-written, one pass + anti-join", median(t), "", verdict))
    print(f"  duckdb         {median(t):7.2f} s  {verdict}", flush=True)
    if not args.no_third_party:
        for name in args.only or list(TOOLS):
            res = run_tool(name, orders, customers, threads, args.repeat)
            if "error" in res:
                rows.append((name, float("nan"), "", f"ERROR {res['error']}"))
                print(f"  {name:<14} ERROR {res['error']}", flush=True)
                continue
            note = f"{res['version']}" + (f"; load {res['load']:.2f} s not counted"
                                          if TOOLS[name][3] else "")
            rows.append((name, median(res["times"]), note, res["verdict"]))
            print(f"  {name:<14} {median(res['times']):7.2f} s  {res['verdict']}  ({note})",
                  flush=True)
    andon_s, duck_s = rows[0][1], rows[1][1]
    gx = [r[1] for r in rows if r[0] == "great_expectations"]
    targets = [f"andon / hand-written DuckDB = {andon_s / duck_s:.2f}x (target <= 1.3x): "
               f"{'PASS' if andon_s <= 1.3 * duck_s else 'FAIL'}"]
    if gx and gx[0] == gx[0]:
        targets.append(f"Great Expectations / andon = {gx[0] / andon_s:.1f}x (target >= 5x): "
                       f"{'PASS' if gx[0] >= 5 * andon_s else 'FAIL'}")
    prof = None
    if args.profile_rows:
        prof = run_profile(root, args.repeat, threads)
        ratio = median(prof["profile"]) / median(prof["scan"])
        targets.append(f"profile / full scan = {ratio:.2f}x (target <= 2x): "
                       f"{'PASS' if ratio <= 2 else 'FAIL'}")
        print(f"  profile {prof['rows']:,} x {prof['columns']}: {median(prof['profile']):.2f} s;"
              f" full scan {median(prof['scan']):.2f} s", flush=True)
    for line in targets:
        print(line)
    if args.readme:
        append_readme(args, rows, targets, prof, threads)
    return 0


def append_readme(args: argparse.Namespace, rows: list[tuple[str, float, str, str]],
                  targets: list[str], prof: dict[str, Any] | None, threads: int) -> None:
    lines = [f"\n## checks.py: ten data checks on {args.rows:,} rows "
             f"({time.strftime('%Y-%m-%d')})\n",
             f"`python benchmarks/checks.py --rows {args.rows}`; {machine()}; DuckDB threads "
             f"{threads}; median of {args.repeat} runs; only the checks are timed.\n",
             "| tool | median s | vs andon | result | notes |", "|---|---:|---:|---|---|"]
    andon_s = rows[0][1]
    for name, s, note, verdict in rows:
        lines.append(f"| {name} | {s:.2f} | {s / andon_s:.2f}x | {verdict} | {note} |")
    lines.append("")
    if prof:
        lines.append(f"Profile of a {prof['rows']:,}-row, {prof['columns']}-column table "
                     f"(andon.checks evaluate path, all aggregates in one scan + a "
                     f"10,000-row sample): {median(prof['profile']):.2f} s; one full scan "
                     f"(`{prof['scan_sql']}`): {median(prof['scan']):.2f} s.\n")
    lines += [f"- {t}" for t in targets]
    with (HERE / "README.md").open("a") as f:
        f.write(textwrap.dedent("\n".join(lines)) + "\n")


if __name__ == "__main__":
    sys.exit(main())
