"""docs/checks.md: the reference of the built-in check types, generated from their classes."""

from __future__ import annotations

from andon.checks.kinds.base import FAMILY_TEXT
from andon.checks.registry import BUILTIN


def render_docs() -> str:
    """docs/checks.md, generated from the built-in check types (``python -m andon.checks.docs``)."""
    out = [
        "# Check types",
        "",
        "<!-- generated from andon.checks.registry.BUILTIN: python -m andon.checks.docs "
        "> docs/checks.md -->",
        "",
        "Checks are declared in a step's header (`checks:`), under a source in `andon.yaml`, "
        "or in `checks/*.yaml` (table name → list), `checks/*.sql` (a header with `table:`; "
        "the query returns failing rows) and `checks/*.py`. Every check has `type`, and "
        "optionally `name`, `severity` (error: stops the line; warn: alerts; info: records), "
        "`description`, `owner`, `spc:` (statistical process control of its metric) and, for "
        "checks counting failing rows, `max_failing` / `max_failing_pct`.",
        "",
        "How checks are judged:",
        "",
        "- **Statuses.** `passed`; `failed` (error: the artifact is rejected and the line "
        "stops; warn: the run succeeds and alerts); `recorded` (an info check that did not "
        "pass); `error`: the check could not run (a runtime SQL error, a Python check that "
        "raised). A check that cannot run is a defect of the pipeline: it is shown as "
        "*errored*, alerted, and judged like a failure of its severity. Summaries count by "
        "status and severity, e.g. `checks: 40 passed, 2 warn failed, 1 error-severity "
        "errored; 12 reused (1 warn failed)`.",
        "- **Reuse.** A result is kept with the artifact it judged: a run that rebuilds "
        "nothing reuses it and shows it as *reused*, without alerting again. `freshness` "
        "(it depends on the clock) and checks that could not run are judged again every run.",
        "- **Plan time.** Before any work, each check is bound to its table's schema as the "
        "engine infers it: unknown columns (also inside `expr` and custom `sql`), a column of "
        "the wrong kind, `values` and `between` bounds that do not fit the column's type, and "
        "regular expressions that the engine's RE2 refuses (no lookarounds or "
        "backreferences) fail with the file and line.",
        "- **Nulls.** `null` in `values` means SQL NULL: `rejected_values` with `null` "
        "rejects missing values; `accepted_values` always accepts them (`not_null` refuses).",
        "- **Time.** \"Now\" is UTC: timestamps without a zone are read as UTC by "
        "`freshness` and by `temporal_order` with `allow_future: false`, whatever the "
        "machine's time zone.",
        "- **Thresholds** are numbers; a percentage may be written `5` or `'5%'` "
        "(`max_failing_pct`, `max_change_pct`); `between` bounds are numbers, dates or "
        "timestamps (`2013-01-31`, `'2013-01-31 06:00'`) or strings, as the column is; "
        "`length_between` bounds are whole numbers.",
        "- **Custom SQL** reads `{{ table }}` and `{{ ref('other') }}` as views of the "
        "artifacts being checked.",
        "",
        "Each type has its own fields: a field of another type (e.g. `values` on "
        "`not_null`) is refused with the file and line, and an unknown type gets a \"did you "
        "mean\".",
        "",
        "**Third-party check types.** A package adds check types by registering "
        "`andon.checks.CheckType` subclasses in the `andon.checks` entry-point group; they "
        "are loaded the first time a check names a type that is not built in:",
        "",
        "```toml",
        "# pyproject.toml of the package",
        "[project.entry-points.\"andon.checks\"]",
        "positive = \"my_checks:Positive\"",
        "```",
        "",
        "```python",
        "# my_checks.py",
        "from collections.abc import Sequence",
        "from typing import Literal",
        "",
        "from andon.checks.kinds.rows import RowCheck",
        "from andon.checks.model import Check, WithFailing",
        "from andon.engines.sql import column, literal",
        "from sqlglot import exp",
        "",
        "",
        "class PositiveSpec(WithFailing):  # its own fields, plus name, severity, spc, max_failing",
        "    type: Literal[\"positive\"]",
        "    column: str",
        "",
        "",
        "class Positive(RowCheck[PositiveSpec]):",
        "    name = \"positive\"",
        "    spec = PositiveSpec",
        "    column_kind = \"numeric\"",
        "    doc = \"Non-null values are greater than zero.\"",
        "    example = \"{type: positive, column: amount}\"",
        "",
        "    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:",
        "        # true for a failing row; names and values are quoted by sqlglot, never pasted",
        "        return exp.LTE(this=column(self.of(c).column), expression=literal(0))",
        "```",
        "",
        "A row check (`RowCheck`: `predicate`) or an aggregate (`Aggregate`: `metric`, or "
        "`func`, the name of an aggregate function of the column) joins its table's single "
        "scan, built as sqlglot expressions that andon renders in the engine's dialect "
        "(SQL text in DuckDB's dialect is accepted too, and parsed); any other type sets "
        "`family` and implements `run(ev, check)`, returning `ev.result(...)`. `validate` "
        "(plan time) and `check_spec` (load time) refuse what does not fit. The built-in "
        "types below are written the same way (`andon.checks.kinds`).",
        "",
    ]
    for t in BUILTIN.values():
        needs = ", ".join(f"`{r}`" for r in t.requires) or "nothing"
        out += [f"## {t.name}", "", t.doc, "",
                f"- kind: {t.kind_text or FAMILY_TEXT[t.family]}",
                f"- needs: {needs}" + (f"; column: {t.column_kind}" if t.column_kind else ""),
                ""]
        if t.family == "python":
            out += ["```python", f"# checks/{t.name}_checks.py", t.example.rstrip(), "```", ""]
        else:
            out += ["```yaml", f"- {t.example}", "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render_docs(), end="")
