"""Every dependency has a tested range, and CI tests both ends of it."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def requirements() -> list[Requirement]:
    lines = [*PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        lines.extend(extra)
    return [r for r in map(Requirement, lines) if r.name != PROJECT["name"]]


def test_every_dependency_and_extra_has_a_lower_and_an_upper_bound() -> None:
    unbounded = [str(r) for r in requirements()
                 if sorted(s.operator for s in r.specifier) != ["<", ">="]]
    assert not unbounded, f"declare a tested range (>=low,<high) for: {unbounded}"


def test_duckdb_stays_on_the_lines_its_extensions_are_built_for() -> None:
    duckdb = next(r for r in requirements() if r.name == "duckdb")
    assert duckdb.specifier.contains("1.4.0") and duckdb.specifier.contains("1.5.6")
    assert not duckdb.specifier.contains("1.3.2") and not duckdb.specifier.contains("2.0.0")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"## Dependencies\n(.*?)\n## ", readme, re.S)
    assert section, "README.md has no Dependencies section"
    declared = next(d for d in PROJECT["dependencies"] if Requirement(d).name == "duckdb")
    assert f"`{declared}`" in section.group(1)  # the README says what pyproject declares


def test_ci_installs_the_lowest_version_of_every_dependency() -> None:
    spec = importlib.util.spec_from_file_location("lowest", ROOT / ".ci" / "lowest_constraints.py")
    assert spec and spec.loader
    lowest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lowest)
    pins = dict(p.split("==") for p in lowest.lowest_pins(ROOT / "pyproject.toml"))
    extras = PROJECT["optional-dependencies"]
    named = Requirement(next(r for r in extras["test"] if r.startswith(PROJECT["name"]))).extras
    installed = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in ("test", *named):
        installed += [Requirement(r) for r in extras[extra] if not r.startswith(PROJECT["name"])]
    assert set(pins) == {r.name for r in installed}  # what `.[test]` installs, at its lowest
    for r in installed:
        assert r.specifier.contains(pins[r.name]), (r, pins[r.name])
    script = (ROOT / ".ci" / "run").read_text()
    assert "python .ci/lowest_constraints.py > .venv-ci/lowest-constraints.txt" in script
    assert 'pip install --quiet ".[test]" -c .venv-ci/lowest-constraints.txt' in script
    # the extras the test extra leaves out (they pin or lift a core dependency) get a step of
    # their own, on the newest versions
    outside = set(extras) - {"test"} - set(named)
    assert outside <= {"databases", "fast"}, outside
    assert '".[test,databases,fast]"' in script
