"""Environments: creating one is constant time, promoting one rebuilds nothing (vs SQLMesh).

Generates a 100-step andon project (pipelines/bench/s000..s099): s000 is a SQL step over
DuckDB range() writing ~SIZE of Parquet (random doubles, so it barely compresses), s001
aggregates it to 1,000 rows, and s002..s099 form a tree over s001 (each reads one parent,
every fifth also joins its left neighbour). Then, for each data size:

  create    median of --repeat ``andon.environments.create(store, "eN", source="prod")`` with
            distinct names (API level), and of ``andon env create`` wall time (CLI, includes
            Python start-up). Target: API <= 50 ms at every size.
  promote   build prod; then per cycle: create dev from prod, add one column to s010 (which has
            3 checks in its header), ``andon.run(p, "devN")``, time
            ``andon.promote.promote(p, "devN", "prod")``. Asserted: the promotion wrote no
            artifact and no warehouse file. Target: <= 1 s + the time of its checks
            (measured separately by wrapping andon.promote._check).

Side by side (unless --no-third-party): the same DAG as 100 SQLMesh models on DuckDB
(benchmarks/.venvs/sqlmesh, pip-installed on first use), driven through sqlmesh's Python
Context API in a subprocess: ``plan("devN", auto_apply=True)`` after a one-column change to
s010, then ``plan("prod", auto_apply=True)`` (promotion), plus the CLI wall time of
``sqlmesh plan dev --auto-apply``. Reference figures measured on this kind of machine:
dev environment for a one-column change 0.2-0.8 s; promotion 0.2 s at 20 models, up to 12 s
at 500 models.

    python benchmarks/environments.py                 # tiny + 100 MB, with SQLMesh
    python benchmarks/environments.py --big           # also 2 GB (~1.5 min more)
    python benchmarks/environments.py --no-third-party
    python benchmarks/environments.py --profile       # + cProfile of one extra (untimed)
                                                      # create and change/promote cycle
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _common import machine, median, row, venv_python
from sqlalchemy import func, select

import andon
import andon.environments
import andon.promote
from andon.store import schema as t

STEPS = 100
CHANGED = "s010"
BYTES_PER_ROW = 28.2  # Parquet (zstd) bytes per row of the root step, measured
CREATE_TARGET = 0.050
PROMOTE_TARGET = 1.0
SQLMESH_REQ = ["sqlmesh"]

CHECKS_HEADER = """/* ---
checks:
  - {type: row_count, min: 1}
  - {type: not_null, column: k}
  - {type: unique, columns: [k]}
--- */
"""


# the DAG -----------------------------------------------------------------------------------

def parents(j: int) -> list[int]:
    if j == 0:
        return []
    if j == 1:
        return [0]
    p = (j - 2) // 4 + 1
    return [p, j - 1] if j % 5 == 0 and j - 1 != p else [p]


def name(j: int) -> str:
    return f"s{j:03d}"


def descendants(j: int) -> set[int]:
    out: set[int] = set()
    frontier = [j]
    while frontier:
        x = frontier.pop()
        for c in range(x + 1, STEPS):
            if x in parents(c) and c not in out:
                out.add(c)
                frontier.append(c)
    return out


def step_sql(j: int, rows: int, extra: int, ref: Callable[[int], str]) -> str:
    """The SELECT of step j; ``extra`` added columns on the changed step."""
    if j == 0:
        return (f"SELECT i AS id, i % 1000 AS k, random() AS a, random() AS b, random() AS c, "
                f"CAST(random() * 1e9 AS BIGINT) AS d FROM range({rows}) AS t(i)")
    if j == 1:
        return (f"SELECT k, count(*) AS n, sum(a) AS v, max(d) AS m FROM {ref(0)} GROUP BY k")
    ps = parents(j)
    cols = "".join(f", x.n * {i + 2} AS n{i + 2}" for i in range(extra if name(j) == CHANGED
                                                                   else 0))
    if len(ps) == 1:
        return f"SELECT x.k, x.n + {j} AS n, x.v * 0.5 AS v, x.m{cols} FROM {ref(ps[0])} AS x"
    return (f"SELECT x.k, x.n + y.n AS n, x.v - y.v AS v, greatest(x.m, y.m) AS m{cols} "
            f"FROM {ref(ps[0])} AS x JOIN {ref(ps[1])} AS y ON x.k = y.k")


# andon -------------------------------------------------------------------------------------

def write_andon(root: Path, rows: int, extra: int = 0) -> None:
    (root / "andon.yaml").write_text("name: bench\nenvironments:\n  prod: {protected: true}\n")
    folder = root / "pipelines" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    for j in range(STEPS):
        head = CHECKS_HEADER if name(j) == CHANGED else ""
        (folder / f"{name(j)}.sql").write_text(head + step_sql(j, rows, extra, name) + "\n")


def count_artifacts(p: andon.Project) -> int:
    with p.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.artifacts)).scalar() or 0)


def count_files(p: andon.Project) -> int:
    return sum(1 for f in p.warehouse.rglob("*") if f.is_file())


def data_bytes(p: andon.Project) -> int:
    with p.store.engine.connect() as conn:
        return int(conn.execute(select(func.sum(t.artifacts.c.bytes))).scalar() or 0)


def profiled(fn: Callable[[], Any], label: str) -> Any:
    prof = cProfile.Profile()
    out = prof.runcall(fn)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
    print(f"\n  cProfile of {label} (cumulative, top 25):")
    print(textwrap.indent(buf.getvalue().strip(), "    "))
    return out


def bench_andon(size_label: str, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"size": size_label}
    with tempfile.TemporaryDirectory(prefix="andon-bench-env-", dir=args.tmp) as d:
        root = Path(d) / "proj"
        root.mkdir()
        write_andon(root, rows)
        t0 = time.perf_counter()
        p = andon.Project.load(root)
        build = andon.run(p)
        if not build.ok:
            raise SystemExit(f"prod build failed: {build.error}")
        res["build_s"] = time.perf_counter() - t0
        res["data_mb"] = data_bytes(p) / 1e6
        store = p.store

        # create: API
        times = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            andon.environments.create(store, f"e{i}", source="prod", who="bench")
            times.append(time.perf_counter() - t0)
        res["create_api"] = median(times)
        res["create_api_all"] = times
        if args.profile:
            profiled(lambda: andon.environments.create(store, "eprof", source="prod",
                                                       who="bench"), "environments.create")
        # create: CLI
        times = []
        for i in range(args.cli_repeat):
            t0 = time.perf_counter()
            subprocess.run(["andon", "env", "create", f"c{i}", "--from", "prod", "-p", str(root)],
                           check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        res["create_cli"] = median(times)
        times = []
        for _ in range(args.cli_repeat):
            t0 = time.perf_counter()
            subprocess.run(["andon", "--help"], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        res["cli_startup"] = median(times)

        # promote: one changed step, per cycle a fresh dev and one more column
        prom, checks, devrun, rebuilt = [], [], [], []
        real_check = andon.promote._check
        spent: list[float] = []

        def timed_check(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return real_check(*a, **kw)
            finally:
                spent.append(time.perf_counter() - t0)

        andon.promote._check = timed_check  # type: ignore[assignment]
        try:
            extra_cycle = 1 if args.profile else 0  # profiled apart, not timed
            for cycle in range(1, args.cycles + 1 + extra_cycle):
                dev = f"dev{cycle}"
                andon.environments.create(store, dev, source="prod", who="bench")
                write_andon(root, rows, extra=cycle)
                p.close()
                p = andon.Project.load(root)
                profiling = cycle > args.cycles
                t0 = time.perf_counter()
                r = andon.run(p, dev)
                if not profiling:
                    devrun.append(time.perf_counter() - t0)
                if not r.ok:
                    raise SystemExit(f"dev run failed: {r.error}")
                rebuilt.append(r.counts().get("built", 0))
                before = (count_artifacts(p), count_files(p))
                spent.clear()
                t0 = time.perf_counter()
                if profiling:
                    promo = profiled(partial(andon.promote.promote, p, dev, "prod", user="bench"),
                                     "promote.promote")
                else:
                    promo = andon.promote.promote(p, dev, "prod", user="bench")
                    prom.append(time.perf_counter() - t0)
                    checks.append(sum(spent))
                after = (count_artifacts(p), count_files(p))
                assert promo.status == "promoted", promo
                assert after == before, f"promotion created artifacts/files: {before} -> {after}"
                res["artifacts_files"] = f"{after[0] - before[0]} / {after[1] - before[1]}"
                res["files_total"] = after[1]
                res["changed"] = len(promo.changed)
                res["checks_n"] = len(promo.checks)
                assert all(c.status == "passed" for c in promo.checks), promo.checks
        finally:
            andon.promote._check = real_check  # type: ignore[assignment]
        res.update(promote=median(prom), promote_all=prom, checks=median(checks),
                   dev_run=median(devrun), rebuilt=median(rebuilt))
        t0 = time.perf_counter()
        subprocess.run(["andon", "promote", dev, "--to", "prod", "-p", str(root)],
                       check=True, capture_output=True)  # nothing new: measures the no-op CLI
        res["promote_cli_noop"] = time.perf_counter() - t0
        p.close()
    return res


# SQLMesh -----------------------------------------------------------------------------------

SQLMESH_DRIVER = r'''
import json, sys, time, subprocess, os
from pathlib import Path
root = Path(sys.argv[1]); cycles = int(sys.argv[2]); changed = sys.argv[3]
sys.path.insert(0, str(root))
from gen import write_models
import logging
logging.disable(logging.WARNING)
from sqlmesh import Context
out = {"dev": [], "promote": [], "load": [], "dev_cli": None}
t0 = time.perf_counter()
ctx = Context(paths=str(root))
ctx.plan("prod", auto_apply=True, no_prompts=True)
out["build"] = time.perf_counter() - t0
for cycle in range(1, cycles + 1):
    write_models(root, extra=cycle)
    t0 = time.perf_counter()
    ctx.load()
    out["load"].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    plan = ctx.plan(f"dev{cycle}", auto_apply=True, no_prompts=True)
    out["dev"].append(time.perf_counter() - t0)
    out["categories"] = {s.name.split(".")[-1].strip('"'): getattr(s.change_category, "name", None)
                         for s in plan.new_snapshots}
    t0 = time.perf_counter()
    ctx.plan("prod", auto_apply=True, no_prompts=True)
    out["promote"].append(time.perf_counter() - t0)
ctx.close()
# the CLI, one more change: sqlmesh plan dev --auto-apply, then the promotion
sqlmesh = str(Path(sys.executable).parent / "sqlmesh")
write_models(root, extra=cycles + 1)
t0 = time.perf_counter()
subprocess.run([sqlmesh, "-p", str(root), "plan", "devcli", "--auto-apply", "--no-prompts"],
               check=True, capture_output=True)
out["dev_cli"] = time.perf_counter() - t0
t0 = time.perf_counter()
subprocess.run([sqlmesh, "-p", str(root), "plan", "--auto-apply", "--no-prompts"],
               check=True, capture_output=True)
out["promote_cli"] = time.perf_counter() - t0
print("RESULT " + json.dumps(out))
'''


def sqlmesh_gen_module(rows: int) -> str:
    """Source of gen.py: writes the models, importable by the venv's python (no andon)."""
    import inspect

    return "\n".join([
        "from pathlib import Path",
        f"STEPS = {STEPS}",
        f"CHANGED = {CHANGED!r}",
        f"ROWS = {rows}",
        inspect.getsource(parents),
        inspect.getsource(name),
        inspect.getsource(step_sql),
        "def write_models(root, extra=0):",
        "    folder = Path(root) / 'models'",
        "    folder.mkdir(parents=True, exist_ok=True)",
        "    for j in range(STEPS):",
        "        ref = lambda k: f'bench.{name(k)}'",
        "        audits = ('    audits (not_null(columns := (k)), '",
        "                  'unique_values(columns := (k))),\\n'",
        "                  if name(j) == CHANGED else '')",
        "        text = (f'MODEL (\\n    name bench.{name(j)},\\n    kind FULL,\\n'",
        "                f'{audits});\\n\\n'",
        "                + step_sql(j, ROWS, extra, ref) + ';\\n')",
        "        path = folder / f'{name(j)}.sql'",
        "        if not path.exists() or path.read_text() != text:",
        "            path.write_text(text)",
    ]).replace("-> str:", ":").replace("Callable[[int], str]", "object")


def bench_sqlmesh(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    python = venv_python("sqlmesh", SQLMESH_REQ, "sqlmesh")
    version = subprocess.run([str(python), "-c", "import sqlmesh; print(sqlmesh.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="sqlmesh-bench-", dir=args.tmp) as d:
        root = Path(d)
        (root / "config.yaml").write_text(textwrap.dedent(f"""\
            gateways:
              local:
                connection:
                  type: duckdb
                  database: {root / 'bench.duckdb'}
            default_gateway: local
            model_defaults:
              dialect: duckdb
              start: '2024-01-01'
        """))
        (root / "gen.py").write_text(sqlmesh_gen_module(rows))
        subprocess.run([str(python), "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from gen import write_models; write_models(sys.argv[1])", str(root)],
                       check=True)
        driver = root / "driver.py"
        driver.write_text(SQLMESH_DRIVER)
        proc = subprocess.run([str(python), str(driver), str(root), str(args.cycles), CHANGED],
                              capture_output=True, text=True, cwd=root)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            raise SystemExit(f"sqlmesh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        out = json.loads(line.removeprefix("RESULT "))
    out["version"] = version
    return out


# main --------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="also the 2 GB case")
    ap.add_argument("--no-third-party", action="store_true", help="skip SQLMesh")
    ap.add_argument("--repeat", type=int, default=15, help="API creates per size")
    ap.add_argument("--cli-repeat", type=int, default=5, help="CLI creates per size")
    ap.add_argument("--cycles", type=int, default=3, help="change + dev run + promote cycles")
    ap.add_argument("--profile", action="store_true", help="cProfile create and promote")
    ap.add_argument("--tmp", default=None, help="folder for the generated projects")
    args = ap.parse_args()
    if args.tmp is None and shutil.disk_usage(tempfile.gettempdir()).free < 6e9 and args.big:
        raise SystemExit("less than 6 GB free in the temp folder: pass --tmp DIR")

    sizes = [("tiny", 10_000), ("100 MB", int(100e6 / BYTES_PER_ROW))]
    if args.big:
        sizes.append(("2 GB", int(2e9 / BYTES_PER_ROW)))
    print(f"environments: {STEPS}-step project, {machine()}\n")
    results = []
    for label, rows in sizes:
        print(f"  building prod at {label} ({rows:,} rows in s000) ...", flush=True)
        results.append(bench_andon(label, rows, args))
    sq = None
    if not args.no_third_party:
        print("  SQLMesh: same DAG, 100 models, DuckDB ...", flush=True)
        sq = bench_sqlmesh(sizes[1][1], args)

    print()
    print(row("andon, data size", *(r["size"] for r in results)))
    print(row("Parquet in prod, MB", *(f"{r['data_mb']:.1f}" for r in results)))
    print(row("prod build (100 steps), s", *(f"{r['build_s']:.2f}" for r in results)))
    print(row(f"env create API, ms (median of {args.repeat})",
              *(f"{r['create_api'] * 1e3:.2f}" for r in results)))
    print(row("  target <= 50 ms", *(verdict(r["create_api"] <= CREATE_TARGET)
                                     for r in results)))
    print(row(f"env create CLI wall, ms (median of {args.cli_repeat})",
              *(f"{r['create_cli'] * 1e3:.0f}" for r in results)))
    print(row("  of which `andon --help` start-up, ms",
              *(f"{r['cli_startup'] * 1e3:.0f}" for r in results)))
    print(row(f"dev run after the change, s (median of {args.cycles})",
              *(f"{r['dev_run']:.2f}" for r in results)))
    print(row("  steps rebuilt in dev", *(f"{r['rebuilt']:.0f}" for r in results)))
    print(row("promote, s (median)", *(f"{r['promote']:.3f}" for r in results)))
    print(row("  of which checks, s", *(f"{r['checks']:.3f}" for r in results)))
    print(row("  steps moved / checks run", *(f"{r['changed']} / {r['checks_n']}"
                                              for r in results)))
    print(row("  new artifacts / warehouse files", *(r["artifacts_files"] for r in results)))
    print(row("  target <= 1 s + checks", *(verdict(r["promote"] - r["checks"] <= PROMOTE_TARGET)
                                            for r in results)))
    print(row("promote CLI wall (no-op), s", *(f"{r['promote_cli_noop']:.2f}" for r in results)))
    if sq is not None:
        print()
        print(row(f"SQLMesh {sq['version']}, DuckDB, {sizes[1][0]}", "SQLMesh", "reference"))
        print(row("prod build (100 models), s", f"{sq['build']:.2f}", ""))
        print(row("Context.load() after the change, s", f"{median(sq['load']):.2f}", ""))
        print(row("plan dev (one-column change), s", f"{median(sq['dev']):.2f}", "0.2-0.8"))
        print(row("plan prod (promotion), s", f"{median(sq['promote']):.2f}",
                  "0.2@20..12@500"))
        print(row("CLI `sqlmesh plan dev --auto-apply`, s", f"{sq['dev_cli']:.2f}", ""))
        print(row("CLI `sqlmesh plan --auto-apply`, s", f"{sq['promote_cli']:.2f}", ""))
        print(f"  SQLMesh change categories: {sq.get('categories')}")
        a = results[1]
        print()
        print(row(f"side by side at {a['size']}", "andon", "SQLMesh"))
        print(row("create dev (API / Context), s", f"{a['create_api']:.4f}", "-"))
        print(row("dev for a one-column change, s",
                  f"{a['create_api'] + a['dev_run']:.2f}", f"{median(sq['dev']):.2f}"))
        print(row("promotion into prod, s", f"{a['promote']:.3f}",
                  f"{median(sq['promote']):.2f}"))
    print()
    print("  raw: " + json.dumps([{k: v for k, v in r.items()} for r in results],
                                 default=lambda x: round(x, 4)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
