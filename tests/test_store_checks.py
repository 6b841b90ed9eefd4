"""The store's seams: check history through its repository (SQLite and PostgreSQL), readers
that create and migrate nothing, source kinds chosen by ``kind:``, and the artifact format
kept in the store and in manifests."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import inspect, select, text, update

from andon.checks import history
from andon.checks.model import CheckResult
from andon.config import SourceConfig, SourceSpec, StepConfig
from andon.engines.base import Location
from andon.errors import ConfigError, NotFound, StoreError, WarehouseError
from andon.execution.artifacts import manifest_of
from andon.kinds import SOURCE_KINDS, SourceKind
from andon.project import Project
from andon.steps import Step
from andon.store import Store, open_reader, open_store
from andon.store import schema as t
from andon.store.checks import CheckResultRecord
from andon.store.migrations import LATEST, MIGRATIONS, _artifact_format, current_version
from andon.warehouse import MANIFEST, Manifest, Warehouse
from tests.conftest import Cli, ProjectFactory


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def result(name: str, metric: float, fp: str, *, status: str = "passed",
           spc: dict[str, object] | None = None) -> CheckResult:
    return CheckResult(name=name, table="orders", type="row_count", severity="warn",
                       status=status, metric=metric, threshold={"min": 1}, message="ok",
                       failing=0, sample=({"id": 1, "name": "é"},), fingerprint=fp,
                       check_hash="h-" + name, spc=spc)


# check history -----------------------------------------------------------------------------


def test_check_history_round_trips_as_typed_records(store: Store) -> None:
    run = store.begin_run("prod", user="ann", git_sha=None, git_dirty=None, selection=[],
                          params={}, base_commit=None)
    history.record(store, [(result("rows", 10, "f1"), "ctx")], run_id=run, environment="prod")
    history.record(store, [(result("rows", 10, "f1"), "ctx")], run_id=None, environment="prod")
    history.record(store, [(result("rows", 12, "f2"), "ctx")], run_id=None, environment="dev")
    history.record(store, [], run_id=None, environment="prod")  # nothing to record

    rows = history.series(store, "rows")
    # the same verdict on the same artifact, repeated by a re-test, shows once
    assert [(r.environment, r.fingerprint, r.metric) for r in rows] == [
        ("prod", "f1", 10.0), ("dev", "f2", 12.0)]
    first = rows[0]
    assert isinstance(first, CheckResultRecord) and first.at.tzinfo is UTC
    assert first.sample == ({"id": 1, "name": "é"},) and first.threshold == {"min": 1}
    assert first.check_hash == "h-rows" and first.context == "ctx" and not first.acknowledged
    assert [r.fingerprint for r in history.series(store, "rows", environment="dev")] == ["f2"]

    assert [r.run_id for r in store.checks.of_run(run)] == [run]
    by_artifact = store.reader().checks.latest_by_artifact(["f1", "f2", "f9"])
    assert {fp: [(r.check_name, r.run_id) for r in rs] for fp, rs in by_artifact.items()} == {
        "f1": [("rows", None)], "f2": [("rows", None)]}  # f1's latest is the re-test
    assert store.checks.names() == ["rows"]
    latest = store.checks.latest("f1", [("h-rows", "ctx"), ("h-rows", "other")])
    assert list(latest) == [("h-rows", "ctx")] and latest[("h-rows", "ctx")].run_id is None
    # the checks engine gets store rows it turns back into results
    row = history.find_all(store, "f1", [("h-rows", "ctx")])[("h-rows", "ctx")]
    assert row["metric"] == 10.0 and row["at"] == pytest.approx(first.at.timestamp())


def test_an_incident_joins_the_spc_baseline_only_when_acknowledged(store: Store) -> None:
    history.record(store, [(result("spc", 10, "f1"), "c"), (result("other", 1, "f1"), "c")],
                   run_id=None, environment="prod")
    history.record(store, [(result("spc", 99, "f2", status="failed",
                                   spc={"violations": ["beyond 3 sigma"]}), "c")],
                   run_id=None, environment="prod")
    history.record(store, [(result("spc", 0, "f3", status="error"), "c")], run_id=None,
                   environment="prod")
    assert [m for _, m in history.baseline(store, "spc", "prod", 10)] == [10.0]

    with pytest.raises(NotFound) as e:
        history.acknowledge(store, "spx", result_id=None, who="olga", note="")
    assert "did you mean 'spc'" in (e.value.hint or "")
    with pytest.raises(NotFound):
        history.acknowledge(store, "spc", result_id=12345, who="olga", note="")

    incident = history.series(store, "spc")[1]
    assert incident.incident and incident.metric == 99.0
    done = history.acknowledge(store, "spc", result_id=incident.id, who="olga", note="sale")
    assert (done.id, done.acknowledged, done.ack_by, done.ack_note) == (
        incident.id, True, "olga", "sale")
    points = store.checks.baseline("spc", "prod", 10)
    assert [p.metric for p in points] == [10.0, 99.0] and points[0].at.tzinfo is UTC
    assert [m for _, m in history.baseline(store, "spc", "prod", 1)] == [99.0]  # the newest
    assert history.baseline(store, "spc", "dev", 10) == []


def test_a_profile_is_kept_once_per_artifact(store: Store) -> None:
    history.save_profile(store, "f1", "orders", None, 3, {"columns": {"id": {"nulls": 0}}})
    history.save_profile(store, "f1", "orders", None, 99, {"columns": {}})  # kept: the first
    history.save_profile(store, "f2", "orders", None, 5, {"columns": {}})
    found = history.profile_of(store, "f1")
    assert found is not None and found.rows == 3 and found.at.tzinfo is UTC
    assert found.profile == {"columns": {"id": {"nulls": 0}}}
    assert history.profile_of(store, "nope") is None
    assert [p.rows for p in history.profiles(store, "orders")] == [3, 5]  # oldest first
    assert [p.rows for p in store.reader().checks.profiles("orders", limit=1)] == [5]


# readers -----------------------------------------------------------------------------------


def test_a_reader_never_creates_a_store(tmp_path: Path, make_project: ProjectFactory,
                                        cli: Cli) -> None:
    missing = tmp_path / "nowhere" / "andon.db"
    with pytest.raises(StoreError) as e:
        open_reader(f"sqlite:///{missing}")
    assert "there is no andon store" in str(e.value) and "andon run" in (e.value.hint or "")
    assert not missing.parent.exists()

    root = make_project({"andon.yaml": "name: fresh\n"})
    for command in (["tables"], ["runs"], ["env", "list"], ["env", "log", "prod"]):
        code, _, err = cli(*command, "-p", root)
        assert code != 0 and "there is no andon store" in err, (command, err)
    assert not (root / ".andon").exists()


def test_a_reader_of_an_empty_database_creates_no_table(store_url: str) -> None:
    with pytest.raises(StoreError, match="there is no andon store"):
        open_reader(store_url)
    if store_url.startswith("sqlite:///"):
        assert not Path(store_url.removeprefix("sqlite:///")).exists()
    else:
        from sqlalchemy import create_engine

        engine = create_engine("postgresql+psycopg://" + store_url.split("://", 1)[1])
        try:
            with engine.connect() as conn:
                assert inspect(conn).get_table_names() == []
        finally:
            engine.dispose()


def test_a_reader_refuses_a_newer_store_and_changes_nothing(
        store: Store, store_url: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version")
                     .values(value=str(LATEST + 1)))
    with pytest.raises(StoreError) as e:
        open_reader(store_url)
    assert "newer" in str(e.value) and "upgrade andon" in (e.value.hint or "")
    with store.engine.connect() as conn:
        assert current_version(conn) == LATEST + 1  # not touched by a read


def test_read_commands_go_through_a_reader(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project)
    assert cli("run", "-p", root, "-q")[0] == 0
    p = Project.load(root)
    try:
        reader = p.reader
        assert not hasattr(reader, "begin_run") and not hasattr(reader.checks, "add")
        assert {r["id"] for r in reader.runs()} == {1}
        assert reader.checks.series("orders_rows")
    finally:
        p.close()
    code, out, err = cli("checks", "history", "orders_rows", "-p", root, "--format", "json")
    assert code == 0, err
    assert [r["status"] for r in json.loads(out)] == ["passed"]


# source kinds ------------------------------------------------------------------------------

YAML = """\
name: k
sources:
  orders:
    path: incoming/*.csv
    format: csv
    columns:
      id: {type: integer, required: true}
      name: string
    checks:
      - {name: orders_rows, type: row_count, min: 1}
"""


def project(make_project: ProjectFactory, yaml: str = YAML) -> Path:
    return make_project({"andon.yaml": yaml, "incoming/a.csv": "id,name\n1,a\n2,b\n"})


def test_a_files_source_keeps_the_contract_its_fingerprint_has_always_hashed(
        make_project: ProjectFactory) -> None:
    p = Project.load(project(make_project))
    source = p.config.sources["orders"]
    step = p.dag.steps["orders"]
    assert isinstance(source, SourceConfig) and step.source == source and step.kind == "source"
    # the canonical form of andon before source kinds: every sealed source artifact is reused
    assert step.code == (
        '{"format":"csv","columns":{"id":{"type":"integer","required":true},'
        '"name":{"type":"string","required":false}},"csv":{"delimiter":",","header":true,'
        '"quote":"\\"","null_values":["","NA","NULL"],"date_format":null,'
        '"timestamp_format":null,"encoding":"utf-8"}}')


def test_a_misspelt_key_of_a_source_is_answered_from_its_kind(
        make_project: ProjectFactory) -> None:
    root = project(make_project, YAML.replace("    path:", "    pth:"))
    with pytest.raises(ConfigError) as e:
        Project.load(root)
    assert e.value.line == 4 and "sources.orders.pth" in str(e.value)
    assert "did you mean 'path'" in (e.value.hint or "")


class FeedSource(SourceSpec):
    """A source a plug-in reads from a URL."""

    kind: Literal["feed"] = "feed"
    url: str


def feed_step(name: str, spec: SourceSpec, config_file: Path) -> Step:
    assert isinstance(spec, FeedSource)
    return Step(name=name, kind="source", pipeline="sources", file=config_file,
                config=StepConfig(zone=spec.zone), code=spec.url)


@pytest.fixture
def feed_kind() -> Iterator[None]:
    SOURCE_KINDS.register(SourceKind("feed", FeedSource, feed_step))
    yield
    del SOURCE_KINDS["feed"]


FEED = """\
name: k
sources:
  prices:
    kind: feed
    url: https://example.org/prices.csv
    columns: {day: date, price: double}
"""


def test_a_registered_source_kind_is_chosen_by_kind(make_project: ProjectFactory,
                                                     feed_kind: None) -> None:
    p = Project.load(make_project({"andon.yaml": FEED}))
    source = p.config.sources["prices"]
    assert isinstance(source, FeedSource) and source.url.endswith("prices.csv")
    assert source.columns["price"].duckdb_type == "DOUBLE"
    assert p.dag.steps["prices"].code == source.url
    # a files key on a feed source is unknown to that kind; the hint lists the kind's keys
    with pytest.raises(ConfigError) as e:
        Project.load(make_project({"andon.yaml": FEED.replace("    url:", "    path:")}))
    assert "unknown key 'sources.prices.path'" in str(e.value) and e.value.line == 5
    assert "url" in (e.value.hint or "")


def test_an_unknown_source_kind_lists_the_known_ones(make_project: ProjectFactory,
                                                      feed_kind: None) -> None:
    root = make_project({"andon.yaml": FEED.replace("kind: feed", "kind: fed")})
    with pytest.raises(ConfigError) as e:
        Project.load(root)
    assert e.value.file == str(root / "andon.yaml") and e.value.line == 4
    assert "unknown source kind 'fed'; did you mean 'feed'?" in str(e.value)
    assert "(known: database, feed, files, http;" in str(e.value)


# artifact formats --------------------------------------------------------------------------


def test_the_format_is_stored_with_each_artifact_and_in_its_manifest(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project)
    assert cli("run", "-p", root, "-q")[0] == 0
    p = Project.load(root)
    try:
        with p.store.engine.connect() as conn:
            formats = {r.step: r.format for r in conn.execute(
                select(t.artifacts.c.step, t.artifacts.c.format))}
        assert formats == {"orders": "parquet"}
        prod = p.reader.environment("prod")
        assert prod is not None
        fp = p.reader.commit_steps(prod["commit_id"])["orders"]
        row = p.reader.artifact(fp)
        assert row is not None
        m = manifest_of(row)
        assert m.format == "parquet"
        assert m.location == Location(format="parquet", files=m.files)
        on_disk = json.loads((p.warehouse / m.step / m.fingerprint / MANIFEST).read_text())
        assert on_disk["format"] == "parquet" and all(f.endswith(".parquet") for f in m.files)
        assert Warehouse(p.warehouse).schema(m) == m.schema
    finally:
        p.close()


def test_an_unknown_format_seals_nothing(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    wh.ensure()
    with wh.staging("t") as staging:
        (staging / "part-0.orc").write_bytes(b"x")
        m = Manifest(fingerprint="f" * 16, step="t", code_hash="c",
                     files=("t/" + "f" * 16 + "/part-0.orc",), rows=1, bytes=1, schema=(),
                     meta={}, format="orc")
        with pytest.raises(ConfigError) as e:
            wh.seal(staging, m)
        assert "unknown artifact format 'orc'" in str(e.value) and "parquet" in (
            e.value.hint or "")
        with pytest.raises(WarehouseError, match="not a parquet file"):
            wh.seal(staging, dataclasses.replace(m, format="parquet"))
    assert not wh.artifact_dir("t", "f" * 16).exists()


def test_a_store_from_before_formats_gains_the_column_and_reads_as_parquet(
        store: Store, store_url: str) -> None:
    store.record(artifacts=[{
        "fingerprint": "old", "step": "s", "code_hash": "c", "path": "s/old", "rows": 1,
        "bytes": 1, "schema": [["id", "BIGINT"]], "files": ["s/old/a.parquet"], "meta": {},
        "created_at": 0.0, "run_id": None}])
    before = MIGRATIONS.index(_artifact_format)
    with store.engine.begin() as conn:  # as andon wrote it before artifacts had a format
        conn.execute(text("ALTER TABLE artifacts DROP COLUMN format"))
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version")
                     .values(value=str(before)))
    store.close()
    reader = open_reader(store_url)  # andon was upgraded: reading works, schema first
    found = reader.artifact("old")
    assert found is not None and found["format"] is None
    again = open_store(store_url)
    try:
        with again.engine.begin() as conn:
            assert current_version(conn) == LATEST
            _artifact_format(conn)  # idempotent: a second run changes nothing
            assert "format" in {c["name"] for c in inspect(conn).get_columns("artifacts")}
        row = again.artifact("old")
        assert row is not None and row["format"] is None
        assert manifest_of(row).format == "parquet"
    finally:
        again.close()
