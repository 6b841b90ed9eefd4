"""``andon gc``: what environments, the ref log inside retention, recent artifacts and shared
files of incremental artifacts keep; what goes; dry runs."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

import andon
from andon.errors import ConfigError
from andon.gc import GcReport, collect
from tests.conftest import Cli, ProjectFactory
from tests.envkit import SMALL, artifact_count, edit, head, rows, steps_of

DAY = 86400.0
YAML = textwrap.dedent(SMALL["andon.yaml"]).lstrip("\n")


def gc(root: Path, *, dry_run: bool = False, now: float | None = None) -> GcReport:
    project = andon.Project.load(root)
    try:
        return collect(project, dry_run=dry_run, now=now)
    finally:
        project.close()


def artifact_dir(root: Path, step: str, fp: str) -> Path:
    return root / ".andon" / "warehouse" / step / fp


@pytest.fixture
def small(make_project: ProjectFactory, cli: Cli) -> Path:
    root = make_project(SMALL)  # retention: the default 30d
    assert cli("run", "-p", root, "-q")[0] == 0
    return root


def test_gc_deletes_only_old_unreferenced_artifacts(small: Path, cli: Cli) -> None:
    prod = steps_of(small)
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    edit(small, "big", ">=", ">")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    first = steps_of(small, "dev")["big"]
    first_commit = head(small, "dev")
    edit(small, "big", "id > {{ threshold }}", "id > {{ threshold }} + 0")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    second = steps_of(small, "dev")["big"]
    assert len({prod["big"], first, second}) == 3
    n = artifact_count(small)

    # now: everything is recent, and the ref log still names the first dev artifact
    assert gc(small).artifacts == ()
    # in 40 days the first dev artifact is outside retention, but an environment holds it
    assert cli("env", "create", "pin", "--from", f"dev@{first_commit}", "-p", small)[0] == 0
    assert gc(small, now=time.time() + 40 * DAY).artifacts == ()
    assert cli("env", "delete", "pin", "-p", small)[0] == 0

    later = time.time() + 40 * DAY
    dry = gc(small, dry_run=True, now=later)
    assert dry.artifacts == (f"big/{first}",) and dry.dry_run
    assert artifact_dir(small, "big", first).is_dir() and artifact_count(small) == n
    report = gc(small, now=later)
    assert report.artifacts == dry.artifacts and report.files == dry.files >= 1
    assert report.bytes == dry.bytes > 0
    assert not artifact_dir(small, "big", first).exists()
    assert artifact_count(small) == n - 1
    # what environments point at is whole and readable
    for step, fp in {**prod, "big": second}.items():
        assert artifact_dir(small, step, fp).is_dir()
    assert rows(cli, small, "SELECT count(*) AS n FROM big", "--env", "dev") == [{"n": 1}]
    assert rows(cli, small, "SELECT count(*) AS n FROM big") == [{"n": 2}]
    assert gc(small, now=later).artifacts == ()  # nothing left to do


def test_the_ref_log_inside_retention_keeps_the_time_machine_working(
    small: Path, cli: Cli
) -> None:
    first = head(small)
    old_big = steps_of(small)["big"]
    assert cli("run", "-p", small, "-q", "--param", "threshold=3")[0] == 0
    # 29 days on, prod@first is still inside the 30 days of retention
    assert gc(small, now=time.time() + 29 * DAY).artifacts == ()
    assert rows(cli, small, "SELECT count(*) AS n FROM big", "--commit", first) == [{"n": 2}]
    # 31 days on, it is not: the old big goes
    assert gc(small, now=time.time() + 31 * DAY).artifacts == (f"big/{old_big}",)


def test_retention_setting(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({**SMALL, "andon.yaml": YAML + "retention: 1s\n"})
    assert cli("run", "-p", root, "-q")[0] == 0
    old_big = steps_of(root)["big"]
    assert cli("run", "-p", root, "-q", "--param", "threshold=3")[0] == 0
    time.sleep(1.2)
    code, out, err = cli("gc", "--dry-run", "-p", root, "--format", "json")
    assert code == 0, err
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["artifacts"] == [f"big/{old_big}"]
    assert artifact_dir(root, "big", old_big).is_dir()
    code, out, _ = cli("gc", "-p", root)
    assert code == 0 and "deleted 1 artifact(s)" in out
    assert not artifact_dir(root, "big", old_big).exists()

    bad = make_project({**SMALL, "andon.yaml": YAML + "retention: forever\n"})
    with pytest.raises(ConfigError, match="retention: bad duration 'forever'"):
        gc(bad)


INCREMENTAL = {
    "andon.yaml": """
        name: inc
        sources:
          raw:
            path: incoming/*.csv
            columns:
              id: {type: integer, required: true}
              t: integer
    """,
    "incoming/a.csv": "id,t\n1,1\n2,2\n3,3\n",
    "pipelines/p/inc.sql": """
        /* ---
        materialized: incremental
        time_column: t
        --- */
        SELECT id, t FROM raw
    """,
}


def test_shared_files_of_incremental_artifacts_survive(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = make_project(INCREMENTAL)
    assert cli("run", "-p", root, "-q")[0] == 0
    first = steps_of(root)["inc"]
    (root / "incoming" / "b.csv").write_text("id,t\n4,4\n5,5\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    second = steps_of(root)["inc"]
    assert second != first
    shown = andon.show(andon.Project.load(root), "inc")
    assert shown["files"] == 2  # the first artifact's file, shared, and the new rows

    later = time.time() + 40 * DAY
    dry = gc(root, dry_run=True, now=later)
    report = gc(root, now=later)
    assert report.artifacts == dry.artifacts
    # the first inc artifact is unreferenced, but its file is part of the second: it stays
    assert f"inc/{first}" not in report.artifacts
    assert any((artifact_dir(root, "inc", first)).glob("*.parquet"))
    assert rows(cli, root, "SELECT count(*) AS n, max(t) AS t FROM inc") == [{"n": 5, "t": 5}]
    # the old raw artifact (one file fewer) goes; the parts prod reads stay
    assert rows(cli, root, "SELECT count(*) AS n FROM raw") == [{"n": 5}]
    assert all(a.startswith("raw/") for a in report.artifacts)


def test_gc_deletes_nothing_while_a_run_is_in_progress(make_project, cli) -> None:
    root = make_project({"andon.yaml": "name: g\nretention: 1s\n",
                         "pipelines/p/a.sql": "SELECT 1 AS x"})
    assert cli("run", "-p", root, "-q")[0] == 0
    assert cli("env", "create", "dev", "-p", root)[0] == 0
    (root / "pipelines/p/a.sql").write_text("SELECT 2 AS x")
    assert cli("run", "-p", root, "--env", "dev", "-q")[0] == 0
    project = andon.Project.load(root)
    holder = project.store.acquire_lease("prod", None, what="a test run")
    try:
        code, _, err = cli("gc", "-p", root)
        assert code == 1 and "in progress" in err and "a test run" in err
        assert cli("gc", "-p", root, "--dry-run")[0] == 0
    finally:
        project.store.release_lease("prod", None, holder=holder)
    assert cli("gc", "-p", root)[0] == 0
