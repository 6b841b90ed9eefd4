"""The parse cache (``.andon/parse-cache.sqlite``): a project loads the same steps with or
without it, a changed file or parameter is parsed again, and a damaged or outdated cache is
only a slower load."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from andon.errors import SqlError
from andon.parsecache import FILE, render_key
from andon.project import Project
from andon.steps import Step

YAML = """
name: shop
params:
  min_amount: 10
"""
FILES = {
    "andon.yaml": YAML,
    "pipelines/shop/orders.sql": "SELECT range AS id, range * 5.0 AS amount FROM range(10)\n",
    "pipelines/shop/big_orders.sql": """
        /* ---
        description: orders over the minimum
        --- */
        -- a comment that does not count
        WITH o AS (SELECT * FROM orders)
        SELECT o.id, o.amount FROM o JOIN orders AS again ON again.id = o.id
        WHERE o.amount > {{ min_amount }}
    """,
}


def cached_project(make_project, files: dict[str, str]) -> Path:
    root = make_project(files)
    (root / ".andon").mkdir()  # made by the first run; loading alone does not create it
    return root


def steps_of(root: Path, **params: object) -> dict[str, Step]:
    return dict(Project.load(root, params=params).dag.steps)


def parsed_fields(step: Step) -> tuple[object, ...]:
    return step.code, step.refs, step.bound, step.sql, step.template, step.code_hash


def test_a_warm_load_gives_the_same_steps_as_a_cold_one(make_project) -> None:
    root = cached_project(make_project, FILES)
    cold = steps_of(root)
    assert (root / FILE).is_file()
    warm = steps_of(root)
    assert {n: parsed_fields(s) for n, s in warm.items()} == \
        {n: parsed_fields(s) for n, s in cold.items()}
    big = warm["big_orders"]
    assert big.parents == ("orders",)
    assert sorted((r.name, r.line) for r in big.refs) == [("orders", 5), ("orders", 6)]
    assert "> 10" in big.sql and "__andon_input_orders__" in big.bound


def test_a_warm_load_does_not_parse(make_project) -> None:
    """Without a change, loading needs neither sqlglot nor Jinja (nor DuckDB)."""
    root = cached_project(make_project, FILES)
    Project.load(root)
    probe = ("import sys\nfrom andon.project import Project\n"
             f"Project.load({str(root)!r})\n"
             "print(sorted(m for m in ('sqlglot', 'jinja2', 'duckdb') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_an_edited_file_or_parameter_is_parsed_again(make_project) -> None:
    root = cached_project(make_project, FILES)
    steps_of(root)
    (root / "pipelines/shop/big_orders.sql").write_text(
        "SELECT id FROM orders WHERE amount > {{ min_amount }}\n")
    edited = steps_of(root)["big_orders"]
    assert edited.code == "SELECT id FROM orders WHERE amount > 10"
    assert [(r.name, r.line) for r in edited.refs] == [("orders", 1)]
    assert steps_of(root, min_amount=20)["big_orders"].code.endswith("> 20")
    assert steps_of(root)["big_orders"].code.endswith("> 10")


def test_renderings_are_kept_by_the_values_and_types_of_the_parameters() -> None:
    keys = {render_key("{{ a }}", {"a": v}) for v in (1, "1", 1.0, True, None, [1], "x")}
    assert None not in keys and len(keys) == 7
    assert render_key("{{ a }}", {"a": 1}) != render_key("{{ b }}", {"a": 1})
    assert render_key("{{ a }}", {"a": object()}) is None  # no stable text: not kept


def test_errors_are_reported_on_every_load(make_project) -> None:
    root = cached_project(make_project,
                          {**FILES, "pipelines/shop/broken.sql": "SELECT id FROM orders WHERE\n"})
    for _ in range(2):
        with pytest.raises(SqlError) as info:
            Project.load(root)
        assert Path(str(info.value.file)).name == "broken.sql"


def test_a_damaged_cache_is_only_a_slower_load(make_project) -> None:
    root = cached_project(make_project, FILES)
    cold = steps_of(root)
    with sqlite3.connect(root / FILE) as db:
        db.execute("UPDATE parsed SET value = 'not json'")
    assert {n: parsed_fields(s) for n, s in steps_of(root).items()} == \
        {n: parsed_fields(s) for n, s in cold.items()}
    (root / FILE).write_bytes(b"this is not a database")
    assert {n: parsed_fields(s) for n, s in steps_of(root).items()} == \
        {n: parsed_fields(s) for n, s in cold.items()}


def test_a_cache_of_another_andon_or_sqlglot_is_emptied(make_project) -> None:
    root = cached_project(make_project, FILES)
    steps_of(root)
    with sqlite3.connect(root / FILE) as db:
        db.execute("UPDATE meta SET value = 'andon 0.0.1 sqlglot 1.0'")
        # what an older parser may have stored: it must not be used
        db.execute("UPDATE parsed SET value = ?",
                   (json.dumps(["SELECT 'stale'", [["stale", 1, 1]], "SELECT 'stale'"]),))
    big = steps_of(root)["big_orders"]
    assert big.parents == ("orders",) and "stale" not in big.code
    with sqlite3.connect(root / FILE) as db:
        assert "stale" not in json.dumps(db.execute("SELECT value FROM parsed").fetchall())


def test_loading_alone_creates_no_state_folder(make_project) -> None:
    root = make_project(FILES)
    assert set(steps_of(root)) == {"orders", "big_orders"}
    assert not (root / ".andon").exists()
