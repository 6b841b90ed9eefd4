"""PII classification and protection: validators (IBAN mod-97, Luhn, e-mail, phone, IP,
names), a confidence per column stored per artifact, tags flowing down column lineage unless
a step hashes or masks the column, masked samples in show/profile/check failures, and a
viewer who sees masked values only (Python API, CLI and HTTP alike)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import andon
from andon.access import AccessDenied
from andon.classify import classify_column, is_card, is_email, is_iban, is_ip, is_name, is_phone
from andon.masking import MASK
from tests.apikit import served
from tests.conftest import Cli

PEOPLE = """
/* ---
description: People who signed up, with their contact details.
owner: crm@example.com
steward: dpo@example.com
zone: landing
column_tags: {contact: [pii:email]}
checks:
  - {type: expression, expr: "id < 3", severity: warn}
--- */
SELECT * FROM (VALUES
  (1, 'alice@example.com', '+44 20 7946 0958', 'GB82WEST12345698765432',
   '4111 1111 1111 1111', '192.168.0.1', 'Mary Smith', 'NL', 12.5),
  (2, 'bob@example.org', '+1 415 555 0100', 'DE89370400440532013000',
   '5500 0000 0000 0004', '2001:db8::1', 'John Brown', 'DE', 7.0),
  (3, 'carol.x@mail.example.net', '+49 30 1234567', 'FR1420041010050500013M02606',
   '3782 822463 10005', '10.0.0.7', 'Linda Garcia', 'FR', 3.25)
) AS v(id, contact, phone, iban, card, ip, full_name, country, spent)
"""

PROJECT = {
    "andon.yaml": """
        name: pii
        environments:
          prod: {protected: false}
    """,
    "pipelines/p/people.sql": PEOPLE,
    "pipelines/p/hashed.sql": """
        /* ---
        zone: formatted
        masks: [phone_hint]
        column_tags: {spent: [finance]}
        --- */
        SELECT id, sha256(contact) AS contact_key, contact AS reach, upper(full_name) AS shout,
               left(phone, 3) || '***' AS phone_hint, country, spent
        FROM people WHERE ip IS NOT NULL
    """,
    "pipelines/p/by_country.sql": """
        /* ---
        zone: exploitation
        description: Sign-ups per country.
        --- */
        SELECT country, count(*) AS people, max(reach) AS last_reach, sum(spent) AS spent
        FROM hashed GROUP BY country
    """,
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import textwrap

    root = tmp_path_factory.mktemp("classify")
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANDON_USER", "alice")
        result = andon.Session(andon.Project.load(root), "alice").run()
        assert result.ok, result.error
        yield root


# validators --------------------------------------------------------------------------------


def test_iban_is_valid_by_mod_97_and_cards_by_luhn() -> None:
    assert is_iban("GB82 WEST 1234 5698 7654 32") and is_iban("DE89370400440532013000")
    assert not is_iban("GB82WEST12345698765433")  # one digit off: mod 97 is not 1
    assert is_card("4111 1111 1111 1111") and is_card("378282246310005")
    assert not is_card("4111 1111 1111 1112")  # Luhn fails
    assert not is_card("1234567890123")  # no card network starts with 1


def test_email_phone_ip_and_name_validators() -> None:
    assert is_email("carol.x@mail.example.net") and not is_email("carol at example.net")
    assert is_phone("+44 20 7946 0958") and is_phone("(415) 555-0100")
    assert not is_phone("20240105") and not is_phone("2024-01-05")  # ids and dates
    assert is_ip("10.0.0.7") and is_ip("2001:db8::1") and not is_ip("10.0.0.300")
    assert is_name("Mary Smith") and not is_name("John F Kennedy Intl")


def test_a_column_is_classified_by_its_name_and_its_values_with_a_confidence() -> None:
    both = classify_column("email", ["a@example.com", "b@example.org", None])
    assert both is not None and both.tag == "pii:email" and both.by == "name+values"
    assert both.confidence == 1.0
    values = classify_column("reach", ["a@example.com", "b@example.org", "nope"])
    assert values is None  # 2 of 3 valid: under the share a match needs
    values = classify_column("reach", ["a@example.com"] * 9 + ["nope"])
    assert values is not None and values.by == "values" and values.confidence == 0.81
    named = classify_column("phone", [])  # an empty column: its name alone
    assert named is not None and named.by == "name" and named.confidence == 0.6
    assert classify_column("carrier", ["UA", "AA", "B6"]) is None
    assert classify_column("tailnum", ["N14228", "N24211"]) is None
    assert classify_column("cancelled", []) is None  # no "cell" in it: names match by parts
    assert classify_column("airline_name", ["United Air Lines Inc.", "Delta Air Lines"]) \
        is None  # a name column whose values are no personal names


# detection, flow, masking ---------------------------------------------------------------------


def test_classes_are_detected_once_per_artifact_and_stored(root: Path) -> None:
    project = andon.Project.load(root)
    session = andon.Session(project, "alice")
    info = session.catalog_show("people")
    tags = {c["name"]: [t["tag"] for t in c["tags"]] for c in info["columns"]}
    assert tags == {"id": [], "contact": ["pii:email"], "phone": ["pii:phone"],
                    "iban": ["pii:iban"], "card": ["pii:card"], "ip": ["pii:ip"],
                    "full_name": ["pii:name"], "country": [], "spent": []}
    from andon.environments import env_tables
    from andon.store.catalog import CatalogRepository

    fp = env_tables(project)["people"]["fingerprint"]
    stored = CatalogRepository(project.store.engine).classification(fp)
    assert stored is not None  # contact: by its values alone; phone: its name agrees
    assert stored["contact"] == {"tag": "pii:email", "confidence": 0.9, "by": "values",
                                 "share": 1.0}
    assert stored["phone"]["by"] == "name+values" and stored["phone"]["confidence"] == 1.0
    assert stored["full_name"]["by"] == "name+values"


def test_tags_flow_downstream_unless_a_step_hashes_or_masks_the_column(root: Path) -> None:
    session = andon.Session(andon.Project.load(root), "alice")
    cols = {c["name"]: c for c in session.catalog_show("hashed")["columns"]}
    flowed = {n: {(t["tag"], t["origin"], t.get("from")) for t in c["tags"]}
              for n, c in cols.items()}
    assert ("pii:email", "flowed", "people.contact") in flowed["reach"]
    assert ("pii:name", "flowed", "people.full_name") in flowed["shout"]
    assert flowed["contact_key"] == set()  # sha256(contact): the tag stops
    assert flowed["phone_hint"] == set()  # declared in masks:
    assert flowed["spent"] == {("finance", "declared", None)}
    assert cols["contact_key"]["from"] == [
        {"table": "people", "column": "contact", "kind": "transformation", "masking": True}]
    down = {c["name"]: c for c in session.catalog_show("by_country")["columns"]}
    assert ("pii:email", "flowed", "hashed.reach") in {
        (t["tag"], t["origin"], t.get("from")) for t in down["last_reach"]["tags"]}
    assert [t["tag"] for t in down["spent"]["tags"]] == ["finance"]  # any tag flows
    assert down["last_reach"]["masked"] and not down["spent"]["masked"]


def test_samples_and_profiles_are_masked_for_everyone(root: Path, cli: Cli) -> None:
    session = andon.Session(andon.Project.load(root), "alice")
    row = session.show("hashed", rows=1)["sample"][0]
    assert row["reach"] == MASK and row["shout"] == MASK
    assert row["contact_key"] != MASK and row["country"] == "NL"  # hashed: shown
    prof = session.profile("people")["columns"]
    assert {v for v, _ in prof["contact"]["top_values"]} == {MASK}
    assert prof["contact"]["min"] == MASK and prof["country"]["min"] == "DE"
    code, out, _ = cli("show", "people", "--project", root, "--format", "json")
    assert code == 0
    sample = json.loads(out)["sample"]
    assert {r["iban"] for r in sample} == {MASK} and {r["id"] for r in sample} == {1, 2, 3}


def test_a_viewer_sees_pii_masked_in_query_results(root: Path) -> None:
    project = andon.Project.load(root)
    sql = ("SELECT p.id, p.iban AS account, lower(h.reach) AS who, h.contact_key, h.country "
           "FROM people p JOIN hashed h USING (id) ORDER BY p.id")
    cols, rows = andon.Session(project, "alice").query(sql)  # no users: the admin
    assert rows[0][1] == "GB82WEST12345698765432"
    project.store.users.put("alice", "admin")
    project.store.users.put("vera", "viewer")
    try:
        viewer = andon.Session(project, "vera")
        assert not viewer.may_read_pii()
        cols, rows = viewer.query(sql)
        assert cols == ["id", "account", "who", "contact_key", "country"]
        assert rows[0][:3] == (1, MASK, MASK) and rows[0][4] == "NL"
        assert rows[0][3] != MASK  # a hash reveals nothing
        with pytest.raises(AccessDenied, match="cannot be traced"):
            viewer.query("SELECT COLUMNS('i.*') FROM people")
        with served(project) as client:  # the HTTP API obeys the same rule
            token = andon.Session(project, "alice").tokens_create("v", "viewer", user="vera")
            r = client.post("/api/query", json={"sql": sql},
                            headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["rows"][0][1] == MASK, body
    finally:
        project.store.users.remove("vera")
        project.store.users.remove("alice")


def test_check_failure_samples_mask_pii_columns_declared_in_column_tags(root: Path) -> None:
    project = andon.Project.load(root)
    from andon.environments import env_tables

    fp = env_tables(project)["people"]["fingerprint"]
    (result,) = project.store.checks.latest_by_artifact([fp])[fp]
    assert result.status == "failed" and len(result.sample) == 1
    row = result.sample[0]
    assert row["contact"] == MASK and row["id"] == 3  # declared pii:email: masked
