"""The web UI in a real headless Chromium (Debian's, driven by Playwright) on the flights
example served over loopback: every page loads without a console error, the SPC chart draws
its control limits, a run started from the UI is watched to its end, and a promotion is
checked and made from the UI. The layered layout of the pipeline graph is tested alone."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from andon.project import Project
from andon.server import graph
from andon.server.trends import bars, sparkline
from andon.service import Session, local_user
from tests.apikit import served
from tests.conftest import ProjectFactory

CHROMIUM = shutil.which("chromium")
ARRIVALS = 5  # monthly files played after the first build: enough history to judge SPC
SPC_CHECK = "flights.rows_per_month"


# the pipeline graph's layout, without a browser ---------------------------------------------


def test_layers_are_longest_paths_from_the_sources() -> None:
    parents = {"a": [], "b": ["a"], "c": ["a", "b"], "d": [], "e": ["d", "c"]}
    assert graph.layers(parents) == {"a": 0, "b": 1, "c": 2, "d": 0, "e": 3}


def test_layout_places_every_step_once_and_edges_run_left_to_right() -> None:
    parents = {f"s{i}": [f"s{i - 1}", f"s{i - 2}"][: min(i, 2)] for i in range(40)}
    parents.update({f"leaf{i}": ["s0"] for i in range(30)})
    placed = graph.layout(parents)
    assert sorted(n.name for n in placed.nodes) == sorted(parents)
    spots = {(n.x, n.y) for n in placed.nodes}
    assert len(spots) == len(parents), "two steps drawn on one spot"
    at = {n.name: n for n in placed.nodes}
    for e in placed.edges:
        assert at[e.parent].x < at[e.child].x, e
    assert len(placed.edges) == sum(len(p) for p in parents.values())
    assert all(0 <= n.y <= placed.height - graph.NODE_H for n in placed.nodes)
    assert max(n.x for n in placed.nodes) + graph.NODE_W <= placed.width


def test_layout_ignores_parents_outside_the_selection() -> None:
    placed = graph.layout({"flights": ["raw_flights"], "kpis": ["flights"]})
    assert {n.name: n.layer for n in placed.nodes} == {"flights": 0, "kpis": 1}
    assert [(e.parent, e.child) for e in placed.edges] == [("flights", "kpis")]


def test_sparkline_spans_its_box_from_the_lowest_to_the_highest_value() -> None:
    points = [tuple(map(float, p.split(","))) for p in sparkline([5, 7, 6], 96, 20).split()]
    assert [x for x, _ in points] == [0.0, 48.0, 96.0]
    assert [y for _, y in points] == [19.0, 1.0, 10.0]  # SVG y grows downwards
    assert sparkline([]) == "" and len(sparkline([3, 3]).split()) == 2


def test_top_value_bars_are_scaled_to_the_most_frequent() -> None:
    assert [b["width"] for b in bars([["UA", 1766], ["B6", 883]], width=200)] == [200.0, 100.0]


# the browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: the UI tests must run under CI")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def project(flights_template: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Project]:
    """The flights example built in prod, then five monthly arrivals, each in its own run:
    the SPC check on the newest month's rows has enough history to draw its limits."""
    root = tmp_path_factory.mktemp("ui") / "flights"
    shutil.copytree(flights_template, root)
    proj = Project.load(root)
    session = Session(proj, local_user())
    assert session.run().ok
    for arrival in sorted((root / "arrivals").glob("*.csv"))[:ARRIVALS]:
        arrival.rename(root / "incoming" / "flights" / arrival.name)
        assert session.run().ok
    yield proj
    proj.close()


@pytest.fixture(scope="module")
def server(project: Project) -> Iterator[httpx.Client]:
    with served(project) as client:
        yield client


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


class Console:
    """Errors a page reports: console errors and uncaught exceptions."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url')})")


@pytest.fixture
def page(browser: Browser, server: httpx.Client) -> Iterator[Page]:
    context = browser.new_context(base_url=str(server.base_url))
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()


def _open(page: Page, path: str) -> int:
    response = page.goto(path)
    assert response is not None
    return response.status


def test_every_page_loads_without_console_errors(page: Page, server: httpx.Client,
                                                 project: Project) -> None:
    console = Console(page)
    tables = server.get("/api/tables").json()["tables"]
    for path, heading in [("/", "Tables of prod"), ("/pipeline", "Pipeline"),
                          ("/runs", "Runs"), ("/runs/1", "Run 1"),
                          ("/tables/flights", "flights"), ("/checks", "Checks"),
                          (f"/checks/{SPC_CHECK}", SPC_CHECK),
                          ("/environments", "Environments"),
                          ("/environments?a=prod&b=prod", "Environments"),
                          ("/analytics", "Analytics")]:
        assert _open(page, path) == 200, path
        assert page.locator("h1").inner_text() == heading
        twin = page.locator("header a.twin").get_attribute("href")
        assert twin and twin.startswith("/api/"), path
        assert server.get(twin).status_code == 200, twin  # the JSON twin answers
    assert console.errors == []
    _open(page, "/")
    shown = page.locator("table.list tbody tr td:first-child a").all_inner_texts()
    assert sorted(shown) == sorted(t["table"] for t in tables)
    flights = page.locator("tr", has=page.locator("a", has_text="daily_carrier_kpis"))
    assert flights.locator("svg.spark polyline").count() == 1  # several builds: a trend
    _open(page, "/runs/1")  # the example's failing warn checks keep their failing rows
    kept = [c for c in server.get("/api/runs/1/checks").json()["checks"]
            if c["status"] == "failed" and c["sample"]]
    assert kept and page.locator("details summary", has_text="failing rows").count() == len(kept)
    page.locator("details summary").first.click()
    assert page.locator("details table.sample tbody tr").first.is_visible()


def test_pipeline_graph_draws_each_step_with_its_status(page: Page, project: Project,
                                                        server: httpx.Client) -> None:
    _open(page, "/pipeline")
    steps = project.dag.steps
    nodes = page.locator("#dag g.node")
    assert nodes.count() == len(steps)
    assert page.locator("#dag .edges path").count() == sum(len(s.parents)
                                                          for s in steps.values())
    latest = server.get("/api/runs/latest").json()
    for step in latest["steps"]:
        node = page.locator(f"#dag g.node[data-step={step['name']}]")
        assert step["action"] in (node.get_attribute("class") or "").split(), step
    _open(page, "/pipeline?select=%2Bflights")  # flights and its ancestors
    assert page.locator("#dag g.node").count() == 2


def test_table_page_shows_schema_profile_lineage_and_rows_history(page: Page,
                                                                   server: httpx.Client
                                                                   ) -> None:
    console = Console(page)
    _open(page, "/tables/flights")
    twin = server.get("/api/tables/flights").json()
    columns = page.locator("table.profile tbody tr td:first-child").all_inner_texts()
    assert columns == [c["name"] for c in twin["schema"]]
    assert page.locator("svg.hist").count() >= 1  # the top values of some columns
    assert page.locator("ul.tree a", has_text="raw_flights").count() == 1
    assert page.locator("ul.tree a", has_text="daily_carrier_kpis").count() == 1
    page.wait_for_selector("#rows-chart canvas")
    rows = page.evaluate("JSON.parse(document.getElementById('rows-data').textContent)")
    assert len(rows["rows"]) == 1 + ARRIVALS and rows["rows"][-1] == twin["rows"]
    assert console.errors == []


def test_unknown_table_is_a_404_page_with_did_you_mean(page: Page, server: httpx.Client
                                                       ) -> None:
    assert _open(page, "/tables/flightz") == 404
    error = server.get("/api/tables/flightz").json()["error"]
    assert page.locator(".error .message").inner_text() == f"{error['kind']}: {error['message']}"
    assert page.locator(".error .hint").inner_text() == error["hint"]
    assert "flights" in error["hint"]


def test_spc_chart_renders_with_its_control_limits(page: Page, server: httpx.Client) -> None:
    console = Console(page)
    _open(page, f"/checks/{SPC_CHECK}")
    page.wait_for_selector("#check-chart canvas")
    series: dict[str, list[Any]] = page.evaluate(
        "JSON.parse(document.getElementById('check-data').textContent)")
    history = server.get(f"/api/checks/{SPC_CHECK}/history", params={"limit": 500}).json()
    judged = [r["spc"] for r in history["results"] if r["spc"] and r["spc"]["judged"]]
    assert judged, "the example's arrivals give the SPC check enough history to judge"
    assert series["upper"][-1] == judged[-1]["upper"]
    assert series["lower"][-1] == judged[-1]["lower"]
    assert series["lower"][-1] < series["mean"][-1] < series["upper"][-1]
    legend = page.locator("#check-chart .u-legend").inner_text()
    assert "upper limit" in legend and "lower limit" in legend
    assert page.locator("h2", has_text="with control limits").count() == 1
    assert console.errors == []


def test_analytics_page_charts_the_report(page: Page, server: httpx.Client) -> None:
    console = Console(page)
    _open(page, "/analytics?since=30d")
    page.wait_for_selector("#runs-chart canvas")
    page.wait_for_selector("#checks-chart canvas")
    report = server.get("/api/report", params={"since": "30d"}).json()
    charted = page.evaluate("JSON.parse(document.getElementById('runs-data').textContent)")
    runs = next(s["values"] for s in charted["series"] if s["label"] == "runs")
    assert sum(runs) == report["runs"]["runs"] >= 1 + ARRIVALS
    shown = page.locator("table.list").nth(1).locator("tbody td:first-child").all_inner_texts()
    assert shown == [s["source"] for s in report["sources"]]
    assert console.errors == []
    assert _open(page, "/analytics?since=soon") == 400
    assert "30d" in page.locator(".error .hint").inner_text()


def test_a_failed_result_is_acknowledged_from_its_check_page(page: Page, server: httpx.Client,
                                                             project: Project) -> None:
    session = Session(project, local_user())
    failing = [(c["name"], r) for c in session.checks_list()
               for r in session.checks_history(c["name"], None, 50)
               if r["status"] == "failed" and not r["acknowledged"]]
    assert failing, "the example has a failing warn check (cancelled flights' share)"
    name, result = failing[-1]
    _open(page, f"/checks/{name}")
    page.once("dialog", lambda d: d.accept("a storm day"))
    page.locator(f"#ack-{result['id']} button").click()
    page.wait_for_selector(f"#ack-{result['id']} >> text=acknowledged by")
    after = [r for r in session.checks_history(name, None, 50) if r["id"] == result["id"]]
    assert after[0]["acknowledged"]


def test_an_action_not_sent_by_the_ui_is_refused_and_changes_nothing(server: httpx.Client
                                                                     ) -> None:
    before = server.get("/api/runs").json()["runs"]
    response = server.post("/runs", data={"environment": "prod"})
    assert response.status_code == 403 and "HX-Request" in response.text
    assert server.get("/api/runs").json()["runs"] == before
    ended = server.post("/runs/1/cancel", headers={"HX-Request": "true"})
    assert ended.status_code == 409 and 'role="alert"' in ended.text  # the error, in place
    assert server.get("/api/runs/1").json()["status"] == "succeeded"


def test_runs_list_pages_and_filters(page: Page, server: httpx.Client,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from andon.server import ui

    monkeypatch.setattr(ui, "PAGE", 2)
    every = [r["id"] for r in server.get("/api/runs", params={"limit": 500}).json()["runs"]]
    _open(page, "/runs")
    first = page.locator("table.list tbody td:first-child a").all_inner_texts()
    assert first == [str(i) for i in every[:2]]
    page.locator(".paging a").click()
    page.wait_for_url(re.compile(r"[?&]before="))  # a glob: not in Playwright 1.45
    assert page.locator("table.list tbody td:first-child a").all_inner_texts() == [
        str(i) for i in every[2:4]]
    _open(page, "/runs?status=failed")
    assert page.locator("table.list tbody").inner_text().strip() == "no runs match the filter"


def test_a_run_started_from_the_ui_is_watched_to_its_end(page: Page,
                                                         server: httpx.Client) -> None:
    console = Console(page)
    before = server.get("/api/runs").json()["runs"][0]["id"]
    _open(page, "/runs")
    page.locator("#start-run").click()
    page.wait_for_url("**/runs/*")
    run_id = int(page.url.rsplit("/", 1)[1])
    assert run_id > before
    page.wait_for_selector("#run-status.succeeded", timeout=120_000)  # htmx polls it
    details = server.get(f"/api/runs/{run_id}").json()
    assert details["status"] == "succeeded"
    shown = page.locator("table.timeline tbody td:first-child a").all_inner_texts()
    assert shown == [s["name"] for s in details["steps"]]
    assert page.locator("#live[hx-trigger]").count() == 0  # polling stops at the end
    assert console.errors == []


def test_promote_from_the_ui_after_checking_the_candidate(page: Page, server: httpx.Client,
                                                          project: Project) -> None:
    session = Session(project, local_user())
    session.env_create("dev")
    sql = project.root / "pipelines" / "flights" / "formatted" / "airlines.sql"
    sql.write_text(sql.read_text().replace("trim(name) AS name",
                                           "trim(name) AS name, length(name) AS name_length"))
    assert Session(Project.load(project.root), local_user()).run("dev").ok
    prod_before = next(e for e in session.env_list() if e["name"] == "prod")["commit"]
    console = Console(page)
    _open(page, "/environments")
    page.locator("button.check-promote[data-env=dev]").click()
    page.wait_for_selector("#promotion-status")
    assert page.locator("#promotion-status").inner_text() == "dry-run"
    assert "airlines" in page.locator("#promotion-report p").first.inner_text()
    assert page.locator("#promotion-report tbody tr").count() >= 3  # airlines' checks
    assert next(e for e in session.env_list() if e["name"] == "prod")["commit"] == prod_before
    page.once("dialog", lambda d: d.accept())
    page.locator("#promote").click()
    page.wait_for_selector("#promotion-status >> text=promoted")
    envs = {e["name"]: e for e in session.env_list()}
    assert envs["prod"]["commit"] != prod_before
    assert console.errors == []
    _open(page, "/")  # the new column shows as a schema change of airlines in prod
    airlines = page.locator("tr", has=page.locator("td:first-child a", has_text="airlines"))
    assert airlines.filter(has_not_text="raw_").locator("td.changed").inner_text() == "1"


# signing in ---------------------------------------------------------------------------------

TEAM_PROJECT = {"andon.yaml": "name: team\n",
                "pipelines/p/numbers.sql": "SELECT range AS n FROM range(5)",
                "pipelines/p/total.sql": "SELECT sum(n) AS total FROM numbers"}


def test_sign_in_then_pages_and_a_run_then_sign_out(browser: Browser,
                                                    make_project: ProjectFactory) -> None:
    """Once users exist a browser signs in with a token; its session drives the pages and
    the UI's actions, and signing out ends it."""
    project = Project.load(make_project(TEAM_PROJECT))
    admin = Session(project, local_user())
    assert admin.run().ok
    admin.users_add(local_user(), "admin")
    admin.users_add("olga", "operator")
    token = admin.tokens_create("olga-ui", "operator", user="olga")
    try:
        with served(project) as api:
            context = browser.new_context(base_url=str(api.base_url))
            page = context.new_page()
            page.set_default_timeout(30_000)
            console = Console(page)
            assert _open(page, "/runs") == 401  # no session: the sign-in form, here
            page.fill("#token", "andon_not-a-token")
            page.click("form.signin button")
            assert "unknown API token" in page.locator(".error").inner_text()
            page.fill("#token", token)
            page.click("form.signin button")
            page.wait_for_url("**/runs")  # back where the browser was going
            assert page.locator("header .who").first.inner_text() == "olga"
            cookie = next(c for c in context.cookies() if c["name"] == "andon_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert page.evaluate("document.cookie") == ""  # scripts cannot read it
            assert _open(page, "/") == 200
            assert page.locator("td:first-child a", has_text="total").count() == 1
            _open(page, "/runs")
            page.locator("#start-run").click()  # an htmx POST with the session
            page.wait_for_url("**/runs/*")
            page.wait_for_selector("#run-status.succeeded", timeout=120_000)
            run_id = int(page.url.rsplit("/", 1)[1])
            details = api.get(f"/api/runs/{run_id}",
                              headers={"Authorization": f"Bearer {token}"}).json()
            assert details["user"] == "olga" and details["status"] == "succeeded"
            page.click("header form.signout button")
            page.wait_for_url("**/signin")
            assert not [c for c in context.cookies() if c["name"] == "andon_session"]
            assert _open(page, "/") == 401
            assert _open(page, "/no-such-page") == 404
            assert "no page at" in page.locator(".error").inner_text()
            assert console.errors == [] or all("401" in e or "404" in e
                                               for e in console.errors)
            context.close()
    finally:
        project.close()
