"""Feast's side of benchmarks/features.py, run in Feast's own virtualenv (never andon's):

    python benchmarks/features.py --feast                # runs this script in the venv

or by hand, on the Parquet files features.py exports (``feats.parquet``: entity, ts,
f0..f9; ``rows.parquet``: entity, event_timestamp, label; ``expected.parquet``: pandas
merge_asof of the two, in input order):

    FEAST_PYTHON benchmarks/features_feast.py DIR --ttl-days 7 [--online]

Prints one JSON object: seconds of ``get_historical_features(...).to_df()`` with the DuckDB
offline store (checked row by row against ``expected.parquet``), and with --online the
materialisation rate into SQLite and the p50/p99 of ``get_online_features`` for 1 and 100
entities (checked against the latest value per entity).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

N_FEATURES = 10


def repo(folder: Path, feats: Path, ttl_days: int) -> Any:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feature_store.yaml").write_text(
        "project: bench\nregistry: registry.db\nprovider: local\n"
        "offline_store:\n  type: duckdb\n"
        f"online_store:\n  type: sqlite\n  path: {folder / 'online.db'}\n"
        "entity_key_serialization_version: 3\n")
    store = FeatureStore(repo_path=str(folder))
    entity = Entity(name="e", join_keys=["entity"])
    source = FileSource(path=str(feats), timestamp_field="ts")
    view = FeatureView(name="v", entities=[entity],
                       ttl=timedelta(days=ttl_days) if ttl_days else timedelta(0),
                       schema=[Field(name=f"f{k}", dtype=Float64) for k in range(N_FEATURES)],
                       source=source, online=True)
    store.apply([entity, view])
    return store


def historical(store: Any, rows: pd.DataFrame, expected: pd.DataFrame) -> float:
    refs = [f"v:f{k}" for k in range(N_FEATURES)]
    start = time.perf_counter()
    df = store.get_historical_features(entity_df=rows, features=refs).to_df()
    seconds = time.perf_counter() - start
    # Feast returns rows in its own order: put them back in input order by label
    got = df.sort_values("label").reset_index(drop=True)
    assert len(got) == len(expected), (len(got), len(expected))
    want = expected.sort_values("label").reset_index(drop=True)
    assert got["label"].tolist() == want["label"].tolist()
    for k in range(N_FEATURES):
        x = got[f"f{k}"].astype("float64").fillna(-1.0).to_numpy()
        y = want[f"f{k}"].astype("float64").fillna(-1.0).to_numpy()
        assert (abs(x - y) < 1e-9).all(), f"Feast's f{k} differs from merge_asof"
    return seconds


def online(store: Any, feats: pd.DataFrame) -> dict[str, Any]:
    from datetime import datetime

    latest = feats.sort_values("ts").groupby("entity").tail(1).set_index("entity")
    end = (feats["ts"].max() + pd.Timedelta(seconds=1)).to_pydatetime()
    start = time.perf_counter()
    store.materialize(start_date=datetime(2000, 1, 1, tzinfo=end.tzinfo), end_date=end)
    mat = time.perf_counter() - start
    keys = list(latest.index)
    refs = [f"v:f{k}" for k in range(N_FEATURES)]
    rnd = random.Random(7)
    out: dict[str, Any] = {"materialize_s": mat, "entities": len(keys)}
    for batch, n in ((1, 2000), (100, 300)):
        times = []
        for _ in range(n):
            sample = rnd.sample(keys, batch)
            t0 = time.perf_counter()
            got = store.get_online_features(features=refs,
                                            entity_rows=[{"entity": k} for k in sample]
                                            ).to_dict()
            times.append((time.perf_counter() - t0) * 1000)
        # the last answer, checked against the latest row per entity
        for i, k in enumerate(sample):
            assert abs(got["f0"][i] - latest.loc[k, "f0"]) < 1e-9, "online value differs"
        times.sort()
        out[f"online_{batch}_p50_ms"] = times[len(times) // 2]
        out[f"online_{batch}_p99_ms"] = times[int(len(times) * 0.99) - 1]
    return out


def http(folder: Path, keys: list[str], seconds: float = 5.0) -> dict[str, Any]:
    """``feast serve`` (defaults: one worker) on loopback: 1,000 sequential requests of one
    entity (p50/p99), then requests/s at concurrency 8 with wrk when it is installed."""
    import shutil
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    feast_cli = str(Path(sys.executable).with_name("feast"))
    proc = subprocess.Popen([feast_cli, "-c", str(folder), "serve", "-p", str(port),
                             "--no-access-log"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/get-online-features"
    rnd = random.Random(11)
    refs = [f"v:f{k}" for k in range(N_FEATURES)]

    def post(key: str) -> dict[str, Any]:
        data = json.dumps({"features": refs, "entities": {"entity": [key]}}).encode()
        request = urllib.request.Request(url, data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                post(keys[0])
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("feast serve did not start") from None
                time.sleep(0.2)
        times = []
        for _ in range(1000):
            t0 = time.perf_counter()
            answer = post(rnd.choice(keys))
            times.append((time.perf_counter() - t0) * 1000)
        assert answer["metadata"]["feature_names"], answer
        times.sort()
        out: dict[str, Any] = {"http_p50_ms": times[500], "http_p99_ms": times[989]}
        if shutil.which("wrk"):
            script = folder / "online.lua"
            script.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                "math.randomseed(11)\nrequest = function()\n"
                f"  local body = '{{\"features\": {json.dumps(refs)}, \"entities\": "
                "{\"entity\": [\"e' .. "
                f"math.random(0, {len(keys) - 1})"
                " .. '\"]}}'\n  return wrk.format(nil, nil, nil, body)\nend\n")
            done = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds:.0f}s", "-s", str(script),
                                   url], capture_output=True, text=True, check=True).stdout
            assert "Non-2xx" not in done, done
            out["http_wrk_rps"] = float(next(line.split()[1] for line in done.splitlines()
                                             if line.startswith("Requests/sec")))
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--ttl-days", type=int, default=7)
    ap.add_argument("--online", action="store_true")
    ap.add_argument("--http", action="store_true", help="also feast serve (after --online)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    args.folder = args.folder.resolve()
    feats = args.folder / "feats.parquet"
    rows = pd.read_parquet(args.folder / "rows.parquet")
    expected = pd.read_parquet(args.folder / "expected.parquet")
    store = repo(args.folder / f"feast-{args.ttl_days}", feats, args.ttl_days)
    result: dict[str, Any] = {"historical_s": historical(store, rows, expected)}
    if args.online:
        result.update(online(store, pd.read_parquet(feats)))
        if args.http:
            keys = sorted(pd.read_parquet(feats, columns=["entity"])["entity"].unique())
            result.update(http(args.folder / f"feast-{args.ttl_days}", keys))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
