"""Parameters: typed validation, named sets, per-environment overrides, precedence, and which
parameters change which fingerprints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from andon.config import ProjectConfig
from andon.errors import ConfigError
from andon.params import ParamSpec, coerce, parse_cli, resolve, specs
from tests.conftest import Cli, ProjectFactory

PROJECT = {
    "andon.yaml": """
        name: params
        params:
          threshold: {type: integer, default: 2, min: 0, max: 10, description: smallest id}
          ratio: {type: number, default: 0.5}
          label: {type: string, default: "v1.10"}
          enabled: true
          day: {type: date, default: 2013-03-01}
          mode: {type: string, default: fast, choices: [fast, exact]}
        param_sets:
          backfill: {threshold: 5, label: backfill}
          strict: {threshold: 7, mode: exact}
        environments:
          dev: {params: {threshold: 1, ratio: 0.25}}
    """,
    "pipelines/p/nums.sql": """
        SELECT i AS id FROM range(10) t(i) WHERE i >= {{ threshold }}
    """,
    "pipelines/p/labels.sql": """
        SELECT {{ label }} AS label, {{ ratio }} AS ratio, {{ mode }} AS mode
    """,
    "pipelines/p/const.sql": """
        SELECT 1 AS one
    """,
    "pipelines/p/scaled.py": """
        import andon
        import pyarrow as pa

        @andon.step
        def scaled(nums: pa.Table, params) -> pa.Table:
            return pa.table({"n": [nums.num_rows * params["ratio"]]})

        @andon.step
        def plain(nums: pa.Table) -> pa.Table:
            return nums
    """,
}


@pytest.fixture
def proj(make_project: ProjectFactory) -> Path:
    return make_project(PROJECT)


def plan(cli: Cli, root: Path, *args: str) -> dict[str, Any]:
    code, out, err = cli("plan", "-p", root, "--format", "json", *args)
    assert code == 0, err
    return dict(json.loads(out))


def fps(p: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["fingerprint"] for s in p["steps"]}


# validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("arg", "message"), [
    ("threshold=abc", "parameter 'threshold': 'abc' is not a valid integer"),
    ("threshold=1.5", "parameter 'threshold': 1.5 is not an integer"),
    ("threshold=11", "parameter 'threshold': 11 is not <= 10"),
    ("threshold=-1", "parameter 'threshold': -1 is not >= 0"),
    ("ratio=lots", "'lots' is not a valid number"),
    ("enabled=maybe", "'maybe' is not true or false"),
    ("day=2013-13-01", "'2013-13-01' is not a valid date"),
    ("mode=slow", "'slow' is not one of fast, exact"),
])
def test_bad_values_are_refused_with_what_is_expected(
    proj: Path, cli: Cli, arg: str, message: str
) -> None:
    code, _, err = cli("run", "-p", proj, "-q", "--env", "dev", "--param", arg)
    assert code != 0 and message in err
    assert not (proj / ".andon" / "warehouse").exists() or not any(
        (proj / ".andon" / "warehouse").glob("nums/*"))


def test_errors_say_where_the_value_came_from_and_hint(proj: Path, cli: Cli) -> None:
    code, _, err = cli("plan", "-p", proj, "--param", "threshold=abc")
    assert code != 0 and "--param: parameter 'threshold'" in err and "hint: smallest id" in err
    code, _, err = cli("plan", "-p", proj, "--param", "treshold=3")
    assert code != 0 and "unknown parameter 'treshold' (--param)" in err
    assert "did you mean 'threshold'" in err
    code, _, err = cli("plan", "-p", proj, "--param", "nonsense=3")
    assert code != 0 and "declare it under 'params:'" in err
    code, _, err = cli("plan", "-p", proj, "--param", "threshold")
    assert code != 0 and "bad --param 'threshold'" in err and "NAME=VALUE" in err
    code, _, err = cli("plan", "-p", proj, "--params", "backfil")
    assert code != 0 and "unknown parameter set 'backfil'" in err
    assert "did you mean 'backfill'" in err
    code, _, err = cli("plan", "-p", proj, "--params", "zzz")
    assert code != 0 and "sets: backfill, strict" in err


def test_bad_declarations_are_config_errors(make_project: ProjectFactory, cli: Cli) -> None:
    for params, message in [
        ("n: {type: integr, default: 1}", "unknown type 'integr'"),
        ("n: {type: integer, default: 50, max: 10}", "50 is not <= 10"),
        ("n: {type: integer, defualt: 1}", "unknown key 'defualt' in parameter 'n'"),
    ]:
        root = make_project({"andon.yaml": f"name: x\nparams:\n  {params}\n",
                             "pipelines/p/a.sql": "SELECT 1 AS one"})
        code, _, err = cli("plan", "-p", root)
        assert code != 0 and message in err and "andon.yaml" in err, err
    root = make_project({"andon.yaml": "name: x\nparams: {n: 1}\n"
                                       "environments:\n  dev: {params: {m: 2}}\n",
                         "pipelines/p/a.sql": "SELECT 1 AS one"})
    code, _, err = cli("plan", "-p", root, "--env", "dev")
    assert code != 0 and "unknown parameter 'm' (environment dev)" in err


# precedence -------------------------------------------------------------------------------


def test_precedence_defaults_environment_sets_command_line(proj: Path, cli: Cli) -> None:
    assert plan(cli, proj)["params"] == {
        "threshold": 2, "ratio": 0.5, "label": "v1.10", "enabled": True, "day": "2013-03-01",
        "mode": "fast"}
    dev = plan(cli, proj, "--env", "dev")["params"]
    assert (dev["threshold"], dev["ratio"]) == (1, 0.25)  # the environment's overrides
    s = plan(cli, proj, "--env", "dev", "--params", "backfill")["params"]
    assert (s["threshold"], s["ratio"], s["label"]) == (5, 0.25, "backfill")
    # sets apply in order: the later one wins where both set a value
    s = plan(cli, proj, "--params", "backfill", "--params", "strict")["params"]
    assert (s["threshold"], s["label"], s["mode"]) == (7, "backfill", "exact")
    s = plan(cli, proj, "--params", "strict", "--params", "backfill")["params"]
    assert (s["threshold"], s["mode"]) == (5, "exact")
    # --param wins over everything
    s = plan(cli, proj, "--env", "dev", "--params", "strict", "--param", "threshold=3")["params"]
    assert (s["threshold"], s["ratio"], s["mode"]) == (3, 0.25, "exact")


def test_command_line_values_take_the_declared_type(proj: Path, cli: Cli) -> None:
    p = plan(cli, proj, "--param", "label=1.20", "--param", "ratio=2", "--param",
             "enabled=no", "--param", "threshold=4", "--param", "day=2013-04-02")["params"]
    # a string parameter keeps the text as typed (1.20 is not the number 1.2)
    assert p["label"] == "1.20"
    assert p["ratio"] == 2.0 and isinstance(p["ratio"], float)
    assert p["enabled"] is False
    assert p["threshold"] == 4
    assert p["day"] == "2013-04-02"


def test_the_rendered_value_reaches_the_data(proj: Path, cli: Cli) -> None:
    assert cli("run", "-p", proj, "-q", "--env", "dev", "--param", "label=1.20",
               "--params", "strict")[0] == 0
    code, out, err = cli("query", "SELECT label, ratio, mode FROM labels", "-p", proj,
                         "--env", "dev", "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [{"label": "1.20", "ratio": 0.25, "mode": "exact"}]
    code, out, _ = cli("query", "SELECT count(*) AS n FROM nums", "-p", proj, "--env", "dev",
                       "--format", "json")
    assert json.loads(out) == [{"n": 3}]  # strict: threshold 7 → ids 7, 8, 9
    run = json.loads(cli("runs", "show", "latest", "-p", proj, "--format", "json")[1])
    assert run["params"]["threshold"] == 7 and run["params"]["label"] == "1.20"


# fingerprints -----------------------------------------------------------------------------


def test_data_parameters_change_exactly_the_fingerprints_they_reach(
    proj: Path, cli: Cli
) -> None:
    base = fps(plan(cli, proj))
    assert fps(plan(cli, proj)) == base  # deterministic
    moved = fps(plan(cli, proj, "--param", "threshold=3"))
    # nums renders threshold; its children follow; const and labels do not read it
    assert {s for s in base if base[s] != moved[s]} == {"nums", "scaled", "plain"}
    moved = fps(plan(cli, proj, "--param", "ratio=0.75"))
    # labels renders ratio; the Python step taking params depends on every parameter
    assert {s for s in base if base[s] != moved[s]} == {"labels", "scaled"}
    moved = fps(plan(cli, proj, "--param", "enabled=false"))
    assert {s for s in base if base[s] != moved[s]} == {"scaled"}
    # the same value by another route is the same fingerprint
    assert fps(plan(cli, proj, "--param", "threshold=2")) == base
    assert fps(plan(cli, proj, "--params", "strict")) == fps(
        plan(cli, proj, "--param", "threshold=7", "--param", "mode=exact"))


# the functions ----------------------------------------------------------------------------


def test_coerce_and_parse_cli() -> None:
    spec = ParamSpec("n", "integer", 1, min=0, max=5)
    assert coerce(spec, "3", "x") == 3
    assert coerce(spec, 4.0, "x") == 4
    with pytest.raises(ConfigError, match="is not an integer"):
        coerce(spec, True, "x")
    with pytest.raises(ConfigError, match="is not >= 0"):
        coerce(spec, -1, "x")
    assert coerce(ParamSpec("b", "boolean", False), "YES", "x") is True
    assert coerce(ParamSpec("t", "timestamp", None), "2013-03-01T12:00", "x") == \
        "2013-03-01T12:00:00"
    parsed = parse_cli(["a=1", "b=x=y", " c =[1, 2]"])
    assert set(parsed) == {"a", "b", "c"}
    assert parsed["b"] == "x=y"
    with pytest.raises(ConfigError, match="bad --param"):
        parse_cli(["=3"])


def test_resolve_directly() -> None:
    config = ProjectConfig.model_validate({
        "name": "x", "params": {"n": 1, "s": "a"},
        "param_sets": {"big": {"n": 9}},
        "environments": {"dev": {"params": {"s": "dev"}}},
    })
    assert specs(config)["n"].type == "integer"
    assert resolve(config, None) == {"n": 1, "s": "a"}
    assert resolve(config, "dev", ["big"], parse_cli(["s=cli"])) == {"n": 9, "s": "cli"}
    with pytest.raises(ConfigError, match="unknown parameter set 'small'"):
        resolve(config, "dev", ["small"])
