"""Registries of kinds: step kinds, source kinds and artifact formats.

Each registry holds the built-in kinds and is open to other packages through an entry-point
group (``andon.step_kinds``, ``andon.source_kinds``, ``andon.artifact_formats``). An entry
point names a ``StepKind``, ``SourceKind`` or ``ArtifactFormat`` value; the group is loaded
once, the first time a kind is looked up. For example, in a plug-in's ``pyproject.toml``::

    [project.entry-points."andon.step_kinds"]
    csvtext = "my_plugin:CSV_TEXT"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from andon.config import SourceConfig, SourceSpec
from andon.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # the registry itself loads nothing heavy
    import pyarrow as pa

    from andon.build import BuildContext, Built
    from andon.engines.base import Engine
    from andon.parsecache import ParseCache
    from andon.plan import PlannedStep
    from andon.steps import Step

Schema = dict[str, str]
SchemaOf = Callable[[str], "Schema | None"]
Loader = Callable[[Path, str, Mapping[str, Any], "ParseCache"], "list[Step]"]
Builder = Callable[["BuildContext", "Step", "PlannedStep"], "Built"]
SchemaInferrer = Callable[
    ["Step", SchemaOf, Callable[[], "Engine"]], "Schema | None"
]


def _no_params(step: Step, params: Mapping[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class StepKind:
    """What andon needs to know about one kind of step.

    ``suffixes``/``load``: the files of a pipeline folder it loads, and how (``load`` gets the
    file, its pipeline, the parameters and the parse cache; it returns the steps in the file).
    ``build`` makes the step's artifact (``andon.build.seal_table`` seals an Arrow table).
    ``inline``: cheap to build on the runner's thread when it is the only work there is.
    ``data_params``: the parameters that go into the fingerprint besides the code.
    ``infer_schema``: the output schema at plan time, from the parents' schemas (None: not
    known before it is built)."""

    name: str
    build: Builder
    suffixes: tuple[str, ...] = ()
    load: Loader | None = None
    inline: bool = False
    incremental: bool = False
    default_zone: str = "formatted"
    data_params: Callable[[Step, Mapping[str, Any]], dict[str, Any]] = _no_params
    infer_schema: SchemaInferrer | None = None


@dataclass(frozen=True)
class SourceKind:
    """A kind of source in ``andon.yaml``: its ``kind:`` name, the pydantic model of its
    settings (a ``SourceSpec`` whose ``kind`` field is a ``Literal`` of that name), and how
    a source of the kind becomes a step (``step(name, spec, andon.yaml path)``; the step's
    kind builds it)."""

    name: str
    config: type[SourceSpec]
    step: Callable[[str, SourceSpec, Path], Step]


@dataclass(frozen=True)
class ArtifactFormat:
    """How an artifact's files are written, read and described. The warehouse seals the
    files named ``*<suffix>`` in a staging folder, records each one's ``digest`` (a hashlib
    algorithm) in the manifest, and reads an artifact's schema with ``schema``."""

    name: str
    suffix: str
    write: Callable[[pa.Table, Path], int]  # → rows written
    scan: Callable[[Sequence[str | Path]], str]  # → the engine's table expression over files
    schema: Callable[[Path], tuple[tuple[str, str], ...] | None]  # None: ask the engine
    digest: str = "sha256"  # hashlib algorithm of each file, as sealed and verified

    def hash_file(self, path: Path) -> str:
        """The digest of one file's bytes, read in chunks."""
        import hashlib

        with path.open("rb") as f:
            return hashlib.file_digest(f, self.digest).hexdigest()


K = TypeVar("K", StepKind, SourceKind, ArtifactFormat)


class _Registry(dict[str, K]):
    def __init__(self, what: str, group: str) -> None:
        super().__init__()
        self.what = what
        self.group = group
        self.plugins_loaded = False

    def register(self, kind: K) -> K:
        self[kind.name] = kind
        return kind

    def all(self) -> dict[str, K]:
        if not self.plugins_loaded:
            self.plugins_loaded = True
            for ep in entry_points(group=self.group):
                value = ep.load()
                if not isinstance(value, type(next(iter(self.values())))):
                    raise ConfigError(
                        f"entry point {ep.name!r} of group {self.group!r} is not a "
                        f"{self.what} ({ep.value})",
                        hint=f"point it at a {self.what} value, or uninstall the package "
                        "that declares it",
                    )
                self.register(value)
        return self

    def get_kind(self, name: str, *, file: Path | None = None, line: int | None = None) -> K:
        known = self.all()
        if name in known:
            return known[name]
        hint = did_you_mean(name, known)
        raise ConfigError(
            f"unknown {self.what} {name!r}",
            file=file,
            line=line,
            hint=(hint + " " if hint else "") + f"known: {', '.join(sorted(known))} (more come "
            f"from packages declaring the {self.group!r} entry point)",
        )


STEP_KINDS: _Registry[StepKind] = _Registry("step kind", "andon.step_kinds")
SOURCE_KINDS: _Registry[SourceKind] = _Registry("source kind", "andon.source_kinds")
ARTIFACT_FORMATS: _Registry[ArtifactFormat] = _Registry("artifact format",
                                                         "andon.artifact_formats")


def step_kind(name: str, *, file: Path | None = None, line: int | None = None) -> StepKind:
    return STEP_KINDS.get_kind(name, file=file, line=line)


def source_kind(name: str, *, file: Path | None = None, line: int | None = None) -> SourceKind:
    return SOURCE_KINDS.get_kind(name, file=file, line=line)


def artifact_format(name: str) -> ArtifactFormat:
    return ARTIFACT_FORMATS.get_kind(name)


def kind_for_file(file: Path) -> StepKind | None:
    """The step kind that loads ``file`` (by its suffix), or None: not a step file."""
    return next((k for k in STEP_KINDS.all().values() if file.suffix in k.suffixes), None)


# built-in kinds: the functions live with their concepts and load when first used ----------


def _load_sql(file: Path, pipeline: str, params: Mapping[str, Any],
              cache: ParseCache) -> list[Step]:
    from andon.steps import load_sql_step

    return [load_sql_step(file, pipeline, params, cache)]


def _load_python(file: Path, pipeline: str, params: Mapping[str, Any],
                 cache: ParseCache) -> list[Step]:
    from andon.steps import load_python_steps

    return load_python_steps(file, pipeline)


def _build_sql(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    from andon.build import build_sql

    return build_sql(ctx, step, ps)


def _build_python(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    from andon.build import build_python

    return build_python(ctx, step, ps)


def _build_source(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    from andon.build import build_source

    return build_source(ctx, step, ps)


def _files_step(name: str, spec: SourceSpec, config_file: Path) -> Step:
    from andon.steps import files_source_step

    return files_source_step(name, spec, config_file)


def _python_params(step: Step, params: Mapping[str, Any]) -> dict[str, Any]:
    from andon.fingerprint import python_data_params

    return python_data_params(step, params)


def _sql_schema(step: Step, schema_of: SchemaOf,
                connection: Callable[[], Engine]) -> Schema | None:
    from andon.schemas import sql_schema

    return sql_schema(step, schema_of, connection)


def _source_schema(step: Step, schema_of: SchemaOf,
                   connection: Callable[[], Engine]) -> Schema | None:
    from andon.schemas import source_schema

    return source_schema(step)


STEP_KINDS.register(StepKind(
    "sql", _build_sql, suffixes=(".sql",), load=_load_sql, inline=True, incremental=True,
    infer_schema=_sql_schema,
))
STEP_KINDS.register(StepKind(
    "python", _build_python, suffixes=(".py",), load=_load_python, data_params=_python_params,
))


def _build_model(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    from andon.models.train import build_model

    return build_model(ctx, step, ps)


def _build_score(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    from andon.models.train import build_score

    return build_score(ctx, step, ps)


# Python functions marked @andon.models.model / @andon.models.scoring (andon.models)
STEP_KINDS.register(StepKind("model", _build_model, default_zone="models",
                             data_params=_python_params))
STEP_KINDS.register(StepKind("score", _build_score, default_zone="exploitation",
                             data_params=_python_params))
# sources are declared in andon.yaml (see SOURCE_KINDS), not loaded from pipeline files
STEP_KINDS.register(StepKind(
    "source", _build_source, default_zone="landing", infer_schema=_source_schema,
))
SOURCE_KINDS.register(SourceKind("files", SourceConfig, _files_step))


def _parquet_write(table: pa.Table, out: Path) -> int:
    from andon.engines.duckdb import DuckDBEngine

    return DuckDBEngine.write_arrow(table, out)


def _parquet_scan(files: Sequence[str | Path]) -> str:
    from andon.engines.duckdb import scan_sql

    return scan_sql(files)


def _parquet_schema(path: Path) -> tuple[tuple[str, str], ...] | None:
    from andon.engines.duckdb import parquet_schema

    return parquet_schema(path)


ARTIFACT_FORMATS.register(ArtifactFormat(
    "parquet", ".parquet", _parquet_write, _parquet_scan, _parquet_schema
))
