"""``warehouse: s3://`` and ``landing: s3://`` against a real S3-compatible server (moto's
server mode on a loopback port): runs, promotion, time machine, gc, a fresh machine reading
the bucket, and failures (wrong credentials, the server stopped mid-run) that publish
nothing and resume."""

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
from andon.errors import ConfigError
from andon.gc import collect
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


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


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
    with (flights / "andon.yaml").open("a") as f:
        f.write(s3_yaml(s3, bucket, landing=True))
    code, _out, err = cli("run", "-p", flights, "-q")
    assert code == 0, err
    keys = s3.keys(bucket)
    steps = steps_of(flights)
    for step, fp in steps.items():  # every published artifact is committed in the bucket
        assert f"wh/{step}/{fp}/{'_manifest.json'}" in keys, step
    assert not [k for k in keys if k.startswith("wh/_staging/")]
    landed = [k for k in keys if k.startswith("landing/raw_flights/")]
    assert len(landed) == 6  # six monthly CSVs as received
    expected = query(cli, flights, "SELECT count(*) AS n, sum(distance) AS d FROM flights")

    # a fresh machine (no local mirror) reads the same bucket
    shutil.rmtree(mirror(flights))
    assert query(cli, flights, "SELECT count(*) AS n, sum(distance) AS d FROM flights") \
        == expected
    # ... and a second run reuses everything: nothing new is written to the bucket
    code, _out, err = cli("run", "-p", flights, "--format", "json")
    assert code == 0, err
    assert s3.keys(bucket) == keys
    # a file changed in the bucket behind andon's back is reported, not served
    table = "daily_carrier_kpis"
    key = next(k for k in keys if k.startswith(f"wh/{table}/") and k.endswith(".parquet"))
    s3.client.put_object(Bucket=bucket, Key=key, Body=b"not the sealed bytes")
    shutil.rmtree(mirror(flights))
    code, _out, err = cli("test", "-p", flights)
    assert code != 0 and "changed after it was sealed" in err


# a small project: promotion, time machine, gc ---------------------------------------------


def test_promote_time_machine_and_gc_in_a_bucket(
    make_project: ProjectFactory, s3: S3, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.bucket()
    extra = f"""
        object_store:
          endpoint: {s3.endpoint}
          region: us-east-1
          access_key_id_secret: s3_key
          secret_access_key_secret: s3_secret
        """
    root = make_project({**SMALL, "andon.yaml": YAML
                         + f"\nwarehouse: s3://{bucket}/team/wh\n" + textwrap.dedent(extra)})
    # credentials from andon secrets, not the environment
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    project = andon.Project.load(root)
    try:
        set_secret(project.store, root, "s3_key", "test", who="test")
        set_secret(project.store, root, "s3_secret", "test", who="test")
    finally:
        project.close()
    assert cli("run", "-p", root, "-q")[0] == 0
    prod = steps_of(root)
    first_commit = head(root)
    assert cli("env", "create", "dev", "-p", root)[0] == 0
    edit(root, "big", ">=", ">")
    assert cli("run", "-p", root, "-q", "--env", "dev")[0] == 0
    code, _out, err = cli("promote", "dev", "-p", root)
    assert code == 0, err
    assert steps_of(root)["big"] != prod["big"]
    shutil.rmtree(mirror(root))
    assert query(cli, root, "SELECT count(*) AS n FROM big") == [{"n": 1}]
    # the time machine reads the old artifact back from the bucket
    assert query(cli, root, "SELECT count(*) AS n FROM big", "--commit", first_commit) \
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
    shutil.rmtree(mirror(root))
    assert query(cli, root, "SELECT count(*) AS n FROM big") == [{"n": 1}]


# failures: nothing half-published, the next run resumes -------------------------------


HALT = {
    "pipelines/p/halted.py": """
        import os

        import andon


        @andon.step
        def halted(facts):
            if os.environ.get("ANDON_TEST_S3_HALT"):
                __import__("tests.test_objectstore_orig", fromlist=["halt"]).halt()
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
    source = "name: src\nsources:\n  raw:\n    path: in/*.csv\n    columns:\n" \
             "      id: integer\n      v: {type: integer}\n"
    root = unprotect(make_project({
        "andon.yaml": source + s3_yaml(s3, bucket, landing=True),
        "in/a.csv": "id,v\n1,10\n2,20\n",
        "pipelines/p/total.sql": "SELECT sum(v) AS s FROM raw\n"}))
    assert cli("run", "-p", root, "-q")[0] == 0
    landed = [k for k in s3.keys(bucket) if k.startswith("landing/raw/")]
    assert len(landed) == 1 and landed[0].endswith("/a.csv")
    shutil.rmtree(mirror(root))  # a fresh machine: the landed file is only in the bucket
    text = (root / "andon.yaml").read_text()
    (root / "andon.yaml").write_text(text.replace("v: {type: integer}", "v: {type: double}"))
    code, _out, err = cli("run", "-p", root, "-q")  # the source's types changed: ingest again
    assert code == 0, err
    assert query(cli, root, "SELECT s FROM total") == [{"s": 30.0}]
    assert [k for k in s3.keys(bucket) if k.startswith("landing/")] == landed
