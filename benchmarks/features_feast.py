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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--ttl-days", type=int, default=7)
    ap.add_argument("--online", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    feats = args.folder / "feats.parquet"
    rows = pd.read_parquet(args.folder / "rows.parquet")
    expected = pd.read_parquet(args.folder / "expected.parquet")
    store = repo(args.folder / f"feast-{args.ttl_days}", feats, args.ttl_days)
    result: dict[str, Any] = {"historical_s": historical(store, rows, expected)}
    if args.online:
        result.update(online(store, pd.read_parquet(feats)))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
