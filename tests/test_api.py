"""The HTTP API over real HTTP on the flights example: the same verbs, shapes and errors as
the CLI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from andon.project import Project
from andon.service import Session, local_user
from tests.apikit import error_of, events, served
from tests.conftest import Cli, ProjectFactory


@pytest.fixture(scope="module")
def project(flights_template: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Project]:
    """The flights example with prod built once (months 1-6)."""
    root = tmp_path_factory.mktemp("api") / "flights"
    shutil.copytree(flights_template, root)
    proj = Project.load(root)
    assert Session(proj, local_user()).run().ok
    yield proj
    proj.close()


@pytest.fixture(scope="module")
def api(project: Project) -> Iterator[httpx.Client]:
    with served(project) as client:
        yield client


def test_openapi_describes_the_api(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/api/tables", "/api/tables/{table}", "/api/runs", "/api/runs/{run_ref}",
                 "/api/runs/{run_id}/events", "/api/plans", "/api/query", "/api/checks",
                 "/api/environments/{name}/promote", "/api/secrets", "/api/tokens"):
        assert path in paths, path
    assert "post" in paths["/api/runs"] and "get" in paths["/api/runs"]


def test_tables_list_every_published_table_with_its_health(api: httpx.Client,
                                                           project: Project) -> None:
    body = api.get("/api/tables").json()
    assert body["environment"] == "prod"
    by_name = {t["table"]: t for t in body["tables"]}
    assert set(by_name) == {t.table for t in Session(project, "x").tables()}
    kpis = by_name["daily_carrier_kpis"]
    assert kpis["rows"] > 0 and kpis["zone"] == "exploitation"
    assert kpis["health"]["state"] in ("ok", "warning", "failing")
    assert sum(kpis["health"]["checks"].values()) > 0
    # a failing warn check of the example (cancelled flights' share) shows as a warning
    states = {t["health"]["state"] for t in body["tables"]}
    assert states <= {"ok", "warning", "failing", "unchecked"}


def test_table_page_has_schema_rows_profile_lineage_and_owner(api: httpx.Client) -> None:
    page = api.get("/api/tables/flights", params={"rows": 3}).json()
    columns = [c["name"] for c in page["schema"]]
    assert "carrier" in columns and len(page["sample"]) == 3
    assert set(page["sample"][0]) == set(columns)
    assert set(page["profile"]["columns"]) == set(columns)
    assert page["profile"]["rows"] == page["rows"]
    assert [u["name"] for u in page["upstream"]] == ["raw_flights"]
    assert "flights_enriched" in [d["name"] for d in page["downstream"]]
    assert page["owners"] == [page["owner"]] and page["owner"]
    assert {c["check_name"] for c in page["checks"]}
    lineage = api.get("/api/tables/flights/lineage").json()
    assert lineage["upstream"] == page["upstream"]


def test_unknown_names_are_404_with_did_you_mean(api: httpx.Client) -> None:
    error = error_of(api.get("/api/tables/fligths"), 404)
    assert error["kind"] == "not_found" and "'flights'" in error["hint"]
    error = error_of(api.get("/api/environments/prdo/log"), 404)
    assert "'prod'" in error["hint"]
    error_of(api.get("/api/runs/999999"), 404)
    error = error_of(api.get("/api/no-such-thing"), 404)
    assert "/openapi.json" in error["hint"]


@pytest.mark.parametrize("url", [
    "/api/tables/..%2F..%2Fetc%2Fpasswd",
    "/api/tables/%2e%2e",
    "/api/tables/flights?environment=..%2Fprod",
    "/api/environments/%2E%2E%2Fx/log",
    "/api/checks/..%5Cx/history",
])
def test_path_traversal_in_names_is_refused(api: httpx.Client, url: str) -> None:
    error = error_of(api.get(url), 400)
    assert error["kind"] == "invalid" and ("name" in error["message"]
                                           or "traversal" in error["message"])


def test_start_a_run_and_follow_it_to_the_end(api: httpx.Client, cli: Cli,
                                              project: Project) -> None:
    assert api.post("/api/environments", json={"name": "follow"}).status_code == 201
    started = api.post("/api/runs", json={"environment": "follow",
                                          "selection": ["+daily_carrier_kpis"],
                                          "params": {"on_time_minutes": 25}})
    assert started.status_code == 202, started.text
    run = started.json()
    seen = events(api, run["events"])
    kinds = [k for k, _ in seen]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    plan = seen[0][1]
    finished = [d["name"] for k, d in seen if k == "step_finished"]
    assert sorted(finished) == sorted(s["name"] for s in plan["steps"])
    result = seen[-1][1]
    assert result["id"] == run["id"] and result["status"] == "succeeded"
    built = [d["name"] for k, d in seen if k == "step_finished" and d["action"] == "built"]
    assert "daily_carrier_kpis" in built  # the parameter changed its fingerprint
    # a follower arriving after the end gets the rest from where it says it was
    again = events(api, run["events"], **{"Last-Event-ID": str(len(seen) - 2)})
    assert [k for k, _ in again] == ["run_finished"]
    # the details are those of `andon runs show --format json`
    details = api.get(run["url"]).json()
    code, out, _ = cli("runs", "show", str(run["id"]), "-p", project.root, "-f", "json")
    assert code == 0 and details == json.loads(out)
    assert details["params"]["on_time_minutes"] == 25 and details["environment"] == "follow"


def test_a_run_the_api_did_not_start_is_followed_from_the_store(api: httpx.Client) -> None:
    seen = events(api, "/api/runs/1/events")
    assert seen[-1][0] == "run_finished" and seen[-1][1]["status"] == "succeeded"
    assert len(seen) == len(seen[-1][1]["steps"]) + 1


def test_runs_list_pages_and_filters(api: httpx.Client, project: Project) -> None:
    for _ in range(2):
        assert Session(project, local_user()).run("prod").ok
    first = api.get("/api/runs", params={"limit": 2, "environment": "prod"}).json()
    assert len(first["runs"]) == 2 and first["next"]
    second = api.get(first["next"]).json()
    ids = [r["id"] for r in first["runs"] + second["runs"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert {r["environment"] for r in first["runs"] + second["runs"]} == {"prod"}
    ok = api.get("/api/runs", params={"status": "succeeded"}).json()["runs"]
    assert ok and {r["status"] for r in ok} == {"succeeded"}
    error = error_of(api.get("/api/runs", params={"status": "succeded"}), 400)
    assert "'succeeded'" in error["hint"]


def test_plan_is_a_dry_run(api: httpx.Client, project: Project) -> None:
    before = api.get("/api/runs", params={"limit": 1}).json()["runs"][0]["id"]
    plan = api.post("/api/plans", json={"selection": ["daily_carrier_kpis"],
                                        "params": {"on_time_minutes": 40}}).json()
    assert [s["name"] for s in plan["steps"]] == ["daily_carrier_kpis"]
    assert plan["steps"][0]["action"] == "build" and plan["params"]["on_time_minutes"] == 40
    assert api.get("/api/runs", params={"limit": 1}).json()["runs"][0]["id"] == before


def test_promote_moves_prod_to_the_checked_candidate(api: httpx.Client) -> None:
    assert api.post("/api/environments", json={"name": "kpi-change"}).status_code == 201
    before = api.get("/api/tables/daily_carrier_kpis").json()["fingerprint"]
    run = api.post("/api/runs", json={"environment": "kpi-change",
                                      "params": {"on_time_minutes": 30}}).json()
    assert events(api, run["events"])[-1][1]["status"] == "succeeded"
    dry = api.post("/api/environments/kpi-change/promote", json={"dry_run": True}).json()
    assert dry["status"] == "dry-run" and "daily_carrier_kpis" in dry["changed"]
    done = api.post("/api/environments/kpi-change/promote", json={"target": "prod"})
    assert done.status_code == 200, done.text
    promotion = done.json()
    assert promotion["status"] == "promoted"
    assert not [c for c in promotion["checks"] if c["status"] == "failed"
                and c["severity"] == "error"]
    envs = {e["name"]: e for e in api.get("/api/environments").json()["environments"]}
    assert envs["prod"]["commit"] == promotion["commit"]
    # the table page shows prod's new artifact, the branch's (pages are kept per commit)
    branch = api.get("/api/tables/daily_carrier_kpis",
                     params={"environment": "kpi-change"}).json()["fingerprint"]
    after = api.get("/api/tables/daily_carrier_kpis").json()["fingerprint"]
    assert after == branch != before
    log = api.get("/api/environments/prod/log").json()["log"]
    assert promotion["commit"] in json.dumps(log[-1]) or promotion["commit"] in json.dumps(log[0])
    diff = api.get("/api/environments/kpi-change/diff/prod", params={"data": "false"}).json()
    assert diff


def test_malformed_bodies_are_422_in_the_error_shape(api: httpx.Client) -> None:
    error = error_of(api.post("/api/runs", content=b"{not json",
                              headers={"content-type": "application/json"}), 422)
    assert error["kind"] == "invalid" and "JSON" in error["message"]
    error = error_of(api.post("/api/runs", json={"environment": "prod", "selectoin": ["a"]}),
                     422)
    assert "selectoin" in error["message"] and "unknown fields" in error["hint"]
    error = error_of(api.post("/api/environments", json={}), 422)
    assert "name" in error["message"]


def test_sql_reads_only_the_environments_tables(api: httpx.Client) -> None:
    rows = api.post("/api/query", json={"sql": "SELECT count(*) AS n FROM airlines"}).json()
    assert rows["columns"] == ["n"] and rows["rows"][0][0] > 0
    for sql in ("SELECT * FROM read_csv('/etc/passwd')",
                "SELECT * FROM read_text('/etc/hostname')",
                "SELECT * FROM '/etc/passwd'"):
        error = error_of(api.post("/api/query", json={"sql": sql}), 400)
        assert "root:" not in json.dumps(error), sql
    error = error_of(api.post("/api/query", json={"sql": "DELETE FROM airlines"}), 400)
    assert "SELECT" in error["message"]


def test_secrets_are_listed_by_name_only(api: httpx.Client, project: Project) -> None:
    Session(project, local_user()).secrets_set("api_key", "s3cr3t-value-xyz")
    response = api.get("/api/secrets")
    assert [s["name"] for s in response.json()["secrets"]] == ["api_key"]
    assert "s3cr3t-value-xyz" not in response.text and "ciphertext" not in response.text


def test_checks_history_and_ack(api: httpx.Client) -> None:
    checks = api.get("/api/checks").json()["checks"]
    name = next(c["name"] for c in checks if c["table"] == "flights")
    history = api.get(f"/api/checks/{name}/history").json()["results"]
    assert history and history[-1]["status"] in ("passed", "failed", "recorded")
    acked = api.post(f"/api/checks/{name}/ack", json={"note": "expected"}).json()
    assert acked["acknowledged"] and acked["ack_note"] == "expected"
    assert api.get(f"/api/checks/{name}/history").json()["results"][-1]["acknowledged"]
    run_checks = api.get("/api/runs/1/checks").json()["checks"]
    assert {c["check_name"] for c in run_checks} >= {name}


def test_who_am_i_on_loopback_without_users(api: httpx.Client) -> None:
    assert api.get("/api/me").json() == {"user": local_user(), "role": "admin"}


def test_cancelling_a_finished_run_is_a_conflict(api: httpx.Client) -> None:
    error = error_of(api.post("/api/runs/1/cancel"), 409)
    assert error["kind"] == "conflict" and "run" in error["message"]
    error_of(api.post("/api/runs/999999/cancel"), 404)


SLOW = {
    "andon.yaml": "name: slow\n",
    "pipelines/p/base.sql": "SELECT 1 AS x",
    "pipelines/p/slow.py": """
        import time
        import andon
        import pyarrow as pa

        @andon.step
        def slow(base: pa.Table) -> pa.Table:
            time.sleep(8)
            return base
    """,
}


def test_cancel_a_running_run_and_see_it_end(make_project: ProjectFactory) -> None:
    project = Project.load(make_project(SLOW))
    try:
        with served(project) as api:
            run = api.post("/api/runs", json={}).json()
            with api.stream("GET", run["events"]) as stream:  # wait until `slow` builds
                for line in stream.iter_lines():
                    if line.startswith("data: ") and '"step":"slow"' in line:
                        break  # and hang up mid-run: the run goes on
            busy = error_of(api.post("/api/runs", json={}), 409)
            assert "is being changed by run" in busy["message"]
            assert api.post(f"/api/runs/{run['id']}/cancel").status_code == 202
            seen = events(api, run["events"])
            assert seen[-1][0] == "run_finished" and seen[-1][1]["status"] == "cancelled"
            assert api.get(run["url"]).json()["status"] == "cancelled"
            assert project.store.environment("prod") is None  # nothing was published
    finally:
        project.close()


def test_andon_server_serves_the_api_until_stopped(project: Project) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(project.root),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/tables")
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["tables"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/api" in out
    assert "no users are configured" in err


def test_without_the_server_extra_andon_server_says_what_to_install(project: Project) -> None:
    # an interpreter where FastAPI cannot be imported, as without `andon[server]`
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "from andon.cli import run_cli\n"
            f"sys.exit(run_cli(['server', '-p', {str(project.root)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "needs fastapi" in done.stderr and "pip install 'andon[server]'" in done.stderr


# the UI's session cookie, over HTTP ---------------------------------------------------------

TINY = {"andon.yaml": "name: tiny\n", "pipelines/p/numbers.sql": "SELECT 1 AS x"}


def _cookie(response: httpx.Response) -> tuple[str, str]:
    """The value and the attributes (lower case) of the session cookie a response sets."""
    header = next(h for h in response.headers.get_list("set-cookie")
                  if h.startswith("andon_session="))
    value, _, attributes = header.partition(";")
    return value.removeprefix("andon_session="), attributes.lower()


def test_sign_in_with_a_token_gives_a_session_cookie_the_api_accepts(
        make_project: ProjectFactory) -> None:
    project = Project.load(make_project(TINY))
    admin = _team(project)
    token = admin.tokens_create("ann-ui", "developer", user="ann")
    admin_token = admin.tokens_create("admin-bot", "admin")
    try:
        with served(project) as api:
            # users exist: no token, no page; the page is the sign-in form
            error_of(api.get("/api/me"), 401)
            page = api.get("/runs")
            assert page.status_code == 401 and 'name="token"' in page.text
            assert 'value="/runs"' in page.text  # where to go back after signing in
            refused = api.post("/signin", data={"token": "andon_wrong", "next": "/runs"})
            assert refused.status_code == 401 and "unknown API token" in refused.text
            assert "andon_session" not in refused.headers.get("set-cookie", "")
            signed = api.post("/signin", data={"token": token, "next": "/runs"})
            assert signed.status_code == 303 and signed.headers["location"] == "/runs"
            value, attributes = _cookie(signed)
            assert "httponly" in attributes and "samesite=strict" in attributes
            assert "path=/" in attributes and "max-age=43200" in attributes
            assert "secure" not in attributes  # served over http
            assert token not in value and token.removeprefix("andon_") not in value
            jar = {"Cookie": f"andon_session={value}"}
            assert api.get("/api/me", headers=jar).json() == {"user": "ann",
                                                              "role": "developer"}
            assert api.get("/runs", headers=jar).status_code == 200
            # a change with the cookie needs the UI's own header (another site cannot send it)
            made = api.post("/api/environments", json={"name": "annx"}, headers=jar)
            assert error_of(made, 403)["kind"] == "forbidden"
            assert project.store.environment("annx") is None
            made = api.post("/api/environments", json={"name": "annx"},
                            headers={**jar, "HX-Request": "true"})
            assert made.status_code == 201, made.text
            # a forged or altered cookie is refused
            forged = {"Cookie": "andon_session=" + value[:-2] + ("AA" if value[-2:] != "AA"
                                                                 else "BB")}
            assert "not valid" in error_of(api.get("/api/me", headers=forged), 401)["message"]
            # revoking the token ends the session
            revoked = api.delete("/api/tokens/ann-ui",
                                 headers={"Authorization": f"Bearer {admin_token}"})
            assert revoked.status_code in (200, 204), revoked.text
            error_of(api.get("/api/me", headers=jar), 401)
            out = api.post("/signout", headers=jar)
            assert out.status_code == 303 and out.headers["location"] == "/signin"
            assert "max-age=0" in _cookie(out)[1]
    finally:
        project.close()


def _team(project: Project) -> Session:
    """Users configured (so every request needs a token): this machine's user, an admin
    acting through the returned session, and ann, a developer."""
    admin = Session(project, local_user())
    assert admin.run().ok
    admin.users_add(local_user(), "admin")
    admin.users_add("ann", "developer")
    return admin


def test_sign_in_is_secure_over_https_bounded_by_the_token_and_stays_on_this_site(
        make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project.load(make_project(TINY))
    token = _team(project).tokens_create("short", "viewer", user="ann", expires="1h")
    try:
        with served(project) as api:
            # behind a proxy on this machine that terminates https (uvicorn trusts loopback)
            signed = api.post("/signin", data={"token": token, "next": "https://evil.example/"},
                              headers={"X-Forwarded-Proto": "https"})
            assert signed.headers["location"] == "/"  # never sent to another site
            value, attributes = _cookie(signed)
            assert "secure" in attributes
            max_age = int(attributes.split("max-age=")[1].split(";")[0])
            assert 3500 < max_age <= 3600  # the token expires in an hour: so does the session
            other = api.post("/signin", data={"token": token},
                             headers={"Origin": "https://evil.example"})
            assert other.status_code == 403 and "another site" in other.text
            assert "andon_session" not in other.headers.get("set-cookie", "")
            assert (project.root / ".andon" / "session.key").stat().st_mode & 0o077 == 0
            # a cookie signed with another key (another server's) is refused
            jar = {"Cookie": f"andon_session={value}"}
            assert api.get("/api/me", headers=jar).status_code == 200
            monkeypatch.setenv("ANDON_SESSION_KEY", "the key of another server")
            error_of(api.get("/api/me", headers=jar), 401)
    finally:
        project.close()


def test_unknown_pages_are_html_and_unknown_api_paths_json(api: httpx.Client) -> None:
    page = api.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "/no-such-page" in page.text and 'href="/"' in page.text
    error = error_of(api.get("/api/no-such-thing"), 404)
    assert "/openapi.json" in error["hint"]
    assert api.get("/static/no-such.js").headers["content-type"].startswith("application/json")
