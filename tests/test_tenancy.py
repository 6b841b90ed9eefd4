"""Several projects and teams on one PostgreSQL store: a schema per project, kept apart by
PostgreSQL's own roles and grants, and a store that refuses a project it does not belong to."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from andon.errors import StoreError
from andon.store import open_store, split_schema
from tests.conftest import Cli, ProjectFactory

pytestmark = pytest.mark.postgres


def project(make_project: ProjectFactory, name: str, store: str) -> Path:
    root = make_project({
        "andon.yaml": f"""\
            name: {name}
            store: {store}
            sources:
              orders:
                path: incoming/*.csv
                columns: {{id: {{type: integer, required: true}}, amount: double}}
        """,
        "pipelines/p/total.sql": "SELECT sum(amount) AS total, count(*) AS n FROM orders",
    })
    (root / "incoming").mkdir()
    return root


@pytest.fixture
def teams(postgres_url: str) -> Iterator[tuple[str, str, str]]:
    """Two login roles, each owning a schema nobody else may use (what a DBA sets up once),
    on the fresh database; the roles are dropped afterwards (they are cluster-wide)."""
    import psycopg

    tag = uuid.uuid4().hex[:8]
    a, b = f"team_a_{tag}", f"team_b_{tag}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for role in (a, b):
            conn.execute(f'CREATE ROLE "{role}" LOGIN')
            conn.execute(f'CREATE SCHEMA "{role}" AUTHORIZATION "{role}"')
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        yield postgres_url, a, b
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for role in (a, b):
                conn.execute(f'DROP SCHEMA IF EXISTS "{role}" CASCADE')
                conn.execute(f'DROP OWNED BY "{role}"')
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def as_role(url: str, role: str, schema: str) -> str:
    """``url`` logged in as ``role`` (trust authentication here), on ``schema``."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[-1]}?schema={schema}"


def test_two_teams_share_one_server_without_seeing_each_other(
    teams: tuple[str, str, str], make_project: ProjectFactory, cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, a, b = teams
    root_a = project(make_project, "sales", as_role(url, a, a))
    root_b = project(make_project, "ops", as_role(url, b, b))
    (root_a / "incoming/a.csv").write_text("id,amount\n1,1.5\n2,2.5\n")
    (root_b / "incoming/b.csv").write_text("id,amount\n1,100\n")
    for root in (root_a, root_b):
        code, out, err = cli("run", "-p", root, "-q")
        assert code == 0, out + err
    # the same environment name, two environments: each team reads its own
    _, out, _ = cli("query", "SELECT total, n FROM total", "-p", root_a, "--format", "json")
    assert json.loads(out) == [{"total": 4.0, "n": 2}]
    _, out, _ = cli("query", "SELECT total, n FROM total", "-p", root_b, "--format", "json")
    assert json.loads(out) == [{"total": 100.0, "n": 1}]
    # a secret of team a
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cr3t\n"))
    code, out, err = cli("secrets", "set", "api_key", "-p", root_a)
    assert code == 0, out + err

    # team b's role pointed at team a's schema: PostgreSQL refuses it, andon says so
    with pytest.raises(StoreError) as refused:
        open_store(as_role(url, b, a))
    assert "permission denied" in str(refused.value)
    # nothing of team a changed: its run history and secret are intact
    a_store = open_store(as_role(url, a, a), project="sales")
    try:
        assert [s.name for s in a_store.secrets.all()] == ["api_key"]
        assert len(a_store.runs(limit=10)) == 1
    finally:
        a_store.close()


def test_a_store_refuses_another_project(
    postgres_url: str, make_project: ProjectFactory, cli: Cli,
) -> None:
    first = project(make_project, "sales", postgres_url + "?schema=sales")
    (first / "incoming/a.csv").write_text("id,amount\n1,1\n")
    assert cli("run", "-p", first, "-q")[0] == 0
    # a second project given the same schema by mistake: refused, before it writes anything
    other = project(make_project, "ops", postgres_url + "?schema=sales")
    (other / "incoming/b.csv").write_text("id,amount\n9,9\n")
    code, out, err = cli("run", "-p", other, "-q")
    assert code != 0
    assert "belongs to project 'sales', not 'ops'" in out + err
    assert "?schema=ops" in out + err
    _, out, _ = cli("query", "SELECT total, n FROM total", "-p", first, "--format", "json")
    assert json.loads(out) == [{"total": 1.0, "n": 1}]
    # its own schema works beside it
    other_yaml = other / "andon.yaml"
    other_yaml.write_text(other_yaml.read_text().replace("?schema=sales", "?schema=ops"))
    code, out, err = cli("run", "-p", other, "-q")
    assert code == 0, out + err


@pytest.mark.parametrize("url", ["postgresql://h/db?schema=a;drop", "postgresql://h/db?schema=1a"])
def test_a_schema_that_is_not_a_plain_name_is_refused(url: str) -> None:
    with pytest.raises(StoreError, match="not a plain SQL name"):
        split_schema(url)


def test_the_schema_parameter_is_taken_out_of_the_url() -> None:
    assert split_schema("postgresql+psycopg://u@h:5432/db?schema=team_a&sslmode=disable") == (
        "postgresql+psycopg://u@h:5432/db?sslmode=disable", "team_a")
    assert split_schema("postgresql://u@h/db") == ("postgresql://u@h/db", None)
