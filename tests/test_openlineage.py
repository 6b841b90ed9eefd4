"""OpenLineage: every run emits RunEvents (START; COMPLETE, FAIL or ABORT) for the run and the
steps it builds, with datasets, schema and column-lineage facets and the checks as
data-quality assertions; valid against the spec's JSON schema; to a JSON-lines file by
default, to an HTTP server (a real one, in a thread) when configured."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest

import andon
from andon.events import NullListener, RunResult
from andon.execution.cancel import CancelToken
from andon.openlineage import run_uuid
from andon.secrets import set_secret
from tests.conftest import ProjectFactory

SCHEMA = json.loads((Path(__file__).parent / "data" / "openlineage-runevent.schema.json")
                    .read_text())
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)

YAML = """
    name: ol
    environments:
      prod: {protected: false}
"""
STEPS = {
    "pipelines/p/t.sql": "SELECT range AS id, range % 3 AS grp FROM range(10)",
    "pipelines/p/agg.sql": """
        /* ---
        checks:
          - {type: not_null, column: n}
          - {type: expression, expr: n > 100, name: agg.too_few, severity: warn}
        --- */
        SELECT grp, count(*) AS n FROM t GROUP BY grp
    """,
}


def project(make_project: ProjectFactory, yaml: str = YAML, **extra: str) -> Path:
    return make_project({"andon.yaml": yaml, **STEPS, **extra})


def events_of(root: Path) -> list[dict[str, Any]]:
    path = root / ".andon" / "openlineage" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def valid(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for e in events:
        errors = sorted(VALIDATOR.iter_errors(e), key=str)
        assert not errors, [f"{list(x.absolute_path)}: {x.message}" for x in errors]
    return events


def run(root: Path, **kwargs: Any) -> RunResult:
    return andon.Session(andon.Project.load(root), "alice").run(**kwargs)


@pytest.fixture(autouse=True)
def _user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDON_USER", "alice")


def test_the_schema_rejects_a_broken_event(make_project: ProjectFactory) -> None:
    root = project(make_project)
    assert run(root).ok
    event = events_of(root)[-1]
    broken = {**event, "run": {"runId": "run-1"}}  # not a UUID
    assert any("uuid" in e.message for e in VALIDATOR.iter_errors(broken))
    assert list(VALIDATOR.iter_errors({k: v for k, v in event.items() if k != "job"}))


def test_a_successful_run(make_project: ProjectFactory) -> None:
    root = project(make_project)
    result = run(root)
    assert result.ok
    events = valid(events_of(root))
    kinds = [(e["eventType"], e["job"]["name"]) for e in events]
    assert kinds == [("START", "ol"), ("COMPLETE", "ol.t"), ("COMPLETE", "ol.agg"),
                     ("COMPLETE", "ol")]
    run_id = run_uuid("ol", result.run_id)
    assert events[0]["run"]["runId"] == events[-1]["run"]["runId"] == run_id
    assert str(uuid.UUID(run_id)) == run_id
    agg = events[2]
    assert agg["run"]["facets"]["parent"]["run"]["runId"] == run_id
    assert agg["job"]["facets"]["sql"]["query"] == ("SELECT grp, count(*) AS n FROM t "
                                                    "GROUP BY grp")  # the SQL, no header
    assert [(d["namespace"], d["name"]) for d in agg["inputs"]] == [("andon://ol", "prod.t")]
    out = agg["outputs"][0]
    assert out["name"] == "prod.agg"
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["grp", "n"]
    lineage = out["facets"]["columnLineage"]["fields"]
    grp = {(f["name"], f["field"], t["type"], t["subtype"])
           for f in lineage["grp"]["inputFields"] for t in f["transformations"]}
    assert ("prod.t", "grp", "DIRECT", "IDENTITY") in grp
    assert ("prod.t", "grp", "INDIRECT", "GROUP_BY") in grp
    # the checks, as assertions on the table they checked
    checked = {d["name"]: d["inputFacets"]["dataQualityAssertions"]["assertions"]
               for d in events[-1]["inputs"]}
    assert {(a["assertion"], a["success"]) for a in checked["prod.agg"]} >= {
        ("agg.too_few", False)}
    assert any(a["success"] for a in checked["prod.agg"])
    # a second run reuses every artifact: START and COMPLETE of the run only, a new run id
    second = run(root)
    later = valid(events_of(root))[len(events):]
    assert [(e["eventType"], e["job"]["name"]) for e in later] == [("START", "ol"),
                                                                  ("COMPLETE", "ol")]
    assert later[0]["run"]["runId"] == run_uuid("ol", second.run_id) != run_id


def test_a_failed_run(make_project: ProjectFactory) -> None:
    root = project(make_project, **{"pipelines/p/bad.sql": "SELECT 1 / 0 AS x, error('boom') "
                                                           "AS y FROM t"})
    result = run(root)
    assert result.status == "failed"
    events = valid(events_of(root))
    by_job = {e["job"]["name"]: e for e in events[1:]}
    assert by_job["ol.bad"]["eventType"] == "FAIL"
    assert "boom" in by_job["ol.bad"]["run"]["facets"]["errorMessage"]["message"]
    assert "columnLineage" not in by_job["ol.bad"]["outputs"][0]["facets"]
    assert events[-1]["eventType"] == "FAIL" and events[-1]["job"]["name"] == "ol"
    assert "boom" in events[-1]["run"]["facets"]["errorMessage"]["message"]


class CancelAt(NullListener):
    def __init__(self, step: str, token: CancelToken) -> None:
        self.step, self.token = step, token

    def step_finished(self, result: Any) -> None:
        if result.name == self.step:
            self.token.cancel("stopped by the test")


def test_a_cancelled_run(make_project: ProjectFactory) -> None:
    root = project(make_project)
    token = CancelToken()
    result = run(root, cancel=token, listener=CancelAt("t", token))
    assert result.status == "cancelled"
    events = valid(events_of(root))
    assert events[0]["eventType"] == "START"
    assert events[-1]["eventType"] == "ABORT" and events[-1]["job"]["name"] == "ol"
    assert "cancelled" in events[-1]["run"]["facets"]["errorMessage"]["message"]
    assert ("COMPLETE", "ol.agg") not in [(e["eventType"], e["job"]["name"]) for e in events]


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, str], dict[str, Any]]]] = []
    status: ClassVar[int] = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[tuple[str, type[Collector]]]:
    handler = type("Handler", (Collector,), {"received": [], "status": 201})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_http_transport_posts_every_event_with_the_api_key(
        make_project: ProjectFactory, server: tuple[str, type[Collector]]) -> None:
    url, handler = server
    root = project(make_project, YAML + f"    openlineage: {{url: '{url}/', "
                                        "api_key_secret: marquez_key}\n")
    project_ = andon.Project.load(root)
    set_secret(project_.store, root, "marquez_key", "s3cret", who="alice")
    result = run(root)
    assert result.ok
    assert not (root / ".andon" / "openlineage").exists()  # HTTP instead of the file
    received = handler.received
    assert [b["eventType"] for _, _, b in received] == ["START", "COMPLETE", "COMPLETE",
                                                        "COMPLETE"]
    assert {p for p, _, _ in received} == {"/api/v1/lineage"}
    assert all(h["Authorization"] == "Bearer s3cret" for _, h, _ in received)
    valid([b for _, _, b in received])


def test_a_failing_server_never_fails_the_run(
        make_project: ProjectFactory, server: tuple[str, type[Collector]],
        caplog: pytest.LogCaptureFixture) -> None:
    url, handler = server
    handler.status = 500
    root = project(make_project, YAML + f"    openlineage: {{url: '{url}'}}\n")
    result = run(root)
    assert result.ok  # published all the same
    assert len(handler.received) == 4
    assert "OpenLineage event not sent" in caplog.text and "500" in caplog.text


def test_openlineage_can_be_switched_off(make_project: ProjectFactory) -> None:
    root = project(make_project, YAML + "    openlineage: {enabled: false}\n")
    assert run(root).ok
    assert not (root / ".andon" / "openlineage").exists()
