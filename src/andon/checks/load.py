"""Collect a project's checks: step headers, sources, ``checks/*.yaml|*.sql|*.py``.

Every check is validated here (type, fields, thresholds, SQL syntax, unique names); column
names and types are validated against table schemas at plan time (``validate_columns``).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import sqlglot
from pydantic import ValidationError

from andon.checks.model import Check, CheckSpec
from andon.checks.patterns import PATTERNS
from andon.checks.types import CHECK_TYPES, column_fits
from andon.config import validate
from andon.errors import ConfigError, did_you_mean
from andon.steps import Step, import_file, split_header
from andon.yamlfile import Loc, YamlDoc, load_yaml

F = TypeVar("F", bound=Callable[..., Any])
_TEMPLATE_RE = re.compile(r"\{\{\s*(table|ref\(\s*(['\"])[A-Za-z0-9_]+\2\s*\))\s*\}\}")


def check(*, table: str, name: str | None = None, severity: str = "error",
          description: str | None = None) -> Callable[[F], F]:
    """Mark a function as a check of ``table``.

    It receives the table (annotate ``pandas.DataFrame`` or ``polars.DataFrame`` to get one;
    a ``pyarrow.Table`` otherwise) and returns True (passed) / False, a number of failing rows,
    or a table of failing rows.
    """

    def mark(f: F) -> F:
        f.__andon_check__ = {  # type: ignore[attr-defined]
            "table": table, "name": name or f.__name__, "severity": severity,
            "description": description if description is not None else inspect.getdoc(f) or "",
        }
        return f

    return mark


def _sub(doc: YamlDoc, prefix: Loc) -> YamlDoc:
    data: Any = doc.data
    for p in prefix:
        data = data[p]
    n = len(prefix)
    lines = {loc[n:]: line for loc, line in doc.lines.items() if loc[:n] == prefix}
    return YamlDoc(data=data, file=doc.file, lines=lines, line_offset=doc.line_offset)


def _spec(doc: YamlDoc, where: str) -> CheckSpec:
    if not isinstance(doc.data, dict):
        raise ConfigError(f"a check in {where} must be a mapping with a 'type'", file=doc.file,
                          line=doc.line_of(()), hint="write e.g. {type: not_null, column: id}")
    ctype = doc.data.get("type")
    if ctype not in CHECK_TYPES:
        hint = did_you_mean(str(ctype), CHECK_TYPES) if ctype else ""
        raise ConfigError(
            f"unknown check type {ctype!r}" if ctype else "a check needs a 'type'",
            file=doc.file, line=doc.line_of(("type",)),
            hint=hint or f"check types: {', '.join(sorted(CHECK_TYPES))}",
        )
    spec = validate(CheckSpec, doc, f"check in {where}")
    ctype_def = CHECK_TYPES[spec.type]
    for req in ctype_def.requires:
        if req == "column" and spec.type == "unique":
            continue
        if getattr(spec, req) in (None, [], {}):
            raise ConfigError(
                f"check type {spec.type!r} needs {req!r}", file=doc.file,
                line=doc.line_of(()), hint=f"example: {ctype_def.example}",
            )
    if spec.type == "unique" and not (spec.column or spec.columns):
        raise ConfigError("check type 'unique' needs 'column' or 'columns'", file=doc.file,
                          line=doc.line_of(()), hint=f"example: {ctype_def.example}")
    if spec.pattern is not None and spec.pattern not in PATTERNS:
        looks_named = re.fullmatch(r"[a-z][a-z0-9_]*", spec.pattern) is not None
        hint = did_you_mean(spec.pattern, PATTERNS) if looks_named else ""
        from andon.checks.bind import regex_error

        why = regex_error(spec.pattern)  # the engine's RE2, not Python's re, runs it
        if why:
            raise ConfigError(f"invalid regular expression {spec.pattern!r}: {why}",
                              file=doc.file, line=doc.line_of(("pattern",)),
                              hint=hint or "the syntax is RE2's (no lookarounds, no "
                              f"backreferences); named patterns: {', '.join(sorted(PATTERNS))}")
        if hint:
            raise ConfigError(f"unknown pattern name {spec.pattern!r}", file=doc.file,
                              line=doc.line_of(("pattern",)), hint=hint)
    if spec.max_age is not None:
        from andon.checks.types import parse_age

        try:
            parse_age(spec.max_age)
        except ValueError as e:
            raise ConfigError(str(e), file=doc.file, line=doc.line_of(("max_age",))) from None
    if spec.sql is not None:
        # {{ table }} and {{ ref('other') }} become table names for the syntax check
        _parse_sql(_TEMPLATE_RE.sub("t", spec.sql), doc.file, (doc.line_of(("sql",)) or 1))
    if spec.expr is not None:
        _parse_sql(f"SELECT {spec.expr}", doc.file, doc.line_of(("expr",)) or 1)
    return spec


def _parse_sql(sql: str, file: str | Path, line: int) -> None:
    try:
        sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        err = e.errors[0] if e.errors else {}
        raise ConfigError(
            f"SQL syntax error in a check: {str(err.get('description', e)).split('. Line')[0]}",
            file=file, line=line + int(err.get("line", 1)) - 1, column=err.get("col"),
            hint="fix the SQL (dialect: DuckDB)",
        ) from None


def default_name(table: str, spec: CheckSpec) -> str:
    parts = [table, spec.type]
    cols = spec.columns or ([spec.column] if spec.column else [])
    if spec.start and spec.end:
        cols = [spec.start, spec.end]
    if cols:
        parts.append("_".join(cols))
    if spec.type == "balance" and spec.other:
        parts.append(spec.other)
    return ".".join(parts)


def _from_list(doc: YamlDoc, table: str, prefix: Loc, where: str) -> list[Check]:
    items = _sub(doc, prefix)
    if not isinstance(items.data, list):
        raise ConfigError(f"'checks' in {where} must be a list", file=doc.file,
                          line=doc.line_of(prefix))
    out = []
    for i in range(len(items.data)):
        one = _sub(items, (i,))
        spec = _spec(one, where)
        out.append(Check(name=spec.name or default_name(table, spec), table=table, spec=spec,
                         file=Path(doc.file), line=one.line_of(())))
    return out


def load_checks(root: Path, config_file: Path, config_doc: YamlDoc, steps: Mapping[str, Step],
                checks_dir: str) -> list[Check]:
    checks: list[Check] = []
    sources = config_doc.data.get("sources") or {} if isinstance(config_doc.data, dict) else {}
    for name, src in sources.items():
        if isinstance(src, dict) and src.get("checks"):
            checks += _from_list(config_doc, name, ("sources", name, "checks"), f"source {name}")
    for step in steps.values():
        if step.kind == "sql" and step.config.checks:
            header = _header_doc(step)
            if header is not None:
                checks += _from_list(header, step.name, ("checks",), f"step {step.name}")
    folder = root / checks_dir
    if folder.is_dir():
        for file in sorted(folder.rglob("*")):
            if file.name.startswith(("_", ".")):
                continue
            if file.suffix in (".yaml", ".yml"):
                doc = load_yaml(file)
                if not isinstance(doc.data, dict):
                    raise ConfigError("a checks file maps table names to lists of checks",
                                      file=file, line=1,
                                      hint="write e.g.\nflights:\n  - {type: not_null, "
                                           "column: carrier}")
                for table in doc.data:
                    checks += _from_list(doc, str(table), (table,), file.name)
            elif file.suffix == ".sql":
                checks.append(_sql_check(file))
            elif file.suffix == ".py":
                checks += _python_checks(file)
    _unique_names(checks)
    for c in checks:
        if c.table not in steps:
            hint = did_you_mean(c.table, steps)
            raise ConfigError(f"check {c.name!r} is on unknown table {c.table!r}", file=c.file,
                              line=c.line, hint=hint or "tables are step and source names")
        for other in (_other_table(c),):
            if other and other not in steps:
                hint = did_you_mean(other, steps)
                raise ConfigError(f"check {c.name!r} refers to unknown table {other!r}",
                                  file=c.file, line=c.line, hint=hint or "")
    return checks


def _other_table(c: Check) -> str | None:
    if c.spec.type == "relationship" and c.spec.to:
        return c.spec.to.split(".", 1)[0]
    if c.spec.type == "balance" and c.spec.other:
        return c.spec.other
    return None


def _header_doc(step: Step) -> YamlDoc | None:
    text = step.file.read_text(encoding="utf-8")
    header, _, _ = split_header(text, step.file)
    if header is None and step.file.with_suffix(".yaml").exists():
        header = load_yaml(step.file.with_suffix(".yaml"))
    return header


def _sql_check(file: Path) -> Check:
    text = file.read_text(encoding="utf-8")
    header, body, body_line = split_header(text, file)
    meta: dict[str, Any] = dict(header.data) if header is not None and isinstance(
        header.data, dict) else {}
    if "table" not in meta:
        raise ConfigError("a SQL check needs a header naming its table", file=file, line=1,
                          hint="start the file with /* ---\\ntable: flights\\n--- */")
    table = str(meta.pop("table"))
    meta.setdefault("type", "sql")
    meta["sql"] = body.strip()
    doc = YamlDoc(data=meta, file=str(file),
                  lines={**(header.lines if header else {}), ("sql",): body_line},
                  line_offset=header.line_offset if header else 0)
    spec = _spec(doc, file.name)
    return Check(name=spec.name or file.stem, table=table, spec=spec, file=file, line=1)


def _python_checks(file: Path) -> list[Check]:
    source = file.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise ConfigError(f"Python syntax error: {e.msg}", file=file, line=e.lineno) from None
    canonical = ast.dump(tree, annotate_fields=False, include_attributes=False)
    module_name = f"andon_checks_{hashlib.md5(str(file).encode()).hexdigest()[:10]}"
    module = import_file(file, module_name, "check")
    out = []
    for obj in vars(module).values():
        meta = getattr(obj, "__andon_check__", None)
        if meta is None or getattr(obj, "__module__", None) != module_name:
            continue
        try:
            line = inspect.getsourcelines(obj)[1]
        except OSError:
            line = 1
        try:
            cspec = CheckSpec(type="python", name=meta["name"], severity=meta["severity"],
                              description=meta["description"])
        except ValidationError as e:
            err = e.errors()[0]
            raise ConfigError(
                f"check {meta['name']!r}: bad {'.'.join(map(str, err['loc']))}: {err['msg']}",
                file=file, line=line,
                hint="severity is one of error, warn, info") from None
        out.append(Check(name=meta["name"], table=meta["table"], spec=cspec, file=file,
                         line=line, function=obj, code=f"{meta['name']}\n{canonical}"))
    return out


def _unique_names(checks: list[Check]) -> None:
    seen: dict[str, Check] = {}
    for c in checks:
        if c.name in seen:
            first = seen[c.name]
            raise ConfigError(
                f"two checks are named {c.name!r} (also at {first.file}:{first.line})",
                file=c.file, line=c.line,
                hint="give one of them a distinct 'name:'",
            )
        seen[c.name] = c


def validate_columns(check_: Check, schema: Mapping[str, str],
                     other_schema: Mapping[str, str] | None = None) -> None:
    """A check naming a missing column, or a column of the wrong type, fails here."""
    ctype = CHECK_TYPES[check_.type]
    cols = list(check_.columns)
    if check_.spec.start:
        cols.append(check_.spec.start)
    if check_.spec.end:
        cols.append(check_.spec.end)
    for col in cols:
        if col not in schema:
            hint = did_you_mean(col, schema)
            raise ConfigError(
                f"check {check_.name!r}: table {check_.table!r} has no column {col!r}",
                file=check_.file, line=check_.line,
                hint=hint or f"columns: {', '.join(schema)}",
            )
        if ctype.column_kind and not column_fits(ctype.column_kind, schema[col]):
            raise ConfigError(
                f"check {check_.name!r} ({check_.type}) needs a {ctype.column_kind} column; "
                f"{check_.table}.{col} is {schema[col]}",
                file=check_.file, line=check_.line,
                hint="cast the column in the step, or choose another check type",
            )
    _validate_constants(check_, schema)
    if check_.type == "schema" and check_.spec.expected:
        return
    if check_.type == "relationship" and check_.spec.to and other_schema is not None:
        target = check_.spec.to.split(".", 1)
        if len(target) != 2 or target[1] not in other_schema:
            hint = did_you_mean(target[-1], other_schema)
            raise ConfigError(
                f"check {check_.name!r}: to: {check_.spec.to!r} is not TABLE.COLUMN of an "
                "existing column", file=check_.file, line=check_.line,
                hint=hint or f"columns of {target[0]}: {', '.join(other_schema)}",
            )


def _validate_constants(check_: Check, schema: Mapping[str, str]) -> None:
    """Values, bounds, ``expr`` and custom SQL must fit the table as the engine sees it."""
    from andon.checks.bind import bind_error, cast_error
    from andon.checks.types import is_numeric

    s = check_.spec

    def refuse(message: str, hint: str) -> None:
        raise ConfigError(f"check {check_.name!r}: {message}", file=check_.file,
                          line=check_.line, hint=hint)

    col_type = schema.get(s.column or "", "")
    if s.values and col_type:
        for v in s.values:
            why = cast_error(v, col_type) if v is not None else None
            if why:
                refuse(f"value {v!r} does not fit {check_.table}.{s.column} ({col_type}): {why}",
                       "list values of the column's type; null means SQL NULL")
    if s.type == "between" and col_type:
        numeric = is_numeric(col_type)
        for key in ("min", "max"):
            bound = getattr(s, key)
            if bound is None:
                continue
            if numeric != isinstance(bound, float):
                what = "numbers" if numeric else ("strings" if col_type.upper() == "VARCHAR"
                                                  else "dates or timestamps, e.g. 2013-01-31")
                refuse(f"{key}: {bound!r} does not fit {check_.table}.{s.column} "
                       f"({col_type})", f"bounds of a {col_type} column are {what}")
            why = cast_error(bound, col_type) if not numeric else None
            if why:
                refuse(f"{key}: {bound!r} does not fit {check_.table}.{s.column} "
                       f"({col_type}): {why}", "write e.g. 2013-01-31 or 2013-01-31 06:00")
    sql = None
    if s.expr is not None and check_.type == "expression":
        sql = f"SELECT coalesce(({s.expr}), false)::BOOLEAN FROM {{{{ table }}}}"
    elif s.sql is not None:
        sql = s.sql
    if sql is not None:
        why = bind_error(sql, schema)
        if why:
            field_ = "expr" if check_.type == "expression" else "sql"
            refuse(f"its {field_} does not fit table {check_.table!r}: {why}",
                   f"columns of {check_.table}: {', '.join(schema)}")
