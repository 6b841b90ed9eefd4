"""The schema of ``andon.yaml`` and of step headers, validated with pydantic.

Errors are reported with file, line and a "did you mean …?" hint for unknown keys.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from andon.errors import ConfigError, did_you_mean
from andon.registry import Ref, Registry
from andon.schedule.model import ScheduleConfig, SensorConfig, SlaConfig
from andon.yamlfile import YamlDoc

if TYPE_CHECKING:
    from andon.execution.pytask import TaskRunner
    from andon.steps import Step

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Contract type names a user may write, and the DuckDB type each becomes.
TYPE_ALIASES: dict[str, str] = {
    "int": "BIGINT",
    "integer": "BIGINT",
    "bigint": "BIGINT",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "hugeint": "HUGEINT",
    "float": "DOUBLE",
    "double": "DOUBLE",
    "real": "FLOAT",
    "number": "DOUBLE",
    "string": "VARCHAR",
    "text": "VARCHAR",
    "varchar": "VARCHAR",
    "bool": "BOOLEAN",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "datetime": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "uuid": "UUID",
    "blob": "BLOB",
}
_DECIMAL_RE = re.compile(r"^(decimal|numeric)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$", re.IGNORECASE)


def duckdb_type(name: str) -> str:
    """Map a contract type to a DuckDB type, or raise ValueError with a suggestion."""
    key = name.strip().lower()
    if key in TYPE_ALIASES:
        return TYPE_ALIASES[key]
    m = _DECIMAL_RE.match(key)
    if m:
        return f"DECIMAL({m.group(2)},{m.group(3)})"
    hint = did_you_mean(key, TYPE_ALIASES)
    raise ValueError(
        f"unknown type {name!r}" + (f"; {hint}" if hint else "")
        + f" (known: {', '.join(sorted(TYPE_ALIASES))}, decimal(p,s))"
    )


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(Model):
    """One column of a source contract."""

    type: str = "varchar"
    required: bool = False
    description: str = ""
    pii: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        duckdb_type(v)
        return v

    @property
    def duckdb_type(self) -> str:
        return duckdb_type(self.type)


# The encodings a CSV file may be in (those DuckDB's reader decodes), and other spellings.
ENCODINGS: tuple[str, ...] = ("utf-8", "utf-16", "latin-1")
_ENCODING_ALIASES = {"utf8": "utf-8", "utf16": "utf-16", "utf-16le": "utf-16",
                     "latin1": "latin-1", "iso-8859-1": "latin-1", "iso8859-1": "latin-1"}


class CsvOptions(Model):
    delimiter: str = ","
    header: bool = True
    quote: str = '"'
    null_values: list[str] = Field(default_factory=lambda: ["", "NA", "NULL"])
    date_format: str | None = None
    timestamp_format: str | None = None
    encoding: str = Field(default="utf-8", description="utf-8, utf-16 or latin-1")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        key = v.strip().lower().replace("_", "-")
        key = _ENCODING_ALIASES.get(key, key)
        if key not in ENCODINGS:
            hint = did_you_mean(key, ENCODINGS)
            raise ValueError(f"unknown encoding {v!r}" + (f"; {hint}" if hint else "")
                             + f" (known: {', '.join(ENCODINGS)})")
        return key


DEFAULT_MAX_REJECT_PCT = 10.0


class SourceSpec(Model):
    """What every kind of source declares: its ``kind:``, its contract (``columns``) and its
    docs. Each kind (``andon.kinds.SOURCE_KINDS``) extends it with where its data comes
    from; ``andon.yaml`` picks the kind's model by ``kind:`` (a discriminated union open to
    other packages), ``files`` when it is left out."""

    kind: str = Field(default="files", description="a registered source kind (andon.kinds)")
    columns: dict[str, ColumnSpec]
    description: str = ""
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    zone: str = "landing"
    checks: list[dict[str, Any]] = Field(default_factory=list)
    # schema evolution (andon.sources.evolution): None keeps the contract's columns only
    evolve: Literal["add_columns", "strict", "rescue"] | None = Field(
        default=None, description="what a file with other columns or types does: "
        "add_columns, strict (stops the line) or rescue (unexpected data in _rescued_data)")

    @model_validator(mode="before")
    @classmethod
    def _shorthand_columns(cls, data: Any) -> Any:
        # ``columns: {year: integer}`` is shorthand for ``{year: {type: integer}}``.
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            data = dict(data)
            data["columns"] = {
                k: ({"type": v} if isinstance(v, str) else v) for k, v in data["columns"].items()
            }
        return data

    @field_validator("columns")
    @classmethod
    def _non_empty(cls, v: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        if not v:
            raise ValueError("a source needs at least one column in its contract")
        return v


class SourceConfig(SourceSpec):
    """A file source (``kind: files``, the default): where files arrive and what they must
    contain."""

    kind: Literal["files"] = Field(default="files", description="files arriving in a folder")
    path: str
    format: Literal["csv", "jsonl", "parquet"] | None = None
    csv: CsvOptions = Field(default_factory=CsvOptions)
    # a file whose rows are mostly rejected stops the line; 100 turns the limit off
    max_reject_pct: float = Field(default=DEFAULT_MAX_REJECT_PCT, ge=0, le=100)


@dataclass(frozen=True)
class SourceKind:
    """A kind of source in ``andon.yaml``: its ``kind:`` name, the pydantic model of its
    settings (a ``SourceSpec`` whose ``kind`` field is a ``Literal`` of that name), and how
    a source of the kind becomes a step (``step(name, spec, andon.yaml path)``; the step's
    kind builds it)."""

    name: str
    config: type[SourceSpec]
    step: Callable[[str, SourceSpec, Path], Step]



SOURCE_KINDS: Registry[SourceKind] = Registry("source kind", "andon.source_kinds")
# a files source becomes a step that lands its files (andon.steps, imported on first use)
SOURCE_KINDS.register(SourceKind("files", SourceConfig, Ref("andon.steps:files_source_step")))


class PulledSource(SourceSpec):
    """What a source andon pulls itself (a database, an HTTP API) declares: each pull lands
    a snapshot file (andon.sources)."""

    max_reject_pct: float = Field(default=DEFAULT_MAX_REJECT_PCT, ge=0, le=100)
    password_secret: str | None = Field(default=None, description="the andon secret holding "
                                        "the password (never in andon.yaml)")
    keep_snapshots: str | None = Field(default=None, description="retention of the temporal "
                                       "zone: andon gc deletes snapshots the source no longer "
                                       "reads once older than this (e.g. 90d); default: keep")


class DatabaseSourceConfig(PulledSource):
    """A table or a query of a PostgreSQL, MySQL/MariaDB or SQLite database
    (``kind: database``), read by DuckDB's scanner."""

    kind: Literal["database"] = "database"
    url: str = Field(description="postgresql://user@host/db, mysql://user@host/db or "
                     "sqlite:///path.db (no password: see password_secret)")
    table: str | None = None
    query: str | None = Field(default=None, description="SQL run in the source database")
    cursor: str | None = Field(default=None, description="incremental: only rows whose "
                               "cursor column is past the last pull's maximum")

    @model_validator(mode="after")
    def _one_of(self) -> DatabaseSourceConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("a database source reads one 'table:' or one 'query:'")
        from urllib.parse import urlsplit

        if urlsplit(self.url).password:
            raise ValueError("the url holds a password: andon.yaml is committed; keep it in "
                             "a secret (andon secrets set NAME) and name it in password_secret")
        return self


class HttpSourceConfig(PulledSource):
    """A JSON API (``kind: http``): pages of records, following the API's pagination."""

    kind: Literal["http"] = "http"
    url: str
    records: str | None = Field(default=None, description="dotted path of the list of "
                                "records in a page (default: the page itself, or 'data')")
    paginate: Literal["none", "next_link", "page", "cursor"] = "none"
    next: str = Field(default="next", description="next_link: dotted path of the next URL; "
                      "cursor: dotted path of the next cursor")
    page_param: str = Field(default="page", description="page/cursor: the query parameter")
    auth_header: str = Field(default="Authorization", description="header carrying the secret")
    auth_secret: str | None = Field(default=None, description="andon secret sent in "
                                    "auth_header (e.g. 'Bearer ...')")
    max_pages: int = Field(default=1000, ge=1)
    retries: int = Field(default=3, ge=0, le=10)
    backoff: float = Field(default=1.0, ge=0, description="seconds before the first retry "
                           "(doubling)")
    timeout: float = Field(default=30.0, gt=0)


SOURCE_KINDS.register(SourceKind("database", DatabaseSourceConfig,
                                 Ref("andon.sources.pull:pulled_source_step")))
SOURCE_KINDS.register(SourceKind("http", HttpSourceConfig,
                                 Ref("andon.sources.pull:pulled_source_step")))


def source_model(data: Any) -> type[SourceSpec] | None:
    """The model of the source kind ``data`` names (``files`` when it names none); None when
    no installed package provides that kind."""
    name = data.get("kind", "files") if isinstance(data, dict) else "files"
    kind = SOURCE_KINDS.all().get(name) if isinstance(name, str) else None
    return kind.config if kind is not None else None


def _source_by_kind(data: Any, handler: ValidatorFunctionWrapHandler) -> SourceSpec:
    """Validate a source with the model of its ``kind:``."""
    if isinstance(data, SourceSpec):
        return data
    model = source_model(data)
    if model is not None:
        return model.model_validate(data)
    name = str(data.get("kind") if isinstance(data, dict) else data)
    known = SOURCE_KINDS.all()
    hint = did_you_mean(name, known)
    msg = (f"unknown source kind {name!r}" + (f"; {hint}" if hint else "")
           + f" (known: {', '.join(sorted(known))}; more come from packages declaring the "
           "'andon.source_kinds' entry point)")
    raise ValidationError.from_exception_data("source", [InitErrorDetails(
        type=PydanticCustomError("source_kind", msg.replace("{", "(").replace("}", ")")),
        loc=("kind",), input=name)])


# A source of any registered kind, chosen by its ``kind:`` (see ``SourceSpec``).
AnySource = Annotated[SerializeAsAny[SourceSpec], WrapValidator(_source_by_kind)]


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
               "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20,
               "gib": 2**30, "tib": 2**40}


def parse_size(text: str | int) -> int:
    """Bytes of a size such as ``2GB``, ``512MiB`` or ``1000000`` (ValueError otherwise)."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size: write a number and a unit, e.g. 2GB or "
                         "512MiB")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


class StepResources(Model):
    """What one run of a Python step needs from the worker it runs on (``executor: dask``
    maps it to Dask worker resources; other executors ignore it)."""

    memory: str | int | None = Field(default=None, description="e.g. 2GB")
    cores: float | None = Field(default=None, gt=0, description="CPU cores, e.g. 2")

    @field_validator("memory")
    @classmethod
    def _size(cls, v: str | int | None) -> str | int | None:
        if v is not None:
            parse_size(v)
        return v

    def dask(self) -> dict[str, float]:
        """As Dask worker resources: ``{"memory": bytes, "cores": n}``."""
        out: dict[str, float] = {}
        if self.memory is not None:
            out["memory"] = float(parse_size(self.memory))
        if self.cores is not None:
            out["cores"] = self.cores
        return out


class StepConfig(Model):
    """The header of a SQL step (or its sidecar YAML), or the arguments of ``@andon.step``."""

    description: str = ""
    owner: str | None = None
    zone: str | None = None
    tags: list[str] = Field(default_factory=list)
    materialized: Literal["full", "incremental"] = "full"
    time_column: str | None = None
    grain: str | None = Field(default=None, description="incremental: the intervals it is "
                              "computed in (day, month, '15 minutes', ...)")
    lookback: int = Field(default=0, ge=0, description="incremental: intervals after a touched "
                          "one that depend on it (rolling windows, lags)")
    checks: list[dict[str, Any]] = Field(
        default_factory=list, description="data tests of the step's output (see checks)"
    )
    pii: list[str] = Field(default_factory=list, description="columns masked in check samples")
    masks: list[str] = Field(default_factory=list, description="output columns the step "
                             "masks or hashes: PII tags of their inputs stop there")
    column_tags: dict[str, list[str]] = Field(
        default_factory=dict, description="tags of output columns (pii:email, ...): they "
        "flow downstream through column lineage (andon catalog)")
    steward: str | None = Field(default=None, description="who answers for the table's data "
                                "(andon catalog)")
    alignment: Literal["source-aligned", "aggregate", "consumer-aligned"] | None = Field(
        default=None, description="the table's data category (inferred when not set)")
    primary_key: list[str] = Field(default_factory=list, description="columns that identify a "
                                   "row (for env diff)")
    lineage: dict[str, list[str]] = Field(
        default_factory=dict, description="Python steps: the input columns (table.column) "
        "each output column comes from (column lineage)")
    requirements: list[str] | str | None = Field(
        default=None, description="Python steps: pip requirement lines, or a requirements "
        "file (relative to the step's file); the step runs in a virtualenv of its own")
    image: str | None = Field(default=None, description="Python steps: an OCI image to run "
                              "the step in (needs docker or podman)")
    resources: StepResources | None = Field(
        default=None, description="Python steps: memory and cores one run needs (executor: "
        "dask)")

    @model_validator(mode="after")
    def _one_environment(self) -> StepConfig:
        if self.requirements is not None and self.image is not None:
            raise ValueError("declare requirements or an image, not both (install the "
                             "requirements in the image)")
        return self

    @model_validator(mode="after")
    def _incremental_needs_time(self) -> StepConfig:
        if self.materialized == "incremental" and not self.time_column:
            raise ValueError("materialized: incremental needs a time_column")
        if self.materialized != "incremental" and (self.grain or self.lookback):
            raise ValueError("grain and lookback apply to materialized: incremental only")
        if self.lookback and not self.grain:
            raise ValueError("lookback counts intervals: declare a grain too (e.g. grain: day)")
        return self

    @field_validator("grain")
    @classmethod
    def _known_grain(cls, v: str | None) -> str | None:
        if v is not None:
            from andon.grain import parse_grain

            parse_grain(v)
        return v


def _default_threads() -> int:
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class ExecutorKind:
    """An executor andon.yaml may name (``executor: {kind: NAME}``): how to open its task
    runner from the settings and the project's threads (None: Python steps run in the
    runner's own threads), and the extra that installs what it needs."""

    name: str
    open: Callable[[ExecutorConfig, int], TaskRunner | None]
    extra: str | None = None
    description: str = ""


EXECUTORS: Registry[ExecutorKind] = Registry("executor", "andon.executors")
EXECUTORS.register(ExecutorKind("threads", Ref("andon.execution.pytask:in_process"),
                                description="threads of the runner's process (the default)"))
EXECUTORS.register(ExecutorKind("dask", Ref("andon.execution.dask:open_dask"), extra="dask",
                                description="a Dask distributed cluster, or a LocalCluster"))


class ExecutorConfig(Model):
    """Where Python steps run: ``threads`` (this process, the default) or ``dask`` (a Dask
    cluster: ``scheduler`` is its address; without one, a LocalCluster on this machine).
    ``executor: dask`` is short for ``executor: {kind: dask}``."""

    kind: str = Field(default="threads", description="threads, dask, or another registered "
                      "executor (andon.execution.pytask.EXECUTORS)")
    scheduler: str | None = Field(default=None, description="dask: the scheduler's address, "
                                  "e.g. tcp://10.0.0.5:8786 (none: a LocalCluster)")
    workers: int = Field(default=1, ge=1, le=256, description="dask LocalCluster: worker "
                         "processes (each gets its share of the cores and memory)")
    retries: int = Field(default=1, ge=0, le=10, description="dask: times a step is run again "
                         "after the worker running it died")
    timeout: float = Field(default=30.0, gt=0, description="dask: seconds to connect to the "
                           "scheduler")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        known = EXECUTORS.all()
        if v not in known:
            hint = did_you_mean(v, known)
            raise ValueError(f"unknown executor {v!r}" + (f"; {hint}" if hint else "")
                             + f" (known: {', '.join(sorted(known))})")
        return v


class AlertConfig(Model):
    """Where warn and error check results are sent: one message per run, grouped by step."""

    type: Literal["webhook", "email", "command"]
    url: str | None = None  # webhook: Slack-compatible JSON POST
    timeout: float = Field(default=5.0, gt=0)
    smtp_host: str = "localhost"  # email
    smtp_port: int = 25
    sender: str = "andon@localhost"
    to: list[str] = Field(default_factory=list)  # default recipients; step owners are added
    command: str | None = None  # command: gets the JSON message on stdin
    min_severity: Literal["warn", "error"] = "warn"

    @model_validator(mode="after")
    def _needs(self) -> AlertConfig:
        if self.type == "webhook" and not self.url:
            raise ValueError("a webhook alert needs url")
        if self.type == "command" and not self.command:
            raise ValueError("a command alert needs command")
        return self


class OpenLineageConfig(Model):
    """Where runs send their OpenLineage events: JSON lines under ``.andon/openlineage/`` by
    default, an HTTP endpoint (Marquez, DataHub, ...) when ``url`` is set."""

    enabled: bool = True
    url: str | None = Field(default=None, description="the server, e.g. http://marquez:5000")
    endpoint: str = Field(default="api/v1/lineage", description="path of its lineage API")
    api_key_secret: str | None = Field(default=None, description="name of the andon secret "
                                       "sent as a Bearer token")
    namespace: str | None = Field(default=None, description="the jobs' and datasets' "
                                  "namespace (default: andon://PROJECT)")
    timeout: float = Field(default=5.0, gt=0)


class EnvironmentConfig(Model):
    """Settings of one environment: protection and parameter overrides."""

    protected: bool | None = None  # default: prod is protected, others are not
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class ObjectStoreConfig(Model):
    """``object_store:``: how an ``s3://`` warehouse or landing is reached. Credentials are
    the NAMES of andon secrets (``andon secrets set``); without them boto3's standard chain
    applies (AWS_* environment variables, ~/.aws)."""

    endpoint: str | None = Field(default=None, description="S3 API endpoint URL (MinIO, "
                                 "Ceph, ...); none: AWS")
    region: str | None = None
    access_key_id_secret: str | None = None
    secret_access_key_secret: str | None = None
    session_token_secret: str | None = None
    timeout: float = Field(default=10.0, gt=0, description="seconds to connect")
    attempts: int = Field(default=3, ge=1, le=20, description="tries of each request")


class PredictionLogConfig(Model):
    """``models: prediction_log:``: what ``andon server`` logs of its answers
    (andon.models.predlog). ``ANDON_PREDICTION_LOG*`` environment variables override it for
    one server process."""

    enabled: bool = True
    folder: str = Field(default=".andon/predictions", description="relative to the project")
    sample: float = Field(default=1.0, ge=0.0, le=1.0, description="share of requests logged")
    flush_seconds: float = Field(default=10.0, ge=0.01, le=3600.0,
                                 description="seconds between writes")
    max_rows: int = Field(default=10_000, ge=1, le=10_000_000,
                          description="rows waiting that trigger a write sooner")
    keep: str = Field(default="30d", description="andon gc deletes log hours older than this")


class ModelsConfig(Model):
    """``models:``: settings of served models."""

    prediction_log: PredictionLogConfig = Field(default_factory=PredictionLogConfig)


class ProjectConfig(Model):
    """``andon.yaml``. Only ``name`` is required; everything else has a default."""

    name: str
    pipelines: str = Field(default="pipelines", description="folder of pipeline folders")
    warehouse: str = Field(default=".andon/warehouse", description="artifact files")
    landing: str = Field(default=".andon/landing", description="raw files as received")
    object_store: ObjectStoreConfig = Field(
        default_factory=ObjectStoreConfig,
        description="endpoint, region and credential secrets of s3:// warehouse/landing")
    store: str = Field(
        default="sqlite:///.andon/andon.db",
        description="metadata store URL (sqlite path relative to the project, or postgresql://)",
    )
    engine: str = Field(default="duckdb", description="the SQL engine steps and checks run "
                        "on: duckdb (embedded), or another registered engine")
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="settings of the engine (its connection, for one)")
    threads: int = Field(default_factory=_default_threads, ge=1, le=256)
    memory_limit: str | None = Field(default=None, description="DuckDB memory limit, e.g. 4GB")
    default_environment: str = "prod"
    params: dict[str, Any] = Field(default_factory=dict)
    sources: dict[str, AnySource] = Field(
        default_factory=dict,
        description="where raw data comes from, by kind (files unless 'kind:' says otherwise)")
    checks: str = Field(default="checks", description="folder of check files")
    profile: Literal["all", "checked", "none"] = Field(
        default="all", description="profile every built artifact, only those with checks, or "
        "none (andon profile TABLE always works)")
    param_sets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="named parameter sets (andon run --params NAME)")
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    retention: str = Field(default="30d", description="how long old artifacts stay readable "
                           "(time machine) before andon gc may delete them")
    alerts: list[AlertConfig] = Field(default_factory=list)
    zones: list[str] = Field(
        default_factory=lambda: ["landing", "formatted", "exploitation", "features", "models"]
    )
    schedules: dict[str, ScheduleConfig] = Field(
        default_factory=dict, description="cron schedules of runs (andon scheduler)")
    sensors: dict[str, SensorConfig] = Field(
        default_factory=dict, description="file-arrival sensors on sources (andon scheduler)")
    openlineage: OpenLineageConfig = Field(
        default_factory=OpenLineageConfig, description="OpenLineage events of every run")
    sla: dict[str, SlaConfig] = Field(
        default_factory=dict, description="per table: fresh_by (HH:MM) or max_age; a late "
        "table alerts once per breach (andon scheduler)")
    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig, description="where Python steps run: threads (this "
        "process) or dask (a cluster; pip install 'andon[dask]')")
    online_store: str = Field(
        default="sqlite:///.andon/online.db",
        description="where materialised features are served from: a SQLite file (relative to "
        "the project) or redis://host:port/db (pip install 'andon[features]')")
    models: ModelsConfig = Field(
        default_factory=ModelsConfig, description="served models: the prediction log")

    @field_validator("warehouse", "landing")
    @classmethod
    def _location(cls, v: str) -> str:
        from andon.objectstore import parse_url

        parse_url(v)  # ValueError: an unsupported scheme, never a folder named "s3:"
        return v

    @field_validator("sources")
    @classmethod
    def _names(cls, v: dict[str, SourceSpec]) -> dict[str, SourceSpec]:
        for name in v:
            if not NAME_RE.match(name):
                raise ValueError(f"source name {name!r} must be a SQL identifier")
        return v


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], doc: YamlDoc, what: str) -> M:
    """Validate ``doc`` against ``model``; the first error names file, line and a hint."""
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{what} must be a mapping of keys to values", file=doc.file, line=1)
    try:
        return model.model_validate(doc.data)
    except ValidationError as e:
        raise _config_error(model, doc, e, what) from None


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...], data: Any = None
               ) -> list[str]:
    """The field names allowed at ``loc`` of ``data`` (for "did you mean" on unknown keys):
    a source's are those of its kind."""
    current: Any = _by_kind(model, data)
    for part in loc:
        data = data.get(part) if isinstance(data, dict) else None
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = _by_kind(field.annotation, data)
        else:
            # dict[str, X] / list[X]: step into the value type
            args = getattr(current, "__args__", ())
            current = _by_kind(args[-1], data) if args else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _by_kind(annotation: Any, data: Any) -> Any:
    """``AnySource`` is the model of the kind ``data`` names; other annotations are
    themselves."""
    if annotation is AnySource or (get_origin(annotation) is Annotated and any(
            isinstance(m, WrapValidator) and m.func is _source_by_kind
            for m in getattr(annotation, "__metadata__", ()))):
        return source_model(data) or SourceSpec
    return annotation


# unknown keys first: a misspelt key (``colums:``) also makes its real key look missing
_ERROR_ORDER = {"extra_forbidden": 0, "missing": 2}


def _config_error(
    model: type[BaseModel], doc: YamlDoc, e: ValidationError, what: str
) -> ConfigError:
    err = min(e.errors(), key=lambda x: _ERROR_ORDER.get(x["type"], 1))
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    dotted = ".".join(str(p) for p in loc)
    line = doc.line_of(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(model, loc[:-1], doc.data)
        hint = did_you_mean(key, allowed)
        return ConfigError(
            f"unknown key {dotted!r} in {what}",
            file=doc.file,
            line=line,
            hint=hint or (f"allowed keys here: {', '.join(allowed)}" if allowed else ""),
        )
    if kind == "missing":
        return ConfigError(
            f"missing required key {dotted!r} in {what}",
            file=doc.file,
            line=doc.line_of(loc[:-1]) or 1,
            hint=f"add '{loc[-1]}:' here",
        )
    msg = str(err["msg"]).removeprefix("Value error, ")
    return ConfigError(
        f"invalid value for {dotted!r} in {what}: {msg}" if dotted else f"{what} is invalid: {msg}",
        file=doc.file,
        line=line,
    )
