"""Who calls the server, remembered between requests without letting a change slip: a token
revoked or the first user added anywhere is seen by the next request on SQLite (the store's
commit counter), within a second on PostgreSQL, and at once when it goes through the server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from andon.project import Project
from andon.server.callers import Callers
from andon.server.recent import Recent, Uncached
from andon.service import Session, local_user
from andon.store.tokens import digest
from tests.apikit import error_of, served
from tests.conftest import ProjectFactory


def door(make_project: ProjectFactory, store: str | None = None) -> Path:
    return make_project({"andon.yaml": "name: door\n" + (f"store: {store}\n" if store else ""),
                         "pipelines/p/one.sql": "SELECT 1 AS x\n"})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def root(request: pytest.FixtureRequest, make_project: ProjectFactory) -> Iterator[Path]:
    store = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    yield door(make_project, store)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_answer_is_kept_until_anything_is_committed_to_a_sqlite_store(
        make_project: ProjectFactory) -> None:
    root = door(make_project)
    server, elsewhere = Project.load(root), Project.load(root)  # two connections, as two
    try:                                                        # processes would have
        token = Session(elsewhere, local_user()).tokens_create("bot", "viewer")
        callers = Callers(server, Recent())
        assert callers.local_user == local_user()
        with pytest.raises(Uncached):  # never read yet: not answered without the store
            callers.token(digest(token), io=False)
        found = callers.token(digest(token), io=True)
        assert found is not None and (found.user, found.role) == ("bot", "viewer")
        with pytest.raises(Uncached):  # reading noted the token's first use: a commit
            callers.token(digest(token), io=False)
        assert callers.token(digest(token), io=True) == found
        assert callers.token(digest(token), io=False) == found  # kept: no read
        assert callers.users_exist(io=False) is False
        Session(elsewhere, local_user()).tokens_revoke("bot")  # a commit elsewhere
        with pytest.raises(Uncached):
            callers.token(digest(token), io=False)
        assert callers.token(digest(token), io=True) is None
        elsewhere.store.users.put("ann", "admin")
        assert callers.users_exist(io=False) is True
        callers.close()
    finally:
        server.close()
        elsewhere.close()


def test_a_token_revoked_elsewhere_stops_working(root: Path) -> None:
    """Revoked by another process's store connection (the CLI): refused by the next request
    on SQLite, within a second on PostgreSQL (the time the server's answers are kept)."""
    setup = Project.load(root)
    admin = Session(setup, local_user())
    admin.users_add(local_user(), "admin")
    token = admin.tokens_create("reader", "viewer")
    setup.close()
    project = Project.load(root)
    try:
        with served(project) as api:
            for _ in range(3):  # the first reads the store, the others reuse its answer
                me = api.get("/api/me", headers=bearer(token))
                assert me.json() == {"user": "reader", "role": "viewer"}
            elsewhere = Project.load(root)
            Session(elsewhere, local_user()).tokens_revoke("reader")
            elsewhere.close()
            if not project.store.is_sqlite:
                time.sleep(1.1)
            error = error_of(api.get("/api/me", headers=bearer(token)), 401)
            assert "unknown API token" in error["message"]
    finally:
        project.close()


def test_a_token_revoked_through_the_server_stops_working_at_once(root: Path) -> None:
    setup = Project.load(root)
    admin = Session(setup, local_user())
    admin.users_add(local_user(), "admin")
    boss, reader = admin.tokens_create("boss", "admin"), admin.tokens_create("reader", "viewer")
    setup.close()
    project = Project.load(root)
    try:
        with served(project) as api:
            assert api.get("/api/me", headers=bearer(reader)).status_code == 200
            assert api.delete("/api/tokens/reader", headers=bearer(boss)).status_code == 200
            error_of(api.get("/api/me", headers=bearer(reader)), 401)
            assert api.get("/api/me", headers=bearer(boss)).json()["role"] == "admin"
    finally:
        project.close()


def test_the_first_user_added_elsewhere_closes_the_open_door(root: Path) -> None:
    project = Project.load(root)
    try:
        with served(project) as api:
            for _ in range(3):
                assert api.get("/api/me").json() == {"user": local_user(), "role": "admin"}
            elsewhere = Project.load(root)
            Session(elsewhere, local_user()).users_add("ann", "admin")
            elsewhere.close()
            error = error_of(api.get("/api/me"), 401)  # PostgreSQL: asked every time
            assert "users are configured" in error["message"]
    finally:
        project.close()
