"""The catalog in a real headless Chromium (Debian's, driven by Playwright): a table page
draws its column lineage and categories without a console error, and the header's search
box leads to ranked hits that link to their tables."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

import andon
from tests.apikit import served
from tests.test_catalog import _make

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root: Path = _make(tmp_path_factory.mktemp("catalog-ui"))
    with served(andon.Project.load(root)) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: the UI tests must run under CI")
        pytest.skip(reason)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: httpx.Client) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(base_url=str(server.base_url))
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    yield opened, errors
    context.close()


def test_a_table_page_draws_its_column_lineage(page: tuple[Page, list[str]]) -> None:
    p, errors = page
    response = p.goto("/tables/clean_orders")
    assert response is not None and response.status == 200
    svg = p.locator("svg.lineage")
    assert svg.is_visible()
    columns = svg.locator("g.column").evaluate_all(
        "gs => gs.map(g => g.getAttribute('data-column'))")
    assert {"orders.amount", "clean_orders.amount", "revenue_by_day.revenue",
            "customer_orders.product"} <= set(columns)
    titles = svg.locator("path.edge title").all_text_contents()
    assert "clean_orders.amount → revenue_by_day.revenue (aggregation)" in titles
    box = svg.bounding_box()
    assert box is not None and box["width"] > 600  # three sides drawn, not collapsed
    assert p.locator("dd.category").inner_text() == "silver, source-aligned (inferred)"
    p.locator("svg.lineage a", has_text="revenue_by_day").first.click()
    p.wait_for_url("**/tables/revenue_by_day")
    assert errors == []


def test_the_header_search_box_finds_tables_and_columns(page: tuple[Page, list[str]]
                                                        ) -> None:
    p, errors = page
    p.goto("/")
    box = p.locator("header form.search input[name=q]")
    box.fill("finance dashboard")
    box.press("Enter")
    p.wait_for_url("**/search?q=finance+dashboard")
    hits = p.locator("table.hits tbody tr")
    assert hits.count() == 1 and "revenue_by_day" in hits.first.inner_text()
    hits.first.locator("a").click()
    p.wait_for_url("**/tables/revenue_by_day")
    p.goto("/search?q=nothing+like+this")
    assert "nothing matches every word" in p.locator("table.hits").inner_text()
    assert errors == []
