"""The metadata store: runs, artifacts, commits, environments, ref log, landing, rejects, logs.

SQLite file by default, PostgreSQL by URL; both through SQLAlchemy Core.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from andon.errors import Conflict, LeaseError, NotFound, StoreError
from andon.hosts import pid_alive
from andon.store import schema as t
from andon.store.checks import CheckRepository
from andon.store.environments import EnvironmentRepository
from andon.store.lineage import LineageRepository
from andon.store.migrations import LATEST, require_current
from andon.store.migrations import migrate as upgrade
from andon.store.models import ModelRepository
from andon.store.promotions import PromotionRepository
from andon.store.reader import ReadOnlyStore, Row, StoreReader
from andon.store.secrets import SecretRepository
from andon.store.tokens import TokenRepository
from andon.store.users import UserRepository

__all__ = ["Row", "Store", "StoreReader", "open_reader", "open_store"]

STALE_AFTER = 300.0  # seconds without a heartbeat after which a lease's holder counts as gone


def open_store(url: str, project_root: Path | None = None, *, migrate: bool = True,
               project: str | None = None) -> Store:
    """Open (and migrate) the store at ``url``; a relative sqlite path is under the project.
    ``migrate=False`` creates nothing: a store that does not exist yet, or was written by a
    newer andon, is a ``StoreError`` saying what to do (what readers open).

    ``project``: the project opening it. A store belongs to the first project that writes
    to it; another project is refused (give each project its own PostgreSQL schema,
    ``?schema=NAME`` in the URL), so two teams never share environments or users by
    accident."""
    url = _resolve(url, project_root, create=migrate)
    if not migrate and url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path or path == ":memory:" or not Path(path).is_file():
            raise StoreError(f"there is no andon store at {url} yet",
                             hint="it is created by the first command that writes, "
                                  "e.g. andon run")
    store = Store(url, migrate=migrate)
    if project is not None:
        try:
            store.claim(project, write=migrate)
        except BaseException:
            store.close()
            raise
    return store


def open_reader(url: str, project_root: Path | None = None) -> StoreReader:
    """The store at ``url`` for reading only: opened without creating it (an older schema is
    brought up to date first)."""
    return open_store(url, project_root, migrate=False).reader()


def _resolve(url: str, project_root: Path | None, *, create: bool) -> str:
    """The SQLAlchemy URL: a relative sqlite path under the project (its folder made when
    ``create``), PostgreSQL through psycopg 3."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and project_root:
        rel = url.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            path = (project_root / rel).resolve()
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{path}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def split_schema(url: str) -> tuple[str, str | None]:
    """A PostgreSQL URL without its ``schema`` query parameter, and that schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [v for k, v in query if k == "schema"]
    if not names:
        return url, None
    if len(names) > 1 or not _SCHEMA.fullmatch(names[0]):
        raise StoreError(f"store URL: schema {names[-1]!r} is not a plain SQL name",
                         hint="use letters, digits and _ (at most 63), starting with a letter")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), names[0]


def _schema_hint(project: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", project.lower()) or "project"


def _use_schema(conn: Connection, name: str, url: str, *, create: bool) -> None:
    """Make sure the project's schema exists (made when ``create`` and missing: the role needs
    CREATE on the database, or a DBA makes the schema for it) and that this role may use it:
    PostgreSQL's grants are what keep one team's store from another's roles."""
    found = conn.execute(text("SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace "
                              "WHERE nspname = :name"), {"name": name}).first()
    if found is None:
        if not create:
            raise StoreError(f"there is no andon store at {url} yet (no schema {name!r})",
                             hint="it is created by the first command that writes, "
                                  "e.g. andon run")
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        except DBAPIError as e:
            raise StoreError(
                f"cannot create schema {name!r} in the store at {url}: "
                f"{str(e.orig).splitlines()[0]}",
                hint=f'ask the database owner to run: CREATE SCHEMA "{name}" AUTHORIZATION '
                     "<your role>") from e
    elif not found[0]:
        raise StoreError(
            f"permission denied for schema {name!r} in the store at {url}: it belongs to "
            "another role", hint="use your project's own schema, or ask its owner for access "
                                 f'(GRANT USAGE ON SCHEMA "{name}" TO <your role>)')


class Store:
    """Every read and write of metadata goes through this class: runs, artifacts, leases,
    landing and rejects here; environments, users, secrets and promotions through its
    repositories (``store.envs``, ``store.users``, ``store.secrets``, ``store.promotions``,
    ``store.tokens``, ``store.checks``).
    Commands that only read get ``store.reader()``."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        """Open the store at ``url``; ``migrate=False`` (readers) creates nothing and refuses
        a store written by a newer andon (an older schema is upgraded: reads after an andon
        upgrade work)."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        try:
            if self.is_sqlite:
                self.schema: str | None = None
                self.engine: Engine = create_engine(
                    url, connect_args={"timeout": 60, "check_same_thread": False}
                )
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                # a team's server: each project in a schema of its own (?schema=NAME), which
                # PostgreSQL's own grants keep from the other projects' roles
                plain, self.schema = split_schema(url)
                options = {"options": f"-c search_path={self.schema}"} if self.schema else {}
                self.engine = create_engine(plain, pool_pre_ping=True, connect_args=options)
            if migrate:
                with self.engine.begin() as conn:
                    if self.schema:
                        _use_schema(conn, self.schema, self.safe_url, create=True)
                    upgrade(conn, self.safe_url)
            else:
                with self.engine.connect() as conn:
                    if self.schema:
                        _use_schema(conn, self.schema, self.safe_url, create=False)
                    version = require_current(conn, self.safe_url)
                if version < LATEST:  # andon was upgraded: its schema first, data unchanged
                    with self.engine.begin() as conn:
                        upgrade(conn, self.safe_url)
            self.envs = EnvironmentRepository(self.engine)
            self.users = UserRepository(self.engine)
            self.secrets = SecretRepository(self.engine)
            self.promotions = PromotionRepository(self.engine)
            self.checks = CheckRepository(self.engine)
            self.tokens = TokenRepository(self.engine)
            self.lineage = LineageRepository(self.engine)
            self.models = ModelRepository(self.engine)
        except ModuleNotFoundError as e:
            raise StoreError(
                f"cannot open the store at {self.safe_url}: {e}",
                hint="install the driver: pip install 'andon[postgres]'",
            ) from e
        except OperationalError as e:
            raise StoreError(
                f"cannot open the store at {self.safe_url}: {e.orig}",
                hint="check the store URL in andon.yaml and that the database is running",
            ) from e

    @property
    def safe_url(self) -> str:
        """The URL with any password masked."""
        head, sep, tail = self.url.partition("://")
        if "@" in tail and ":" in tail.split("@", 1)[0]:
            user = tail.split("@", 1)[0].split(":", 1)[0]
            tail = f"{user}:***@" + tail.split("@", 1)[1]
        return head + sep + tail

    def close(self) -> None:
        self.engine.dispose()

    def claim(self, project: str, *, write: bool = True) -> None:
        """Check that this store is ``project``'s, recording it on the first write."""
        with self.engine.begin() as conn:
            row = conn.execute(select(t.meta.c.value).where(t.meta.c.key == "project")).first()
            if row is None:
                if write:
                    conn.execute(insert(t.meta).values(key="project", value=project))
                return
        if row[0] != project:
            where = f"schema {self.schema!r} of " if self.schema else ""
            raise StoreError(
                f"the store at {where}{self.safe_url} belongs to project {row[0]!r}, "
                f"not {project!r}",
                hint="give each project a store of its own: on a shared PostgreSQL server, a "
                     f"schema each (store: postgresql://…/DB?schema={_schema_hint(project)})")

    # runs ---------------------------------------------------------------------------------

    def begin_run(
        self,
        environment: str,
        *,
        user: str,
        git_sha: str | None,
        git_dirty: bool | None,
        selection: Sequence[str],
        params: Mapping[str, Any],
        base_commit: str | None,
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                insert(t.runs).values(
                    environment=environment,
                    status="running",
                    started_at=time.time(),
                    user=user,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    git_sha=git_sha,
                    git_dirty=git_dirty,
                    selection=list(selection),
                    params=dict(params),
                    base_commit=base_commit,
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        commit_id: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(
                    status=status,
                    ended_at=time.time(),
                    error=error,
                    commit_id=commit_id,
                    summary=dict(summary or {}),
                )
            )

    def record(
        self,
        *,
        step_runs: Sequence[Row] = (),
        artifacts: Sequence[Row] = (),
        logs: Sequence[Row] = (),
    ) -> None:
        """Write a batch of step runs, sealed artifacts and log lines in one transaction."""
        with self.engine.begin() as conn:
            if artifacts:
                known = {
                    r[0]
                    for r in conn.execute(
                        select(t.artifacts.c.fingerprint).where(
                            t.artifacts.c.fingerprint.in_([a["fingerprint"] for a in artifacts])
                        )
                    )
                }
                fresh = [a for a in artifacts if a["fingerprint"] not in known]
                if fresh:
                    conn.execute(insert(t.artifacts), fresh)
            if step_runs:
                conn.execute(insert(t.step_runs), list(step_runs))
            if logs:
                conn.execute(insert(t.logs), list(logs))

    def close_dead_runs(self, stale_after: float = STALE_AFTER) -> list[int]:
        """Close the runs still marked ``running`` whose process is gone: on this machine,
        its pid no longer runs; elsewhere, its lease has had no heartbeat for ``stale_after``
        seconds. They end at their last sign of life, as ``abandoned``. Returns their ids."""
        here, now = socket.gethostname(), time.time()
        with self.engine.connect() as conn:
            running = conn.execute(
                select(t.runs.c.id, t.runs.c.host, t.runs.c.pid, t.runs.c.started_at)
                .where(t.runs.c.status == "running")
            ).all()
            if not running:
                return []
            ids = [r.id for r in running]
            leases = {r.run_id: r for r in conn.execute(
                select(t.leases).where(t.leases.c.run_id.in_(ids)))}
            last_step = dict(conn.execute(
                select(t.step_runs.c.run_id,
                       func.max(t.step_runs.c.started_at + t.step_runs.c.seconds))
                .where(t.step_runs.c.run_id.in_(ids)).group_by(t.step_runs.c.run_id)
            ).all())
        dead: list[tuple[int, float, str]] = []
        for r in running:
            lease = leases.get(r.id)
            if (r.host == here and r.pid is not None and r.pid != os.getpid()
                    and not pid_alive(r.pid)):
                why = f"process {r.pid} on {r.host} is gone (killed?)"
            elif lease is not None and now - lease.heartbeat_at > stale_after:
                why = (f"no heartbeat from process {r.pid} on {r.host} since "
                       f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(lease.heartbeat_at))}")
            else:
                continue
            signs = [r.started_at, lease.heartbeat_at if lease is not None else 0.0,
                     float(last_step.get(r.id) or 0.0)]
            dead.append((r.id, max(signs), why))
        if not dead:
            return []
        with self.engine.begin() as conn:
            for run_id, ended, why in dead:
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.id == run_id, t.runs.c.status == "running")
                    .values(status="abandoned", ended_at=ended,
                            error=f"the process stopped before the run finished: {why}")
                )
                conn.execute(delete(t.leases).where(t.leases.c.run_id == run_id))
        return [d[0] for d in dead]

    def runs(self, environment: str | None = None, limit: int = 20, *,
             status: str | None = None, before: int | None = None) -> list[Row]:
        """The newest runs first; ``before`` a run id pages on (keyset pagination)."""
        self.close_dead_runs()
        q = select(t.runs).order_by(t.runs.c.id.desc()).limit(limit)
        if environment:
            q = q.where(t.runs.c.environment == environment)
        if status:
            q = q.where(t.runs.c.status == status)
        if before is not None:
            q = q.where(t.runs.c.id < before)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def run(self, run_id: int) -> Row | None:
        self.close_dead_runs()
        with self.engine.connect() as conn:
            r = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
            return dict(r._mapping) if r else None

    def latest_run_id(self, environment: str | None = None) -> int | None:
        q = select(func.max(t.runs.c.id))
        if environment:
            q = q.where(t.runs.c.environment == environment)
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
            return int(value) if value is not None else None

    def step_runs(self, run_id: int) -> list[Row]:
        q = select(t.step_runs).where(t.step_runs.c.run_id == run_id).order_by(t.step_runs.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def logs(self, run_id: int) -> list[Row]:
        q = select(t.logs).where(t.logs.c.run_id == run_id).order_by(t.logs.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def running_run_ids(self) -> list[int]:
        """The runs marked ``running``."""
        with self.engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(
                select(t.runs.c.id).where(t.runs.c.status == "running"))]

    def mark_abandoned(self, run_id: int, why: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id, t.runs.c.status == "running")
                .values(status="abandoned", ended_at=time.time(), error=why)
            )

    def request_cancel(self, run_id: int, *, who: str) -> Row:
        """Ask a running run to stop: its process polls this flag with its heartbeat and
        cancels itself. A finished run is a Conflict; an unknown one, NotFound."""
        self.close_dead_runs()  # a run whose process is gone is over, not cancellable
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.runs)
                .where(t.runs.c.id == run_id, t.runs.c.status == "running",
                       t.runs.c.cancel_requested_at.is_(None))
                .values(cancel_requested_at=time.time(), cancel_requested_by=who)
            )
            row = conn.execute(select(t.runs).where(t.runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run {run_id}", hint="list runs: andon runs")
        run = dict(row._mapping)
        if done.rowcount == 0 and run["status"] != "running":
            raise Conflict(f"run {run_id} already ended ({run['status']}); there is nothing "
                           "to cancel", hint="only a running run can be cancelled: andon runs")
        return run

    def cancel_requested(self, run_id: int) -> str | None:
        """Who asked this run to stop (None: nobody)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.runs.c.cancel_requested_at, t.runs.c.cancel_requested_by)
                .where(t.runs.c.id == run_id)).first()
        if row is None or row[0] is None:
            return None
        return str(row[1] or "someone")

    # artifacts ----------------------------------------------------------------------------

    def artifacts(self, fingerprints: Iterable[str]) -> dict[str, Row]:
        fps = list(set(fingerprints))
        out: dict[str, Row] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(fps), 500):
                chunk = fps[i : i + 500]
                q = select(t.artifacts).where(t.artifacts.c.fingerprint.in_(chunk))
                for r in conn.execute(q):
                    out[r.fingerprint] = dict(r._mapping)
        return out

    def all_artifacts(self) -> list[Row]:
        """Every artifact's fingerprint, step, files, created_at, run_id and path."""
        a = t.artifacts.c
        q = select(a.fingerprint, a.step, a.files, a.created_at, a.run_id, a.path)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def delete_artifacts(self, fingerprints: Sequence[str]) -> None:
        """Forget artifacts (their files are the caller's business), in one transaction."""
        with self.engine.begin() as conn:
            for i in range(0, len(fingerprints), 500):
                conn.execute(delete(t.artifacts).where(
                    t.artifacts.c.fingerprint.in_(fingerprints[i:i + 500])))

    def artifact(self, fingerprint: str) -> Row | None:
        return self.artifacts([fingerprint]).get(fingerprint)

    def latest_artifact(self, step: str, code_hash: str) -> Row | None:
        q = (
            select(t.artifacts)
            .where(t.artifacts.c.step == step, t.artifacts.c.code_hash == code_hash)
            .order_by(t.artifacts.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
            return dict(r._mapping) if r else None

    # commits and environments (see store/environments.py) -------------------------------

    def environment(self, name: str) -> Row | None:
        env = self.envs.get(name)
        return env.as_dict() if env else None

    def environments(self) -> list[Row]:
        return [e.as_dict() for e in self.envs.all()]

    def commit_steps(self, commit_id: str | None) -> dict[str, str]:
        return self.envs.commit_steps(commit_id)

    def commit(self, commit_id: str) -> Row | None:
        c = self.envs.commit(commit_id)
        return c.as_dict() if c else None

    def publish(
        self,
        environment: str,
        *,
        expected_commit: str | None,
        steps: Mapping[str, str],
        author: str,
        git_sha: str | None,
        params: Mapping[str, Any],
        message: str,
        run_id: int | None,
        protected: bool = False,
        code: Mapping[str, str] | None = None,
        merge_parent: str | None = None,
    ) -> str:
        """Write a commit and compare-and-swap ``environment`` to it, in one transaction.

        Raises LeaseError when the environment moved since ``expected_commit`` was read.
        """
        return self.envs.publish(
            environment, expected_commit=expected_commit, steps=steps, author=author,
            git_sha=git_sha, params=params, message=message, run_id=run_id,
            protected=protected, code=code, merge_parent=merge_parent)

    def ref_log(self, environment: str) -> list[Row]:
        return [e.as_dict() for e in self.envs.log(environment)]

    def reader(self) -> StoreReader:
        """This store, for commands that only read: no method that writes."""
        return ReadOnlyStore(self)

    def column_lineage(self, fingerprints: Iterable[str]) -> dict[str, Row]:
        """The stored column lineage of these step versions (``store.lineage``)."""
        return self.lineage.rows(fingerprints)

    # leases -------------------------------------------------------------------------------

    def acquire_lease(self, environment: str, run_id: int | None, *,
                      stale_after: float = STALE_AFTER,
                      what: str | None = None) -> str:
        """Take the environment for this run (or ``what``, e.g. "promotion 3"), or raise
        LeaseError naming the holder. Returns the holder string (to release it)."""
        self.close_dead_runs(stale_after)
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        holder = f"{what or f'run {run_id}'} (pid {pid} on {host})"
        values = dict(
            environment=environment,
            holder=holder,
            run_id=run_id,
            host=host,
            pid=pid,
            acquired_at=now,
            heartbeat_at=now,
        )
        for _ in range(2):
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(t.leases).values(**values))
                return holder
            except IntegrityError:
                pass
            with self.engine.begin() as conn:
                cur = conn.execute(
                    select(t.leases).where(t.leases.c.environment == environment)
                ).first()
                if cur is None:
                    continue
                dead = (cur.host == host and not pid_alive(cur.pid)) or (
                    now - cur.heartbeat_at > stale_after
                )
                if not dead:
                    raise LeaseError(
                        f"environment {environment!r} is being changed by {cur.holder}, "
                        f"started {time.strftime('%H:%M:%S', time.localtime(cur.acquired_at))}",
                        hint="wait for it to finish, or pass --wait to queue behind it",
                    )
                conn.execute(
                    delete(t.leases).where(
                        t.leases.c.environment == environment, t.leases.c.holder == cur.holder
                    )
                )
                if cur.run_id is not None:
                    conn.execute(
                        update(t.runs)
                        .where(t.runs.c.id == cur.run_id, t.runs.c.status == "running")
                        .values(
                            status="abandoned",
                            ended_at=now,
                            error="the process stopped before the run finished",
                        )
                    )
        raise LeaseError(f"could not take environment {environment!r}", hint="try again")

    def lease_holders(self) -> list[str]:
        """Who holds a lease now (a run or a promotion in progress), e.g. "run 12 (pid…)"."""
        with self.engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(select(t.leases.c.holder))]

    def heartbeat(self, environment: str, run_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.leases)
                .where(t.leases.c.environment == environment, t.leases.c.run_id == run_id)
                .values(heartbeat_at=time.time())
            )

    def release_lease(self, environment: str, run_id: int | None,
                      holder: str | None = None) -> None:
        """Give the environment back (by run id, or by the holder string of a promotion)."""
        mine = t.leases.c.holder == holder if holder is not None else t.leases.c.run_id == run_id
        with self.engine.begin() as conn:
            conn.execute(delete(t.leases).where(t.leases.c.environment == environment, mine))

    # landing and rejects ------------------------------------------------------------------

    def landed_files(self, source: str) -> list[Row]:
        q = select(t.landed_files).where(t.landed_files.c.source == source).order_by(
            t.landed_files.c.arrived_at, t.landed_files.c.id
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def landed_file(self, source: str, sha256: str) -> Row | None:
        """The landed file of ``source`` with these bytes, if any."""
        q = select(t.landed_files).where(
            t.landed_files.c.source == source, t.landed_files.c.sha256 == sha256
        )
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
            return dict(r._mapping) if r else None

    def add_landed_file(self, row: Row) -> bool:
        """Record a landed file; False when the same bytes already landed for this source."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(t.landed_files).values(**row))
            return True
        except IntegrityError:
            return False

    def add_landed_files(self, rows: Sequence[Row]) -> list[Row]:
        """Record landed files in one transaction. For each row, the row recorded: itself, or
        the one with the same bytes for its source that another run recorded first."""
        if not rows:
            return []
        from sqlalchemy.dialects import postgresql, sqlite

        lf = t.landed_files
        dialect = sqlite if self.is_sqlite else postgresql
        add_new = dialect.insert(lf).on_conflict_do_nothing(
            index_elements=[lf.c.source, lf.c.sha256])
        found: dict[tuple[str, str], Row] = {}
        with self.engine.begin() as conn:
            conn.execute(add_new, list(rows))
            for source in {r["source"] for r in rows}:
                shas = [r["sha256"] for r in rows if r["source"] == source]
                q = select(lf).where(lf.c.source == source, lf.c.sha256.in_(shas))
                found.update({(source, r.sha256): dict(r._mapping) for r in conn.execute(q)})
        return [row if found[(row["source"], row["sha256"])]["landed_path"] == row["landed_path"]
                else found[(row["source"], row["sha256"])] for row in rows]

    def withdraw_landed_file(self, source: str, sha256: str, *, who: str, why: str) -> bool:
        """Mark a landed file withdrawn; False when it was withdrawn already."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.landed_files)
                .where(t.landed_files.c.source == source, t.landed_files.c.sha256 == sha256,
                       t.landed_files.c.withdrawn_at.is_(None))
                .values(withdrawn_at=time.time(), withdrawn_by=who, withdrawn_reason=why)
            ).rowcount
        return bool(done)

    def add_rejects(self, rows: Sequence[Row]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(t.rejects), list(rows))

    def rejects(self, *, parts: Iterable[str] | None = None, source: str | None = None,
                limit: int = 1000) -> list[Row]:
        q = select(t.rejects).order_by(t.rejects.c.id).limit(limit)
        if parts is not None:
            q = q.where(t.rejects.c.part.in_(list(parts)))
        if source is not None:
            q = q.where(t.rejects.c.source == source)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def has_rejects_for(self, part: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.rejects.c.id).where(t.rejects.c.part == part).limit(1)
            ).first() is not None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    import sqlite3

    cur = dbapi_conn.cursor()
    # Switching a new database to WAL needs it unlocked, and SQLite does not wait for that
    # (no busy timeout): when another process is creating the store, retry for a while.
    deadline = time.monotonic() + 60.0
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()

