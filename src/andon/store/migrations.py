"""Versioned schema migrations. Each entry upgrades the store by one version, in a transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select, text

from andon.errors import StoreError
from andon.store import schema


def _v1(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _v2(conn: Connection) -> None:
    """Check history and profiles."""
    schema.check_results.create(conn, checkfirst=True)
    schema.profiles.create(conn, checkfirst=True)


def _v3(conn: Connection) -> None:
    """Promotions, users and roles, encrypted secrets."""
    for table in (schema.promotions, schema.users, schema.secrets):
        table.create(conn, checkfirst=True)


def _v4(conn: Connection) -> None:
    """Commits remember the code (template hashes) of their steps."""
    from sqlalchemy import inspect

    if "code" not in {c["name"] for c in inspect(conn).get_columns("commits")}:
        conn.execute(text("ALTER TABLE commits ADD COLUMN code JSON"))


def _v5(conn: Connection) -> None:
    """Landed files can be withdrawn: when, by whom and why."""
    from sqlalchemy import inspect

    have = {c["name"] for c in inspect(conn).get_columns("landed_files")}
    for name, kind in (("withdrawn_at", "FLOAT"), ("withdrawn_by", "VARCHAR(128)"),
                       ("withdrawn_reason", "TEXT")):
        if name not in have:
            conn.execute(text(f"ALTER TABLE landed_files ADD COLUMN {name} {kind}"))


def _tokens(conn: Connection) -> None:
    """API tokens of the server: only their sha256 is stored."""
    schema.tokens.create(conn, checkfirst=True)


def _run_cancel_flag(conn: Connection) -> None:
    """A run can be cancelled from another process: who asked, and when."""
    from sqlalchemy import inspect

    have = {c["name"] for c in inspect(conn).get_columns("runs")}
    for name, kind in (("cancel_requested_at", "FLOAT"), ("cancel_requested_by", "VARCHAR(128)")):
        if name not in have:
            conn.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {kind}"))


def _schedules(conn: Connection) -> None:
    """Schedules and sensors: their state and their ticks (one per unique run key); the SLA
    breaches of tables (one per breach key)."""
    schema.schedule_state.create(conn, checkfirst=True)
    schema.schedule_ticks.create(conn, checkfirst=True)
    schema.sla_breaches.create(conn, checkfirst=True)


def _artifact_format(conn: Connection) -> None:
    """Artifacts record the format of their files (older rows: NULL, read as Parquet)."""
    from sqlalchemy import inspect

    if "format" not in {c["name"] for c in inspect(conn).get_columns("artifacts")}:
        conn.execute(text("ALTER TABLE artifacts ADD COLUMN format VARCHAR(32)"))


# Append new migrations; never edit a released one.
def _check_results_at(conn: Connection) -> None:
    """Check results by time (the report's checks per day)."""
    for index in schema.check_results.indexes:
        if index.name == "ix_check_results_at":
            index.create(conn, checkfirst=True)


def _column_lineage(conn: Connection) -> None:
    """Column lineage of each step version (andon.lineage)."""
    schema.column_lineage.create(conn, checkfirst=True)


def _models(conn: Connection) -> None:
    """The model registry: versions of model steps and the history of their aliases."""
    schema.model_versions.create(conn, checkfirst=True)
    schema.model_aliases.create(conn, checkfirst=True)


def _catalog(conn: Connection) -> None:
    """PII classifications per artifact and the catalog's search index."""
    schema.classifications.create(conn, checkfirst=True)
    schema.catalog_docs.create(conn, checkfirst=True)
    if conn.dialect.name == "sqlite":  # FTS5 over the docs (external content: no copy)
        conn.execute(text(
            "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_fts USING fts5(name, body, "
            "content='catalog_docs', content_rowid='id')"))
    elif conn.dialect.name == "postgresql":
        conn.execute(text(
            "CREATE INDEX IF NOT EXISTS ix_catalog_docs_fts ON catalog_docs USING GIN "
            "((setweight(to_tsvector('simple', name), 'A') || "
            "setweight(to_tsvector('simple', body), 'B')))"))


MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _tokens,
                                                  _run_cancel_flag, _schedules,
                                                  _artifact_format, _check_results_at,
                                                  _column_lineage, _models,
                                                  _catalog]


def _sources(conn: Connection) -> None:
    """Pulls of database and HTTP sources, and schema changes of sources."""
    schema.source_pulls.create(conn, checkfirst=True)
    schema.source_schema_changes.create(conn, checkfirst=True)


MIGRATIONS.append(_sources)
LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "andon_meta"):
        return 0
    row = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).first()
    return int(row[0]) if row else 0


MIGRATION_LOCK = 0x616E646F6E  # "andon": the PostgreSQL advisory lock held while migrating


def lock(conn: Connection) -> None:
    """Serialize migrations: two processes opening a fresh store at once must not both
    create it. PostgreSQL: a transaction-scoped advisory lock; SQLite: the write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        if raw is not None and not getattr(raw, "in_transaction", True):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def require_current(conn: Connection, url: str) -> int:
    """The schema version of a store a reader opens; refuses one that is missing (a reader
    never creates a store) or written by a newer andon. An older one is upgraded by the
    caller: the schema follows the andon installed, the data stays as it is."""
    version = current_version(conn)
    if version == 0:
        raise StoreError(f"there is no andon store at {url} yet",
                         hint="it is created by the first command that writes, e.g. andon run")
    if version > LATEST:
        raise StoreError(
            f"the store at {url} has schema version {version}, newer than this andon ({LATEST})",
            hint="upgrade andon (pip install -U andon)")
    return version


def migrate(conn: Connection, url: str) -> int:
    """Bring the store up to date; refuse a store written by a newer andon."""
    lock(conn)
    version = current_version(conn)
    if version > LATEST:
        raise StoreError(
            f"the store at {url} has schema version {version}, newer than this andon ({LATEST})",
            hint="upgrade andon (pip install -U andon)",
        )
    for index in range(version, LATEST):
        MIGRATIONS[index](conn)
        new = index + 1
        if new == 1:
            conn.execute(schema.meta.insert().values(key="schema_version", value="1"))
        else:
            conn.execute(
                schema.meta.update()
                .where(schema.meta.c.key == "schema_version")
                .values(value=str(new))
            )
    return LATEST
