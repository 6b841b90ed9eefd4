"""Jinja in SQL steps and source paths, sandboxed: a template reaches only the parameters and
``secret()``, never Python objects or attributes (``ImmutableSandboxedEnvironment``), even on
read-only commands that load the project.

In SQL, ``{{ value }}`` renders a SQL literal of the value's type: a string is quoted and
escaped (``O'Brien`` is ``'O''Brien'``), a number is a number, a date is ``DATE '…'``, a
list is ``(a, b, …)`` for ``IN``. So a parameter is always data and never changes a step's
code. ``{{ secret('name') }}`` renders ``getvariable('andon_secret_name')``: the value is
bound to that variable only while the step runs and never appears in SQL text."""

from __future__ import annotations

import datetime as dt
import math
import re
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from andon.engines.sql import literal_sql
from andon.errors import ConfigError, did_you_mean

SECRET_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
SECRET_VAR = "andon_secret_"
SECRET_RE = re.compile(rf"getvariable\('{SECRET_VAR}({SECRET_NAME})'\)", re.IGNORECASE)


class SqlCode(str):
    """Text that is SQL code already (``secret()``), rendered as it is."""


def secret_ref(name: str) -> SqlCode:
    if not re.fullmatch(SECRET_NAME, str(name)):
        raise ValueError(f"invalid secret name {name!r}")
    return SqlCode(f"getvariable('{SECRET_VAR}{name}')")


def secrets_used(sql: str) -> list[str]:
    return sorted(set(SECRET_RE.findall(sql)))


def sql_literal(value: Any) -> str:
    """The SQL literal of a parameter value."""
    if isinstance(value, SqlCode):
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"'{value}'::DOUBLE"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(sql_literal(v) for v in value) + ")"
    return literal_sql(str(value))


def render(template: str, params: Mapping[str, Any], path: Path, step_name: str | None = None,
           *, sql: bool = True) -> str:
    """Render ``{{ name }}`` / ``{{ params.name }}`` (SQL literals when ``sql``, else text)."""
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined,
                                        keep_trailing_newline=True,
                                        finalize=sql_literal if sql else None)
    try:
        return env.from_string(template).render(
            {**params, "params": dict(params), "secret": secret_ref})
    except jinja2.UndefinedError as e:
        missing = re.search(r"'(\w+)' is undefined", str(e)) or re.search(
            r"has no attribute '(\w+)'", str(e))
        name = missing.group(1) if missing else None
        hint = did_you_mean(name, params) if name else ""
        raise ConfigError(
            f"unknown parameter {name!r}" if name else f"template error: {e.message}",
            file=path, line=_line(e), step=step_name,
            hint=hint or "define it under 'params:' in andon.yaml or pass --param NAME=VALUE",
        ) from None
    except SecurityError as e:
        raise ConfigError(f"template error: {e}", file=path, line=_line(e), step=step_name,
                          hint="templates use parameters and secret('name') only") from None
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"template syntax error: {e.message}", file=path, line=e.lineno,
                          step=step_name) from None
    except ValueError as e:  # e.g. an invalid secret name
        raise ConfigError(str(e), file=path, step=step_name,
                          hint="secret names: letters, digits, '_', '-', '.'") from None


def _line(e: BaseException) -> int | None:
    return next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                 if f.filename == "<template>"), None)
