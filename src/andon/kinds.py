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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.config import SOURCE_KINDS, SourceKind
from andon.registry import Ref, Registry

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


STEP_KINDS: Registry[StepKind] = Registry("step kind", "andon.step_kinds")
ARTIFACT_FORMATS: Registry[ArtifactFormat] = Registry("artifact format",
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


# built-in kinds -----------------------------------------------------------------------------
# Declared the way a plug-in's entry point is: by the name of the function that implements
# each part ("module:function"), imported on first call. The registry stays below the modules
# that implement its kinds (loading a project does not import the builders, nor do they
# depend on being registered), and the built-in kinds are not special.


_PYTHON_PARAMS = Ref("andon.fingerprint:python_data_params")

STEP_KINDS.register(StepKind(
    "sql", Ref("andon.build:build_sql"), suffixes=(".sql",), load=Ref("andon.steps:load_sql_file"),
    inline=True, incremental=True, infer_schema=Ref("andon.schemas:sql_schema"),
))
STEP_KINDS.register(StepKind(
    "python", Ref("andon.build:build_python"), suffixes=(".py",),
    load=Ref("andon.steps:load_python_file"), data_params=_PYTHON_PARAMS,
))
# Python functions marked @andon.models.model / @andon.models.scoring (andon.models)
STEP_KINDS.register(StepKind("model", Ref("andon.models.train:build_model"),
                             default_zone="models", data_params=_PYTHON_PARAMS))
STEP_KINDS.register(StepKind("score", Ref("andon.models.train:build_score"),
                             default_zone="exploitation", data_params=_PYTHON_PARAMS))
# in-engine models: fitted and scored by the engine's SQL (andon.models.sqlmodel)
STEP_KINDS.register(StepKind("sqlmodel", Ref("andon.models.sqlmodel:build_sql_model"),
                             default_zone="models", data_params=_PYTHON_PARAMS))
STEP_KINDS.register(StepKind("sqlscore", Ref("andon.models.sqlmodel:build_sql_score"),
                             default_zone="exploitation", data_params=_PYTHON_PARAMS))
# point-in-time training sets of the feature store: *.trainset files (andon.features.step)
STEP_KINDS.register(StepKind("training_set", Ref("andon.features.step:build_training_set"),
                             suffixes=(".trainset",),
                             load=Ref("andon.features.step:load_training_set"),
                             default_zone="features"))
# sources are declared in andon.yaml (see SOURCE_KINDS), not loaded from pipeline files
STEP_KINDS.register(StepKind(
    "source", Ref("andon.build:build_source"), default_zone="landing",
    infer_schema=Ref("andon.schemas:contract_schema"),
))
ARTIFACT_FORMATS.register(ArtifactFormat(
    "parquet", ".parquet", Ref("andon.engines.duckdb:DuckDBEngine.write_arrow"),
    Ref("andon.engines.duckdb:scan_sql"), Ref("andon.engines.duckdb:parquet_schema"),
))
# the PostgreSQL engine's artifacts: each file points at a table of its database
ARTIFACT_FORMATS.register(ArtifactFormat(
    "pgtable", ".pgtable", Ref("andon.engines.postgresql:write_pointerless"),
    Ref("andon.engines.postgresql:pointer_scan"), Ref("andon.engines.postgresql:pointer_schema"),
))
