"""Collect a project's checks: step headers, sources, ``checks/*.yaml|*.sql|*.py``.

Every check is validated here (type, fields, thresholds, SQL syntax, unique names); column
names and types are validated against table schemas at plan time (``validate_columns``).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from andon.checks.kinds.python import PythonSpec
from andon.checks.model import Check, CheckSpec
from andon.checks.registry import check_types, get
from andon.config import validate
from andon.errors import AndonError, ConfigError, did_you_mean
from andon.steps import Step, import_file, split_header
from andon.yamlfile import Loc, YamlDoc, load_yaml

F = TypeVar("F", bound=Callable[..., Any])


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
    """Validate one check against the spec model of its type (the discriminator ``type``)."""
    if not isinstance(doc.data, dict):
        raise ConfigError(f"a check in {where} must be a mapping with a 'type'", file=doc.file,
                          line=doc.line_of(()), hint="write e.g. {type: not_null, column: id}")
    ctype = doc.data.get("type")
    if not ctype:
        raise ConfigError("a check needs a 'type'", file=doc.file, line=doc.line_of(()),
                          hint=f"check types: {', '.join(sorted(check_types()))}")
    try:
        kind = get(str(ctype))
    except AndonError as e:  # unknown, or an installed type that cannot be loaded
        raise ConfigError(e.message, file=doc.file, line=doc.line_of(("type",)),
                          hint=e.hint) from None
    for req in kind.requires:
        if doc.data.get(req) in (None, [], {}):
            raise ConfigError(f"check type {kind.name!r} needs {req!r}", file=doc.file,
                              line=doc.line_of(()), hint=f"example: {kind.example}")
    spec: CheckSpec = validate(kind.spec, doc, f"check in {where}")
    kind.check_spec(spec, doc)
    return spec


def _from_list(doc: YamlDoc, table: str, prefix: Loc, where: str) -> list[Check]:
    items = _sub(doc, prefix)
    if not isinstance(items.data, list):
        raise ConfigError(f"'checks' in {where} must be a list", file=doc.file,
                          line=doc.line_of(prefix))
    out = []
    for i in range(len(items.data)):
        one = _sub(items, (i,))
        spec = _spec(one, where)
        kind = get(spec.type)
        out.append(Check(name=spec.name or kind.default_name(table, spec), table=table,
                         spec=spec, kind=kind, file=Path(doc.file), line=one.line_of(())))
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
        for other in c.reads:
            if other not in steps:
                hint = did_you_mean(other, steps)
                raise ConfigError(f"check {c.name!r} refers to unknown table {other!r}",
                                  file=c.file, line=c.line, hint=hint or "")
    return checks


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
    return Check(name=spec.name or file.stem, table=table, spec=spec, kind=get(spec.type),
                 file=file, line=1)


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
            cspec = PythonSpec(type="python", name=meta["name"], severity=meta["severity"],
                               description=meta["description"])
        except ValidationError as e:
            err = e.errors()[0]
            raise ConfigError(
                f"check {meta['name']!r}: bad {'.'.join(map(str, err['loc']))}: {err['msg']}",
                file=file, line=line,
                hint="severity is one of error, warn, info") from None
        out.append(Check(name=meta["name"], table=meta["table"], spec=cspec,
                         kind=get(cspec.type), file=file, line=line, function=obj,
                         code=f"{meta['name']}\n{canonical}"))
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
    """A check naming a missing column, a column of the wrong type, constants that do not fit
    it or SQL that does not bind fails here (plan time)."""
    check_.kind.validate(check_, schema, other_schema)
