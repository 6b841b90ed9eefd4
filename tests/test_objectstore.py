"""``warehouse: s3://`` and ``landing: s3://`` against a real S3-compatible server (moto's
server mode on a loopback port): runs, promotion, time machine, gc, a fresh machine reading
the bucket (queries fetching only the tables they read, andon test, show, profile, diff,
landing list), and failures (wrong credentials, the server stopped mid-run) that publish
nothing and resume.

One small project in a bucket is built once for the module (``team``); its tests read it
from a fresh mirror each, and the last one promotes and collects garbage in it."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication
from moto.server import ThreadedMotoServer

import andon
from andon.cli import run_cli
from andon.errors import ConfigError
from andon.gc import collect
from andon.published import env_tables
from andon.secrets import set_secret
from tests.conftest import Cli, ProjectFactory, unprotect
from tests.envkit import SMALL, edit, head, steps_of

DAY = 86400.0
YAML = textwrap.dedent(SMALL["andon.yaml"]).lstrip("\n")


@dataclass
class S3:
    server: ThreadedMotoServer
    port: int
    endpoint: str
    client: Any

    def bucket(self) -> str:
        name = f"andon-test-{uuid.uuid4().hex[:10]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> dict[str, float]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                      Prefix=prefix)
        return {o["Key"]: o["LastModified"].timestamp()
                for page in pages for o in page.get("Contents", [])}

    def restart(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port,
                                         verbose=False)
        self.server.start()


_SERVER: S3 | None = None


def halt() -> None:
    """Stop the S3 server (called by a Python step of the project: mid-run)."""
    assert _SERVER is not None
    _SERVER.server.stop()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    global _SERVER
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    _SERVER = S3(server, port, endpoint, client)
    yield _SERVER
    _SERVER.server.stop()
    _SERVER = None


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "test")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "test")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        yield


def s3_yaml(s3: S3, bucket: str, *, landing: bool = False, extra: str = "") -> str:
    text = f"""
        warehouse: s3://{bucket}/wh
        object_store:
          endpoint: {s3.endpoint}
          region: us-east-1
          attempts: 1
          timeout: 2
        """
    if landing:
        text += f"landing: s3://{bucket}/landing\n"
    return textwrap.dedent(text) + textwrap.dedent(extra)


def mirror(root: Path) -> Path:
    return root / ".andon" / "objectstore"


def fresh(root: Path) -> None:
    """Delete the local mirror: the project is now on a machine that has only the bucket."""
    shutil.rmtree(mirror(root), ignore_errors=True)


def fetched(root: Path) -> set[str]:
    """The warehouse files this machine has (``step/fingerprint/part-0.parquet``)."""
    names = (p.relative_to(mirror(root)).as_posix() for p in mirror(root).rglob("*")
             if p.is_file())
    return {n.split("/wh/", 1)[1] for n in names if "/wh/" in n}


def files_of(root: Path, *tables: str, env: str = "prod") -> set[str]:
    """The data files of what ``env`` publishes for ``tables``, as the store lists them."""
    project = andon.Project.load(root)
    try:
        published = env_tables(project, env)
    finally:
        project.close()
    return {f for t in tables for f in published[t]["files"]}


def query(cli: Cli, root: Path, sql: str, *args: str) -> list[dict[str, Any]]:
    code, out, err = cli("query", sql, "-p", root, "--format", "json", *args)
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


# configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["gs://bucket/prefix", "s3:///no-bucket", "ftp://host/x"])
def test_an_unsupported_warehouse_url_is_a_config_error_with_its_line(
    make_project: ProjectFactory, cli: Cli, url: str
) -> None:
    root = make_project({**SMALL, "andon.yaml": YAML + f"\nwarehouse: {url}\n"})
    with pytest.raises(ConfigError) as info:
        andon.Project.load(root)
    lines = (root / "andon.yaml").read_text().splitlines()
    assert "warehouse" in str(info.value) and Path(str(info.value.file)) == root / "andon.yaml"
    assert info.value.line == lines.index(f"warehouse: {url}") + 1
    code, _out, err = cli("run", "-p", root, "-q")
    assert code != 0 and "andon.yaml" in err
    assert not (root / url.split("/")[0]).exists()  # never a folder named "gs:"
    assert not list(root.glob("*:"))


# the flights example end to end ----------------------------------------------------------


def test_flights_runs_with_warehouse_and_landing_in_a_bucket(
    flights: Path, s3: S3, cli: Cli
) -> None:
    bucket = s3.bucket()
    for month in range(2, 7):  # one month delivered: the point is the bucket, not the scale
        (flights / f"incoming/flights/flights_2013_{month:02d}.csv").unlink()
    with (flights / "andon.yaml").open("a") as f:  # profiles are not the point either
        f.write(s3_yaml(s3, bucket, landing=True, extra="profile: none\n"))
    code, _out, err = cli("run", "-p", flights, "-q")
    assert code == 0, err
    keys = s3.keys(bucket)
    steps = steps_of(flights)
    for step, fp in steps.items():  # every published artifact is committed in the bucket
        assert f"wh/{step}/{fp}/{'_manifest.json'}" in keys, step
    assert not [k for k in keys if k.startswith("wh/_staging/")]
    landed = [k for k in keys if k.startswith("landing/raw_flights/")]
    assert len(landed) == 1 and landed[0].endswith("/flights_2013_01.csv")  # as received
    sql = "SELECT count(*) AS n, sum(distance) AS d FROM flights"
    expected = query(cli, flights, sql)
    code, out, err = cli("landing", "list", "raw_flights", "-p", flights, "--format", "json")
    assert code == 0, err
    here = json.loads(out)

    # a fresh machine (no local mirror) reads the same bucket: the landed files' counts ...
    fresh(flights)
    code, out, err = cli("landing", "list", "raw_flights", "-p", flights, "--format", "json")
    assert code == 0, err
    assert json.loads(out) == here and here[0]["rows"] > 0 and here[0]["rejects"] == 0
    # ... and a query, which downloads the files of the one table it reads
    assert query(cli, flights, sql) == expected
    assert {f.split("/")[0] for f in fetched(flights)} == {"flights", "_parts"}
    assert fetched(flights) - files_of(flights, "flights") \
        <= {f for f in fetched(flights) if f.startswith("_parts/") and f.endswith(".json")}
    # ... and a second run reuses everything: nothing new is written to the bucket
    code, _out, err = cli("run", "-p", flights, "--format", "json")
    assert code == 0, err
    assert s3.keys(bucket) == keys
    # a file changed in the bucket behind andon's back is reported, not served
    table = "daily_carrier_kpis"
    key = next(k for k in keys if k.startswith(f"wh/{table}/") and k.endswith(".parquet"))
    s3.client.put_object(Bucket=bucket, Key=key, Body=b"not the sealed bytes")
    fresh(flights)
    code, _out, err = cli("test", "-p", flights)
    assert code != 0 and "changed after it was sealed" in err


# one small project in a bucket, read from fresh machines ----------------------------------


@dataclass(frozen=True)
class Team:
    root: Path
    bucket: str
    prod: dict[str, str]  # step -> fingerprint, as built
    dev: dict[str, str]
    first_commit: str  # of prod


def must(*args: str | Path) -> None:
    assert run_cli([str(a) for a in args]) == 0, args


@pytest.fixture(scope="module")
def team(s3: S3, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """SMALL with its warehouse in a bucket and the credentials in andon secrets (not the
    environment): prod built, and dev with ``big`` changed (one row fewer). Only checked
    tables are profiled by runs, so ``andon profile big`` reads its files."""
    bucket = s3.bucket()
    root = tmp_path_factory.mktemp("team") / "small"
    extra = f"""
        warehouse: s3://{bucket}/team/wh
        profile: checked
        object_store:
          endpoint: {s3.endpoint}
          region: us-east-1
          access_key_id_secret: s3_key
          secret_access_key_secret: s3_secret
        """
    for rel, text in {**SMALL, "andon.yaml": YAML + textwrap.dedent(extra)}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("AWS_ACCESS_KEY_ID")
        mp.delenv("AWS_SECRET_ACCESS_KEY")
        project = andon.Project.load(root)
        try:
            set_secret(project.store, root, "s3_key", "test", who="test")
            set_secret(project.store, root, "s3_secret", "test", who="test")
        finally:
            project.close()
        must("run", "-p", root, "-q")
        prod, first_commit = steps_of(root), head(root)
        must("env", "create", "dev", "-p", root)
        edit(root, "big", ">=", ">")
        must("run", "-p", root, "-q", "--env", "dev")
    return Team(root, bucket, prod, steps_of(root, "dev"), first_commit)


def test_a_query_on_a_fresh_machine_fetches_only_the_tables_it_reads(
    team: Team, cli: Cli
) -> None:
    root = team.root
    fresh(root)
    assert query(cli, root, "SELECT count(*) AS n FROM big") == [{"n": 2}]
    assert fetched(root) == files_of(root, "big")
    fresh(root)  # names as DuckDB reads them: any case, aliased, in a subquery
    sql = ('SELECT count(*) AS n FROM "FACTS" f JOIN (SELECT code FROM Codes) c '
           "ON f.code = c.code")
    assert query(cli, root, sql) == [{"n": 3}]
    assert fetched(root) == files_of(root, "facts", "codes")
    fresh(root)  # ... or as a string
    assert query(cli, root, "SELECT count(*) AS n FROM query_table('codes')") == [{"n": 3}]
    assert fetched(root) == files_of(root, "codes")
    fresh(root)
    code, _out, err = cli("query", "SELECT * FROM bigg", "-p", root)
    assert code != 0 and "bigg" in err and "big" in err.split("bigg", 1)[1]
    assert fetched(root) == set()


def test_test_show_profile_suggest_and_diff_on_a_fresh_machine(team: Team, cli: Cli) -> None:
    root = team.root
    fresh(root)
    code, out, err = cli("test", "-p", root, "--format", "json")
    assert code == 0, err
    assert [(r["name"], r["status"]) for r in json.loads(out)] == [("facts.code_known",
                                                                    "passed")]
    assert files_of(root, "facts", "codes") <= fetched(root)  # verified, then checked

    fresh(root)
    code, out, err = cli("show", "big", "-p", root, "--format", "json")
    assert code == 0, err
    assert [r["id"] for r in json.loads(out)["sample"]] == [2, 3]

    fresh(root)
    code, out, err = cli("profile", "big", "-p", root, "--format", "json")
    assert code == 0, err
    profile = json.loads(out)
    ids = next(c for c in profile["columns"] if c["column"] == "id")
    assert (profile["rows"], ids["min"], ids["max"]) == (2, 2, 3)
    assert fetched(root) == files_of(root, "big")

    fresh(root)
    code, out, err = cli("checks", "suggest", "big", "-p", root)
    assert code == 0, err
    assert "big" in out and "code" in out

    fresh(root)
    code, out, err = cli("env", "diff", "prod", "dev", "-p", root, "--format", "json")
    assert code == 0, err
    big = next(s for s in json.loads(out)["steps"] if s["step"] == "big")
    assert big["change"] == "code" and big["rows"] == {"prod": 2, "dev": 1}
    assert (big["data"]["added"], big["data"]["removed"]) == (0, 1)
    assert big["data"]["sample_removed"] == [{"id": 2, "code": "B", "amount": 20}]


def test_promote_time_machine_and_gc_in_a_bucket(
    team: Team, s3: S3, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in the module: it moves prod and deletes dev (the other tests read them)."""
    root, bucket, prod = team.root, team.bucket, team.prod
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")  # credentials from andon secrets only
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    fresh(root)  # promotion verifies the candidate's files (hashes: prod is protected)
    code, _out, err = cli("promote", "dev", "-p", root)
    assert code == 0, err
    assert steps_of(root) == team.dev and team.dev["big"] != prod["big"]
    fresh(root)
    assert query(cli, root, "SELECT count(*) AS n FROM big") == [{"n": 1}]
    # the time machine reads the old artifact back from the bucket
    assert query(cli, root, "SELECT count(*) AS n FROM big", "--commit", team.first_commit) \
        == [{"n": 2}]

    # gc: leftovers of a run that died before committing, and artifacts out of retention
    s3.client.put_object(Bucket=bucket, Key="team/wh/_staging/h.1.big.0000/part-0.parquet",
                         Body=b"x")
    s3.client.put_object(Bucket=bucket, Key=f"team/wh/big/{'0' * 32}/part-0.parquet",
                         Body=b"y")
    assert cli("env", "delete", "dev", "-p", root)[0] == 0
    old_big = f"team/wh/big/{prod['big']}/_manifest.json"
    assert old_big in s3.keys(bucket)
    n_keys = len(s3.keys(bucket))
    project = andon.Project.load(root)
    try:
        # everything is recent, the leftovers too (a run of another store may be writing)
        assert collect(project).files == 0 and len(s3.keys(bucket)) == n_keys
        dry = collect(project, dry_run=True, now=time.time() + 40 * DAY)
        assert f"big/{prod['big']}" in dry.artifacts and old_big in s3.keys(bucket)
        report = collect(project, now=time.time() + 40 * DAY)
    finally:
        project.close()
    assert report.artifacts == dry.artifacts and report.files == dry.files >= 4
    keys = s3.keys(bucket)
    assert old_big not in keys and not [k for k in keys if prod["big"] in k]
    assert not [k for k in keys if "/_staging/" in k or "/" + "0" * 32 + "/" in k]
    for step, fp in steps_of(root).items():  # what prod points at stays whole
        assert f"team/wh/{step}/{fp}/_manifest.json" in keys
    fresh(root)
    assert query(cli, root, "SELECT count(*) AS n FROM big") == [{"n": 1}]


# failures: nothing half-published, the next run resumes -------------------------------


HALT = {
    "pipelines/p/halted.py": """
        import os

        import andon


        @andon.step
        def halted(facts):
            if os.environ.get("ANDON_TEST_S3_HALT"):
                __import__("tests.test_objectstore", fromlist=["halt"]).halt()
            return facts
    """,
    "pipelines/p/after.sql": "SELECT count(*) AS n FROM halted\n",
}


def test_wrong_credentials_fail_cleanly_and_the_next_run_works(
    make_project: ProjectFactory, s3: S3, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    root = make_project({**SMALL, "andon.yaml": YAML + s3_yaml(s3, bucket)})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    with enable_iam_authentication():  # moto now checks the keys
        code, _out, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert "object store error" in err and "credentials" in err and "AKIA" not in err
    assert s3.keys(bucket) == {} and steps_of(root) == {}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    code, _out, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    assert query(cli, root, "SELECT count(*) AS n FROM big") == [{"n": 2}]


def test_server_stopped_mid_run_publishes_nothing_and_the_next_run_resumes(
    make_project: ProjectFactory, s3: S3, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    root = make_project({**SMALL, **HALT,
                         "andon.yaml": YAML + s3_yaml(s3, bucket)})
    monkeypatch.setenv("ANDON_TEST_S3_HALT", "1")
    try:
        code, _out, err = cli("run", "-p", root, "-q")
    finally:
        s3.restart()  # the bucket's state survives: moto keeps it in this process
    assert code != 0 and "object store error" in err, err
    keys = s3.keys(bucket)
    assert steps_of(root) == {}  # prod was never moved
    halted = [k for k in keys if k.startswith("wh/halted/") or k.startswith("wh/after/")]
    assert not [k for k in halted if k.endswith("_manifest.json")]  # nothing half-published
    done = {k: t for k, t in keys.items() if k.endswith("_manifest.json")}
    assert {k.split("/")[1] for k in done} <= {"codes", "facts", "big"}

    monkeypatch.delenv("ANDON_TEST_S3_HALT")
    code, _out, err = cli("run", "-p", root, "--format", "json")
    assert code == 0, err
    after = s3.keys(bucket)
    for k, t in done.items():  # what was committed before the stop is reused, not rewritten
        assert after[k] == t
    published = steps_of(root)
    assert set(published) == {"codes", "facts", "big", "halted", "after"}
    for step, fp in published.items():
        assert f"wh/{step}/{fp}/_manifest.json" in after
    assert query(cli, root, "SELECT n FROM after") == [{"n": 3}]


def test_a_source_is_ingested_again_from_the_landing_bucket_on_a_fresh_machine(
    make_project: ProjectFactory, s3: S3, cli: Cli
) -> None:
    bucket = s3.bucket()
    source = "name: src\nsources:\n  raw:\n    path: in/*.csv\n    max_reject_pct: 100\n" \
             "    columns:\n      id: integer\n      v: {type: integer}\n"
    root = unprotect(make_project({
        "andon.yaml": source + s3_yaml(s3, bucket, landing=True),
        "in/a.csv": "id,v\n1,10\n2,20\n3,x\n",
        "pipelines/p/total.sql": "SELECT sum(v) AS s FROM raw\n"}))
    assert cli("run", "-p", root, "-q")[0] == 0
    landed = [k for k in s3.keys(bucket) if k.startswith("landing/raw/")]
    assert len(landed) == 1 and landed[0].endswith("/a.csv")
    fresh(root)  # a fresh machine: the landed file and its counts are only in the bucket
    code, out, err = cli("landing", "list", "raw", "-p", root, "--format", "json")
    assert code == 0, err
    assert [(r["file"], r["rows"], r["rejects"]) for r in json.loads(out)] == [("a.csv", 2, 1)]
    text = (root / "andon.yaml").read_text()
    (root / "andon.yaml").write_text(text.replace("v: {type: integer}", "v: {type: double}"))
    code, _out, err = cli("run", "-p", root, "-q")  # the source's types changed: ingest again
    assert code == 0, err
    assert query(cli, root, "SELECT s FROM total") == [{"s": 30.0}]
    assert [k for k in s3.keys(bucket) if k.startswith("landing/")] == landed
    fresh(root)  # the counts of the latest ingest, read from the bucket
    code, out, err = cli("landing", "list", "raw", "-p", root, "--format", "json")
    assert code == 0, err
    assert [(r["file"], r["rows"], r["rejects"]) for r in json.loads(out)] == [("a.csv", 2, 1)]
