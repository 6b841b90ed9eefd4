"""The prediction log: what the server answered, kept for monitoring.

Each served request (a sample of them: ``ANDON_PREDICTION_LOG_SAMPLE``, default 1 = all) is
appended to an in-memory buffer on the request path (one list append); a writer thread
turns the buffer into Parquet files off the request path, every
``ANDON_PREDICTION_LOG_FLUSH`` seconds (default 10) or sooner when ``ANDON_PREDICTION_LOG_ROWS``
rows wait (default 10,000). Files are append-only, one per model and flush, under
``.andon/predictions/MODEL/date=YYYY-MM-DD/hour=HH/`` (``models: prediction_log:`` of
andon.yaml moves the folder or turns the log off, the environment variables override it for
one server; ``andon gc`` deletes hours older than its ``keep``): nothing on the request path
touches the store, servers never contend for a row lock, and DuckDB or PyArrow read any number
of files by column.

A row holds the time, environment, version, fingerprint, the request's id (``ids`` of the
request body, joined later to labels), the entity keys, the model's inputs after the online
lookup (``input.FEATURE``), the prediction, the probability of a binary classifier (computed
by the writer, not the request), the fallback used, and for shadow mode the shadow alias,
version and prediction."""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import random
import shutil
import threading
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError

if TYPE_CHECKING:
    import pyarrow as pa

    from andon.models.artifact import LoadedModel
    from andon.project import Project

log = logging.getLogger("andon.models")

FOLDER = ".andon/predictions"
INPUT = "input."
KEY = "key."
MAX_WAITING = 20  # batches of ``rows`` kept while the disk is slower; older ones are dropped


@dataclass
class Served:
    """One request's answer, as the request path leaves it for the writer."""

    at: dt.datetime
    environment: str
    model: LoadedModel | None  # None: a fallback rule answered
    name: str
    rows: list[dict[str, Any]]  # the model's inputs, after the online lookup
    predictions: list[Any]
    ids: list[Any] | None
    keys: list[dict[str, Any]] | None
    fallback: str | None = None
    shadow: tuple[str, LoadedModel, list[Any]] | None = None  # alias, model, predictions


def folder_of(project: Project) -> Path | None:
    """Where the project's prediction log is (None: turned off): ``ANDON_PREDICTION_LOG``,
    else ``models: prediction_log:`` of andon.yaml."""
    settings = project.config.models.prediction_log
    where = os.environ.get("ANDON_PREDICTION_LOG")
    if where is None:
        if not settings.enabled:
            return None
        where = settings.folder
    if where.lower() in ("off", "none", "0", ""):
        return None
    path = Path(where)
    return path if path.is_absolute() else project.root / path


def _setting(name: str, default: float, low: float, high: float) -> float:
    """Environment variable ``name`` when set (checked from ``low`` to ``high``), else
    ``default`` (andon.yaml's value)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not low <= value <= high:
        raise AndonError(f"{name}={raw!r} is not a number from {low:g} to {high:g}",
                         hint=f"unset it for andon.yaml's models: prediction_log: ({default:g})")
    return value


class PredictionLog:
    """A buffer the request path appends to and a writer thread that empties it."""

    def __init__(self, folder: Path, *, sample: float = 1.0, flush_seconds: float = 1.0,
                 rows: int = 10_000) -> None:
        self.folder = folder
        self.sample = sample
        self.flush_seconds = flush_seconds
        self.max_rows = rows
        self.dropped = 0
        self._buffer: list[Served] = []
        self._waiting = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="andon-prediction-log",
                                        daemon=True)
        self._thread.start()
        atexit.register(_close_ref, weakref.ref(self))

    @classmethod
    def of(cls, project: Project) -> PredictionLog | None:
        folder = folder_of(project)
        if folder is None:
            return None
        settings = project.config.models.prediction_log
        return cls(folder,
                   sample=_setting("ANDON_PREDICTION_LOG_SAMPLE", settings.sample, 0.0, 1.0),
                   flush_seconds=_setting("ANDON_PREDICTION_LOG_FLUSH",
                                          settings.flush_seconds, 0.01, 3600.0),
                   rows=int(_setting("ANDON_PREDICTION_LOG_ROWS", settings.max_rows, 1,
                                     10_000_000)))

    def record(self, served: Served) -> None:
        """Keep a served answer (when sampled); never blocks on the disk."""
        if self.sample < 1.0 and random.random() >= self.sample:
            return
        with self._lock:
            if self._waiting >= self.max_rows * MAX_WAITING:  # bounded memory
                self.dropped += len(served.rows)
                return
            self._buffer.append(served)
            self._waiting += len(served.rows)
            full = self._waiting >= self.max_rows
        if full:
            self._wake.set()

    def flush(self) -> list[Path]:
        """Write what waits now (also called by readers that want every answer so far)."""
        with self._lock:
            batch, self._buffer, self._waiting = self._buffer, [], 0
        if not batch:
            return []
        with self._write_lock:
            try:
                return write(self.folder, batch)
            except Exception as e:  # the log never fails the server
                log.error("the prediction log could not write %d answers to %s: %s",
                          len(batch), self.folder, e)
                return []

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()


def _close_ref(ref: weakref.ReferenceType[PredictionLog]) -> None:
    log_ = ref()
    if log_ is not None:
        log_.close()


def write(folder: Path, batch: list[Served]) -> list[Path]:
    """One Parquet file per model (and hour) of ``batch``."""
    import pyarrow.parquet as pq

    groups: dict[tuple[str, str, str], list[Served]] = {}
    for s in batch:
        groups.setdefault((s.name, s.at.strftime("%Y-%m-%d"), s.at.strftime("%H")),
                          []).append(s)
    out = []
    for (name, day, hour), served in groups.items():
        table = _table(served)
        where = folder / name / f"date={day}" / f"hour={hour}"
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"{served[0].at.strftime('%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.rename(path.with_suffix(".parquet"))  # readers never see a half-written file
        out.append(path.with_suffix(".parquet"))
    return out


def _probabilities(served: list[Served]) -> dict[int, list[Any]]:
    """The positive class's probability of a binary classifier per answer (by its index in
    ``served``), computed in one call per model and on one native thread, so the writer
    leaves the cores to the requests."""
    from andon.models.artifact import one_thread

    by_model: dict[int, list[int]] = {}
    for i, s in enumerate(served):
        model = s.model
        classes = getattr(model.estimator, "classes_", None) if model is not None else None
        if model is not None and s.fallback is None and model.task == "classification" \
                and classes is not None and len(classes) == 2 \
                and hasattr(model.estimator, "predict_proba"):
            by_model.setdefault(id(model), []).append(i)
    out: dict[int, list[Any]] = {}
    for indexes in by_model.values():
        model = served[indexes[0]].model
        assert model is not None
        rows = [r for i in indexes for r in served[i].rows]
        try:
            with one_thread():
                values = [float(p) for p in
                          model.estimator.predict_proba(model.frame(rows))[:, 1]]
        except Exception:  # rows it cannot score: no probability to add
            continue
        start = 0
        for i in indexes:
            out[i] = values[start:start + len(served[i].rows)]
            start += len(served[i].rows)
    return out


def _table(served: list[Served]) -> pa.Table:
    import pyarrow as pa

    cols: dict[str, list[Any]] = {
        "served_at": [], "request": [], "environment": [], "version": [], "fingerprint": [],
        "id": [], "prediction": [], "probability": [], "fallback": [], "shadow_alias": [],
        "shadow_version": [], "shadow_prediction": []}
    inputs: dict[str, list[Any]] = {}
    keys: dict[str, list[Any]] = {}
    n = 0
    probabilities = _probabilities(served)
    for number, s in enumerate(served):
        count = len(s.rows)
        model = s.model
        cols["served_at"] += [s.at] * count
        cols["request"] += [uuid.uuid4().hex[:16]] * count
        cols["environment"] += [s.environment] * count
        cols["version"] += [model.version if model else None] * count
        cols["fingerprint"] += [model.fingerprint if model else None] * count
        cols["id"] += [None if i is None else str(i) for i in s.ids] if s.ids \
            else [None] * count
        cols["prediction"] += s.predictions
        cols["probability"] += probabilities.get(number, [None] * count)
        cols["fallback"] += [s.fallback] * count
        alias, shadow, theirs = s.shadow if s.shadow else (None, None, [None] * count)
        cols["shadow_alias"] += [alias] * count
        cols["shadow_version"] += [shadow.version if shadow else None] * count
        cols["shadow_prediction"] += theirs
        for block, rows, prefix in ((inputs, s.rows, INPUT), (keys, s.keys, KEY)):
            for j, row in enumerate(rows or []):
                for k, v in row.items():
                    column = block.get(prefix + k)
                    if column is None:  # a field first seen here: null in the rows before
                        column = block[prefix + k] = [None] * (n + j)
                    column.append(v)
                if len(block) > len(row):  # fields this row lacks
                    for values in block.values():
                        if len(values) < n + j + 1:
                            values.append(None)
            for values in block.values():
                values.extend([None] * (n + count - len(values)))
        n += count
    arrays = {k: pa.array(v) for k, v in cols.items()}
    arrays["served_at"] = pa.array(cols["served_at"], pa.timestamp("us", tz="UTC"))
    arrays["version"] = pa.array(cols["version"], pa.int64())
    arrays["shadow_version"] = pa.array(cols["shadow_version"], pa.int64())
    arrays["probability"] = pa.array(cols["probability"], pa.float64())
    for k, v in {**inputs, **keys}.items():
        arrays[k] = _array(v)
    return pa.table(arrays)


def _array(values: list[Any]) -> pa.Array:
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: kept as JSON text
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


def files(project: Project, name: str) -> list[Path]:
    """The log's files of model ``name``, oldest first."""
    folder = folder_of(project)
    if folder is None or not (folder / name).is_dir():
        return []
    return sorted((folder / name).glob("date=*/hour=*/*.parquet"))


def read(project: Project, name: str) -> pa.Table:
    """Every logged answer of model ``name`` (columns unified across files); an error when
    the server has logged none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = files(project, name)
    if not found:
        folder = folder_of(project)
        raise AndonError(f"the prediction log has no answer of model {name!r}" + (
            f" under {folder}" if folder else
            " (it is off: models: prediction_log: of andon.yaml, or ANDON_PREDICTION_LOG)"),
            hint="serve predictions with andon server first (POST /api/models/"
            f"{name}/predict); the server writes its log every flush_seconds (models: "
            "prediction_log: of andon.yaml, default 10) and when it stops")
    tables = [pq.read_table(f) for f in found]
    return pa.concat_tables(tables, promote_options="permissive")


def expire(project: Project, cutoff: float, *, dry_run: bool = False) -> tuple[int, int, int]:
    """Delete the log's hours that ended before ``cutoff`` (a Unix time; ``andon gc`` passes
    now minus ``models: prediction_log: keep``). Returns (hours, files, bytes)."""
    folder = folder_of(project)
    if folder is None or not folder.is_dir():
        return 0, 0, 0
    hours = count = size = 0
    for day in sorted(folder.glob("*/date=*")):
        for hour in sorted(day.glob("hour=*")):
            try:
                start = dt.datetime.strptime(f"{day.name[5:]} {hour.name[5:]}",
                                             "%Y-%m-%d %H").replace(tzinfo=dt.UTC)
            except ValueError:  # not a folder the log wrote: left alone
                continue
            if start.timestamp() + 3600 > cutoff:
                continue
            found = [p for p in hour.iterdir() if p.is_file()]
            hours += 1
            count += len(found)
            size += sum(p.stat().st_size for p in found)
            if not dry_run:
                shutil.rmtree(hour, ignore_errors=True)
        if not dry_run and day.is_dir() and not any(day.iterdir()):
            day.rmdir()
    return hours, count, size


def shadow_comparisons(project: Project, name: str, alias: str) -> list[dict[str, Any]]:
    """Per pair of versions, how often the shadow (``alias``) agreed with the version
    served: requests, rows, agreed, agreement, over the whole log."""
    if not files(project, name):
        return []
    table = read(project, name)
    if "shadow_alias" not in table.column_names:
        return []
    frame = table.select(["request", "version", "prediction", "shadow_alias",
                          "shadow_version", "shadow_prediction"]).to_pandas()
    frame = frame[frame["shadow_alias"] == alias]
    out = []
    for (version, shadow), rows in frame.groupby(["version", "shadow_version"], dropna=False):
        agreed = int((rows["prediction"] == rows["shadow_prediction"]).sum())
        out.append({"version": None if version != version else int(version),
                    "shadow_version": int(shadow), "requests": int(rows["request"].nunique()),
                    "rows": len(rows), "agreed": agreed, "agreement": agreed / len(rows)})
    return out
