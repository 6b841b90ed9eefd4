"""Steps: SQL files, Python functions and source ingests, loaded into frozen ``Step`` values."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from pydantic import ValidationError

from andon.config import NAME_RE, SourceConfig, SourceSpec, StepConfig, validate
from andon.errors import ConfigError, SqlError
from andon.parsecache import ParseCache, Parsed
from andon.stepenv import environment_text
from andon.yamlfile import YamlDoc, load_yaml, parse_yaml

if TYPE_CHECKING:  # sqlglot, Jinja and the engine load only when a file must be parsed
    from sqlglot import exp

_HEADER_RE = re.compile(
    r"\A(?:[ \t]*(?:--[^\n]*)?\n)*[ \t]*/\*\s*---[ \t]*\n(?P<yaml>.*?)\n\s*---\s*\*/", re.DOTALL
)


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
    kind: str  # a registered step kind (andon.kinds)
    pipeline: str
    file: Path
    config: StepConfig
    code: str
    refs: tuple[TableRef, ...] = ()
    sql: str = ""
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    source: SourceConfig | None = None
    line: int = 1
    template: str = ""  # SQL steps: the Jinja text, before parameters are rendered
    bound: str = ""  # SQL steps: the SQL with placeholders where input files go

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.name for r in self.refs))

    @property
    def zone(self) -> str:
        from andon.kinds import step_kind

        return self.config.zone or step_kind(self.kind, file=self.file,
                                             line=self.line).default_zone

    @property
    def code_hash(self) -> str:
        body = f"{self.kind}\n{self.config.materialized}\n{self.config.time_column}\n{self.code}"
        return hashlib.sha256((body + self._grain_text).encode()).hexdigest()[:32]

    @property
    def _grain_text(self) -> str:  # only when set: other steps keep their fingerprints
        c = self.config
        return f"\ngrain {c.grain} lookback {c.lookback}" if c.grain or c.lookback else ""

    @property
    def template_hash(self) -> str:
        """The step's code before parameters are rendered in: what a protected environment
        compares with its last promotion (a run there may use other parameters)."""
        body = (f"{self.kind}\n{self.config.materialized}\n{self.config.time_column}\n"
                f"{self.template or self.code}{self._grain_text}")
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
    lineage: dict[str, list[str]] | None = None,
    requirements: list[str] | str | None = None,
    image: str | None = None,
    resources: dict[str, Any] | None = None,
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
    lineage: dict[str, list[str]] | None = None,
    requirements: list[str] | str | None = None,
    image: str | None = None,
    resources: dict[str, Any] | None = None,
) -> F | Callable[[F], F]:
    """Mark a function as a Python step. Its parameter names are its input tables.

    Inputs arrive as the type each parameter is annotated with (``pyarrow.Table`` by default,
    ``pandas.DataFrame`` or ``polars.DataFrame``); the return value may be any of the three.
    A parameter named ``params`` receives the run's parameters. ``lineage`` maps output
    columns to the input columns (``table.column``) they come from (column lineage).
    ``requirements`` (pip lines, or a requirements file next to the step) or ``image`` (an
    OCI image) run the step in an environment of its own; ``resources`` (``memory``,
    ``cores``) are what one run needs on a Dask worker (see docs/scaling.md).
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
            "lineage": dict(lineage or {}),
            "requirements": requirements,
            "image": image,
            "resources": resources,
        }
        return f

    return mark(func) if func is not None else mark


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _is_step_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Attribute) and target.attr == "step") or (
        isinstance(target, ast.Name) and target.id == "step"
    )


def _step_defs(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_is_step_decorator(d) for d in node.decorator_list)
    }


def _canonical_python(source: str, function: str | None = None) -> str:
    """The module's AST without docstrings: formatting and comments do not count.

    With ``function``, the other step functions of the module are left out (unless the step
    calls them) and so is the step's own decorator (its settings are hashed on their own):
    editing one step of a file does not rebuild its siblings.
    """
    tree = _strip_docstrings(ast.parse(source))
    if function is not None:
        steps = _step_defs(tree)
        own = steps.get(function)
        if own is not None:
            used = {n.id for n in ast.walk(own) if isinstance(n, ast.Name)}
            tree.body = [
                node for node in tree.body
                if not (
                    isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    and node.name in steps and node is not own and node.name not in used
                )
            ]
            own.decorator_list = [d for d in own.decorator_list if not _is_step_decorator(d)]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def import_file(path: Path, module_name: str, what: str) -> types.ModuleType:
    """Import a project's Python file (steps or checks); a failure names the file and the
    line that raised, and leaves no half-imported module behind."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        tb = e.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        raise ConfigError(
            f"importing the {what} file failed: {type(e).__name__}: {e}",
            file=path,
            line=line,
            hint="a missing package? install it into the same environment as andon",
        ) from e
    return module


def load_python_file(path: Path, pipeline: str, params: Mapping[str, Any],
                     cache: ParseCache | None = None) -> list[Step]:
    """The steps of a Python file (the ``python`` step kind's loader)."""
    return load_python_steps(path, pipeline)


def load_sql_file(path: Path, pipeline: str, params: Mapping[str, Any],
                  cache: ParseCache | None = None) -> list[Step]:
    """The step of a SQL file (the ``sql`` step kind's loader)."""
    return [load_sql_step(path, pipeline, params, cache)]


def load_python_steps(path: Path, pipeline: str) -> list[Step]:
    source = path.read_text(encoding="utf-8")
    try:
        _canonical_python(source)
    except SyntaxError as e:
        raise ConfigError(
            f"Python syntax error: {e.msg}", file=path, line=e.lineno, column=e.offset
        ) from None
    digest = hashlib.md5(str(path).encode()).hexdigest()[:8]
    module_name = f"andon_steps_{pipeline}_{path.stem}_{digest}"
    module = import_file(path, module_name, "step")
    steps: list[Step] = []
    for obj in vars(module).values():
        meta = getattr(obj, "__andon_step__", None)
        if meta is None or not isinstance(obj, types.FunctionType) or obj.__module__ != module_name:
            continue
        try:
            line = inspect.getsourcelines(obj)[1]
        except OSError:
            line = 1
        where = {"file": path, "line": line, "step": meta["name"]}
        if not isinstance(meta["name"], str) or not NAME_RE.match(meta["name"]):
            raise ConfigError(
                f"step name {meta['name']!r} is not a SQL identifier",
                hint="use letters, digits and underscores, starting with a letter",
                **where,
            )
        args = []
        for p in inspect.signature(obj).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                raise ConfigError(
                    f"parameter {p.name!r} of step {meta['name']!r} cannot be an input table",
                    hint="name each input table as a plain parameter: def step(orders, customers)",
                    **where,
                )
            if p.name not in RESERVED_ARGS:
                args.append(p.name)
        try:
            config = StepConfig.model_validate({k: v for k, v in meta.items() if k != "name"})
        except ValidationError as e:
            msg = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"invalid @andon.step arguments: {msg}", **where) from None
        steps.append(
            Step(
                name=meta["name"],
                kind=getattr(obj, "__andon_kind__", "python"),  # e.g. @andon.models.model
                pipeline=pipeline,
                file=path,
                config=config,
                code=f"{meta['name']}\n{_canonical_python(source, obj.__name__)}"
                + environment_text(config, path, meta["name"]),
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


_MISSING_RE = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>")


def _parse_message(description: str) -> str:
    text = description.split(". Line")[0]
    m = _MISSING_RE.search(text)
    if m:  # sqlglot's internals: say it in SQL terms
        return f"incomplete {m.group(2).upper()} expression (its {m.group(1)} is missing)"
    # "<Token token_type: TokenType.WHERE, text: WHERE, line: 3, ...>" → 'WHERE'
    return _TOKEN_RE.sub(lambda t: repr(t.group(1)), text)


_TOKEN_RE = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: \d+[^>]*>")


def _token_lines(sql: str) -> list[tuple[int, bool]]:
    """(line, is_semicolon) of each SQL token."""
    import sqlglot
    from sqlglot import TokenType

    tokens = sqlglot.Dialect.get_or_raise("duckdb").tokenize(sql)
    return [(t.line, t.token_type == TokenType.SEMICOLON) for t in tokens]


def parse_select(sql: str, path: Path, step_name: str) -> exp.Expression:
    """Parse one DuckDB SELECT; errors carry file, line, column and the SQL highlighted."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as e:
        err = e.errors[0] if e.errors else {}
        line, col = err.get("line"), err.get("col")
        highlight = str(err.get("highlight") or "")
        if col and highlight and "\n" not in highlight:
            col = max(1, int(col) - len(highlight) + 1)  # sqlglot points at the token's end
        raise SqlError(
            f"SQL syntax error: {_parse_message(str(err.get('description', e)))}",
            file=path,
            line=line,
            column=col,
            step=step_name,
            detail=_highlight(sql, line, col),
            hint="fix the SQL (dialect: DuckDB)",
        ) from None
    except sqlglot.errors.TokenError as e:
        raise SqlError(
            f"SQL syntax error: {e}",
            file=path,
            step=step_name,
            hint="an unclosed quote ('...' or \"...\") or comment (/* ... */)?",
        ) from None
    if not statements:
        raise SqlError(
            "the SQL step is empty",
            file=path,
            step=step_name,
            hint="write one SELECT: its result becomes the table named after the file",
        )
    if len(statements) > 1:
        tokens = _token_lines(sql)
        first_semi = next(i for i, (_, semi) in enumerate(tokens) if semi)
        second = next((ln for ln, semi in tokens[first_semi:] if not semi), None)
        raise SqlError(
            f"a SQL step holds exactly one SELECT; found {len(statements)} statements",
            file=path,
            line=second,
            step=step_name,
            hint="split the file into one step per statement",
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        tokens = _token_lines(sql)
        raise SqlError(
            f"a SQL step is one SELECT; found {tree.key.upper()}",
            file=path,
            line=tokens[0][0] if tokens else None,
            step=step_name,
            hint="write the query that produces the table; andon materialises it",
        )
    # sqlglot 30 types a Query as ``Expr``; callers (engines.duckdb.placeholder_sql) still say
    # ``Expression``: same runtime object
    return cast(exp.Expression, tree)


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


def table_refs(tree: exp.Expr, path: Path, step_name: str) -> tuple[TableRef, ...]:
    from sqlglot import exp

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


def canonical_sql(tree: exp.Expr, *, copy: bool = True) -> str:
    """SQL without comments or formatting: reformatting a step does not change its fingerprint.

    Identifiers keep their case: ``AS Foo`` and ``AS foo`` name different output columns.
    ``copy=False`` spares a deep copy of the tree, which the generator may then change.
    """
    return tree.sql(dialect="duckdb", comments=False, copy=copy)


def is_template(text: str) -> bool:
    """Whether Jinja would change the text: without ``{{``, ``{%`` or ``{#`` it is left as
    it is, and compiling it is the most expensive part of loading a small step."""
    return "{{" in text or "{%" in text or "{#" in text


def render(template: str, params: Mapping[str, Any], path: Path, step_name: str | None = None,
           *, sql: bool = True) -> str:
    """``templates.render``, imported (with Jinja) only when a file is a template."""
    from andon.templates import render as render_template

    return render_template(template, params, path, step_name, sql=sql)


def parse_step_sql(sql: str, path: Path, step_name: str) -> Parsed:
    """What a step's SQL gives: its canonical code, the tables it reads and the SQL with a
    placeholder for each input. A pure function of the SQL text (errors aside, which name
    the file): the parse cache keeps it."""
    from andon.engines.duckdb import placeholder_sql

    tree = parse_select(sql, path, step_name)
    refs = table_refs(tree, path, step_name)
    bound = placeholder_sql(tree)[0]  # works on its own copy
    code = canonical_sql(tree, copy=False)  # last use of the tree
    return Parsed(code, tuple((r.name, r.line, r.column) for r in refs), bound)


def _render_step(body: str, params: Mapping[str, Any], path: Path, name: str,
                 cache: ParseCache | None) -> str:
    sql = cache.rendered(body, params) if cache is not None else None
    if sql is None:
        sql = render(body, params, path, name)
        if cache is not None:
            cache.put_rendered(body, params, sql)
    return sql


def load_sql_step(path: Path, pipeline: str, params: Mapping[str, Any],
                  cache: ParseCache | None = None) -> Step:
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
    for key in ("requirements", "image", "resources"):
        if getattr(config, key) is not None:
            raise ConfigError(f"{key}: applies to Python steps; a SQL step runs on the engine",
                              file=header.file if header else path, line=header.line_of((key,))
                              if header else None, step=name, hint=f"remove {key}:")
    sql = _render_step(body, params, path, name, cache) if is_template(body) else body
    parsed = cache.get(sql) if cache is not None else None
    if parsed is None:
        parsed = parse_step_sql(sql, path, name)
        if cache is not None:
            cache.put(sql, parsed)
    return Step(
        name=name,
        kind="sql",
        pipeline=pipeline,
        file=path,
        config=config,
        code=parsed.code,
        refs=tuple(TableRef(*r) for r in parsed.refs),
        sql=sql.strip(),
        line=body_line,
        template=body.strip(),
        bound=parsed.bound,
    )


def source_step(name: str, source: SourceSpec, config_file: Path) -> Step:
    """The step that ingests a source, made by its kind (``andon.kinds.SOURCE_KINDS``)."""
    from andon.kinds import source_kind

    return source_kind(source.kind, file=config_file).step(name, source, config_file)


def files_source_step(name: str, source: SourceSpec, config_file: Path) -> Step:
    """The step of a ``files`` source: it lands the files and ingests them by contract."""
    if not isinstance(source, SourceConfig):
        raise ConfigError(f"source {name!r} of kind {source.kind!r} is not a files source",
                          file=config_file, hint="register its kind with a step function "
                          "of its own (andon.kinds.SourceKind)")
    # what changes the ingested data; descriptions and tags do not. The keys keep the order
    # fingerprints have always hashed (format, columns, csv), whatever the models' order.
    dumped = source.model_dump(mode="json", include={
        "format": True, "columns": {"__all__": {"type", "required"}}, "csv": True})
    contract = json.dumps({k: dumped[k] for k in ("format", "columns", "csv")},
                          separators=(",", ":"), ensure_ascii=False)
    if source.evolve is not None:  # schema evolution (andon.sources.evolution)
        contract += f"\nevolve:{source.evolve}"
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
