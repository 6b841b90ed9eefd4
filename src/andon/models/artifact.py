"""The model inside a model artifact: saved with skops (never pickle), loaded only when its
file is the one andon sealed and holds no type beyond those recorded when it was saved;
``LoadedModel`` validates inputs against the signature, predicts and scores tables."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from andon.warehouse import Manifest, Warehouse

MODEL_FILE = "model.skops"
HOLDOUT_FILE = "holdout.parquet"
META = "model"  # the manifest's meta key of a model artifact

# signature types: what a JSON request field must be
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,), "double": (int, float), "boolean": (bool,), "string": (str,),
}


class ModelLoadError(AndonError):
    """A model file cannot be loaded (changed, truncated, or holding untrusted types)."""

    kind = "failed"


class RequestInvalid(AndonError):
    """Rows to predict do not match the model's signature (HTTP 422 naming the field)."""

    kind = "invalid"

    def __init__(self, message: str, *, field: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.field = field


def require_models() -> None:
    """scikit-learn and skops are an extra: say how to install them."""
    try:
        import sklearn  # noqa: F401
        import skops.io  # noqa: F401
    except ImportError as e:
        raise AndonError(f"model steps need scikit-learn and skops ({e.name} is missing)",
                         hint="pip install 'andon[models]'") from None


def signature_type(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "double"
    return "string"


def save(estimator: Any, path: Path) -> list[str]:
    """Write the estimator with skops; the types skops does not trust by default that it
    holds (they come from the project's own code, which built it)."""
    import skops.io as sio

    sio.dump(estimator, path)
    return sorted(sio.get_untrusted_types(file=path))


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass(frozen=True)
class LoadedModel:
    """A model version ready to predict: its estimator and signature."""

    name: str
    version: int | None
    fingerprint: str
    estimator: Any
    inputs: tuple[tuple[str, str], ...]  # (feature, signature type)
    label: str
    task: str  # classification|regression
    # the estimator without its feature names, and their order: one-row requests predict
    # from a NumPy row (4x faster than a DataFrame); None when that gives other answers
    plain: tuple[Any, tuple[str, ...]] | None = field(default=None, compare=False,
                                                      repr=False)

    @property
    def features(self) -> list[str]:
        return [f for f, _ in self.inputs]

    def check(self, rows: list[dict[str, Any]]) -> None:
        """A ``RequestInvalid`` naming the first missing, mistyped or unknown field."""
        if not rows:
            raise RequestInvalid("no rows to predict", field="rows",
                                 hint="send {\"rows\": [{feature: value, ...}]}")
        known = dict(self.inputs)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestInvalid(f"rows[{i}] is not an object", field=f"rows[{i}]")
            for name, kind in self.inputs:
                if name not in row:
                    raise RequestInvalid(
                        f"rows[{i}]: field {name!r} is missing", field=f"rows[{i}].{name}",
                        hint=f"model {self.name!r} needs: " + ", ".join(
                            f"{f} ({t})" for f, t in self.inputs))
                value = row[name]
                ok = value is None or (isinstance(value, _JSON_TYPES[kind])
                                       and not (kind != "boolean" and isinstance(value, bool)))
                if not ok:
                    raise RequestInvalid(
                        f"rows[{i}]: field {name!r} must be {kind}, got "
                        f"{type(value).__name__} {value!r}", field=f"rows[{i}].{name}")
            extra = [k for k in row if k not in known]
            if extra:
                raise RequestInvalid(f"rows[{i}]: unknown field {extra[0]!r}",
                                     field=f"rows[{i}].{extra[0]}",
                                     hint=f"fields: {', '.join(self.features)}")

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Request rows as the estimator's input; a missing or mistyped field is a
        ``RequestInvalid`` naming it (unknown fields are refused too)."""
        import pandas as pd

        self.check(rows)
        if all(kind != "string" for _, kind in self.inputs):  # one float block: fastest
            import numpy as np

            values = np.array([[row[f] for f in self.features] for row in rows], dtype="float64")
            return pd.DataFrame(values, columns=self.features)
        frame = pd.DataFrame.from_records(rows, columns=self.features)
        for name, kind in self.inputs:  # all-null columns stay numeric for the estimator
            if kind != "string":
                frame[name] = frame[name].astype("float64")
        return frame

    def predict_rows(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Predictions for request rows; a few rows are predicted on this thread alone
        (spinning up the estimator's thread pool costs more than it saves)."""
        if self.plain is not None and len(rows) <= _SMALL:
            import numpy as np

            self.check(rows)
            estimator, order = self.plain
            values = np.array([[row[f] for f in order] for row in rows], dtype="float64")
            with one_thread():
                out = estimator.predict(values)
        elif len(rows) <= _SMALL:
            frame = self.frame(rows)
            with one_thread():
                out = self.estimator.predict(frame)
        else:
            out = self.estimator.predict(self.frame(rows))
        return [v.item() if hasattr(v, "item") else v for v in out]

    def score(self, table: pa.Table | pd.DataFrame) -> pa.Table:
        """``table`` with the model's prediction (``prediction``; ``probability`` of the
        positive class for a binary classifier) and ``model_version`` on every row."""
        import pyarrow as pa

        arrow = table if isinstance(table, pa.Table) else pa.Table.from_pandas(
            table, preserve_index=False)
        missing = [f for f in self.features if f not in arrow.column_names]
        if missing:
            raise AndonError(f"the table to score has no column {missing[0]!r}",
                             hint=f"model {self.name!r} needs: {', '.join(self.features)}")
        frame = arrow.select(self.features).to_pandas()
        out = arrow.append_column("prediction", pa.array(self.estimator.predict(frame)))
        classes = getattr(self.estimator, "classes_", None)
        if self.task == "classification" and classes is not None and len(classes) == 2 \
                and hasattr(self.estimator, "predict_proba"):
            proba = self.estimator.predict_proba(frame)[:, 1]
            out = out.append_column("probability", pa.array(proba, pa.float64()))
        n = out.num_rows
        out = out.append_column("model_version", pa.array([self.version] * n, pa.int64()))
        return out.append_column("model_fingerprint",
                                 pa.array([self.fingerprint] * n, pa.string()))


_SMALL = 64
_CONTROLLER: list[Any] = []


def one_thread() -> Any:
    """A context limiting the native thread pools (OpenMP, BLAS) to one thread."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1)


def _plain(estimator: Any, inputs: tuple[tuple[str, str], ...]
           ) -> tuple[Any, tuple[str, ...]] | None:
    """A shallow copy of ``estimator`` that takes NumPy rows without a feature-name check,
    when every input is numeric and it answers a probe row as the original does."""
    import copy
    import warnings

    import numpy as np
    import pandas as pd

    names = getattr(estimator, "feature_names_in_", None)
    kinds = dict(inputs)
    if names is None or any(kinds.get(str(n)) in (None, "string") for n in names) \
            or len(names) != len(inputs) or hasattr(estimator, "steps"):
        return None
    order = tuple(str(n) for n in names)
    plain = copy.copy(estimator)
    try:
        del plain.feature_names_in_
        probe = np.array([[float(i % 7) for i in range(len(order))],
                          [float(i) / 3 - 1 for i in range(len(order))]])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            mine = plain.predict(probe)
        theirs = estimator.predict(pd.DataFrame(probe, columns=list(order)))
    except Exception:
        return None
    return (plain, order) if bool(np.array_equal(mine, theirs)) else None


def model_info(manifest: Manifest) -> dict[str, Any]:
    """The model part of a model artifact's manifest (AndonError: not a model step's)."""
    info = manifest.meta.get(META)
    if not isinstance(info, dict):
        raise AndonError(f"step {manifest.step!r} is not a model step",
                         hint="mark its function with @andon.models.model(label=...)")
    return info


def load(warehouse: Warehouse, manifest: Manifest, version: int | None = None) -> LoadedModel:
    """The model of a model artifact, loaded safely."""
    require_models()
    import skops.io as sio

    info = model_info(manifest)
    path = warehouse.artifact_file(manifest.step, manifest.fingerprint, str(info["file"]))
    where = f"model {manifest.step!r} ({manifest.fingerprint[:12]})"
    rebuild = (f"rebuild it: delete the folder {manifest.step}/{manifest.fingerprint} "
               "of the warehouse and run the pipeline again")
    try:
        digest = file_digest(path)
    except OSError as e:
        raise ModelLoadError(f"the model file of {where} cannot be read: {e.strerror}",
                             file=path, step=manifest.step, hint=rebuild) from e
    if digest != info["sha256"]:
        raise ModelLoadError(f"the model file of {where} is not the one andon sealed "
                             "(its sha256 differs); it was not loaded", file=path,
                             step=manifest.step, hint=rebuild)
    trusted = list(info.get("trusted") or [])
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
        if not untrusted <= set(trusted):
            raise ModelLoadError(
                f"the model file of {where} holds types not recorded when it was saved: "
                f"{', '.join(sorted(untrusted - set(trusted)))}", file=path,
                step=manifest.step, hint=rebuild)
        estimator = sio.load(path, trusted=trusted)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"the model file of {where} cannot be loaded: "
                             f"{type(e).__name__}: {e}", file=path, step=manifest.step,
                             hint=rebuild + "; or install the library versions it was "
                             f"trained with ({', '.join(info.get('libraries', []))})") from e
    inputs = tuple((str(a), str(b)) for a, b in info["signature"]["inputs"])
    return LoadedModel(manifest.step, version, manifest.fingerprint, estimator, inputs,
                       str(info["label"]), str(info["task"]), _plain(estimator, inputs))
