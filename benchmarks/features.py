"""The feature store: a point-in-time training set of 1M feature rows x 100k entity rows
(andon vs DuckDB ASOF JOIN alone vs pandas merge_asof), materialisation to the SQLite online
store (entities/s) and online reads in-process (p50/p99 for 1 and 100 entities).

    python benchmarks/features.py                      # 1M x 100k, 10 features, TTL 7 d
    python benchmarks/features.py --feature-rows 10000000 --entity-rows 1000000
    python benchmarks/features.py --feast              # and Feast 0.67, side by side
    python benchmarks/features.py --feast /tmp/feast-venv/bin/python   # a Feast venv of yours

The data is synthetic and seeded: --entities keys, each with feature rows at distinct times
spread over 90 days, 10 double features; entity rows at random keys and times. andon builds
both tables as artifacts of a project (not timed); every timed path reads the same Parquet
files. Every result is checked against pandas merge_asof (rows, order and values).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, venv_python, write_project

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "features"
N_FEATURES = 10


def build(root: Path, feature_rows: int, entity_rows: int, entities: int) -> None:
    per = max(1, feature_rows // entities)
    cols = ", ".join(f"hash(i * {k + 7}) % 100000 / 1000.0 AS f{k}" for k in range(N_FEATURES))
    steps = {
        "feats": f"SELECT 'e' || (i % {entities}) AS entity, TIMESTAMP '2024-01-01' + "
                 f"to_seconds(CAST((i // {entities}) * (7776000 // {per}) + hash(i) % "
                 f"(7776000 // {per}) AS BIGINT)) AS ts, {cols} FROM range({feature_rows}) t(i)",
        "rows": f"SELECT 'e' || (hash(i) % {entities}) AS entity, TIMESTAMP '2024-01-01' + "
                f"to_seconds(CAST(hash(i * 3) % 8640000 AS BIGINT)) AS event_timestamp, i AS "
                f"label FROM range({entity_rows}) t(i)",
    }
    write_project(root, steps)
    from andon.cli import run_cli

    assert run_cli(["run", "-p", str(root), "-q"]) == 0


def define(root: Path, ttl_days: int) -> None:
    """The feature view over the built table (rewritten every time: the TTL is an option)."""
    feats = "\n".join(f"      f{k}: {{type: double}}" for k in range(N_FEATURES))
    ttl = f"    ttl: {ttl_days}d\n" if ttl_days else ""
    (root / "features").mkdir(exist_ok=True)
    (root / "features" / "bench.yaml").write_text(
        "entities:\n  e: {join_keys: [entity]}\nviews:\n  v:\n    table: feats\n"
        f"    entities: [e]\n    timestamp: ts\n{ttl}    features:\n{feats}\n"
        "services:\n  s:\n    features: [" + ", ".join(f"v.f{k}" for k in range(N_FEATURES))
        + "]\n")


def files(root: Path, table: str) -> list[str]:
    from andon import features

    project = features._project(root)
    published = features._schemas(project, None)[1]
    return [str(project.warehouse / f) for f in published[table]["files"]]


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def duckdb_alone(feat_files: list[str], row_files: list[str], out: Path, ttl_days: int
                 ) -> None:
    con = duckdb.connect()
    fcols = ", ".join((f"CASE WHEN f.ts >= e.event_timestamp - INTERVAL {ttl_days} DAY THEN "
                       f"f.f{k} END AS f{k}") if ttl_days else f"f.f{k}"
                      for k in range(N_FEATURES))
    con.execute(f"""COPY (WITH e AS (SELECT *, row_number() OVER () AS r
                                     FROM read_parquet({row_files}))
        SELECT e.entity, e.event_timestamp, e.label, {fcols}
        FROM e ASOF LEFT JOIN read_parquet({feat_files}) f
          ON e.entity = f.entity AND e.event_timestamp >= f.ts ORDER BY e.r)
        TO '{out}' (FORMAT parquet)""")
    con.close()


def pandas_asof(feat_files: list[str], row_files: list[str], ttl_days: int) -> pd.DataFrame:
    feats = pd.concat(pd.read_parquet(f) for f in feat_files).sort_values("ts")
    rows = pd.concat(pd.read_parquet(f) for f in row_files).reset_index(drop=True)
    left = rows.reset_index().sort_values("event_timestamp")
    merged = pd.merge_asof(left, feats, left_on="event_timestamp", right_on="ts", by="entity",
                           tolerance=pd.Timedelta(days=ttl_days) if ttl_days else None,
                           direction="backward")
    return merged.sort_values("index").drop(columns=["index", "ts"]).reset_index(drop=True)


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b), (len(a), len(b))
    assert a["label"].tolist() == b["label"].tolist(), "rows differ or are out of order"
    for k in range(N_FEATURES):
        x, y = a[f"f{k}"].fillna(-1.0).to_numpy(), b[f"f{k}"].fillna(-1.0).to_numpy()
        assert (abs(x - y) < 1e-9).all(), f"f{k} differs"


def percentiles(reader: Any, batches: list[list[dict[str, str]]],
                latest: pd.DataFrame, ttl_days: int) -> tuple[float, float]:
    """Reads as of just after the newest feature row (so every value is within the TTL)."""
    at = (latest["ts"].max() + pd.Timedelta(seconds=1)).to_pydatetime()
    times = []
    got: list[dict[str, Any]] = []
    for batch in batches:
        start = time.perf_counter()
        got = reader.get("s", batch, at)
        times.append((time.perf_counter() - start) * 1000)
    for entity, row in zip(batches[-1], got, strict=True):  # the last answer, checked
        want = latest.loc[entity["entity"]]
        if ttl_days and want["ts"] < at - timedelta(days=ttl_days):
            assert row["status"] == {"v": "expired"}
            assert set(row["features"].values()) == {None}
            continue
        assert all(abs(row["features"][f"f{k}"] - want[f"f{k}"]) < 1e-9
                   for k in range(N_FEATURES)), "an online value differs from the table's"
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99) - 1]


FEAST = ["feast[duckdb]==0.67.0"]


def feast(python: str, feat_files: list[str], row_files: list[str], expected: pd.DataFrame,
          ttl_days: int, folder: Path, with_online: bool, with_http: bool) -> dict[str, Any]:
    """Feast in its own virtualenv on the same data (exported as one Parquet file each)."""
    import json
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_parquet({feat_files})) TO "
                f"'{folder / 'feats.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM read_parquet({row_files})) TO "
                f"'{folder / 'rows.parquet'}' (FORMAT parquet)")
    con.close()
    expected.to_parquet(folder / "expected.parquet", index=False)
    cmd = [python, str(HERE / "features_feast.py"), str(folder), "--ttl-days", str(ttl_days)]
    done = subprocess.run(cmd + (["--online"] if with_online else [])
                          + (["--http"] if with_online and with_http else []),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"Feast failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def http(root: Path, entities: int, seconds: float = 5.0) -> None:
    """``andon server`` in a process of its own; POST /api/features/online with 1 entity:
    sequential p50/p99, then requests/s from 8 client threads (which share the 2 cores)."""
    import json
    import random
    import socket
    import subprocess
    import threading
    import urllib.request

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(root),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    rnd = random.Random(11)

    def body() -> dict[str, Any]:
        return {"features": "s", "entities": [{"entity": f"e{rnd.randrange(entities)}"}]}

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/openapi.json")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            from andon import features

            probe = body()  # the server answers what the in-process read (checked) answers
            answer = client.post("/api/features/online", json=probe)
            assert answer.status_code == 200, answer.text
            assert answer.json()["results"] == features.online(
                "s", probe["entities"], project=root), "HTTP and in-process reads differ"
        # sequential: urllib, the client features_feast.py uses for feast serve
        times = []
        for _ in range(1000):
            request = urllib.request.Request(
                base + "/api/features/online", data=json.dumps(body()).encode(),
                headers={"Content-Type": "application/json"})
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            times.append((time.perf_counter() - start) * 1000)
            assert response.status == 200
        times.sort()
        done = [0] * 8
        stop = time.monotonic() + seconds

        def worker(i: int) -> None:
            with httpx.Client(base_url=base) as c:
                while time.monotonic() < stop:
                    assert c.post("/api/features/online", json=body()).status_code == 200
                    done[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        start = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        rate = sum(done) / (time.perf_counter() - start)
        print(f"online read over HTTP, 1 entity: p50 {times[500]:.2f} ms, p99 {times[989]:.2f} "
              f"ms (urllib, sequential); {rate:,.0f} requests/s at concurrency 8 (httpx "
              "threads on the same cores)")
        by_wrk = wrk(base, entities, seconds, WORK / "online.lua")
        if by_wrk is not None:
            print(f"  with wrk (a C client, 2 threads, 8 connections): {by_wrk:,.0f} requests/s")
    finally:
        proc.terminate()
        proc.wait(30)


def wrk(base: str, entities: int, seconds: float, script: Path) -> float | None:
    """Requests/s of POST /api/features/online (1 random entity each) at concurrency 8,
    measured by wrk if it is installed (Debian: apt-get install wrk); every answer 200."""
    import shutil
    import subprocess

    if shutil.which("wrk") is None:
        return None
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        "math.randomseed(11)\nrequest = function()\n"
        '  local body = \'{"features": "s", "entities": [{"entity": "e\' .. '
        f"math.random(0, {entities - 1})"
        ' .. \'"}]}\'\n  return wrk.format(nil, nil, nil, body)\nend\n')
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds:.0f}s", "-s", str(script),
                          base + "/api/features/online"], capture_output=True, text=True,
                         check=True).stdout
    assert "Non-2xx" not in out, out
    return float(next(line.split()[1] for line in out.splitlines()
                      if line.startswith("Requests/sec")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feature-rows", type=int, default=1_000_000)
    ap.add_argument("--entity-rows", type=int, default=100_000)
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--ttl-days", type=int, default=7, help="0: no TTL (deep history)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-http", action="store_true", help="skip the andon server case")
    ap.add_argument("--feast", nargs="?", const="", default=None, metavar="PYTHON",
                    help="also run Feast 0.67 (in PYTHON's environment; default: a venv "
                         "under benchmarks/.venvs)")
    args = ap.parse_args()
    from andon import features

    print(machine())
    root = WORK / f"p{args.feature_rows}x{args.entity_rows}x{args.entities}"
    if not (root / ".andon").exists():
        print("  building the tables with andon (not timed) ...", flush=True)
        build(root, args.feature_rows, args.entity_rows, args.entities)
    define(root, args.ttl_days)
    feat_files, row_files = files(root, "feats"), files(root, "rows")
    out = WORK / "andon.parquet"
    print(f"PIT training set: {args.feature_rows:,} feature rows x {args.entity_rows:,} entity "
          f"rows, {args.entities:,} entities, {N_FEATURES} features, "
          + (f"TTL {args.ttl_days} d" if args.ttl_days else "no TTL"))
    t_andon, _ = timed(lambda: features.training_set("s", "rows", out, project=root),
                       args.repeat)
    t_duck, _ = timed(lambda: duckdb_alone(feat_files, row_files, WORK / "duck.parquet",
                                             args.ttl_days),
                      args.repeat)
    t_pandas, expected = timed(lambda: pandas_asof(feat_files, row_files, args.ttl_days), 1)
    same(pd.read_parquet(out), expected)
    same(pd.read_parquet(WORK / "duck.parquet"), expected)
    print(f"  andon training_set          {t_andon:8.2f} s   (rows, order, values = merge_asof)")
    print(f"  DuckDB ASOF JOIN alone      {t_duck:8.2f} s")
    print(f"  pandas merge_asof           {t_pandas:8.2f} s   (read + sort + merge)")
    fe: dict[str, Any] = {}
    if args.feast is not None:
        python = args.feast or str(venv_python("feast", FEAST, "feast"))
        fe = feast(python, feat_files, row_files, expected, args.ttl_days,
                   WORK / f"feast-{root.name}", with_online=args.ttl_days == 7,
                   with_http=not args.no_http)
        print(f"  Feast get_historical_features (DuckDB offline store) {fe['historical_s']:8.2f} s"
              f"   (= merge_asof; andon {fe['historical_s'] / t_andon:.1f}x faster)")

    for stale in (root / ".andon" / "features").glob("*/v.*"):
        stale.unlink()
    (root / ".andon" / "online.db").unlink(missing_ok=True)
    start = time.perf_counter()
    done = features.materialize(project=root)[0]
    t_mat = time.perf_counter() - start
    print(f"materialise to SQLite: {done.entities:,} entities in {t_mat:.2f} s = "
          f"{done.entities / t_mat:,.0f} entities/s (whole call); the view's own work "
          f"{done.seconds:.2f} s = {done.entities / done.seconds:,.0f} entities/s")
    if "materialize_s" in fe:
        print(f"  Feast materialize (SQLite): {fe['entities']:,} entities in "
              f"{fe['materialize_s']:.2f} s = {fe['entities'] / fe['materialize_s']:,.0f}/s")
    again = features.materialize(project=root)[0]
    print(f"  again, unchanged table: {again.written} written in {again.seconds * 1000:.1f} ms")

    con = duckdb.connect()
    latest = con.sql(f"SELECT * FROM read_parquet({feat_files}) QUALIFY row_number() OVER "
                     "(PARTITION BY entity ORDER BY ts DESC) = 1").df().set_index("entity")
    con.close()
    reader = features.Online(root, log_sample=0)
    keys = [{"entity": f"e{i}"} for i in range(args.entities)]
    import random

    rnd = random.Random(7)
    for batch in (1, 100):
        samples = [rnd.sample(keys, batch) for _ in range(2000 if batch == 1 else 500)]
        reader.get("s", samples[0])  # warm: the plan of the read is cached
        p50, p99 = percentiles(reader, samples, latest, args.ttl_days)
        print(f"online read in-process, {batch:>3} entities x {N_FEATURES} features: "
              f"p50 {p50:.3f} ms, p99 {p99:.3f} ms (values = the table's latest)")
        if f"online_{batch}_p50_ms" in fe:
            p50, p99 = fe[f"online_{batch}_p50_ms"], fe[f"online_{batch}_p99_ms"]
            print(f"  Feast get_online_features (SQLite): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    reader.close()
    if not args.no_http:
        http(root, args.entities)
        if "http_p50_ms" in fe:
            print(f"  Feast (feast serve, 1 worker), 1 entity: p50 {fe['http_p50_ms']:.2f} ms, "
                  f"p99 {fe['http_p99_ms']:.2f} ms (urllib, sequential)"
                  + (f"; wrk {fe['http_wrk_rps']:,.0f} requests/s" if "http_wrk_rps" in fe
                     else ""))


if __name__ == "__main__":
    main()
