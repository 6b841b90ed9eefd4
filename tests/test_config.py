"""andon.yaml, step headers and sidecar files: defaults, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from andon.errors import AndonError, ConfigError
from andon.project import Project

SOURCE = """
name: shop
sources:
  raw_orders:
    path: incoming/*.csv
    columns:
      id: {type: integer, required: true}
      amount: double
"""


def load_error(root: Path) -> AndonError:
    with pytest.raises(AndonError) as info:
        Project.load(root)
    return info.value


def run_error(cli, root: Path) -> str:
    """Run the CLI on a broken project: it fails, says why, and stores nothing."""
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert not (root / ".andon").exists(), "a config error must not touch the store"
    return err


def test_minimal_project_is_just_a_name(make_project) -> None:
    root = make_project({"andon.yaml": "name: x\n"})
    project = Project.load(root)
    cfg = project.config
    assert project.name == "x"
    assert cfg.pipelines == "pipelines"
    assert cfg.default_environment == "prod"
    assert cfg.store == "sqlite:///.andon/andon.db"
    assert cfg.sources == {}
    assert cfg.params == {}
    assert "formatted" in cfg.zones and "landing" in cfg.zones
    assert 1 <= cfg.threads <= 8
    assert project.dag.order == ()


def test_minimal_project_runs(make_project, cli) -> None:
    root = make_project({"andon.yaml": "name: x\n", "pipelines/p/one.sql": "SELECT 1 AS n\n"})
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    code, out, _ = cli("query", "SELECT n FROM one", "-p", root, "--format", "csv")
    assert code == 0
    assert out.splitlines() == ["n", "1"]


def test_malformed_yaml_names_file_and_line(make_project, cli) -> None:
    root = make_project({"andon.yaml": "name: x\nparams:\n  a: [1, 2\n  b: 3\n"})
    e = load_error(root)
    assert isinstance(e, ConfigError)
    assert e.file == str(root / "andon.yaml")
    assert e.line == 4
    assert "malformed YAML" in e.message
    err = run_error(cli, root)
    assert "andon.yaml:4" in err
    assert "hint" in err


def test_unknown_top_level_key_suggests_the_right_one(make_project, cli) -> None:
    root = make_project({"andon.yaml": "name: x\n\nsorces:\n  a: {}\n"})
    e = load_error(root)
    assert e.line == 3
    assert "unknown key 'sorces'" in e.message
    assert "did you mean 'sources'" in e.hint
    assert "did you mean 'sources'" in run_error(cli, root)


def test_misspelt_key_inside_a_source_is_reported_as_unknown_not_missing(make_project) -> None:
    root = make_project({"andon.yaml": SOURCE.replace("    columns:", "    colums:")})
    e = load_error(root)
    assert "unknown key 'sources.raw_orders.colums'" in e.message
    assert "did you mean 'columns'" in e.hint
    assert e.line == 5


def test_unknown_key_in_a_column_suggests_the_right_one(make_project) -> None:
    root = make_project({"andon.yaml": SOURCE.replace("required: true", "requird: true")})
    e = load_error(root)
    assert "sources.raw_orders.columns.id.requird" in e.message
    assert "did you mean 'required'" in e.hint
    assert e.line == 6


def test_unknown_key_without_close_match_lists_allowed_keys(make_project) -> None:
    root = make_project({"andon.yaml": "name: x\nzzzzzz: 1\n"})
    e = load_error(root)
    assert "allowed keys here" in e.hint
    assert "sources" in e.hint


def test_wrong_type_names_key_and_line(make_project) -> None:
    root = make_project({"andon.yaml": "name: x\n# comment\nthreads: lots\n"})
    e = load_error(root)
    assert e.line == 3
    assert "'threads'" in e.message
    assert "integer" in e.message


def test_missing_name_is_required(make_project, cli) -> None:
    root = make_project({"andon.yaml": "threads: 2\n"})
    e = load_error(root)
    assert "missing required key 'name'" in e.message
    assert "name:" in e.hint
    assert e.line == 1
    assert "missing required key 'name'" in run_error(cli, root)


def test_empty_andon_yaml_needs_a_name(make_project) -> None:
    root = make_project({"andon.yaml": "# nothing yet\n"})
    e = load_error(root)
    assert "missing required key 'name'" in e.message


def test_andon_yaml_that_is_not_a_mapping(make_project) -> None:
    root = make_project({"andon.yaml": "- name: x\n"})
    e = load_error(root)
    assert "must be a mapping" in e.message
    assert e.line == 1


def test_duplicate_key_is_an_error_not_silently_the_last(make_project) -> None:
    root = make_project({"andon.yaml": "name: x\nthreads: 2\nthreads: 4\n"})
    e = load_error(root)
    assert "duplicate key 'threads'" in e.message
    assert e.line == 3
    assert "line 2" in e.message


@pytest.mark.parametrize(
    ("written", "suggested"),
    [("integr", "integer"), ("strng", "string"), ("timestmp", "timestamp"), ("Doubel", "double")],
)
def test_unknown_column_type_suggests_a_known_one(make_project, written, suggested) -> None:
    root = make_project({"andon.yaml": SOURCE.replace("amount: double", f"amount: {written}")})
    e = load_error(root)
    assert f"unknown type '{written}'" in e.message
    assert f"did you mean '{suggested}'" in e.message
    assert "sources.raw_orders.columns.amount" in e.message
    assert e.line == 7


def test_column_types_map_to_duckdb_types(make_project) -> None:
    root = make_project({"andon.yaml": SOURCE.replace("amount: double", "amount: decimal(10, 2)")})
    src = Project.load(root).config.sources["raw_orders"]
    assert src.columns["id"].duckdb_type == "BIGINT"
    assert src.columns["id"].required is True
    assert src.columns["amount"].duckdb_type == "DECIMAL(10,2)"
    assert src.columns["amount"].required is False


def test_source_name_must_be_an_identifier(make_project) -> None:
    root = make_project({"andon.yaml": SOURCE.replace("raw_orders:", "raw-orders:")})
    e = load_error(root)
    assert "must be a SQL identifier" in e.message


# step headers and sidecars ---------------------------------------------------------------


def step_project(make_project, sql: str, extra: dict[str, str] | None = None) -> Path:
    return make_project({"andon.yaml": SOURCE, "pipelines/shop/orders.sql": sql, **(extra or {})})


def test_header_sets_description_owner_tags_zone(make_project) -> None:
    root = step_project(make_project, """
        /* ---
        description: Orders, cleaned.
        owner: me@example.com
        tags: [daily, finance]
        zone: exploitation
        --- */
        SELECT id, amount FROM raw_orders
        """)
    step = Project.load(root).dag.steps["orders"]
    assert step.config.description == "Orders, cleaned."
    assert step.config.owner == "me@example.com"
    assert step.config.tags == ["daily", "finance"]
    assert step.zone == "exploitation"
    assert step.parents == ("raw_orders",)


def test_step_zone_defaults_to_formatted_or_its_zone_folder(make_project) -> None:
    root = make_project({
        "andon.yaml": SOURCE,
        "pipelines/shop/orders.sql": "SELECT * FROM raw_orders\n",
        "pipelines/shop/exploitation/big.sql": "SELECT * FROM orders WHERE amount > 10\n",
    })
    steps = Project.load(root).dag.steps
    assert steps["orders"].zone == "formatted"
    assert steps["big"].zone == "exploitation"
    assert steps["raw_orders"].zone == "landing"


def test_unknown_header_key_points_at_its_line_in_the_sql_file(make_project, cli) -> None:
    root = step_project(make_project, """
        /* ---
        description: Orders.
        owner: me
        tgas: [daily]
        --- */
        SELECT * FROM raw_orders
        """)
    e = load_error(root)
    assert e.file == str(root / "pipelines/shop/orders.sql")
    assert e.line == 4
    assert "unknown key 'tgas'" in e.message
    assert "did you mean 'tags'" in e.hint
    assert "orders.sql:4" in run_error(cli, root)


def test_header_after_a_leading_comment_is_still_the_header(make_project) -> None:
    root = step_project(make_project, """
        -- orders, one row each
        /* ---
        tags: [daily]
        --- */
        SELECT * FROM raw_orders
        """)
    assert Project.load(root).dag.steps["orders"].config.tags == ["daily"]


def test_malformed_header_yaml_points_into_the_sql_file(make_project) -> None:
    root = step_project(make_project, """
        /* ---
        description: x
        tags: [daily
        --- */
        SELECT * FROM raw_orders
        """)
    e = load_error(root)
    assert "malformed YAML" in e.message
    assert e.file == str(root / "pipelines/shop/orders.sql")
    assert e.line is not None and 3 <= e.line <= 4


def test_header_wrong_type(make_project) -> None:
    root = step_project(make_project, "/* ---\n\ntags: daily\n--- */\nSELECT * FROM raw_orders\n")
    e = load_error(root)
    assert "'tags'" in e.message and "list" in e.message
    assert e.line == 3


def test_incremental_without_time_column(make_project) -> None:
    root = step_project(make_project,
                        "/* ---\nmaterialized: incremental\n--- */\nSELECT * FROM raw_orders\n")
    e = load_error(root)
    assert "time_column" in e.message
    assert "the step header is invalid" in e.message


def test_unknown_zone_in_header(make_project) -> None:
    root = step_project(make_project, "/* ---\nzone: formated\n--- */\nSELECT * FROM raw_orders\n")
    e = load_error(root)
    assert "unknown zone 'formated'" in e.message
    assert "formatted" in e.hint


def test_sidecar_yaml_configures_the_step(make_project) -> None:
    root = step_project(make_project, "SELECT * FROM raw_orders\n",
                        {"pipelines/shop/orders.yaml": "tags: [finance]\nowner: fin@x.org\n"})
    step = Project.load(root).dag.steps["orders"]
    assert step.config.tags == ["finance"]
    assert step.config.owner == "fin@x.org"


def test_sidecar_errors_name_the_sidecar(make_project) -> None:
    root = step_project(make_project, "SELECT * FROM raw_orders\n",
                        {"pipelines/shop/orders.yaml": "tags: [finance]\nownr: fin\n"})
    e = load_error(root)
    assert e.file == str(root / "pipelines/shop/orders.yaml")
    assert e.line == 2
    assert "did you mean 'owner'" in e.hint


def test_malformed_sidecar(make_project) -> None:
    root = step_project(make_project, "SELECT * FROM raw_orders\n",
                        {"pipelines/shop/orders.yaml": "tags: [finance\nowner: x\n"})
    e = load_error(root)
    assert e.file == str(root / "pipelines/shop/orders.yaml")
    assert "malformed YAML" in e.message


def test_header_and_sidecar_together_is_an_error(make_project, cli) -> None:
    root = step_project(make_project, "/* ---\ntags: [a]\n--- */\nSELECT * FROM raw_orders\n",
                        {"pipelines/shop/orders.yaml": "tags: [b]\n"})
    e = load_error(root)
    assert "both a header and a sidecar" in e.message
    assert "orders.yaml" in e.hint
    run_error(cli, root)


def test_step_file_outside_a_pipeline_folder(make_project) -> None:
    root = make_project({"andon.yaml": "name: x\n", "pipelines/loose.sql": "SELECT 1 AS a\n"})
    e = load_error(root)
    assert "pipeline folder" in e.message
    assert "pipelines/<pipeline>/loose.sql" in e.hint


def test_step_file_name_must_be_an_identifier(make_project) -> None:
    root = make_project({"andon.yaml": "name: x\n", "pipelines/p/my-step.sql": "SELECT 1 AS a\n"})
    e = load_error(root)
    assert "'my-step' is not a SQL identifier" in e.message


def test_no_project_found(tmp_path: Path, cli) -> None:
    code, _, err = cli("plan", "-p", tmp_path)
    assert code != 0
    assert "no andon.yaml" in err
    assert "andon init" in err
