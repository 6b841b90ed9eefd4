"""API tokens: created once and stored hashed, listed without their secret, revoked; and
who the server lets in, with which role, on loopback and on any other address."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from andon.project import Project
from andon.service import Session, local_user
from tests.apikit import error_of, served
from tests.conftest import Cli


@pytest.fixture(scope="module")
def built(flights_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flights example with prod built once; tests take copies."""
    root = tmp_path_factory.mktemp("tokens") / "flights"
    shutil.copytree(flights_template, root)
    proj = Project.load(root)
    assert Session(proj, local_user()).run().ok
    proj.close()
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path) -> Iterator[Project]:
    root = tmp_path / "flights"
    shutil.copytree(built, root)
    proj = Project.load(root)
    yield proj
    proj.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_printed_once_and_stored_as_its_hash(cli: Cli, project: Project) -> None:
    code, out, err = cli("tokens", "create", "ci-bot", "--role", "operator", "-p", project.root)
    assert code == 0, err
    token = out.strip()
    assert token.startswith("andon_") and len(token) > 40 and "not shown again" in err
    files = (project.root / ".andon").glob("andon.db*")  # with its write-ahead log
    assert not [f for f in files if token.encode() in f.read_bytes()]
    with sqlite3.connect(project.root / ".andon" / "andon.db") as db:
        stored = db.execute("SELECT token_hash FROM tokens WHERE name = 'ci-bot'").fetchall()
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(),)]
    code, out, _ = cli("tokens", "list", "-p", project.root, "-f", "json")
    assert code == 0 and token not in out
    [listed] = json.loads(out)
    assert listed["name"] == "ci-bot" and listed["role"] == "operator"
    assert listed["user"] == "ci-bot" and listed["expires_at"] is None
    code, _, err = cli("tokens", "create", "ci-bot", "--role", "viewer", "-p", project.root)
    assert code != 0 and "exists already" in err
    code, _, err = cli("tokens", "create", "x", "--role", "viewr", "-p", project.root)
    assert code != 0 and "'viewer'" in err
    code, _, err = cli("tokens", "create", "x", "--role", "viewer", "--expires", "soon",
                       "-p", project.root)
    assert code != 0 and "--expires" in err
    assert cli("tokens", "revoke", "ci-bot", "-p", project.root)[0] == 0
    code, _, err = cli("tokens", "revoke", "ci-bot", "-p", project.root)
    assert code != 0 and "no token named" in err


def test_only_an_admin_creates_tokens(project: Project) -> None:
    Session(project, "ann").users_add("ann", "admin")
    Session(project, "ann").users_add("dev", "developer")
    from andon.access import AccessDenied

    with pytest.raises(AccessDenied):
        Session(project, "dev").tokens_create("mine", "admin")
    assert Session(project, "ann").tokens_create("theirs", "viewer", user="dev")


def test_off_loopback_every_request_needs_a_valid_token(project: Project) -> None:
    session = Session(project, local_user())
    good = session.tokens_create("reader", "viewer")
    revoked = session.tokens_create("gone", "viewer")
    session.tokens_revoke("gone")
    stale = project.store.tokens.create("stale", user="stale", role="admin",
                                        expires_at=time.time() - 1, by="test")
    with served(project, host="0.0.0.0") as api:
        for headers, why in (({}, "needs an API token"),
                             (bearer("andon_not-a-token"), "unknown API token"),
                             (bearer(revoked), "unknown API token"),
                             (bearer(stale), "expired"),
                             ({"Authorization": f"Basic {good}"}, "malformed")):
            response = api.get("/api/tables", headers=headers)
            error = error_of(response, 401)
            assert why in error["message"] and "andon tokens create" in error["hint"]
            assert response.headers["www-authenticate"] == "Bearer"
        error_of(api.get("/api/tables/flights"), 401)
        error_of(api.post("/api/runs", json={}), 401)
        ok = api.get("/api/tables", headers=bearer(good))
        assert ok.status_code == 200 and ok.json()["tables"]
        assert api.get("/api/me", headers=bearer(good)).json() == {"user": "reader",
                                                                   "role": "viewer"}


def test_on_loopback_a_token_is_needed_once_users_exist(project: Project) -> None:
    with served(project) as api:
        assert api.get("/api/me").json()["role"] == "admin"
        error_of(api.get("/api/me", headers=bearer("andon_wrong")), 401)
        Session(project, local_user()).users_add("ann", "admin")
        error = error_of(api.get("/api/tables"), 401)
        assert "users are configured" in error["message"]


def test_a_viewer_may_read_but_not_run_or_promote_into_prod(project: Project) -> None:
    admin = Session(project, local_user())
    viewer = bearer(admin.tokens_create("watcher", "viewer"))
    developer = bearer(admin.tokens_create("dev", "developer"))
    with served(project, host="0.0.0.0") as api:
        assert api.get("/api/runs", headers=viewer).status_code == 200
        error = error_of(api.post("/api/runs", json={"environment": "prod"}, headers=viewer),
                         403)
        assert "viewer" in error["message"] and error["kind"] == "forbidden"
        error = error_of(api.post("/api/environments/prod/promote", json={"target": "prod"},
                                  headers=viewer), 403)
        assert "promote" in error["message"]
        error_of(api.post("/api/tokens", json={"name": "more", "role": "admin"},
                          headers=developer), 403)
        # a developer works on a branch, but may not run in protected prod
        created = api.post("/api/environments", json={"name": "dev-branch"}, headers=developer)
        assert created.status_code == 201 and created.json()["owner"] == "dev"
        error_of(api.post("/api/runs", json={"environment": "prod"}, headers=developer), 403)
        assert [r["id"] for r in api.get("/api/runs", headers=viewer).json()["runs"]] == [1]


def test_the_token_store_on_sqlite_and_postgres(store_url: str) -> None:
    from andon.errors import Conflict
    from andon.store import open_store

    store = open_store(store_url)
    try:
        token = store.tokens.create("ci", user="robot", role="operator", expires_at=None,
                                    by="ann")
        found = store.tokens.find(token)
        assert found is not None and (found.user, found.role) == ("robot", "operator")
        assert found.last_used_at is not None and not found.expired()
        assert store.tokens.find(token + "x") is None
        with pytest.raises(Conflict):
            store.tokens.create("ci", user="other", role="viewer", expires_at=None, by="ann")
        stale = store.tokens.create("old", user="old", role="viewer",
                                    expires_at=time.time() - 60, by="ann")
        old = store.tokens.find(stale)
        assert old is not None and old.expired()
        assert [t.name for t in store.tokens.all()] == ["ci", "old"]
        assert store.tokens.revoke("ci") and not store.tokens.revoke("ci")
        assert store.tokens.find(token) is None
    finally:
        store.close()
