"""Python checks: a function in ``checks/*.py`` marked ``@andon.checks.check(table=...)``,
given the table (Arrow, pandas or polars, as its first parameter is annotated)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from andon.checks.kinds.base import CheckType
from andon.checks.model import Check, CheckResult, CheckSpec
from andon.checks.types import judge_failing

if TYPE_CHECKING:
    from andon.checks.context import Evaluation


class PythonSpec(CheckSpec):
    type: Literal["python"]


class Python(CheckType[PythonSpec]):
    name = "python"
    spec = PythonSpec
    family = "python"
    doc = ("A Python function in checks/*.py marked @andon.checks.check(table=...): returns "
           "True/False, a number of failing rows (numpy scalars such as .all() or .sum() "
           "included), or a DataFrame of failing rows.")
    example = ("import andon\nimport pandas as pd\n\n\n@andon.checks.check(table=\"flights\", "
               "severity=\"warn\")\ndef few_long_delays(df: pd.DataFrame) -> pd.DataFrame:\n"
               "    return df[df[\"dep_delay\"] > 1000]\n")

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        """The function reads what it likes: nothing to bind before it runs."""

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        func = c.function
        assert func is not None
        params = list(inspect.signature(func).parameters)
        try:
            out = func(self._argument(ev, func, params[0])) if params else func()
        except Exception as e:
            return ev.error(c, f"the check raised {type(e).__name__}: {e}")
        return self._judge(ev, c, out)

    def _argument(self, ev: Evaluation, func: Any, param: str) -> Any:
        from sqlglot import exp

        table = ev.cur.execute(exp.select(exp.Star()).from_(ev.src)).arrow()
        try:
            hints = typing.get_type_hints(func)
        except Exception:
            hints = {}
        ann = hints.get(param, "")
        text = ann if isinstance(ann, str) else repr(ann)
        if "pandas" in text:
            return table.to_pandas()
        if "polars" in text:
            import polars as pl

            return pl.from_arrow(table)
        return table

    def _judge(self, ev: Evaluation, c: Check, out: Any) -> CheckResult:
        import pyarrow as pa  # imported when checks run, not when the project loads

        from andon.checks.context import SAMPLE_SIZE

        if getattr(out, "ndim", None) == 0 and hasattr(out, "item"):
            out = out.item()  # a numpy scalar (df["x"].sum(), (df["x"] > 0).all()) as Python's
        if isinstance(out, bool):
            return ev.result(c, out, 0 if out else 1, {}, "passed" if out else "returned False")
        if isinstance(out, int | float):
            ok, threshold = judge_failing(None, int(out), ev.total)
            return ev.result(c, ok, float(out), threshold, f"{int(out):,} failing rows",
                             int(out))
        if isinstance(out, pa.Table) or type(out).__module__.split(".")[0] in ("pandas",
                                                                               "polars"):
            failing = out if isinstance(out, pa.Table) else (
                pa.Table.from_pandas(out, preserve_index=False)
                if type(out).__module__.startswith("pandas") else out.to_arrow())
            n = int(failing.num_rows)
            ok, threshold = judge_failing(None, n, ev.total)
            sample = ev.mask(c, failing.slice(0, SAMPLE_SIZE).to_pylist())
            return ev.result(c, ok, float(n), threshold, f"{n:,} failing rows", n, sample)
        return ev.error(c, f"the check returned {type(out).__name__}; return a bool, a "
                           "number of failing rows or a table of failing rows")


PYTHON_TYPES: tuple[CheckType[Any], ...] = (Python(),)
