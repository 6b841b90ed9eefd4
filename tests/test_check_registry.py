"""The registry of check types: one class and one spec model per type, "did you mean" for an
unknown type, fields of another type refused with file and line, and third-party types
installed through the ``andon.checks`` entry-point group working end to end."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from andon.checks import registry
from andon.checks.registry import BUILTIN
from tests.conftest import Cli, ProjectFactory
from tests.test_check_types import by_name, project, run, statuses

PLUGIN = '''
"""A third-party package of check types."""

from collections.abc import Sequence
from typing import Literal

from andon.checks import CheckType
from andon.checks.kinds.rows import RowCheck
from andon.checks.model import Check, CheckResult, CheckSpec, WithFailing
from andon.engines.sql import column, literal
from sqlglot import exp


class PositiveSpec(WithFailing):
    type: Literal["positive"]
    column: str


class Positive(RowCheck[PositiveSpec]):
    """Joins the table's single scan, like the built-in row checks."""

    name = "positive"
    spec = PositiveSpec
    column_kind = "numeric"
    doc = "Non-null values are greater than zero."
    example = "{type: positive, column: amount}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        return exp.LTE(this=column(self.of(c).column), expression=literal(0))


class WideSpec(CheckSpec):
    type: Literal["at_least_columns"]
    count: int


class AtLeastColumns(CheckType[WideSpec]):
    """Runs on its own, from the artifact's schema."""

    name = "at_least_columns"
    spec = WideSpec
    family = "meta"
    doc = "The table has at least count columns."
    example = "{type: at_least_columns, count: 3}"

    def run(self, ev, c: Check) -> CheckResult:
        n = len(ev.manifest.schema)
        return ev.result(c, n >= self.of(c).count, n, {"min": self.of(c).count},
                         f"{n} columns")
'''


def install(site: Path, entry_points: str, module: str = PLUGIN) -> None:
    """A distribution installed the way pip leaves one: a module and its dist-info folder."""
    (site / "andon_h9_plugin.py").write_text(textwrap.dedent(module).lstrip())
    info = site / "andon_h9_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: andon-h9-plugin\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points).lstrip())


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    registry.plugins.cache_clear()
    yield path
    registry.plugins.cache_clear()
    sys.modules.pop("andon_h9_plugin", None)


def test_unknown_type_says_did_you_mean_with_file_and_line(make_project: ProjectFactory,
                                                          cli: Cli) -> None:
    root = project(make_project, "- {type: row_count, min: 1}\n- {type: betwen, column: id}")
    code, out, err = cli("plan", "-p", root)
    assert code != 0
    assert "people.sql:4" in out + err
    assert "unknown check type 'betwen'" in out + err and "did you mean 'between'" in out + err


@pytest.mark.parametrize(("check", "field"), [
    ("{type: not_null, column: id, values: [1]}", "values"),  # accepted_values's
    ("{type: row_count, column: id, min: 1}", "column"),  # a table check has no column
    ("{type: schema, expected: {id: INTEGER}, max_failing: 2}", "max_failing"),
    ("{type: mean_between, column: amount, pattern: x}", "pattern"),
])
def test_a_field_of_another_type_is_refused_naming_it(make_project: ProjectFactory, cli: Cli,
                                                      check: str, field: str) -> None:
    root = project(make_project, "- {type: row_count, min: 1}\n- " + check)
    code, out, err = cli("plan", "-p", root)
    assert code != 0
    assert f"unknown key '{field}'" in out + err and "people.sql:4" in out + err


def test_every_built_in_type_has_its_own_closed_spec() -> None:
    for name, kind in BUILTIN.items():
        assert kind.name == name
        assert kind.spec.model_config.get("extra") == "forbid"
        assert kind.spec.model_fields["type"].annotation.__args__ == (name,)
    assert "values" not in BUILTIN["not_null"].spec.model_fields
    assert "spc" in BUILTIN["not_null"].spec.model_fields
    assert "max_failing" not in BUILTIN["row_count"].spec.model_fields


def test_a_third_party_check_type_runs_end_to_end(make_project: ProjectFactory, cli: Cli,
                                                  site: Path) -> None:
    install(site, """
        [andon.checks]
        positive = andon_h9_plugin:Positive
        at_least_columns = andon_h9_plugin:AtLeastColumns
        """)
    root = project(make_project, """
        - {name: pos_ok, type: positive, column: id, severity: warn}
        - {name: pos_bad, type: positive, column: amount, severity: warn}
        - {name: wide, type: at_least_columns, count: 5, severity: warn}
        - {name: too_wide, type: at_least_columns, count: 50, severity: info}
        """, sql="SELECT * FROM (VALUES (1, -2.0::DOUBLE), (2, 3.0), (3, 0.0)) AS v(id, amount)\n")
    code, result, err = run(cli, root)
    assert code == 0, err
    assert statuses(result) == {"pos_ok": "passed", "pos_bad": "failed", "wide": "failed",
                                "too_wide": "recorded"}
    checks = by_name(result)
    assert checks["pos_bad"]["failing"] == 2
    assert checks["pos_bad"]["sample"] == [{"amount": -2.0, "id": 1}, {"amount": 0.0, "id": 3}]
    assert checks["pos_bad"]["type"] == "positive"
    assert checks["wide"]["message"] == "2 columns"
    # its spec is its own: a field it does not have is refused, naming it
    root = project(make_project, "- {type: positive, column: id, max: 3}")
    code, out, err = cli("plan", "-p", root)
    assert code != 0 and "unknown key 'max'" in out + err and "people.sql:3" in out + err
    # a misspelt third-party type gets its "did you mean" too
    root = project(make_project, "- {type: positve, column: id}")
    code, out, err = cli("plan", "-p", root)
    assert code != 0 and "did you mean 'positive'" in out + err
    # and it fits plan-time validation: a text column is refused before any work
    root = project(make_project, "- {type: positive, column: name}",
                   sql="SELECT 'a' AS name\n")
    code, out, err = cli("plan", "-p", root)
    assert code != 0 and "needs a numeric column" in out + err


def test_a_broken_entry_point_is_named(make_project: ProjectFactory, cli: Cli,
                                       site: Path) -> None:
    install(site, """
        [andon.checks]
        nothing = andon_h9_plugin:Missing
        """)
    root = project(make_project, "- {type: no_such_type, column: id}")
    code, out, err = cli("plan", "-p", root)
    assert code != 0
    assert "entry point 'nothing'" in out + err and "andon.checks" in out + err
    # built-in types never load the plugins: a project using only them is not affected
    root = project(make_project, "- {type: not_null, column: id}")
    code, out, err = cli("plan", "-p", root)
    assert code == 0, out + err
