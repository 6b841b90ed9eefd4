"""Tables of the metadata store (SQLAlchemy Core). Append-mostly and indexed for history reads."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

meta = Table(
    "andon_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # running|succeeded|failed|cancelled|abandoned
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("user", String(128)),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("git_sha", String(64)),
    Column("git_dirty", Boolean),
    Column("selection", JSON),
    Column("params", JSON),
    Column("base_commit", String(64)),
    Column("commit_id", String(64)),
    Column("error", Text),
    Column("summary", JSON),
    # another process asked the run to stop (andon runs cancel); its heartbeat polls this
    Column("cancel_requested_at", Float),
    Column("cancel_requested_by", String(128)),
    Index("ix_runs_env_started", "environment", "started_at"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("step", String(255), nullable=False),
    Column("action", String(16), nullable=False),  # built|reused|failed|skipped|cancelled
    Column("fingerprint", String(64)),
    Column("rows", BigInteger),
    Column("rejects", BigInteger),
    Column("seconds", Float),
    Column("started_at", Float),
    Column("error", Text),
    Index("ix_step_runs_run", "run_id"),
    Index("ix_step_runs_step", "step"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("step", String(255), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("path", Text, nullable=False),  # folder of the artifact, relative to the warehouse
    Column("rows", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("schema", JSON, nullable=False),  # [[name, type], ...]
    Column("files", JSON, nullable=False),  # [relative parquet path, ...], may be shared
    Column("meta", JSON),  # e.g. incremental watermark, rejects count
    Column("created_at", Float, nullable=False),
    Column("run_id", Integer),
    Column("format", String(32)),  # of its files (andon.kinds.ARTIFACT_FORMATS); NULL: parquet
    Index("ix_artifacts_step", "step", "created_at"),
)

commits = Table(
    "commits",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("parent_id", String(64)),
    Column("merge_parent_id", String(64)),
    Column("created_at", Float, nullable=False),
    Column("author", String(128)),
    Column("git_sha", String(64)),
    Column("params", JSON),
    Column("message", Text),
    Column("run_id", Integer),
    Column("code", JSON),  # step → template hash: what a protected environment may run
)

commit_steps = Table(
    "commit_steps",
    metadata,
    Column("commit_id", String(64), ForeignKey("commits.id"), primary_key=True),
    Column("step", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)

environments = Table(
    "environments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("commit_id", String(64)),
    Column("version", Integer, nullable=False),
    Column("protected", Boolean, nullable=False, default=False),
    Column("base", String(128)),
    Column("owner", String(128)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

ref_log = Table(
    "ref_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(128), nullable=False),
    Column("from_commit", String(64)),
    Column("to_commit", String(64)),
    Column("at", Float, nullable=False),
    Column("who", String(128)),
    Column("why", Text),
    Column("run_id", Integer),
    Index("ix_ref_log_env_at", "environment", "at"),
)

leases = Table(
    "leases",
    metadata,
    Column("environment", String(128), primary_key=True),
    Column("holder", String(255), nullable=False),  # "run 12 (pid 345 on host)"
    Column("run_id", Integer),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("acquired_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

landed_files = Table(
    "landed_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(255), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("original_path", Text, nullable=False),
    Column("landed_path", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("arrived_at", Float, nullable=False),
    Column("run_id", Integer),
    # an operator took it out of the source (andon landing withdraw): kept for audit, not read
    Column("withdrawn_at", Float),
    Column("withdrawn_by", String(128)),
    Column("withdrawn_reason", Text),
    UniqueConstraint("source", "sha256", name="uq_landed_source_sha"),
)

# every pull of a database or HTTP source (andon.sources): what arrived when, and the cursor
# an incremental source continues from (per source, whatever the environment)
source_pulls = Table(
    "source_pulls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(255), nullable=False, index=True),
    Column("sha256", String(64)),  # the snapshot landed (NULL: nothing new arrived)
    Column("rows", BigInteger, nullable=False),
    Column("pages", Integer),
    Column("cursor", Text),  # JSON: the largest cursor value pulled so far
    Column("pulled_at", Float, nullable=False),
    Column("pulled_by", String(128)),
)

# schema changes of sources (andon.sources.evolution), each with the file that brought it
source_schema_changes = Table(
    "source_schema_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(255), nullable=False, index=True),
    Column("sha256", String(64), nullable=False),
    Column("file", Text, nullable=False),
    Column("change", String(16), nullable=False),  # added, removed, widened, rescued
    Column("column_name", String(255), nullable=False),
    Column("old_type", String(64)),
    Column("new_type", String(64)),
    Column("at", Float, nullable=False),
)

rejects = Table(
    "rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("part", String(64), nullable=False),  # the ingest part (file × contract) they belong to
    Column("source", String(255), nullable=False),
    Column("file", Text, nullable=False),
    Column("line", BigInteger),
    Column("column_name", String(255)),
    Column("reason", Text, nullable=False),
    Column("raw", Text),
    Index("ix_rejects_part", "part"),
    Index("ix_rejects_source", "source"),
)

logs = Table(
    "logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, nullable=False),
    Column("step", String(255)),
    Column("at", Float, nullable=False),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_logs_run", "run_id"),
)

check_results = Table(
    "check_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    Column("environment", String(128)),
    Column("step", String(255), nullable=False),
    Column("check_name", String(255), nullable=False),
    Column("check_hash", String(64), nullable=False),
    Column("check_type", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("status", String(16), nullable=False),  # passed|failed|recorded|error
    Column("metric", Float),
    Column("failing", BigInteger),
    Column("threshold", JSON),
    Column("message", Text),
    Column("sample", JSON),
    Column("spc", JSON),
    Column("fingerprint", String(64), nullable=False),
    Column("context", String(64), nullable=False),  # hash of the other artifacts it read
    Column("at", Float, nullable=False),
    Column("incident", Boolean, nullable=False, default=False),
    Column("acknowledged", Boolean, nullable=False, default=False),
    Column("ack_by", String(128)),
    Column("ack_note", Text),
    Index("ix_check_results_name_at", "check_name", "at"),
    Index("ix_check_results_key", "check_hash", "fingerprint", "context"),
    Index("ix_check_results_run", "run_id"),
    Index("ix_check_results_at", "at"),  # analytics: checks per day over a window
)

profiles = Table(
    "profiles",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("step", String(255), nullable=False),
    Column("run_id", Integer),
    Column("at", Float, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("profile", JSON, nullable=False),
    Index("ix_profiles_step_at", "step", "at"),
)

promotions = Table(
    "promotions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(128), nullable=False),
    Column("target", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # promoted|refused|conflict|dry-run
    Column("who", String(128)),
    Column("at", Float, nullable=False),
    Column("base_commit", String(64)),
    Column("source_commit", String(64)),
    Column("target_commit", String(64)),
    Column("candidate_commit", String(64)),
    Column("changed", JSON),  # steps taken from the source
    Column("checks", JSON),  # {"passed": n, "failed": [...]}
    Column("message", Text),
    Index("ix_promotions_target_at", "target", "at"),
)

users = Table(
    "users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),  # admin|operator|developer|viewer
    Column("created_at", Float, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("environment", String(128), primary_key=True),  # "*" for every environment
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128)),
)

tokens = Table(
    "tokens",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("user", String(128), nullable=False),  # who the token acts as
    Column("role", String(16), nullable=False),  # admin|operator|developer|viewer
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex; never the token
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128)),
    Column("expires_at", Float),  # None: never
    Column("last_used_at", Float),
)

schedule_state = Table(
    "schedule_state",
    metadata,
    Column("kind", String(16), primary_key=True),  # schedule|sensor
    Column("name", String(128), primary_key=True),
    Column("spec", Text, nullable=False),  # cron + time zone, or the sensor's source path
    Column("evaluated_at", Float, nullable=False),  # ticks up to here are decided
    Column("cursor", JSON),  # sensor: {file: [size, mtime_ns]} of the files seen
    Column("version", Integer, nullable=False),  # compare-and-swap between schedulers
)

schedule_ticks = Table(
    "schedule_ticks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_key", String(255), nullable=False),  # "nightly@2026-03-29T01:00:00Z"
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("scheduled_at", Float, nullable=False),
    Column("environment", String(128), nullable=False),
    Column("selection", JSON),
    Column("param_sets", JSON),
    Column("status", String(16), nullable=False),  # queued|starting|running|succeeded|failed|…
    Column("run_id", Integer),
    Column("claimed_by", String(255)),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("cursor", JSON),  # sensor: the files seen, saved with the run it starts
    Column("files", JSON),  # sensor: the new files that started it
    Column("error", Text),
    UniqueConstraint("run_key", name="uq_schedule_ticks_run_key"),
    Index("ix_schedule_ticks_name", "kind", "name", "scheduled_at"),
    Index("ix_schedule_ticks_status", "status", "environment"),
)

sla_breaches = Table(
    "sla_breaches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # "daily_kpis@prod:fresh_by:2026-06-02": one breach, so one alert, however often it is seen
    Column("breach_key", String(255), nullable=False),
    Column("table_name", String(255), nullable=False),
    Column("environment", String(128), nullable=False),
    Column("rule", String(16), nullable=False),  # fresh_by|max_age
    Column("due_at", Float, nullable=False),  # when the table had to be fresh
    Column("last_refresh", Float),  # the table's last successful run then (None: never)
    Column("detected_at", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("alert_errors", JSON),  # channels that failed
    UniqueConstraint("breach_key", name="uq_sla_breaches_key"),
    Index("ix_sla_breaches_table", "table_name", "detected_at"),
)

column_lineage = Table(
    "column_lineage",
    metadata,
    # one per step version: same code over the same inputs traces the same columns
    Column("fingerprint", String(64), primary_key=True),
    Column("step", String(255), nullable=False),
    Column("level", String(16), nullable=False),  # column|table (not traced: see note)
    Column("columns", JSON, nullable=False),  # its output columns, in order
    Column("edges", JSON, nullable=False),  # [[output, table, column, kind(, masking)]...]
    Column("note", Text),
    Column("created_at", Float, nullable=False),
    Index("ix_column_lineage_step", "step"),
)

classifications = Table(
    "classifications",
    metadata,
    # one per artifact: the PII classes detected in its columns (andon.classify)
    Column("fingerprint", String(64), primary_key=True),
    Column("step", String(255), nullable=False),
    Column("at", Float, nullable=False),
    Column("columns", JSON, nullable=False),  # {column: {tag, confidence, by}}
)

catalog_docs = Table(
    "catalog_docs",
    metadata,
    # what andon catalog search finds: one row per table and per column of an environment;
    # SQLite indexes them with FTS5 (catalog_fts), PostgreSQL with a tsvector GIN index
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # table|column
    Column("table_name", String(255), nullable=False),
    Column("column_name", String(255), nullable=False, default=""),
    Column("name", Text, nullable=False),  # what a hit is called: table or table.column
    Column("body", Text, nullable=False),  # description, type, tags, owners, layer...
    Column("shown", Text, nullable=False, default=""),  # the body as written, for a hit
    Index("ix_catalog_docs_env", "environment"),
)

model_versions = Table(
    "model_versions",
    metadata,
    # one per model artifact: a model step's version is the artifact its run sealed
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),  # the model step
    Column("version", Integer, nullable=False),  # 1, 2, … per name, in the order first built
    Column("fingerprint", String(64), nullable=False),
    Column("run_id", Integer),
    Column("environment", String(128)),  # where it was first built
    Column("created_at", Float, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("info", JSON, nullable=False),  # signature, parameters, lineage, estimator
    Column("tags", JSON, nullable=False),
    UniqueConstraint("name", "version", name="uq_model_versions_version"),
    UniqueConstraint("name", "fingerprint", name="uq_model_versions_fingerprint"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    # append-only: the latest row of (name, alias) is the alias now; version NULL: removed
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("version", Integer),
    Column("set_at", Float, nullable=False),
    Column("set_by", String(128)),
    Column("note", Text),
    Index("ix_model_aliases_name", "name", "alias", "id"),
)
