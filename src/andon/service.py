"""The service layer: one ``Session`` per acting user, with the verbs of the CLI as methods.

The CLI, the Python API and (next) the HTTP API all go through it, so every one of them
enforces the same rules. The acting user is passed in by the edge (the CLI reads
``ANDON_USER`` or the login name there); core modules never read it. Every mutating verb is
authorised here, once, from the table ``access.CAN``; the modules it delegates to do the work.

    session = andon.Session(andon.Project.load("path"), user="alice")
    session.env_create("dev")
    result = session.run("dev")
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, NotFound, did_you_mean

if TYPE_CHECKING:
    from andon.analytics import Report
    from andon.catalog import Catalog
    from andon.checks.model import CheckResult
    from andon.events import Listener, RunResult
    from andon.execution.cancel import CancelToken
    from andon.gc import GcReport
    from andon.plan import Plan
    from andon.project import Project
    from andon.promote import Promotion
    from andon.records import RunDetails, RunSummary, TableInfo
    from andon.store import Row


def local_user() -> str:
    """The user at this keyboard: ``ANDON_USER``, else the login name. For edges only (the
    CLI, the module-level Python functions); a guard rail on a shared laptop, not
    authentication."""
    return os.environ.get("ANDON_USER") or getpass.getuser()


class Session:
    """``user`` acting on ``project``. Reads need no role; every verb that changes something
    checks the user's role first and raises ``AccessDenied`` (kind ``forbidden``). ``role``
    (an API token's) replaces the role configured for the user."""

    def __init__(self, project: Project, user: str, *, role: str | None = None) -> None:
        if not user:
            raise AndonError("a session needs the name of the acting user",
                             hint="pass user=..., e.g. andon.Session(project, user='alice')")
        if role is not None:
            from andon.access import ROLES

            if role not in ROLES:
                raise AndonError(f"unknown role {role!r}", hint=f"roles: {', '.join(ROLES)}")
        self.project = project
        self.user = user
        self._role = role

    @classmethod
    def for_token(cls, project: Project, token: str) -> Session:
        """The session of an API token's user, with the token's role; raises
        ``NotAuthenticated`` for a token that is unknown (or revoked) or expired."""
        from andon.access import NotAuthenticated

        found = project.store.tokens.find(token)
        if found is None:
            raise NotAuthenticated("unknown API token",
                                   hint="check the token, or ask an admin for one: "
                                        "andon tokens create NAME --role ROLE")
        if found.expired():
            raise NotAuthenticated(f"API token {found.name!r} expired at "
                                   f"{found.expires_at:%Y-%m-%d %H:%M} UTC",
                                   hint="ask an admin for a new one: andon tokens create")
        return cls(project, found.user, role=found.role)

    # authorisation ------------------------------------------------------------------------

    @property
    def role(self) -> str | None:
        """The user's role (``admin`` while no users are configured; None if not a user)."""
        from andon import access

        return self._role if self._role is not None else access.role_of(self.project.store,
                                                                         self.user)

    def _env(self, environment: str | None) -> str:
        return environment or self.project.environment or self.project.config.default_environment

    def _allow(self, verb: str, what: str, *, protected: bool = False,
               environment: str | None = None) -> None:
        """Raise AccessDenied unless the user's role may ``verb`` (on a protected environment
        when ``protected``; on ``environment`` only if they own it when their role is
        restricted to their own environments)."""
        from andon import access

        store = self.project.store
        action = f"{verb}_protected" if protected and f"{verb}_protected" in access.CAN else verb
        access.require(store, self.user, action, what, role=self._role)
        role = self.role
        if environment is None or role not in access.OWN_ONLY.get(verb, ()):
            return
        env = store.environment(environment)
        owner = env["owner"] if env else None
        if env is not None and owner != self.user:
            raise access.AccessDenied(
                f"user {self.user!r} (role {role}) may not {what}: "
                + (f"it belongs to {owner!r}" if owner else "it has no owner"),
                hint="a developer changes only the environments they created; ask its owner, "
                     "an operator or an admin")

    # build and publish ---------------------------------------------------------------------

    def run(self, environment: str | None = None, selection: Sequence[str] = (), *,
            listener: Listener | None = None, wait_for_lease: float = 0.0,
            backfill: tuple[str, str] | None = None,
            cancel: CancelToken | None = None, pull: bool = True,
            on_pull: Callable[[Row], None] | None = None) -> RunResult:
        """Build what changed, check it, and publish to ``environment`` (default: prod).
        ``cancel.cancel(reason)`` from another thread stops it: status ``cancelled``, nothing
        published. It first pulls the selected database and HTTP sources (``pull=False``:
        ingest only what earlier pulls landed); ``on_pull`` gets each pull's record."""
        from andon import runner

        env = self._env(environment)
        protected = self.project.is_protected(env)
        self._allow("run", f"run in {'protected ' if protected else ''}environment {env!r}",
                    protected=protected)
        return runner.run(self.project, env, selection, user=self.user, listener=listener,
                          wait_for_lease=wait_for_lease, backfill=backfill, cancel=cancel,
                          pull=pull, on_pull=on_pull)

    def cancel_run(self, run_ref: str | int) -> Row:
        """Ask a running run (an id, or ``latest``) to stop; whoever may run in its
        environment may cancel it. Its process stops within seconds and records it as
        ``cancelled``; a run that already ended is a conflict. Returns the run's record."""
        from andon import runner
        from andon.records import run_details

        store = self.project.store
        details = run_details(self.project, run_ref)  # "latest" or an id; NotFound if none
        run_id, env = details.id, details.environment
        protected = self.project.is_protected(env)
        self._allow("cancel", f"cancel run {run_id} in {'protected ' if protected else ''}"
                              f"environment {env!r}", protected=protected)
        runner.cancel(store, run_id, who=self.user)
        found = store.run(run_id)
        if found is None:  # deleted meanwhile
            raise NotFound(f"no run {run_id}", hint="list runs: andon runs")
        return found

    def plan(self, environment: str | None = None, selection: Sequence[str] = ()) -> Plan:
        """What a run would do, without doing anything."""
        from andon import runner

        return runner.plan(self.project, self._env(environment), selection)

    def test(self, environment: str | None = None,
             selection: Sequence[str] = ()) -> list[CheckResult]:
        """Every check against an environment's current tables, without rebuilding."""
        from andon.retest import test_environment

        return test_environment(self.project, self._env(environment), selection)

    def promote(self, source: str, target: str = "prod", *, dry_run: bool = False
                ) -> Promotion:
        """Move ``target`` to its head plus ``source``'s changes once every check passes on
        that candidate. A dry run changes nothing and needs no role."""
        from andon.promote import promote

        if not dry_run:
            protected = self.project.is_protected(target)
            self._allow("promote", f"promote into {'protected ' if protected else ''}"
                                   f"environment {target!r}", protected=protected)
        return promote(self.project, source, target, dry_run=dry_run, user=self.user)

    # environments ---------------------------------------------------------------------------

    def env_create(self, name: str, source: str | None = None, *, empty: bool = False) -> Row:
        """A new environment pointing where ``source`` (default: prod) points, or nowhere."""
        from andon import environments
        from andon.execution.checking import show_environment

        src = None if empty else (source or self.project.config.default_environment)
        protected = self.project.is_protected(name)
        self._allow("env_create", f"create environment {name!r}", protected=protected)
        row = environments.create(self.project.store, name, source=src, who=self.user,
                                  protected=protected)
        show_environment(self.project, name)  # the engine's readers see it (PostgreSQL's views)
        return row

    def env_reset(self, name: str, to: str) -> str | None:
        """Point ``name`` at an earlier commit or time; returns the commit (None: empty)."""
        from andon import environments
        from andon.execution.checking import show_environment

        protected = self.project.is_protected(name)
        self._allow("env_reset", f"reset environment {name!r}", protected=protected,
                    environment=name)
        commit = environments.reset(self.project.store, name, to, who=self.user,
                                    protected=protected)
        show_environment(self.project, name)
        return commit

    def env_delete(self, name: str) -> None:
        """Delete an unprotected environment (its artifacts stay until gc)."""
        from andon import environments
        from andon.execution.checking import show_environment

        protected = self.project.is_protected(name)
        self._allow("env_delete", f"delete environment {name!r}", protected=protected,
                    environment=name)
        environments.delete_env(self.project.store, name, protected=protected, who=self.user)
        show_environment(self.project, name)  # none: the engine shows it no more

    def env_list(self) -> list[Row]:
        from andon import environments

        return environments.listing(self.project.reader, self.project.is_protected)

    def env_log(self, name: str) -> list[Row]:
        from andon import environments

        return environments.log(self.project.reader, name)

    def env_diff(self, a: str, b: str, *, data: bool = True, key: Sequence[str] = ()
                 ) -> dict[str, Any]:
        from andon.diff import diff

        return diff(self.project, a, b, data=data, key=key)

    # secrets and users ------------------------------------------------------------------------

    def _secret_scope(self, environment: str | None) -> tuple[str, bool]:
        """The stored environment of a secret, and whether changing it is protected: a secret
        every environment reads is, like one of a protected environment."""
        from andon import secrets

        protected = environment is None or self.project.is_protected(environment)
        return environment or secrets.ALL, protected

    def authorize_secret(self, name: str, environment: str | None = None) -> None:
        """Raise AccessDenied unless the user may set this secret (the CLI asks before it
        prompts for the value)."""
        self._allow("secrets_set", f"set secret {name!r}",
                    protected=self._secret_scope(environment)[1])

    def secrets_set(self, name: str, value: str, environment: str | None = None) -> None:
        """Store a secret, encrypted, for one environment or (None) for every one."""
        from andon import secrets

        scope, _ = self._secret_scope(environment)
        self.authorize_secret(name, environment)
        if not value:
            raise AndonError("empty secret value; nothing was stored")
        secrets.set_secret(self.project.store, self.project.root, name, value,
                           environment=scope, who=self.user)

    def secrets_list(self) -> list[Row]:
        from andon import secrets

        return secrets.list_secrets(self.project.store)

    def secrets_rm(self, name: str, environment: str | None = None) -> None:
        from andon import secrets

        scope, protected = self._secret_scope(environment)
        self._allow("secrets_rm", f"remove secret {name!r}", protected=protected)
        secrets.remove_secret(self.project.store, name, environment=scope)

    def users_add(self, name: str, role: str) -> None:
        """Add a user or change their role (the first user must be an admin)."""
        from andon import access

        self._allow("users_add", "manage users")
        access.add_user(self.project.store, name, role, by=self.user, by_role=self._role)

    def users_list(self) -> list[Row]:
        from andon import access

        return [{"name": u["name"], "role": u["role"]} for u in access.users(self.project.store)]

    def users_rm(self, name: str) -> None:
        from andon import access

        self._allow("users_rm", "manage users")
        access.remove_user(self.project.store, name, by=self.user, by_role=self._role)

    def tokens_create(self, name: str, role: str, *, user: str | None = None,
                      expires: str | None = None) -> str:
        """A new API token acting as ``user`` (default: ``name``) with ``role``, valid for
        ``expires`` (e.g. 30d, 12h; default: until revoked). Returns the token: it is shown
        this once, the store keeps only its hash."""
        import time

        from andon import access
        from andon.checks.types import parse_age
        from andon.environments import NAME_RE

        self._allow("manage", "create API tokens")
        if not NAME_RE.match(name):
            raise AndonError(f"invalid token name {name!r}",
                             hint="use letters, digits, '_', '-' or '.', starting with a "
                                  "letter or digit, e.g. ci-bot")
        if role not in access.ROLES:
            raise AndonError(f"unknown role {role!r}",
                             hint=did_you_mean(role, access.ROLES)
                             or f"roles: {', '.join(access.ROLES)}")
        expires_at = None
        if expires:
            try:
                expires_at = time.time() + parse_age(expires)
            except ValueError as e:
                raise AndonError(f"--expires: {e}") from None
        return self.project.store.tokens.create(name, user=user or name, role=role,
                                                expires_at=expires_at, by=self.user)

    def tokens_list(self) -> list[Row]:
        """Every token's name, user, role, creation, expiry and last use (never the token)."""
        return [tok.as_dict() for tok in self.project.store.tokens.all()]

    def tokens_revoke(self, name: str) -> None:
        self._allow("manage", "revoke API tokens")
        tokens = self.project.store.tokens
        if not tokens.revoke(name):
            raise NotFound(f"no token named {name!r}",
                           hint=did_you_mean(name, [tok.name for tok in tokens.all()])
                           or "list them: andon tokens list")

    # operations ---------------------------------------------------------------------------

    def gc(self, *, dry_run: bool = False) -> GcReport:
        """Delete artifacts nothing refers to any more; a dry run only reports."""
        from andon.gc import collect

        if not dry_run:
            self._allow("gc", "delete artifacts (gc)")
        return collect(self.project, dry_run=dry_run)

    def checks_ack(self, name: str, result_id: int | None = None, note: str = "") -> Row:
        """Mark a check result (the latest by default) as expected: it joins the SPC baseline
        of its environment, so acknowledging one of a protected environment is protected."""
        from andon.checks import history

        store = self.project.store
        rows = history.series(store, name, limit=1000)
        target = rows[-1] if rows and result_id is None else next(
            (r for r in rows if r.id == result_id), None)
        env = target.environment if target else None
        protected = env is None or self.project.is_protected(env)
        self._allow("checks_ack", f"acknowledge results of check {name!r}"
                    + (f" in environment {env!r}" if env else ""), protected=protected)
        return history.acknowledge(store, name, result_id=target.id if target else result_id,
                                   who=self.user, note=note).as_dict()

    def landing_list(self, source: str | None = None) -> list[Row]:
        from andon import landed

        return landed.landed_list(self.project, source)

    def landing_withdraw(self, source: str, file: str, *, reason: str) -> Row:
        """Take a landed file out of its source; every environment reading it sees the change,
        so a project with a protected environment needs an operator or an admin."""
        from andon import landed

        return landed.withdraw(self.project, source, file, reason=reason, user=self.user)

    # features -------------------------------------------------------------------------------

    def features_materialize(self, views: Sequence[str] | None = None,
                             environment: str | None = None) -> list[Row]:
        """Write feature views' latest values to the online store of ``environment``: it
        changes what models are served, so it needs the right to run there."""
        from dataclasses import asdict

        from andon import features

        env = self._env(environment)
        protected = self.project.is_protected(env)
        self._allow("run", f"materialise features of {'protected ' if protected else ''}"
                    f"environment {env!r}", protected=protected)
        return [asdict(m) for m in features.materialize(views, project=self.project,
                                                        environment=env)]

    def features_monitor(self, training: str | None = None,
                         environment: str | None = None) -> list[Row]:
        """Record feature freshness (and drift against ``training``) as check results."""
        from andon import features

        env = self._env(environment)
        protected = self.project.is_protected(env)
        self._allow("run", f"record feature checks of {'protected ' if protected else ''}"
                    f"environment {env!r}", protected=protected)
        return features.monitor(training, project=self.project, environment=env)

    # reads ------------------------------------------------------------------------------------

    def tables(self, environment: str | None = None) -> list[TableInfo]:
        from andon.records import tables

        return tables(self.project, environment)

    def show(self, table: str, environment: str | None = None, rows: int = 5) -> Row:
        """A table's description and sample rows (PII columns masked: see ``catalog``)."""
        from andon import published
        from andon.masking import mask_rows

        info = published.show(self.project, table, environment, limit=rows)
        if info["sample"]:
            masked = self._catalog(environment).masked(table)
            info["sample"] = mask_rows(info["sample"], masked)
        return info

    def query(self, sql: str, environment: str | None = None, *, limit: int | None = None,
              as_of: str | None = None, commit: str | None = None
              ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Read-only SQL; a role without ``read_pii`` gets PII columns masked (found by the
        query's column lineage: a query that cannot be traced is refused to it)."""
        from andon import published

        columns, rows = published.query(self.project, sql, environment, limit=limit,
                                        as_of=as_of, commit=commit)
        if self.may_read_pii() or not columns:
            return columns, rows
        from andon.masking import mask_tuples

        masked = self._query_pii(sql, environment)
        return columns, mask_tuples(columns, rows, masked)

    # the catalog ---------------------------------------------------------------------------

    def may_read_pii(self) -> bool:
        """Whether query results show the values of PII columns to this user."""
        from andon.access import CAN

        return self.role in CAN["read_pii"]

    def _catalog(self, environment: str | None = None) -> Catalog:
        from andon import catalog

        return catalog.load(self.project, self._env(environment))

    def _query_pii(self, sql: str, environment: str | None) -> set[str]:
        from andon.access import AccessDenied
        from andon.catalog import masked_columns
        from andon.lineage import trace_sql

        cat = self._catalog(environment)
        schemas = {name: {str(c): str(t) for c, t in art["schema"]}
                   for name, art in cat.tables.items()}
        lin = trace_sql("query", sql, tuple(schemas), schemas)
        pii = {name: masked_columns(cols) for name, cols in cat.tags.items()}
        if lin.level != "column":
            if not any(pii.values()):
                return set()
            raise AccessDenied(
                f"user {self.user!r} (role {self.role}) sees PII columns masked, and this "
                f"query cannot be traced to its columns: {lin.note}",
                hint="name the columns you read (no SELECT * over COLUMNS(...) or table "
                     "functions), or ask for the role developer")
        return {e.output for e in lin.edges
                if not e.indirect and not e.masking and e.column in pii.get(e.table, ())}

    def catalog_show(self, table: str, environment: str | None = None) -> Row:
        """``andon catalog show``: layer, alignment, owner, steward, columns and tags."""
        from andon import catalog

        return catalog.describe(self.project, table, catalog=self._catalog(environment))

    def catalog_search(self, text: str, environment: str | None = None,
                       limit: int = 20) -> list[Row]:
        """``andon catalog search``: tables and columns, best match first."""
        from andon import catalog

        return catalog.search(self.project, text, self._env(environment), limit)

    def lineage(self, table: str) -> dict[str, Any]:
        from andon import published

        return published.lineage(self.project, table)

    def runs(self, environment: str | None = None, limit: int = 20, *,
             status: str | None = None, before: int | None = None) -> list[RunSummary]:
        """The newest runs first; ``before`` a run id pages on."""
        from andon.records import runs

        return runs(self.project, environment, limit, status=status, before=before)

    def run_details(self, run_ref: str | int) -> RunDetails:
        from andon.records import run_details

        return run_details(self.project, run_ref)

    def rejects(self, source: str, limit: int = 100) -> list[Row]:
        from andon import published

        return published.rejects(self.project, source, limit)

    def profile(self, table: str, environment: str | None = None) -> Row:
        """A table's profile; the values it shows of PII columns (top values, lowest and
        highest) masked."""
        from andon import published
        from andon.masking import mask_value

        found = published.profile(self.project, table, environment)
        masked = self._catalog(environment).masked(table)
        columns = found.get("columns")
        if masked and isinstance(columns, dict):
            for name in masked & set(columns):
                entry = dict(columns[name])
                if entry.get("top_values"):
                    entry["top_values"] = [[mask_value(v), n] for v, n in entry["top_values"]]
                for key in ("min", "max"):
                    if entry.get(key) is not None:
                        entry[key] = mask_value(entry[key])
                columns[name] = entry
        return found

    def checks_list(self) -> list[Row]:
        from andon import published

        return published.checks_list(self.project)

    def checks_history(self, name: str, environment: str | None = None,
                       limit: int = 30) -> list[Row]:
        from andon import published

        return published.check_history(self.project, name, self._env(environment), limit)

    def checks_suggest(self, table: str, environment: str | None = None) -> str:
        from andon import published

        return published.suggest_checks(self.project, table, environment)

    def report(self, since: str | None = None, environment: str | None = None) -> Report:
        """DataOps analytics over ``since`` (``30d``, ``12h``, ``2w`` or an ISO date; default
        30 days), of ``environment``'s runs and checks (default: all) and promotions into it
        (default: prod). A read: any role, or none, may see it."""
        from andon.analytics import report

        return report(self.project, since, environment)

    # models (andon.models.registry) -------------------------------------------------------

    def models_list(self, environment: str | None = None) -> list[Row]:
        from andon.models import registry

        return registry.models(self.project, self._env(environment))

    def models_show(self, name: str, environment: str | None = None, *,
                    version: int | None = None, alias: str | None = None) -> Row:
        from andon.models import registry

        return registry.show(self.project, name, environment=self._env(environment),
                             version=version, alias=alias)

    def models_diff(self, name: str, a: int, b: int) -> Row:
        from andon.models import registry

        return registry.diff(self.project, name, a, b)

    def models_alias(self, name: str, alias: str, version: int | None, *,
                     note: str | None = None) -> Row:
        from andon.models import registry

        self._allow("models_alias", f"move alias {alias!r} of model {name!r}")
        return registry.set_alias(self.project, name, alias, version, who=self.user, note=note)

    def models_tag(self, name: str, version: int, tags: dict[str, str]) -> Row:
        from andon.models import registry

        self._allow("models_alias", f"tag model {name!r}")
        return registry.set_tags(self.project, name, version, tags)


def run(project: Project, environment: str | None = None, selection: Sequence[str] = (), *,
        user: str | None = None, listener: Listener | None = None,
        wait_for_lease: float = 0.0, backfill: tuple[str, str] | None = None) -> RunResult:
    """``Session(project, user or local_user()).run(...)``: the Python API's shortcut."""
    return Session(project, user or local_user()).run(
        environment, selection, listener=listener, wait_for_lease=wait_for_lease,
        backfill=backfill)


def plan(project: Project, environment: str | None = None,
         selection: Sequence[str] = ()) -> Plan:
    """What a run would do (reads only: no user needed)."""
    from andon import runner

    return runner.plan(project, environment, selection)


def show(project: Project, table: str, environment: str | None = None, limit: int = 10,
         *, user: str | None = None) -> Row:
    """``Session(project, user or local_user()).show(...)``: PII in the sample masked."""
    return Session(project, user or local_user()).show(table, environment, rows=limit)


def query(project: Project, sql: str, environment: str | None = None,
          limit: int | None = None, *, as_of: str | None = None, commit: str | None = None,
          user: str | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``Session(project, user or local_user()).query(...)``: a viewer gets PII masked."""
    return Session(project, user or local_user()).query(sql, environment, limit=limit,
                                                        as_of=as_of, commit=commit)


__all__ = ["Session", "local_user", "plan", "query", "run", "show"]
