"""Steps: SQL files, Python functions and source ingests, loaded into frozen ``Step`` values."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import jinja2
import sqlglot
from sqlglot import exp

from andon.config import SourceConfig, StepConfig, validate
from andon.errors import ConfigError, SqlError, did_you_mean
from andon.yamlfile import YamlDoc, load_yaml, parse_yaml

StepKind = Literal["sql", "python", "source"]

_HEADER_RE = re.compile(r"\A\s*/\*\s*---[ \t]*\n(?P<yaml>.*?)\n\s*---\s*\*/", re.DOTALL)


@dataclass(frozen=True)
class TableRef:
    """A table named in SQL, with where it was named."""

    name: str
    line: int | None
    column: int | None


@dataclass(frozen=True)
class Step:
    """One node of work. ``code`` is its canonical code: what its fingerprint hashes."""

    name: str
    kind: StepKind
    pipeline: str
    file: Path
    config: StepConfig
    code: str
    refs: tuple[TableRef, ...] = ()
    sql: str = ""
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    source: SourceConfig | None = None
    line: int = 1

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.refs))

    @property
    def zone(self) -> str:
        return self.config.zone or ("landing" if self.kind == "source" else "formatted")

    @property
    def code_hash(self) -> str:
        body = f"{self.kind}\n{self.config.materialized}\n{self.config.time_column}\n{self.code}"
        return hashlib.sha256(body.encode()).hexdigest()[:32]


# Python steps -----------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])
RESERVED_ARGS = ("params", "context")


@overload
def step(func: F) -> F: ...
@overload
def step(
    func: None = None,
    *,
    name: str | None = None,
    zone: str | None = None,
    owner: str | None = None,
    tags: list[str] | None = None,
    materialized: Literal["full", "incremental"] = "full",
    time_column: str | None = None,
    description: str | None = None,
) -> Callable[[F], F]: ...
def step(
    func: F | None = None,
    *,
    name: str | None = None,
    zone: str | None = None,
    owner: str | None = None,
    tags: list[str] | None = None,
    materialized: Literal["full", "incremental"] = "full",
    time_column: str | None = None,
    description: str | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as a Python step. Its parameter names are its input tables.

    Inputs arrive as the type each parameter is annotated with (``pyarrow.Table`` by default,
    ``pandas.DataFrame`` or ``polars.DataFrame``); the return value may be any of the three.
    A parameter named ``params`` receives the run's parameters.
    """

    def mark(f: F) -> F:
        f.__andon_step__ = {  # type: ignore[attr-defined]
            "name": name or f.__name__,
            "zone": zone,
            "owner": owner,
            "tags": list(tags or []),
            "materialized": materialized,
            "time_column": time_column,
            "description": description if description is not None else (inspect.getdoc(f) or ""),
        }
        return f

    return mark(func) if func is not None else mark


def _canonical_python(source: str) -> str:
    """The module's AST without docstrings: formatting and comments do not count."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def load_python_steps(path: Path, pipeline: str) -> list[Step]:
    source = path.read_text(encoding="utf-8")
    try:
        canonical = _canonical_python(source)
    except SyntaxError as e:
        raise ConfigError(
            f"Python syntax error: {e.msg}", file=path, line=e.lineno, column=e.offset
        ) from None
    module_name = f"andon_steps_{pipeline}_{path.stem}_{hashlib.md5(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        tb = e.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        raise ConfigError(
            f"importing the step file failed: {type(e).__name__}: {e}",
            file=path,
            line=line,
            hint="a missing package? install it into the same environment as andon",
        ) from e
    steps: list[Step] = []
    for obj in vars(module).values():
        meta = getattr(obj, "__andon_step__", None)
        if meta is None or not isinstance(obj, types.FunctionType) or obj.__module__ != module_name:
            continue
        args = [p for p in inspect.signature(obj).parameters if p not in RESERVED_ARGS]
        try:
            line = inspect.getsourcelines(obj)[1]
        except OSError:
            line = 1
        config = StepConfig.model_validate({k: v for k, v in meta.items() if k != "name"})
        steps.append(
            Step(
                name=meta["name"],
                kind="python",
                pipeline=pipeline,
                file=path,
                config=config,
                code=f"{meta['name']}\n{canonical}",
                refs=tuple(TableRef(a, line, None) for a in args),
                function=obj,
                line=line,
            )
        )
    return steps


# SQL steps --------------------------------------------------------------------------------


def split_header(text: str, path: Path) -> tuple[YamlDoc | None, str, int]:
    """Split a SQL file into its YAML header (if any), its body and the body's first line."""
    m = _HEADER_RE.match(text)
    if not m:
        return None, text, 1
    header_line = text[: m.start("yaml")].count("\n")
    doc = parse_yaml(m.group("yaml"), path, line_offset=header_line)
    body_line = text[: m.end()].count("\n") + 1
    # keep line numbers of the body true to the file
    return doc, "\n" * (body_line - 1) + text[m.end():], body_line


def render(template: str, params: Mapping[str, Any], path: Path) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.from_string(template).render({**params, "params": dict(params)})
    except jinja2.UndefinedError as e:
        missing = re.search(r"'(\w+)' is undefined", str(e))
        hint = did_you_mean(missing.group(1), params) if missing else ""
        raise ConfigError(
            f"template error: {e.message}",
            file=path,
            hint=hint or "define it under 'params:' in andon.yaml or pass --param NAME=VALUE",
        ) from None
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"template syntax error: {e.message}", file=path, line=e.lineno) from None


def parse_select(sql: str, path: Path, step_name: str) -> exp.Expression:
    """Parse one DuckDB SELECT; errors carry file, line, column and the SQL highlighted."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as e:
        err = e.errors[0] if e.errors else {}
        line, col = err.get("line"), err.get("col")
        raise SqlError(
            f"SQL syntax error: {str(err.get('description', e)).split('. Line')[0]}",
            file=path,
            line=line,
            column=col,
            step=step_name,
            detail=_highlight(sql, line, col),
            hint="fix the SQL (dialect: DuckDB)",
        ) from None
    except sqlglot.errors.TokenError as e:
        raise SqlError(f"SQL syntax error: {e}", file=path, step=step_name) from None
    if len(statements) != 1:
        raise SqlError(
            f"a SQL step holds exactly one SELECT; found {len(statements)} statements",
            file=path,
            step=step_name,
            hint="split the file into one step per statement",
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise SqlError(
            f"a SQL step is one SELECT; found {tree.key.upper()}",
            file=path,
            line=_line_of(tree),
            step=step_name,
            hint="write the query that produces the table; andon materialises it",
        )
    return tree


def _line_of(node: exp.Expression) -> int | None:
    meta = getattr(node.this, "meta", None) if isinstance(node.this, exp.Expression) else None
    return meta.get("line") if meta else None


def _highlight(sql: str, line: int | None, col: int | None) -> str:
    if not line:
        return ""
    lines = sql.splitlines()
    out = []
    for n in range(max(1, line - 2), min(len(lines), line) + 1):
        out.append(f"{n:>5} | {lines[n - 1]}")
        if n == line and col:
            out.append("      | " + " " * max(0, col - 1) + "^")
    return "\n".join(out)


def table_refs(tree: exp.Expression, path: Path, step_name: str) -> tuple[TableRef, ...]:
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    refs: list[TableRef] = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # table functions such as read_parquet(...)
        if table.args.get("db") or table.args.get("catalog"):
            raise SqlError(
                f"table {table.sql(dialect='duckdb')!r} is qualified with a schema",
                file=path,
                line=table.this.meta.get("line"),
                step=step_name,
                hint="refer to andon tables by their bare step name",
            )
        if table.name in ctes:
            continue
        meta = table.this.meta
        refs.append(TableRef(table.name, meta.get("line"), meta.get("col")))
    return tuple(refs)


def canonical_sql(tree: exp.Expression) -> str:
    """SQL without comments or formatting: reformatting a step does not change its fingerprint."""
    return tree.sql(dialect="duckdb", comments=False, normalize=True)


def load_sql_step(path: Path, pipeline: str, params: Mapping[str, Any]) -> Step:
    name = path.stem
    text = path.read_text(encoding="utf-8")
    header, body, body_line = split_header(text, path)
    sidecar = path.with_suffix(".yaml")
    if header is not None and sidecar.exists():
        raise ConfigError(
            "step has both a header and a sidecar file",
            file=path,
            hint=f"keep one of them: the header or {sidecar.name}",
        )
    if header is None and sidecar.exists():
        header = load_yaml(sidecar)
    config = validate(StepConfig, header, "the step header") if header else StepConfig()
    sql = render(body, params, path)
    tree = parse_select(sql, path, name)
    return Step(
        name=name,
        kind="sql",
        pipeline=pipeline,
        file=path,
        config=config,
        code=canonical_sql(tree),
        refs=table_refs(tree, path, name),
        sql=sql.strip(),
        line=body_line,
    )


def source_step(name: str, source: SourceConfig, config_file: Path) -> Step:
    contract = source.model_dump_json(include={"format", "columns", "csv"})
    return Step(
        name=name,
        kind="source",
        pipeline="sources",
        file=config_file,
        config=StepConfig(
            description=source.description,
            owner=source.owner,
            tags=list(source.tags),
            zone=source.zone,
        ),
        code=contract,
        source=source,
    )
