"""``CheckType``: one class per check type, with its own spec model and its own way to run.

A type belongs to a family. Scan types (``row``: failing rows counted with
``count(*) FILTER (WHERE …)``; ``agg``: one aggregate) ``compile`` to one sqlglot expression
of their table's single scan and ``judge`` its value; every other type (``query``, ``meta``,
``history``, ``python``) ``run``s on its own. Third-party types subclass ``CheckType`` and are
registered through the ``andon.checks`` entry-point group (see ``andon.checks.registry``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

from andon.checks.model import Check, CheckResult, CheckSpec
from andon.checks.types import ColumnKind, column_fits
from andon.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from sqlglot import exp

    from andon.checks.context import Audit, Evaluation
    from andon.yamlfile import YamlDoc

Family = Literal["row", "agg", "query", "meta", "history", "python"]
S = TypeVar("S", bound=CheckSpec)

FAMILY_TEXT: dict[str, str] = {
    "row": "row check: counts failing rows in the table's single scan",
    "agg": "aggregate check: one metric from the table's single scan",
    "query": "query check: its own query (may read another table)",
    "meta": "metadata check: reads the artifact's schema, no scan",
    "history": "history check: compares with the previous artifact",
    "python": "Python check: a function given the table",
}


class CheckType(Generic[S]):
    """A check type: subclasses set the class attributes and override what differs."""

    name: ClassVar[str]
    spec: type[S]
    family: ClassVar[Family]
    doc: ClassVar[str]
    example: ClassVar[str]  # YAML flow mapping (Python source for the python family)
    column_kind: ClassVar[ColumnKind | None] = None  # the kind of column it needs, if any
    kind_text: ClassVar[str] = ""  # docs: how it runs, when its family's text is not enough
    reuse: ClassVar[bool] = True  # a result on an unchanged artifact may be reused

    @property
    def scanned(self) -> bool:
        return self.family in ("row", "agg")

    @property
    def requires(self) -> tuple[str, ...]:
        """The fields a check of this type must set."""
        return tuple(k for k, f in self.spec.model_fields.items()
                     if f.is_required() and k != "type")

    def of(self, c: Check) -> S:
        """The check's spec, typed as this type's."""
        return cast(S, c.spec)

    # --- load time -------------------------------------------------------------------
    def check_spec(self, spec: S, doc: YamlDoc) -> None:
        """Refuse a spec that is valid field by field but not as a whole (file and line)."""

    def columns(self, spec: S) -> list[str]:
        """The columns of its table that a check names."""
        column = getattr(spec, "column", None)
        return [column] if isinstance(column, str) else []

    def reads(self, spec: S, table: str) -> list[str]:
        """The tables besides its own that a check reads."""
        return []

    def target(self, spec: S) -> str | None:
        """The other table whose columns a check names (validated at plan time)."""
        return None

    def default_name(self, table: str, spec: S) -> str:
        return ".".join([table, spec.type, *(["_".join(self.columns(spec))]
                                              if self.columns(spec) else [])])

    # --- plan time -------------------------------------------------------------------
    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        """Refuse a check that does not fit its table: unknown columns, wrong kinds."""
        for col in c.columns:
            if col not in schema:
                hint = did_you_mean(col, schema)
                raise ConfigError(
                    f"check {c.name!r}: table {c.table!r} has no column {col!r}",
                    file=c.file, line=c.line, hint=hint or f"columns: {', '.join(schema)}")
            if self.column_kind and not column_fits(self.column_kind, schema[col]):
                raise ConfigError(
                    f"check {c.name!r} ({c.type}) needs a {self.column_kind} column; "
                    f"{c.table}.{col} is {schema[col]}", file=c.file, line=c.line,
                    hint="cast the column in the step, or choose another check type")

    # --- run time --------------------------------------------------------------------
    def context(self, audit: Audit, c: Check) -> str:
        """What besides the artifact a check's result depends on (reuse key)."""
        parts: list[str] = []
        for other in c.reads:
            om = audit.manifests.get(other)
            parts.append(om.fingerprint if om else "-")
        parts += self.history_context(audit, c)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def history_context(self, audit: Audit, c: Check) -> list[str]:
        if self.family == "history" or c.spc is not None:
            prev = audit.previous.get(c.table)
            return [prev.fingerprint if prev else "-"]
        return []

    def ready(self, audit: Audit, c: Check) -> bool:
        """All tables the check reads are available."""
        return c.table in audit.manifests and all(o in audit.manifests for o in c.reads)

    def compile(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        """Scan families: the expression of the single scan (failing rows or metric)."""
        raise NotImplementedError(f"check type {self.name!r} is not part of the scan")

    def judge(self, ev: Evaluation, c: Check, value: Any) -> CheckResult:
        """Scan families: the result from the scan's value."""
        raise NotImplementedError(f"check type {self.name!r} is not part of the scan")

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        """Other families: run the check on its own."""
        raise NotImplementedError(f"check type {self.name!r} does not run on its own")


def user_sql(text: str, what: str = "SQL") -> exp.Expression:
    """SQL text a user (or a third-party check type) wrote, in DuckDB's dialect as checks are
    documented, as an expression: it is rendered with andon's own in the engine's dialect."""
    from sqlglot.errors import ParseError

    from andon.engines.sql import parse

    try:
        return parse(text)
    except ParseError as e:
        raise ConfigError(f"the check's {what} does not parse: {str(e).splitlines()[0]}",
                          hint="fix the SQL (dialect: DuckDB)") from None
