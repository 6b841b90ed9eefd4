"""The catalog: layer, alignment (inferred or declared), owner and steward per table in
``andon catalog show`` and its JSON twin; ranked search over tables, columns, descriptions,
tags and owners with SQLite FTS5 and PostgreSQL full-text search; the column lineage view of
a table page laid out for the UI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import andon
from andon.server.lineage_view import BOX_W, view
from tests.apikit import error_of, served
from tests.conftest import Cli

PROJECT = {
    "andon.yaml": """
        name: shop
        environments:
          prod: {protected: false}
    """,
    "pipelines/shop/orders.sql": """
        /* ---
        description: Orders as the web shop sent them, one row per order line.
        owner: shop-team@example.com
        steward: finance-data@example.com
        zone: landing
        tags: [sales]
        --- */
        SELECT * FROM (VALUES (1, 'c1', 'lamp', 20.0, DATE '2026-01-03'),
                              (2, 'c2', 'desk', 180.0, DATE '2026-01-04'),
                              (3, 'c1', 'chair', 75.5, DATE '2026-01-04'))
            AS v(order_id, customer_id, product, amount, ordered_on)
    """,
    "pipelines/shop/clean_orders.sql": """
        /* ---
        zone: formatted
        description: Orders with positive amounts.
        --- */
        SELECT order_id, customer_id, lower(product) AS product, amount, ordered_on
        FROM orders WHERE amount > 0
    """,
    "pipelines/shop/revenue_by_day.sql": """
        /* ---
        zone: exploitation
        description: Revenue per day, for the finance dashboard.
        owner: finance@example.com
        --- */
        SELECT ordered_on, sum(amount) AS revenue, count(*) AS order_lines
        FROM clean_orders GROUP BY ordered_on
    """,
    "pipelines/shop/customer_orders.sql": """
        /* ---
        zone: exploitation
        alignment: consumer-aligned
        --- */
        SELECT c.customer_id, c.product, r.revenue AS day_revenue
        FROM clean_orders c JOIN revenue_by_day r USING (ordered_on)
    """,
}


def _make(root: Path, store: str | None = None) -> Path:
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    if store:
        with (root / "andon.yaml").open("a") as f:
            f.write(f"store: {store}\n")
    result = andon.Session(andon.Project.load(root), "alice").run()
    assert result.ok, result.error
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make(tmp_path_factory.mktemp("catalog"))


def test_layer_alignment_owner_and_steward_of_each_table(root: Path) -> None:
    session = andon.Session(andon.Project.load(root), "alice")
    got = {t: session.catalog_show(t) for t in PROJECT_TABLES}
    assert {t: (g["layer"], g["alignment"]) for t, g in got.items()} == {
        "orders": ("bronze", "source-aligned"),
        "clean_orders": ("silver", "source-aligned"),  # row by row from a source
        "revenue_by_day": ("gold", "aggregate"),
        "customer_orders": ("gold", "consumer-aligned"),  # declared
    }
    assert got["customer_orders"]["alignment_declared"]
    assert not got["revenue_by_day"]["alignment_declared"]
    assert (got["orders"]["owner"], got["orders"]["steward"]) == (
        "shop-team@example.com", "finance-data@example.com")
    assert got["clean_orders"]["upstream"] == ["orders"]
    assert got["clean_orders"]["downstream"] == ["revenue_by_day", "customer_orders"]
    revenue = {c["name"]: c["from"] for c in got["revenue_by_day"]["columns"]}
    assert revenue["revenue"] == [{"table": "clean_orders", "column": "amount",
                                   "kind": "aggregation", "masking": False}]


PROJECT_TABLES = ("orders", "clean_orders", "revenue_by_day", "customer_orders")


def test_cli_catalog_show_text_json_and_a_wrong_name(root: Path, cli: Cli) -> None:
    code, out, _ = cli("catalog", "show", "revenue_by_day", "--project", root)
    assert code == 0
    assert "layer gold (zone exploitation), aggregate (inferred)" in out
    assert "owner: finance@example.com" in out and "clean_orders.amount (aggregation)" in out
    code, out, _ = cli("catalog", "show", "orders", "--project", root, "--format", "json")
    assert code == 0 and json.loads(out)["steward"] == "finance-data@example.com"
    code, _, err = cli("catalog", "show", "order", "--project", root)
    assert code != 0 and "no table named 'order'" in err and "did you mean 'orders'" in err


def _search(root: Path, text: str) -> list[str]:
    return [h["name"] for h in andon.Session(andon.Project.load(root), "alice")
            .catalog_search(text)]


def _search_everything(root: Path) -> None:
    """What search finds, the same on every store."""
    revenue = _search(root, "revenue")
    assert revenue[0] == "revenue_by_day.revenue"  # the name is all it says: first
    assert set(revenue) == {"revenue_by_day.revenue", "revenue_by_day",
                            "customer_orders.day_revenue",  # a word of its name
                            "revenue_by_day.order_lines", "revenue_by_day.ordered_on"}
    assert _search(root, "finance dashboard") == ["revenue_by_day"]  # a description
    assert _search(root, "steward finance-data") == ["orders"]  # a steward, as words
    assert _search(root, "shop-team@example.com") == ["orders"]  # an owner, as written
    assert _search(root, "sales") == ["orders"]  # a tag
    assert set(_search(root, "ordered_on")) == {
        "orders.ordered_on", "clean_orders.ordered_on", "revenue_by_day.ordered_on"}
    assert set(_search(root, "cust")) == {  # a prefix
        "customer_orders", "orders.customer_id", "clean_orders.customer_id",
        "customer_orders.customer_id", "customer_orders.product",
        "customer_orders.day_revenue"}
    assert _search(root, "gold aggregate") == ["revenue_by_day"]  # layer and alignment
    assert _search(root, "nothing like this") == []
    assert _search(root, "'\"*)(") == []  # punctuation never reaches the query language


def test_search_ranks_names_first_with_sqlite_fts5(root: Path) -> None:
    _search_everything(root)


@pytest.mark.postgres
def test_search_with_postgresql_full_text(tmp_path: Path, postgres_url: str) -> None:
    root = _make(tmp_path / "pg", postgres_url)
    project = andon.Project.load(root)
    assert project.store.engine.dialect.name == "postgresql"
    project.close()
    _search_everything(root)


def test_the_index_follows_the_code(tmp_path: Path) -> None:
    root = _make(tmp_path / "p")
    assert _search(root, "dashboard") == ["revenue_by_day"]
    path = root / "pipelines/shop/revenue_by_day.sql"
    path.write_text(path.read_text().replace("finance dashboard", "board meeting"))
    assert _search(root, "dashboard") == []
    assert _search(root, "meeting") == ["revenue_by_day"]


def test_cli_search_and_the_http_api(root: Path, cli: Cli) -> None:
    code, out, _ = cli("catalog", "search", "finance", "--project", root, "--format", "json")
    assert code == 0
    hits = json.loads(out)
    assert [h["name"] for h in hits][:1] == ["revenue_by_day"] and hits[0]["rank"] > 0
    with served(andon.Project.load(root)) as client:
        r = client.get("/api/catalog/search", params={"q": "steward finance-data"})
        assert r.status_code == 200 and [h["name"] for h in r.json()["hits"]] == ["orders"]
        r = client.get("/api/catalog/tables/clean_orders")
        assert r.status_code == 200 and r.json()["layer"] == "silver"
        error = error_of(client.get("/api/catalog/tables/clean_order"), 404)
        assert "did you mean 'clean_orders'" in error["hint"]
        page = client.get("/search", params={"q": "revenue"})
        assert page.status_code == 200 and 'href="/tables/revenue_by_day"' in page.text


def test_the_lineage_view_draws_inputs_the_table_and_its_readers(root: Path) -> None:
    from andon.lineage import for_environment

    v = view(for_environment(andon.Project.load(root)), "clean_orders")
    sides = {(c["side"], c["table"], c["name"]) for c in v.columns}
    assert ("up", "orders", "amount") in sides and ("self", "clean_orders", "product") in sides
    assert ("down", "revenue_by_day", "revenue") in sides
    assert ("down", "customer_orders", "product") in sides
    titles = {e["title"] for e in v.edges}
    assert "orders.product → clean_orders.product (transformation)" in titles
    assert "clean_orders.amount → revenue_by_day.revenue (aggregation)" in titles
    for e in v.edges:  # left to right, inside the drawing
        assert 0 < e["x1"] < e["x2"] <= v.width - BOX_W and 0 <= e["y1"] <= v.height


def test_every_setting_of_the_catalog_is_documented() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "catalog.md").read_text()
    for key in ("steward", "alignment", "column_tags", "masks", "pii", "owner", "read_pii"):
        assert f"`{key}" in text, f"docs/catalog.md: {key}"
    from andon.catalog import ALIGNMENTS, LAYERS

    for word in (*LAYERS, *ALIGNMENTS):
        assert f"**{word}**" in text, f"docs/catalog.md: {word}"
