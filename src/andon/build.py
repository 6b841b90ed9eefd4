"""Build one step into a sealed artifact: sources, SQL steps (full/incremental), Python steps."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from andon import incremental
from andon.config import SourceConfig
from andon.engines.base import Engine, EngineError, Interrupted
from andon.engines.duckdb import bind_template
from andon.engines.sql import cast, ident, render
from andon.errors import AndonError, SqlError, StepError
from andon.execution.pytask import (
    RAISED_HINT,
    PythonTask,
    annotation_text,
    convert_in,
    convert_out,
    raised_message,
    user_line,
    user_traceback,
)
from andon.ingest import LANDED_FILE_COLUMN, MAX_REJECTS_STORED, ingest_file, judge_rejects
from andon.kinds import artifact_format, step_kind
from andon.landing import land, landed_file
from andon.plan import PlannedStep, active_landed
from andon.project import Project
from andon.secrets import get_secret, redact
from andon.sources.evolution import RESCUE_COLUMN, effective_source
from andon.steps import Step
from andon.store import Row, Store
from andon.templates import SECRET_VAR, secrets_used
from andon.warehouse import Manifest, Warehouse, os_error, write_error

if TYPE_CHECKING:
    from andon.execution.pytask import TaskRunner

PARTS = "_parts"


@dataclass(frozen=True)
class Built:
    manifest: Manifest
    rejects: int = 0
    landed: int = 0


@dataclass
class BuildContext:
    project: Project
    store: Store
    warehouse: Warehouse
    engine: Engine
    run_id: int
    artifacts: Mapping[str, Manifest]  # fingerprint → sealed manifest, of parents
    fps: Mapping[str, str]  # step → fingerprint in this run (built, reused or kept)
    reject_rows: list[Row]  # collected for the store
    environment: str = "prod"
    backfill: tuple[str, str] | None = None
    tasks: TaskRunner | None = None  # where Python steps run (None: in this process)


def build_step(ctx: BuildContext, ps: PlannedStep) -> Built:
    step = ctx.project.dag.steps[ps.name]
    try:
        return step_kind(step.kind, file=step.file, line=step.line).build(ctx, step, ps)
    except AndonError:
        raise
    except OSError as e:
        raise os_error(e, Path(e.filename or ctx.warehouse.root), ps.name) from e


def _inputs(ctx: BuildContext, ps: PlannedStep, fps: Mapping[str, str]) -> dict[str, list[str]]:
    return {
        p: [str(ctx.warehouse.path(f)) for f in ctx.artifacts[fps[p]].files] for p in ps.parents
    }


def _suffix(ctx: BuildContext) -> str:
    """The file suffix of the artifacts the run's engine writes."""
    return artifact_format(ctx.engine.artifact_format).suffix


def _seal(ctx: BuildContext, ps: PlannedStep, staging: Path, files: list[str], rows: int,
          meta: dict[str, Any], fmt: str | None = None) -> Manifest:
    """Seal the staged files (of ``fmt``; default: what the engine writes)."""
    final = ctx.warehouse.artifact_dir(ps.name, ps.fingerprint)
    fmt = fmt or ctx.engine.artifact_format
    ctx.engine.finish(staging, ps.name, ps.fingerprint)
    if ps.parents:  # what it was built from: promotion refuses a candidate built on other data
        meta = {**meta, "parents": {p: ctx.fps[p] for p in ps.parents}}
    own = sorted(p.name for p in staging.glob("*" + artifact_format(fmt).suffix))
    all_files = files + [ctx.warehouse.rel(final / name) for name in own]
    paths = [staging / name for name in own] + [ctx.warehouse.path(f) for f in files]
    size = sum(p.stat().st_size for p in paths)
    schema = ctx.engine.schema(paths) if paths else ()
    return ctx.warehouse.seal(
        staging,
        Manifest(
            fingerprint=ps.fingerprint,
            step=ps.name,
            code_hash=ps.code_hash,
            files=tuple(all_files),
            rows=rows,
            bytes=size,
            schema=schema,
            meta=meta,
            format=fmt,
        ),
    )


# sources ----------------------------------------------------------------------------------


def build_source(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    assert step.source is not None and ps.landing is not None
    landed = list(ps.landing.landed)
    if ps.landing.arrivals:
        landed += land(ctx.store, ctx.project.landing, ps.name, ps.landing.arrivals, ctx.run_id)
    landed = active_landed(landed, step.source.path, ps.landing.present)
    # the contract with the columns and types the files brought (evolve:), and its hash
    source, evolved = effective_source(ctx.store, ps.name, step.source)
    parts_dir = ctx.warehouse.root / PARTS / ps.name
    parts_dir.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    rows = rejects = 0
    per_file: list[tuple[str, int, int]] = []
    # landing reads the project's landing folder: an engine of its own, confined to it and
    # to the warehouse (where parts are written and a .zip's member is extracted)
    reader = ctx.engine.reader([ctx.project.landing, ctx.warehouse.root])
    try:
        for row in landed:
            part = _part_id(ps.code_hash + evolved, row["sha256"])
            part_file = parts_dir / f"{part}.parquet"
            info_file = parts_dir / f"{part}.json"
            if ctx.warehouse.has(part_file) and ctx.warehouse.has(info_file):
                info = json.loads(info_file.read_text())
            else:
                info = _ingest_part(ctx, reader, step, row, part, part_file, info_file,
                                    source)
            files.append(ctx.warehouse.rel(part_file))
            rows += int(info["rows"])
            rejects += int(info["rejects"])
            per_file.append((os.path.basename(row["original_path"]), int(info["rows"]),
                             int(info["rejects"])))
    finally:
        reader.close()
    judge_rejects(step.source, per_file, ps.name)
    with ctx.warehouse.staging(ps.name) as staging:
        if not files:
            empty = ctx.engine.reader([ctx.warehouse.root])
            try:
                _empty_part(empty, step=step, out=staging / "empty.parquet", source=source)
            finally:
                empty.close()
        manifest = _seal(ctx, ps, staging, files, rows,
                         {"rejects": rejects, "landed_files": len(landed)}, fmt="parquet")
    return Built(manifest, rejects=rejects, landed=len(ps.landing.arrivals))


def _part_id(code_hash: str, sha256: str) -> str:
    import hashlib

    return hashlib.sha256(f"{code_hash}:{sha256}".encode()).hexdigest()[:32]


def _ingest_part(ctx: BuildContext, reader: Engine, step: Step, row: Row,
                 part: str, part_file: Path, info_file: Path,
                 source: SourceConfig) -> dict[str, Any]:
    landed_path = landed_file(ctx.project.landing, row["landed_path"])
    display = os.path.basename(row["original_path"])
    with ctx.warehouse.staging(step.name) as staging:
        tmp = staging / "part.parquet"
        result = ingest_file(reader, landed_path, display, step.name, source, tmp)
        info = {"rows": result.rows, "rejects": result.rejects, "file": display,
                "sha256": row["sha256"]}
        if not ctx.store.has_rejects_for(part):
            ctx.reject_rows.extend({**r, "part": part} for r in result.rejected)
        os.replace(tmp, part_file)
        info_tmp = staging / "part.json"
        info_tmp.write_text(json.dumps(info))
        os.replace(info_tmp, info_file)
    return info


def _empty_part(engine: Engine, step: Step, out: Path, source: SourceConfig) -> None:
    """A source with no file yet: no rows, the contract's columns."""
    types = [*((name, spec.duckdb_type) for name, spec in source.columns.items()),
             *([(RESCUE_COLUMN, "VARCHAR")] if source.evolve == "rescue" else []),
             (LANDED_FILE_COLUMN, "VARCHAR")]
    cols = [exp.alias_(cast(None, kind, dialect=engine.dialect), ident(name))
            for name, kind in types]
    engine.materialize(exp.select(*cols).where(exp.false()), out)


# SQL --------------------------------------------------------------------------------------


def build_sql(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    try:
        return _build_sql(ctx, step, ps)
    finally:
        _forget_secrets(ctx, step)


def _build_sql(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    fps = _parent_fps(ctx, ps)
    inputs = _inputs(ctx, ps, fps)
    sql = bind_template(step.bound, inputs)
    values: list[str] = []
    with ctx.warehouse.staging(ps.name) as staging:
        reuse_files: list[str] = []
        meta: dict[str, Any] = {}
        prev_rows = 0
        tc = step.config.time_column
        prev = _incremental_base(ctx, step, ps)
        if prev is not None and tc:
            if ctx.backfill is not None:
                inside: exp.Expression | None = incremental.window_sql(
                    tc, prev.meta["time_type"], ctx.backfill, ctx.engine.dialect)
                meta["backfill"] = list(ctx.backfill)
            else:
                inside = _touched(ctx, step, ps, prev, inputs, values, meta)
            if inside is not None:  # None: the change cannot be narrowed, rebuild in full
                reuse_files, prev_rows = _cut(ctx, prev, inside, staging)
                # the step's text is DuckDB's dialect, which every engine reads: the
                # predicate joins it in that dialect (Spark's `quoting` would not parse)
                sql = f"SELECT * FROM ({sql}) AS _andon_step WHERE {render(inside)}"
                meta["incremental_from"] = prev.fingerprint
        out = staging / ("part-0" + _suffix(ctx))
        try:
            rows = ctx.engine.materialize(_with_secrets(ctx, step, sql, values), out)
        except Interrupted:
            raise
        except EngineError as e:
            full = write_error(e, staging, ps.name)  # a full or read-only disk, not bad SQL
            if full is not None:
                raise full from None
            raise _sql_runtime_error(step, e, values) from None
        if meta.get("incremental_from") and rows == 0 and (
                reuse_files or len(list(staging.glob("*" + _suffix(ctx)))) > 1):
            out.unlink()  # an artifact keeps one file at least: its schema
        if tc and step.config.materialized == "incremental":
            files = [ctx.warehouse.path(f) for f in reuse_files]
            files += sorted(staging.glob("*" + _suffix(ctx)))
            schema = dict(ctx.engine.schema(files)) if files else {}
            if tc not in schema:
                raise StepError(
                    f"time_column {tc!r} is not a column of the step's result",
                    file=step.file, step=step.name,
                    hint=f"columns: {', '.join(schema)}",
                )
            meta["time_type"] = schema[tc]
            meta["new_rows"] = rows
        manifest = _seal(ctx, ps, staging, reuse_files, prev_rows + rows, meta)
    return Built(manifest)


def _incremental_base(ctx: BuildContext, step: Step, ps: PlannedStep) -> Manifest | None:
    """The previous artifact an incremental build starts from, if it can."""
    if step.config.materialized != "incremental" or not ps.previous:
        return None
    prev = ctx.artifacts.get(ps.previous)
    if prev is None or prev.code_hash != ps.code_hash or "time_type" not in prev.meta:
        return None
    return prev


def _touched(ctx: BuildContext, step: Step, ps: PlannedStep, prev: Manifest,
             inputs: Mapping[str, list[str]], secrets: list[str], meta: dict[str, Any]
             ) -> exp.Expression | None:
    """A predicate over the step's output selecting the intervals that input rows added or
    removed since ``prev`` touch; None when they cannot be found (rebuild in full)."""
    tc, grain = step.config.time_column, step.config.grain
    assert tc is not None
    old_fps: dict[str, str] = dict(prev.meta.get("parents") or {})
    if set(old_fps) != set(ps.parents):
        return None
    old = {p: ctx.artifacts.get(fp) or ctx.warehouse.read_manifest(p, fp)
           for p, fp in old_fps.items()}
    new = {p: ctx.artifacts[ctx.fps[p]] for p in ps.parents}
    with ctx.warehouse.staging(f"{ps.name}.delta") as folder:
        deltas = incremental.input_deltas(ctx.engine, ctx.warehouse, old, new, folder)
        if deltas is None:
            return None
        refs = [r.name for r in step.refs]
        if any(refs.count(p) > 1 for p in deltas):  # a self-join pairs changed rows with all
            return None
        template = incremental.widen(step.bound)
        queries = [_with_secrets(ctx, step, bind_template(template, {**inputs, p: [str(d)]}),
                                 secrets) for p, d in deltas.items()]
        try:
            values = incremental.touched(ctx.engine, queries, tc, grain, step.config.lookback)
        except Interrupted:
            raise
        except EngineError as e:
            raise _sql_runtime_error(step, e, secrets) from None
    meta["intervals"] = len(values)
    return incremental.inside_sql(tc, grain, values, ctx.engine.dialect)


def _cut(ctx: BuildContext, prev: Manifest, inside: exp.Expression, staging: Path
         ) -> tuple[list[str], int]:
    """Keep the previous artifact's rows outside the recomputed intervals: files that do not
    touch them are shared as they are; the others are rewritten without those rows (into the
    staging folder, so they become files of the new artifact)."""
    kept: list[str] = []
    rows = 0
    cur = ctx.engine.cursor()
    for i, f in enumerate(prev.files):
        scan = ctx.engine.scan([ctx.warehouse.path(f)])
        counts = exp.select(exp.Count(this=exp.Star()),
                            exp.Filter(this=exp.Count(this=exp.Star()),
                                       expression=exp.Where(this=inside.copy()))).from_(scan)
        total, hit = cur.execute(counts).fetchone() or (0, 0)
        if not hit:
            kept.append(f)
            rows += int(total)
            continue
        out = staging / f"kept-{i}{_suffix(ctx)}"
        written = ctx.engine.materialize(
            exp.select("*").from_(scan.copy()).where(exp.not_(inside.copy())), out)
        rows += written
        if not written:
            out.unlink()
    return kept, rows


def _parent_fps(ctx: BuildContext, ps: PlannedStep) -> dict[str, str]:
    return {p: ctx.fps[p] for p in ps.parents}


def _with_secrets(ctx: BuildContext, step: Step, sql: str, values: list[str]) -> str:
    """Bind the secrets the SQL reads to its cursor's variables, as parameters: the values
    never become SQL text (nor reach an error's excerpt of it)."""
    cur = ctx.engine.cursor()
    for name in secrets_used(sql):
        value = get_secret(ctx.store, ctx.project.root, name, ctx.environment, step=step.name)
        values.append(value)
        cur.execute(f'SET VARIABLE "{SECRET_VAR}{name}" = $1', [value])
    return sql


def _forget_secrets(ctx: BuildContext, step: Step) -> None:
    cur = ctx.engine.cursor()
    for name in secrets_used(step.bound):
        cur.execute(f'RESET VARIABLE "{SECRET_VAR}{name}"')


def _sql_runtime_error(step: Step, e: Exception, secrets: list[str] | None = None
                       ) -> SqlError:
    text = redact(str(e), secrets or [])
    first = text.splitlines()[0] if text else type(e).__name__
    return SqlError(
        f"the SQL failed: {first}",
        file=step.file,
        step=step.name,
        detail="\n".join(text.splitlines()[1:4]),
        hint="fix the query; run `andon show TABLE` to see the columns of an input",
    )


# Python -----------------------------------------------------------------------------------


def build_python(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    assert step.function is not None
    func = step.function
    fps = _parent_fps(ctx, ps)
    inputs = _inputs(ctx, ps, fps)
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    runner = _task_runner(ctx, step)
    kwargs: dict[str, Any] = {}
    annotations: dict[str, str] = {}
    for name, param in inspect.signature(func).parameters.items():
        if name == "params":
            kwargs[name] = dict(ctx.project.params)
        elif name == "context":
            kwargs[name] = {"environment": ctx.environment, "run_id": ctx.run_id,
                            "step": step.name}
        elif runner is not None:  # read where it runs: by reference, not as a table
            annotations[name] = annotation_text(hints.get(name, param.annotation))
        else:
            table = ctx.engine.read_arrow(inputs[name])
            kwargs[name] = _convert_in(table, hints.get(name, param.annotation))
    if runner is not None:
        task = PythonTask(step=step.name, file=str(step.file), function=func.__name__,
                          line=step.line, inputs={n: inputs[n] for n in annotations},
                          annotations=annotations, kwargs=kwargs, out="")
        return _run_task(ctx, ps, step, runner, task)
    try:
        result = func(**kwargs)
    except Exception as e:
        raise StepError(
            raised_message(e),
            file=step.file,
            line=_user_line(e, step.file),
            step=step.name,
            detail=_user_traceback(e),
            hint=RAISED_HINT,
        ) from None
    return seal_table(ctx, ps, _convert_out(result, step))


def _task_runner(ctx: BuildContext, step: Step) -> TaskRunner | None:
    """Where a Python step's function runs: in an environment of its own when it declares
    one, else on the executor's workers (None: in this process)."""
    if step.config.requirements is not None or step.config.image is not None:
        from andon.execution.venvs import StepEnvRunner

        return StepEnvRunner(ctx.project.root)
    return ctx.tasks


def _run_task(ctx: BuildContext, ps: PlannedStep, step: Step, runner: TaskRunner,
              task: PythonTask) -> Built:
    """The task writes the output file into the staging folder; sealing stays here, so a
    task that dies publishes nothing."""
    with ctx.warehouse.staging(ps.name) as staging:
        out = staging / "part-0.parquet"
        task = dataclasses.replace(task, out=str(out))
        rows = runner.run(task, step).raise_for(task)
        for stray in staging.iterdir():  # the temporary file of an attempt that was killed
            if stray != out:
                stray.unlink()
        manifest = _seal(ctx, ps, staging, [], rows, {}, fmt="parquet")
    return Built(manifest)


def seal_table(ctx: BuildContext, ps: PlannedStep, table: pa.Table) -> Built:
    """Write ``table`` as the step's artifact and seal it (what a step kind's build ends
    with when it computes its output in memory)."""
    with ctx.warehouse.staging(ps.name) as staging:
        rows = ctx.engine.write_arrow(table, staging / ("part-0" + _suffix(ctx)))
        manifest = _seal(ctx, ps, staging, [], rows, {})
    return Built(manifest)


def _convert_out(result: Any, step: Step) -> pa.Table:
    return convert_out(result, step=step.name, file=step.file, line=step.line)


_convert_in = convert_in
_user_line = user_line
_user_traceback = user_traceback


__all__ = ["MAX_REJECTS_STORED", "BuildContext", "Built", "build_step"]
