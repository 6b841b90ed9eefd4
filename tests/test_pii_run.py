"""PII found while a run builds: each artifact is classified as it is checked, so a column
detected as personal data (not declared) and the columns derived from it (the tag flowed
through column lineage) are masked in check failure samples, check messages, the stored check
history, the CLI, the HTTP API and every alert channel; a column hashed by sha256 is not."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import andon
from andon.masking import MASK
from tests.apikit import served
from tests.conftest import Cli, ProjectFactory
from tests.test_alerts import Collect, body_of, free_port

ADDRESSES = ("alice@example.com", "bob@example.org", "carol.x@mail.example.net",
             "dave@example.com")
CONTACTS = """
/* ---
zone: landing
pii: [seen_at]
checks:
  - {name: contacts_known, type: expression, expr: "id < 3", severity: warn}
  - {name: contacts_fresh, type: freshness, column: seen_at, max_age: 1h, severity: warn}
--- */
SELECT * FROM (VALUES
  (1, 'alice@example.com', 'NL', TIMESTAMP '2020-01-01 08:00:00'),
  (2, 'bob@example.org', 'DE', TIMESTAMP '2020-01-02 09:30:00'),
  (3, 'carol.x@mail.example.net', 'FR', TIMESTAMP '2020-01-03 10:45:00'),
  (4, 'dave@example.com', 'NL', TIMESTAMP '2020-01-04 11:15:00')
) AS v(id, reach, country, seen_at)
"""
DERIVED = """
/* ---
zone: formatted
checks:
  - {name: derived_known, type: expression, expr: "id < 3", severity: warn}
--- */
SELECT id, lower(reach) AS contact, sha256(reach) AS reach_key, country FROM contacts
"""
# a Python check whose message quotes a value of the detected column
MX_CHECK = """
import andon


@andon.checks.check(table="contacts", severity="warn")
def reachable(df):
    bad = next(r["reach"] for r in df.to_pylist() if r["country"] == "FR")
    raise ValueError(f"no MX record for {bad}")
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


@dataclass
class Channels:
    hook: list[dict[str, Any]]
    mails: Collect
    command_out: Path


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Channels, list[Any]]]:
    """A webhook receiver, an SMTP server and a command: the three alert channels."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    mails = Collect()
    port = free_port()
    smtp = Controller(mails, hostname="127.0.0.1", port=port)
    smtp.start()
    out = tmp_path_factory.mktemp("command") / "alert.json"
    code = f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"
    alerts = [{"type": "webhook", "url": f"http://127.0.0.1:{http.server_address[1]}/hook"},
              {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port,
               "to": ["dpo@example.com"]},
              {"type": "command", "command": f"{shlex.quote(sys.executable)} -c "
                                             f"{shlex.quote(code)}"}]
    yield Channels(received, mails, out), alerts
    smtp.stop()
    http.shutdown()
    http.server_close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory,
          channels: tuple[Channels, list[Any]]) -> Iterator[tuple[Path, int]]:
    """The project run once (warn checks fail: published, alerts sent); its run id."""
    _, alerts = channels
    root = write(tmp_path_factory.mktemp("pii_run"), {
        "andon.yaml": f"name: pii_run\nthreads: 2\nenvironments: {{prod: {{protected: false}}}}"
                      f"\nalerts: {json.dumps(alerts)}\n",
        "pipelines/p/contacts.sql": CONTACTS,
        "pipelines/p/derived.sql": DERIVED,
        "checks/reachable.py": MX_CHECK,
    })
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANDON_USER", "alice")
        result = andon.Session(andon.Project.load(root), "alice").run()
        assert result.ok, result.error
        yield root, result.run_id


def fingerprints(root: Path) -> dict[str, str]:
    from andon.environments import env_tables

    return {n: a["fingerprint"] for n, a in env_tables(andon.Project.load(root)).items()}


def leaks(text: str) -> list[str]:
    return [a for a in ADDRESSES if a in text]


def test_the_run_classifies_what_it_builds(built: tuple[Path, int]) -> None:
    root, _ = built
    from andon.store.catalog import CatalogRepository

    repo = CatalogRepository(andon.Project.load(root).store.engine)
    fps = fingerprints(root)
    found = repo.classification(fps["contacts"])  # stored by the run: no look-up happened
    assert found is not None and found["reach"]["tag"] == "pii:email"
    assert found["reach"]["by"] == "values"  # "reach" is no e-mail name: its values are
    assert repo.classification(fps["derived"]) is not None


def test_samples_in_the_stored_history_mask_detected_and_flowed_pii(
        built: tuple[Path, int]) -> None:
    root, run_id = built
    store = andon.Project.load(root).store
    results = {r.check_name: r for r in store.checks.of_run(run_id)}
    known = results["contacts_known"]
    assert known.status == "failed" and [r["id"] for r in known.sample] == [3, 4]
    assert {r["reach"] for r in known.sample} == {MASK}  # detected, not declared
    assert {r["country"] for r in known.sample} == {"FR", "NL"}
    derived = results["derived_known"].sample
    assert {r["contact"] for r in derived} == {MASK}  # lower(reach): the tag flowed
    keys = {r["reach_key"] for r in derived}  # sha256(reach): the tag stops
    assert MASK not in keys and all(len(k) == 64 for k in keys)
    # messages quoting values: one of a detected column, one of a declared column
    assert results["reachable"].message == f"the check raised ValueError: no MX record for {MASK}"
    fresh = results["contacts_fresh"].message
    assert fresh.startswith(f"newest {MASK} is ") and "2020" not in fresh


def test_cli_and_api_show_them_masked(built: tuple[Path, int], cli: Cli) -> None:
    root, run_id = built
    code, out, err = cli("show", "derived", "-p", root, "--format", "json")
    assert code == 0, err
    sample = json.loads(out)["sample"]
    assert {r["contact"] for r in sample} == {MASK} and MASK not in {r["reach_key"] for r in sample}
    code, out, err = cli("checks", "history", "reachable", "-p", root, "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["message"].endswith(f"for {MASK}") and not leaks(out)
    code, out, err = cli("catalog", "show", "derived", "-p", root, "--format", "json")
    assert code == 0, err
    cols = {c["name"]: c for c in json.loads(out)["columns"]}
    assert cols["contact"]["masked"] and not cols["reach_key"]["masked"]
    with served(andon.Project.load(root)) as client:
        r = client.get(f"/api/runs/{run_id}/checks")
        assert r.status_code == 200, r.text
        assert "contacts_known" in r.text and not leaks(r.text)
        page = client.get(f"/runs/{run_id}")
        assert page.status_code == 200 and "contacts_known" in page.text
        assert not leaks(page.text)


def test_every_alert_channel_gets_the_values_masked(
        built: tuple[Path, int], channels: tuple[Channels, list[Any]]) -> None:
    got, _ = channels
    assert len(got.hook) == 1 and len(got.mails.mails) == 1
    webhook = json.dumps(got.hook[0])
    mail: Message = got.mails.mails[0].message
    command = got.command_out.read_text()
    for text in (webhook, body_of(mail), command):
        assert "contacts_known" in text and "reachable" in text, text
        assert f"no MX record for {MASK}" in text and not leaks(text), text
        assert "2020-01-0" not in text  # the freshness check's newest (declared) value
    steps = {s["step"]: s for s in got.hook[0]["andon"]["steps"]}
    checks = {c["name"]: c for c in steps["contacts"]["checks"]}
    assert {r["reach"] for r in checks["contacts_known"]["sample"]} == {MASK}
    derived = {c["name"]: c for c in steps["derived"]["checks"]}["derived_known"]["sample"]
    assert {r["contact"] for r in derived} == {MASK}
    assert MASK not in {r["reach_key"] for r in derived}


def test_a_failed_run_prints_its_samples_masked(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({
        "andon.yaml": "name: pii_stop\n",
        "pipelines/p/contacts.sql": CONTACTS.replace("severity: warn}", "severity: error}", 1),
    })
    code, out, err = cli("run", "-p", root)
    assert code == 1
    assert "contacts_known" in out + err and f"reach={MASK}" in out + err, out + err
    assert not leaks(out + err)


def test_an_artifact_built_before_is_classified_on_its_first_look_up(
        built: tuple[Path, int]) -> None:
    root, _ = built
    from sqlalchemy import delete

    from andon.store import schema

    project = andon.Project.load(root)
    fp = fingerprints(root)["contacts"]
    with project.store.engine.begin() as conn:  # as if no run had classified it
        conn.execute(delete(schema.classifications).where(
            schema.classifications.c.fingerprint == fp))
    info = andon.Session(project, "alice").catalog_show("contacts")
    tags = {c["name"]: [t["tag"] for t in c["tags"]] for c in info["columns"]}
    assert tags["reach"] == ["pii:email"] and tags["seen_at"] == ["pii"]
    from andon.store.catalog import CatalogRepository

    assert CatalogRepository(project.store.engine).classification(fp) is not None
