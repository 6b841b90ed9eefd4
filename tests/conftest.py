"""Shared fixtures: the flights example, small fixture projects, the CLI in-process, stores."""

from __future__ import annotations

import os
import shutil
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from andon.cli import run_cli
from andon.examples import init_project

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def flights_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flights example created once per session; tests get copies."""
    root = tmp_path_factory.mktemp("template") / "flights"
    init_project(root, "flights")
    return root


@pytest.fixture
def flights(flights_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the flights example (six months in incoming/, six in arrivals/)."""
    root = tmp_path / "flights"
    shutil.copytree(flights_template, root)
    return root


ProjectFactory = Callable[[dict[str, str]], Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Write a small fixture project: ``{"andon.yaml": "...", "pipelines/p/a.sql": "..."}``."""

    def make(files: dict[str, str]) -> Path:
        root = tmp_path / f"proj-{uuid.uuid4().hex[:6]}"
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return root

    return make


class Cli:
    """Run ``andon`` in-process and capture what it prints."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str | Path) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = run_cli([str(a) for a in args])
        out = self.capsys.readouterr()
        return code, out.out, out.err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)


def _postgres_admin_url() -> str | None:
    return os.environ.get("ANDON_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; skipped without a server, required under CI."""
    base = _postgres_admin_url()
    if not base:
        if IN_CI:
            pytest.fail("ANDON_TEST_POSTGRES_URL is not set, and CI requires PostgreSQL tests")
        pytest.skip("set ANDON_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/postgres)")
    import psycopg

    name = f"andon_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {base} is not reachable: {e}")
        pytest.skip(f"PostgreSQL at {base} is not reachable: {e}")
    head = base.rsplit("/", 1)[0]
    yield f"{head}/{name}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs against SQLite and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'andon.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def unprotect(root: Path) -> Path:
    """Let prod take code changes directly: for tests about rebuilds, not about protection."""
    with (root / "andon.yaml").open("a") as f:
        f.write("\nenvironments:\n  prod: {protected: false}\n")
    return root
