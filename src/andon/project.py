"""Load a project folder (``andon.yaml`` + pipelines) into a ``Project``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.checks.load import load_checks
from andon.checks.model import Check
from andon.config import NAME_RE, ProjectConfig, SourceConfig, SourceSpec, validate
from andon.dag import Dag
from andon.errors import AndonError, ConfigError, DagError, ProjectInvalid
from andon.kinds import kind_for_file
from andon.params import resolve as resolve_params
from andon.parsecache import ParseCache
from andon.steps import Step, render, source_step
from andon.yamlfile import load_yaml

if TYPE_CHECKING:
    from andon.store import Store, StoreReader

CONFIG_FILE = "andon.yaml"


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding andon.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {CONFIG_FILE} in {here} or any folder above it",
        hint="run inside a project, pass --project DIR, or create one with: andon init DIR",
    )


@dataclass
class Project:
    root: Path
    config: ProjectConfig
    dag: Dag
    params: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    environment: str = "prod"
    overrides: dict[str, Any] = field(default_factory=dict)
    param_sets: tuple[str, ...] = ()
    # files left out because they have a problem: reading commands warn, building refuses
    problems: list[AndonError] = field(default_factory=list)
    _store: Store | None = None
    _read_store: Store | None = None  # opened by ``reader`` without migrating

    def checks_of(self, table: str) -> list[Check]:
        return [c for c in self.checks if c.table == table]

    def pii_of(self, table: str) -> set[str]:
        """Columns masked in check samples: marked in the step, or PII in a source it reads."""
        step = self.dag.steps.get(table)
        if step is None:
            return set()
        out = set(step.config.pii)
        out |= {c for c, tags in step.config.column_tags.items()
                if any(t == "pii" or t.startswith("pii:") for t in tags)}
        if step.source is not None:
            out |= {n for n, c in step.source.columns.items() if c.pii}
        for parent in self.dag.ancestors(table):
            src = self.dag.steps[parent].source
            if src is not None:
                out |= {n for n, c in src.columns.items() if c.pii}
        return out

    def require_valid(self) -> None:
        """Building needs every file: refuse with every problem listed."""
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise ProjectInvalid(self.problems)

    @staticmethod
    def load(
        path: str | Path | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        environment: str | None = None,
        param_sets: Sequence[str] = (),
        tolerant: bool = False,
    ) -> Project:
        """Load the project as it runs in ``environment`` (default: the default environment):
        parameters resolve from defaults, the environment's overrides, named sets and
        ``params``, and steps render with them.

        A step or checks file with a problem is left out (with the steps that read it) and
        its problem kept in ``problems``; unless ``tolerant``, loading then raises them all.
        ``andon.yaml`` itself must be valid."""
        root = find_root(Path(path) if path else None)
        config_file = root / CONFIG_FILE
        doc = load_yaml(config_file)
        config = validate(ProjectConfig, doc, CONFIG_FILE)
        environment = environment or config.default_environment
        merged = resolve_params(config, environment, param_sets, params)
        steps: list[Step] = [
            source_step(name, _render_path(src, merged, config_file), config_file)
            for name, src in config.sources.items()
        ]
        pipelines_dir = root / config.pipelines
        problems: list[AndonError] = []
        broken: set[str] = set()  # names of step files that did not load
        if not pipelines_dir.is_dir() and config.pipelines != "pipelines":
            raise ConfigError(
                f"pipelines folder {config.pipelines!r} does not exist",
                file=config_file,
                hint="create it or fix 'pipelines:' in andon.yaml",
            )
        with ParseCache(root).current() as cache:
            for file in sorted(pipelines_dir.rglob("*")) if pipelines_dir.is_dir() else []:
                try:
                    steps.extend(_load_file(file, pipelines_dir, config, merged, cache))
                except AndonError as e:
                    problems.append(e)
                    broken.add(file.stem)
            dag = _build_dag(steps, broken, problems)
            checks: list[Check] = []
            try:
                checks = load_checks(root, config_file, doc, dag.steps, config.checks)
            except AndonError as e:
                problems.append(e)
        project = Project(root=root, config=config, dag=dag, params=merged, checks=checks,
                          environment=environment, overrides=dict(params or {}),
                          param_sets=tuple(param_sets), problems=problems)
        if not tolerant:
            project.require_valid()
        return project

    def for_environment(self, environment: str) -> Project:
        """The same project loaded for another environment (its parameters may differ)."""
        if environment == self.environment:
            return self
        other = Project.load(self.root, self.overrides, environment=environment,
                             param_sets=self.param_sets, tolerant=bool(self.problems))
        other._store, other._read_store = self._store, self._read_store
        return other

    def is_protected(self, environment: str) -> bool:
        env = self.config.environments.get(environment)
        if env is not None and env.protected is not None:
            return env.protected
        return environment == "prod"

    @property
    def name(self) -> str:
        return self.config.name

    @cached_property
    def warehouse(self) -> Path:
        """The warehouse folder: for ``s3://`` its local mirror (andon.objectstore)."""
        return self._location(self.config.warehouse)

    @cached_property
    def landing(self) -> Path:
        return self._location(self.config.landing)

    def _location(self, value: str) -> Path:
        from andon import objectstore

        def secret(name: str) -> str:
            from andon.secrets import get_secret

            return get_secret(self.store, self.root, name, self.environment)

        return objectstore.resolve(self.root, value, self.config.object_store, secret)

    @property
    def store(self) -> Store:
        if self._store is None:
            from andon.store import open_store  # SQLAlchemy: only for what reads the store

            url = os.environ.get("ANDON_STORE_URL") or self.config.store
            self._store = open_store(url, self.root, project=self.name)
        return self._store

    @property
    def reader(self) -> StoreReader:
        """The store for commands that only read: opened without creating or migrating it
        (a missing store, or one of another version, is a StoreError saying what to do)."""
        if self._store is not None:
            return self._store.reader()
        if self._read_store is None:
            from andon.store import open_store

            url = os.environ.get("ANDON_STORE_URL") or self.config.store
            self._read_store = open_store(url, self.root, migrate=False,
                                          project=self.name)
        return self._read_store.reader()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._read_store is not None:
            self._read_store.close()
            self._read_store = None


def _build_dag(steps: list[Step], broken: set[str], problems: list[AndonError]) -> Dag:
    """The DAG of the steps that loaded. A step reading a broken file is left out with it
    (the broken file is the problem to report); a step with a DAG problem of its own (an
    unknown table, a cycle, a duplicate name) is left out and its problem kept."""
    while True:
        left = [s for s in steps if not any(r.name in broken for r in s.refs)]
        if len(left) < len(steps):
            broken |= {s.name for s in steps} - {s.name for s in left}
            steps = left
            continue
        try:
            return Dag.build(steps)
        except DagError as e:
            if e.step is None or not any(s.name == e.step for s in steps):
                raise
            problems.append(e)
            broken.add(e.step)
            steps = [s for s in steps if s.name != e.step]


def _render_path(source: SourceSpec, params: Mapping[str, Any], config_file: Path
                 ) -> SourceSpec:
    """A source path may use parameters (``{{ data_dir }}/flights/*.csv``), so that an
    environment reads other files, e.g. a sample in dev."""
    if not isinstance(source, SourceConfig) or (
            "{{" not in source.path and "{%" not in source.path):
        return source
    path = render(source.path, params, config_file, sql=False).strip()
    return source.model_copy(update={"path": path})


def _load_file(
    file: Path, pipelines_dir: Path, config: ProjectConfig, params: Mapping[str, Any],
    cache: ParseCache,
) -> list[Step]:
    kind = kind_for_file(file)
    if kind is None or kind.load is None or file.name.startswith(("_", ".")):
        return []
    rel = file.relative_to(pipelines_dir)
    if len(rel.parts) < 2:
        raise ConfigError(
            "step files live in a pipeline folder",
            file=file,
            hint=f"move it to {pipelines_dir.name}/<pipeline>/{file.name}",
        )
    pipeline = rel.parts[0]
    if not NAME_RE.match(file.stem):
        raise ConfigError(
            f"step name {file.stem!r} is not a SQL identifier",
            file=file,
            hint="use letters, digits and underscores, starting with a letter",
        )
    folder_zone = next((p for p in reversed(rel.parts[:-1]) if p in config.zones), None)
    loaded = kind.load(file, pipeline, params, cache)
    out = []
    for s in loaded:
        if s.config.zone is None and folder_zone is not None:
            s = Step(**{**s.__dict__, "config": s.config.model_copy(update={"zone": folder_zone})})
        if s.config.zone is not None and s.config.zone not in config.zones:
            raise ConfigError(
                f"unknown zone {s.config.zone!r}",
                file=file,
                step=s.name,
                hint=f"zones: {', '.join(config.zones)} (set 'zones:' in andon.yaml to add one)",
            )
        out.append(s)
    return out
