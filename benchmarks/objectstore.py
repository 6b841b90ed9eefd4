"""Object-storage warehouse: the same pipeline on local disk vs an S3 bucket on loopback.

The flights example with all 12 months delivered, run three ways on fresh projects:
  local       warehouse and landing in local folders (the default)
  s3          warehouse: s3://... and landing: s3://... on moto's S3 server, 127.0.0.1
  s3 cold read  after the s3 run, the local mirror deleted (a fresh machine), the
              correctness queries below, which download what they read from the bucket
  one table   the mirror deleted again, one query of one small table (airports): its
              time, and the bytes it downloaded against the warehouse's in the bucket
              (a query fetches only the tables it names)
Correctness: every published table has the same rows (count and a checksum of all
columns) locally and in the bucket, and every artifact's manifest is in the bucket.
Target: the s3 run within 2x of the local run. Median of --repeat (3 by default).

    pip install 'andon[s3]' 'moto[server]'
    python benchmarks/objectstore.py
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import boto3
from _common import machine, median, row
from moto.server import ThreadedMotoServer

import andon
from andon import examples, landing

TARGET = 2.0
TABLES = ("flights", "flights_enriched", "daily_carrier_kpis", "airports", "weather")


def project(base: Path, name: str, extra: str) -> Path:
    root = examples.init_project(base / name, "flights")
    for arrival in examples.pending_arrivals(root):
        examples.deliver(root, arrival)
    with (root / "andon.yaml").open("a") as f:
        f.write(extra)
    return root


def timed_run(root: Path) -> float:
    landing._HASH_CACHE.clear()
    t0 = time.perf_counter()
    proj = andon.Project.load(root)
    try:
        result = andon.run(proj)
    finally:
        proj.close()
    wall = time.perf_counter() - t0
    if not result.ok:
        raise SystemExit(f"run failed in {root}: {result.error}")
    return wall


def digest(root: Path) -> dict[str, tuple[object, ...]]:
    """Rows and an order-independent checksum of every column of each table."""
    from andon.published import query

    proj = andon.Project.load(root)
    try:
        return {t: tuple(query(proj, f"SELECT count(*), sum(hash(t)) FROM {t} t")[1][0])
                for t in TABLES}
    finally:
        proj.close()


def cold_one_table(root: Path, expected: tuple[object, ...]) -> tuple[float, int]:
    """Seconds of one query of airports on a fresh mirror, and the bytes it downloaded."""
    from andon.published import query

    cache = root / ".andon" / "objectstore"
    shutil.rmtree(cache)
    proj = andon.Project.load(root)
    try:
        t0 = time.perf_counter()
        n = query(proj, "SELECT count(*) FROM airports")[1][0][0]
        wall = time.perf_counter() - t0
    finally:
        proj.close()
    if n != expected[0]:
        raise SystemExit(f"airports: {n} rows from the bucket, {expected[0]} locally")
    return wall, sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1")
    client = boto3.client("s3", endpoint_url=endpoint)
    print(f"flights example (12 months) on local disk vs S3 (moto server on loopback), "
          f"{machine()}\n")
    print(row("repetition", "local run s", "s3 run s", "ratio", "s3 cold read s",
              "one table s", "fetched/bucket"))
    locals_: list[float] = []
    remotes: list[float] = []
    colds: list[float] = []
    ones: list[float] = []
    try:
        for i in range(args.repeat):
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=bucket)
            with tempfile.TemporaryDirectory(prefix="andon-bench-s3-") as d:
                local = project(Path(d), "local", "")
                remote = project(Path(d), "s3", f"warehouse: s3://{bucket}/wh\n"
                                 f"landing: s3://{bucket}/landing\n"
                                 f"object_store:\n  endpoint: {endpoint}\n")
                t_local = timed_run(local)
                t_remote = timed_run(remote)
                expected = digest(local)
                shutil.rmtree(remote / ".andon" / "objectstore")  # a fresh machine
                t0 = time.perf_counter()
                cold = digest(remote)
                t_cold = time.perf_counter() - t0
                if cold != expected:
                    raise SystemExit(f"tables differ: local {expected} vs s3 {cold}")
                t_one, fetched = cold_one_table(remote, expected["airports"])
                sizes = {o["Key"]: o["Size"] for page in client.get_paginator(
                    "list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])}
                keys = set(sizes)
                in_bucket = sum(n for k, n in sizes.items() if k.startswith("wh/"))
                manifests = {k for k in keys if k.endswith("/_manifest.json")}
                if not manifests or any(k.startswith("wh/_staging/") for k in keys):
                    raise SystemExit(f"bucket not as expected: {sorted(keys)[:5]}")
            locals_.append(t_local)
            remotes.append(t_remote)
            colds.append(t_cold)
            ones.append(t_one)
            print(row(f"#{i + 1}", f"{t_local:.3f}", f"{t_remote:.3f}",
                      f"{t_remote / t_local:.2f}x", f"{t_cold:.3f}", f"{t_one:.3f}",
                      f"{fetched / 1e6:.2f}/{in_bucket / 1e6:.1f} MB"))
    finally:
        server.stop()
    ratio = median(remotes) / median(locals_)
    print()
    print(row("median", f"{median(locals_):.3f}", f"{median(remotes):.3f}", f"{ratio:.2f}x",
              f"{median(colds):.3f}", f"{median(ones):.3f}", ""))
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"\n  tables identical locally and in the bucket ({len(TABLES)} checked)")
    print(f"  target: s3 run within {TARGET:.0f}x of local disk: {ratio:.2f}x -> {verdict}")


if __name__ == "__main__":
    main()
