"""Plan: the frozen stages of what a run will do (``andon.stages``). The runner walks them;
``--dry-run`` explains them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any, Literal

from andon.dag import Dag
from andon.errors import DagError, SqlError
from andon.fingerprint import data_params, fingerprint
from andon.incremental import validate as validate_incremental
from andon.landing import LandingState, landing_state
from andon.project import CONFIG_FILE, Project
from andon.stages import (
    BuildStage,
    CheckStage,
    LandStage,
    PlannedCheck,
    PublishStage,
    Stage,
    planned_checks,
    publish_stage,
)
from andon.store import Row, Store
from andon.warehouse import Warehouse

# reuse: a sealed artifact, published or passed before; check: a sealed artifact its checks
# rejected, not rebuilt (same code, same inputs) but checked again before it can publish
Action = Literal["build", "reuse", "check", "keep"]


@dataclass(frozen=True)
class PlannedStep:
    name: str
    kind: str
    action: Action
    fingerprint: str
    code_hash: str
    reason: str
    parents: tuple[str, ...]
    previous: str | None = None  # the environment's artifact for this step before the run
    landing: LandingState | None = field(default=None, compare=False)
    template_hash: str = ""
    checks: tuple[PlannedCheck, ...] = ()  # its check stage

    def stages(self) -> tuple[Stage, ...]:
        """land (a source's files), build (or reuse), check (when it has checks)."""
        out: list[Stage] = []
        if self.landing is not None:
            out.append(LandStage(self.name, tuple(str(a.path) for a in self.landing.arrivals),
                                 tuple(str(x.path) for x in self.landing.duplicates)))
        out.append(BuildStage(self.name, self.action, self.reason, self.fingerprint))
        if self.checks:
            out.append(CheckStage(self.name, self.checks))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "action": self.action,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
            "parents": list(self.parents),
        }
        if self.landing is not None:
            d["new_files"] = [str(a.path) for a in self.landing.arrivals]
            d["duplicate_files"] = [str(x.path) for x in self.landing.duplicates]
        if self.checks:
            d["checks"] = [c.to_dict() for c in self.checks]
        return d


@dataclass(frozen=True)
class Plan:
    environment: str
    base_commit: str | None
    base_steps: dict[str, str]
    steps: tuple[PlannedStep, ...]  # DAG order
    params: dict[str, Any]
    selection: tuple[str, ...]
    complete: bool  # the whole project is selected: the new commit drops deleted steps
    publish: PublishStage  # the environment's move if every step succeeds
    backfill: tuple[str, str] | None = None
    known: dict[str, Row] = field(default_factory=dict, compare=False)  # sealed artifacts
    base_code: dict[str, str] = field(default_factory=dict)  # step → template hash

    def commit_code(self) -> dict[str, str]:
        """Step → template hash of the commit the run would publish."""
        return _commit_code(self.complete, self.base_code, self.steps)

    def stages(self) -> tuple[Stage, ...]:
        """Every stage in the order the runner walks them: each step's, then publish."""
        return (*(st for s in self.steps for st in s.stages()), self.publish)

    @property
    def by_name(self) -> dict[str, PlannedStep]:
        return {s.name: s for s in self.steps}

    def commit_steps(self) -> dict[str, str]:
        """The step → artifact map the environment points at if the run succeeds."""
        return _commit_steps(self.complete, self.base_steps, self.steps)

    def counts(self) -> dict[str, int]:
        out = {"build": 0, "reuse": 0, "check": 0, "keep": 0}
        for s in self.steps:
            out[s.action] += 1
        return out

    def summary(self) -> str:
        """One line: how many steps are built, reused, and checked again."""
        counts = self.counts()
        text = f"{counts['build']} to build, {counts['reuse']} to reuse"
        if counts["check"]:
            text += f", {counts['check']} rejected before to check again"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "base_commit": self.base_commit,
            "selection": list(self.selection),
            "params": self.params,
            "steps": [s.to_dict() for s in self.steps],
            "counts": self.counts(),
            "stages": [s.to_dict() for s in self.stages()],
            "publish": self.publish.to_dict(),
        }


def _commit_steps(complete: bool, base: dict[str, str],
                  steps: tuple[PlannedStep, ...]) -> dict[str, str]:
    mapping = {} if complete else dict(base)
    for s in steps:
        mapping[s.name] = s.fingerprint
    return mapping


def _commit_code(complete: bool, base_code: dict[str, str],
                 steps: tuple[PlannedStep, ...]) -> dict[str, str]:
    code = {} if complete else dict(base_code)
    for s in steps:
        code[s.name] = s.template_hash
    return code


def check_engine_sql(project: Project, names: Iterable[str]) -> None:
    """Refuse, before any work, a SQL step the project's engine cannot run (a DuckDB
    construct with no equivalent there), naming the step, its line and the construct."""
    from andon.engines import ENGINES

    check = ENGINES.get_kind(project.config.engine).check_sql
    if check is None:
        return
    for name in names:
        step = project.dag.steps[name]
        found = check(step.sql) if step.kind == "sql" else None
        if found is None:
            continue
        what, word = found
        line = step.line
        try:
            lines = step.file.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        hits = [i + 1 for i, text in enumerate(lines) if word and word.lower() in text.lower()]
        line = next((n for n in hits if n >= step.line), hits[0] if hits else step.line)
        raise SqlError(
            f"step {name!r} cannot run on engine {project.config.engine}: {what}",
            file=step.file, line=line, step=name,
            hint="write it with SQL both engines know (andon transpiles DuckDB's dialect); "
                 "nothing was built")


def make_plan(
    project: Project,
    environment: str,
    selection: tuple[str, ...] = (),
    *,
    store: Store | None = None,
    warehouse: Warehouse | None = None,
    backfill: tuple[str, str] | None = None,
) -> Plan:
    """What a run would do. ``backfill`` (start, end) recomputes that interval of every
    selected incremental step (the rest of their data is kept). A project loaded with
    problems is refused here, every problem listed: nothing is built from part of it."""
    project.require_valid()
    store = store or project.store
    warehouse = warehouse or Warehouse(project.warehouse)
    dag: Dag = project.dag
    check_engine_sql(project, dag.select(selection))
    env = store.environment(environment)
    base_commit = env["commit_id"] if env else None
    base = store.commit_steps(base_commit)
    selected = set(dag.select(selection))
    fps: dict[str, str] = {}
    drafts: list[tuple[PlannedStep, bool]] = []  # (step, selected)
    for name in dag.order:
        step = dag.steps[name]
        if name not in selected:
            if name in base:
                fps[name] = base[name]
            continue
        parents: dict[str, str] = {}
        for p in step.parents:
            if p not in fps:
                raise DagError(
                    f"step {name!r} needs {p!r}, which environment {environment!r} has not "
                    "built yet",
                    step=name,
                    file=step.file,
                    hint=f"select it too: andon run +{name}",
                )
            parents[p] = fps[p]
        landing: LandingState | None = None
        files: tuple[str, ...] = ()
        if step.kind == "source":
            assert step.source is not None
            landing = landing_state(store, project.root, name, step.source,
                                    project.root / CONFIG_FILE)
            files = active_shas(landing, step.source.path)
        dparams = data_params(step, project.params)
        if backfill and step.config.materialized == "incremental" and base.get(name):
            # a backfill makes a new artifact from the previous one: both go into its address
            dparams = {**dparams, "__backfill__": list(backfill), "__from__": base[name]}
        fp = fingerprint(step, parents, params=dparams, files=files)
        fps[name] = fp
        drafts.append((
            PlannedStep(
                name=name,
                kind=step.kind,
                action="build",
                fingerprint=fp,
                code_hash=step.code_hash,
                reason="",
                parents=step.parents,
                previous=base.get(name),
                landing=landing,
                template_hash=step.template_hash,
            ),
            True,
        ))
    # which fingerprints are sealed already (in the store, or on disk after a crash)
    wanted = {d.fingerprint for d, _ in drafts} | set(base.values())
    known = store.artifacts(wanted)
    previous_rows = {d.previous: known.get(d.previous) for d, _ in drafts if d.previous}
    out: list[PlannedStep] = []
    for d, _sel in drafts:
        if d.fingerprint in known or warehouse.read_manifest(d.name, d.fingerprint) is not None:
            rejected_by = (_rejected_by(store, d, known[d.fingerprint])
                           if d.previous != d.fingerprint and d.fingerprint in known
                           and project.checks_of(d.name) else None)
            if rejected_by is not None:
                out.append(_with(d, "check", f"built by run {rejected_by} and rejected by its "
                                             "checks: not rebuilt, its checks run again"))
                continue
            reason = "unchanged" if d.previous == d.fingerprint else "built before"
            out.append(_with(d, "reuse", reason))
            continue
        out.append(_with(d, "build", _why(d, previous_rows.get(d.previous) if d.previous else None,
                                          base, fps, dag)))
    _validate_checks(project, {d.name for d, _ in drafts}, known, fps)
    validate_incremental(project, [d.name for d in out if d.action == "build"], known, fps)
    check_stages = planned_checks(project, store, environment,
                                  [(s.name, s.action, s.fingerprint, s.previous) for s in out],
                                  fps, known)
    steps = tuple(replace(s, checks=check_stages[s.name]) if s.name in check_stages else s
                  for s in out)
    base_code = dict((store.commit(base_commit) or {}).get("code") or {}) if base_commit \
        else {}
    complete = not selection
    refused = (code_changes(base_commit, base, base_code, steps, known, complete)
               if project.is_protected(environment) else [])
    return Plan(
        environment=environment,
        base_commit=base_commit,
        base_steps=base,
        steps=steps,
        params=dict(project.params),
        selection=tuple(selection),
        complete=complete,
        publish=publish_stage(environment, base_commit, base, base_code,
                              _commit_steps(complete, base, steps),
                              _commit_code(complete, base_code, steps), refused=refused),
        backfill=backfill,
        known=known,
        base_code=base_code,
    )


def code_changes(base_commit: str | None, base_steps: dict[str, str],
                 base_code: dict[str, str], steps: tuple[PlannedStep, ...],
                 known: dict[str, Row], complete: bool) -> list[str]:
    """The steps whose code differs from the environment's commit (for a protected
    environment, which runs exactly the code of its last promotion)."""
    if base_commit is None:
        return []  # the first run creates the environment
    changed = []
    for s in steps:
        if base_code:
            if base_code.get(s.name) != s.template_hash:
                changed.append(s.name)
            continue
        prev = known.get(s.previous) if s.previous else None
        if s.previous is None or (prev is not None and prev["code_hash"] != s.code_hash):
            changed.append(s.name)
    if complete:
        names = {s.name for s in steps}
        changed += [n for n in base_steps if n not in names]
    return sorted(changed)


def _validate_checks(project: Project, names: set[str], known: dict[str, Row],
                     fps: dict[str, str]) -> None:
    """Checks naming a missing column or a column of the wrong type fail here, before any work."""
    checks = [c for c in project.checks if c.table in names and c.type != "python"]
    if not checks:
        return
    from andon.checks.load import validate_columns
    from andon.schemas import infer

    tables = {c.table for c in checks}
    tables |= {c.target for c in checks if c.target}
    sealed = {name: {str(a): str(b) for a, b in known[fp]["schema"]}
              for name, fp in fps.items() if fp in known}
    schemas = infer(project, tables, sealed)
    for c in checks:
        schema = schemas.get(c.table)
        if schema is None:
            continue
        validate_columns(c, schema, schemas.get(c.target) if c.target else None)


def active_landed(rows: list[Row], pattern: str | None = None,
                  present: frozenset[str] = frozenset()) -> list[Row]:
    """The landed files a source reads: those that came from its path (compared by their
    trailing path, so a moved project keeps its data) or whose bytes are in its folder now.
    Another environment reading other files (a sample) never mixes them in. A file arriving
    again under the same name (a sender's correction) supersedes the earlier arrival, which
    stays in the landing zone for replay."""
    if pattern is not None and "**" not in pattern:
        rows = [r for r in rows if r["sha256"] in present
                or PurePath(r["original_path"]).match(pattern)]
    latest: dict[str, Row] = {}
    for r in sorted(rows, key=lambda r: (r["arrived_at"], r.get("id") or 0)):
        latest[Path(r["original_path"]).name] = r
    return sorted(latest.values(), key=lambda r: (r["arrived_at"], r.get("id") or 0))


def active_shas(landing: LandingState, pattern: str | None = None) -> tuple[str, ...]:
    arriving = {a.path.name for a in landing.arrivals}
    kept = [r for r in active_landed(list(landing.landed), pattern, landing.present)
            if Path(r["original_path"]).name not in arriving]
    return tuple(r["sha256"] for r in kept) + tuple(a.sha256 for a in landing.arrivals)


def _rejected_by(store: Store, d: PlannedStep, artifact: Row) -> int | None:
    """The run that built this sealed artifact, if its checks rejected it there."""
    run_id = artifact.get("run_id")
    if run_id is None:
        return None
    failed = any(r["step"] == d.name and r["fingerprint"] == d.fingerprint
                 and r["action"] == "failed" for r in store.step_runs(int(run_id)))
    return int(run_id) if failed else None


def _with(d: PlannedStep, action: Action, reason: str) -> PlannedStep:
    return PlannedStep(
        name=d.name, kind=d.kind, action=action, fingerprint=d.fingerprint,
        code_hash=d.code_hash, reason=reason, parents=d.parents, previous=d.previous,
        landing=d.landing, template_hash=d.template_hash,
    )


def _why(d: PlannedStep, prev: Row | None, base: dict[str, str], fps: dict[str, str],
         dag: Dag) -> str:
    if d.previous is None:
        return "new step" if d.landing is None else _files_reason(d) or "first ingest"
    if d.landing is not None:
        if _files_reason(d):
            return _files_reason(d)
        # the same contract reading other files: some were withdrawn (or left its path)
        return "landed files changed" if prev is not None and prev["code_hash"] == d.code_hash \
            else "contract changed"
    if prev is not None and prev["code_hash"] != d.code_hash:
        return "code changed"
    changed = [p for p in d.parents if base.get(p) != fps.get(p)]
    if changed:
        return "upstream changed: " + ", ".join(changed)
    return "parameters changed"


def _files_reason(d: PlannedStep) -> str:
    assert d.landing is not None
    n = len(d.landing.arrivals)
    if n:
        return f"{n} new file{'s' if n != 1 else ''}"
    return ""


