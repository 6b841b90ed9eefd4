"""The feature store: definitions, point-in-time training sets (checked against pandas
merge_asof), materialisation and online reads (SQLite; Redis with ANDON_TEST_REDIS_URL)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from andon import features
from andon.engines import create
from andon.errors import AndonError, ConfigError, NotFound
from andon.examples import init_project
from andon.features import catalog, training
from andon.features.catalog import Definitions, Entity, Feature, FeatureView, Where
from andon.features.training import TrainingSet
from tests.conftest import IN_CI, Cli, ProjectFactory, unprotect

T0 = datetime(2024, 1, 1)
HERE = Where("features/test.yaml", 1)

# -- the point-in-time join, against pandas merge_asof on random data -----------------------


def _defs(ttl: timedelta | None, created: bool) -> Definitions:
    view = FeatureView(
        name="v", table="feats", entities=("item",), join_keys=("item",), timestamp="ts",
        created="created" if created else None, available_after=timedelta(0), ttl=ttl,
        features=(Feature("price", "v", "double", '"price"', "", (), HERE),), description="",
        owner=None, tags=(), where=HERE)
    return Definitions(entities={"item": Entity("item", ("item",), "", HERE)},
                       views={"v": view})


def _pit(tmp: Path, feats: pd.DataFrame, rows: pd.DataFrame, ttl: timedelta | None,
         created: bool) -> pd.DataFrame:
    """The training set andon computes (the engine's ASOF JOIN over Parquet files)."""
    feats.to_parquet(tmp / "feats.parquet", index=False)
    rows.to_parquet(tmp / "rows.parquet", index=False)
    defs = _defs(ttl, created)
    engine = create(threads=2)
    try:
        session = engine.session({"feats": [tmp / "feats.parquet"]})
        entity_sql = training.scan(tmp / "rows.parquet")
        schema = training.describe(session, entity_sql)
        feat_schema = training.describe(session, '"feats"')
        sql = training.query(defs, defs.resolve(["v.price"]), entity_sql, schema, "at",
                             {"feats": feat_schema})
        result: pd.DataFrame = session.execute(sql).arrow().to_pandas()
        return result
    finally:
        engine.close()


def _expected(feats: pd.DataFrame, rows: pd.DataFrame, ttl: timedelta | None) -> list[Any]:
    """pandas merge_asof: the latest price at or before each row's time (ties: the largest
    created, as the last of equal times after sorting by it), within the TTL."""
    left = rows.reset_index().rename(columns={"index": "pos"})
    known = left.dropna(subset=["item", "at"]).sort_values("at")
    right = feats.sort_values(["ts", "created"]).rename(columns={"ts": "at_f"})
    merged = pd.merge_asof(known, right, left_on="at", right_on="at_f", by="item",
                           tolerance=pd.Timedelta(ttl) if ttl else None,
                           allow_exact_matches=True, direction="backward")
    by_pos = dict(zip(merged["pos"], merged["price"], strict=True))
    return [None if pd.isna(by_pos.get(i)) else by_pos.get(i) for i in range(len(rows))]


feature_rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 40),
                                  st.floats(-1e6, 1e6, allow_nan=False)), max_size=40)
entity_rows = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", None]),
                                 st.one_of(st.none(), st.integers(-5, 45))), max_size=40)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(feature_rows, entity_rows, st.one_of(st.none(), st.integers(1, 10)))
def test_point_in_time_matches_merge_asof(tmp_path: Path, fr: list[tuple[str, int, float]],
                                          er: list[tuple[str | None, int | None]],
                                          ttl_hours: int | None) -> None:
    feats = pd.DataFrame({"item": [r[0] for r in fr],
                          "ts": [T0 + timedelta(hours=r[1]) for r in fr],
                          "created": list(range(len(fr))), "price": [r[2] for r in fr]},
                         ).astype({"item": "string", "ts": "datetime64[us]", "created": "int64",
                                   "price": "float64"})
    rows = pd.DataFrame({"item": [r[0] for r in er],
                         "at": [None if r[1] is None else T0 + timedelta(hours=r[1]) for r in er],
                         "label": list(range(len(er)))}
                        ).astype({"item": "string", "at": "datetime64[us]"})
    ttl = timedelta(hours=ttl_hours) if ttl_hours else None
    got = _pit(tmp_path, feats, rows, ttl, created=True)
    assert list(got["label"]) == list(range(len(er)))  # every row, in input order
    assert [None if pd.isna(v) else v for v in got["price"]] == _expected(feats, rows, ttl)


def test_ties_are_broken_by_created_timestamp(tmp_path: Path) -> None:
    feats = pd.DataFrame({"item": ["a", "a", "a"], "ts": [T0, T0, T0],
                          "created": [T0 + timedelta(minutes=5), T0 + timedelta(minutes=9),
                                      T0 + timedelta(minutes=1)], "price": [1.0, 2.0, 3.0]})
    rows = pd.DataFrame({"item": ["a"], "at": [T0 + timedelta(hours=1)]})
    assert list(_pit(tmp_path, feats, rows, None, created=True)["price"]) == [2.0]


def test_no_value_from_the_future_and_ttl_bounds_the_look_back(tmp_path: Path) -> None:
    feats = pd.DataFrame({"item": ["a", "a"], "ts": [T0, T0 + timedelta(hours=5)],
                          "created": [0, 1], "price": [1.0, 2.0]})
    at = [T0 - timedelta(seconds=1), T0, T0 + timedelta(hours=2), T0 + timedelta(hours=4),
          T0 + timedelta(hours=5)]
    rows = pd.DataFrame({"item": ["a"] * 5, "at": at})
    got = _pit(tmp_path, feats, rows, timedelta(hours=2), created=False)["price"]
    assert [None if pd.isna(v) else v for v in got] == [None, 1.0, 1.0, None, 2.0]


def test_time_zones_compare_in_utc(tmp_path: Path) -> None:
    """Feature times with a zone are converted to UTC; entity times without one are UTC."""
    ny = pd.Timestamp("2024-01-01 09:00", tz="America/New_York")  # 14:00 UTC
    feats = pd.DataFrame({"item": ["a"], "ts": [ny], "created": [0], "price": [1.0]})
    rows = pd.DataFrame({"item": ["a", "a"], "at": [datetime(2024, 1, 1, 13, 59),
                                                    datetime(2024, 1, 1, 14, 0)]})
    got = _pit(tmp_path, feats, rows, None, created=False)["price"]
    assert [None if pd.isna(v) else v for v in got] == [None, 1.0]


# -- a small project: a table of prices built by a run ---------------------------------------

SHOP = {
    "andon.yaml": """
        name: shop
        sources:
          raw_prices:
            path: in/*.csv
            columns:
              item: {type: string, required: true}
              at: {type: timestamp, required: true}
              price: double
        """,
    # AT is a reserved word in DuckDB 1.4: the step quotes the column
    "pipelines/shop/prices.sql": "SELECT item, \"at\", price FROM raw_prices\n",
    "in/day1.csv": "item,at,price\na,2024-01-01 10:00:00,1.0\nb,2024-01-01 10:00:00,5.0\n"
                   "c,2024-01-01 11:00:00,7.0\n",
    "features/shop.yaml": """
        entities:
          item: {join_keys: [item], description: A product.}
        views:
          item_price:
            table: prices
            entities: [item]
            timestamp: at
            ttl: 1d
            owner: shop@example.com
            features:
              price: {type: double, description: The item's price.}
        on_demand:
          price_with_tax:
            type: double
            inputs: [item_price.price]
            function: tax.py:with_tax
        services:
          pricing:
            features: [item_price.price, price_with_tax]
        """,
    "features/tax.py": """
        def with_tax(price):
            return [None if p is None else round(p * 1.2, 6) for p in price]
        """,
}


@pytest.fixture
def shop(make_project: ProjectFactory, cli: Cli) -> Path:
    root = unprotect(make_project(SHOP))
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    return root


def test_training_set_from_a_file_keeps_rows_order_and_counts_null_keys(shop: Path) -> None:
    (shop / "rows.csv").write_text("item,event_timestamp,label\nc,2024-01-01 12:00:00,1\n"
                                   ",2024-01-01 12:00:00,2\na,2024-01-01 09:00:00,3\n"
                                   "a,2024-01-03 09:00:00,4\nb,2024-01-01 10:00:00,5\n")
    result = features.training_set("pricing", shop / "rows.csv", shop / "out.parquet",
                                   project=shop)
    assert isinstance(result, TrainingSet)
    assert (result.rows, result.null_key_rows) == (5, 1)
    got = pd.read_parquet(shop / "out.parquet")
    assert list(got["label"]) == [1, 2, 3, 4, 5]
    # c known at 11:00; null key; a asked before its first price; a past the 1-day TTL; b at 10
    assert [None if pd.isna(v) else v for v in got["price"]] == [7.0, None, None, None, 5.0]
    assert [None if pd.isna(v) else v for v in got["price_with_tax"]] == \
        [8.4, None, None, None, 6.0]


def test_a_large_csv_of_entity_rows_keeps_its_order(shop: Path) -> None:
    """Many rows read in parallel by the engine: still one output row per input row, in order,
    with the values pandas merge_asof gives."""
    import random

    rnd = random.Random(3)
    n = 200_000
    rows = pd.DataFrame({"item": [rnd.choice("abcd") for _ in range(n)],
                         "event_timestamp": [T0 + timedelta(minutes=rnd.randint(0, 3000))
                                             for _ in range(n)], "label": range(n)})
    rows.to_csv(shop / "rows.csv", index=False)
    features.training_set("item_price.price", shop / "rows.csv", shop / "out.parquet",
                          project=shop)
    got = pd.read_parquet(shop / "out.parquet")
    assert got["label"].tolist() == list(range(n))
    prices = pd.DataFrame({"item": ["a", "b", "c"], "ts": [T0 + timedelta(hours=10)] * 2
                           + [T0 + timedelta(hours=11)], "created": [0, 1, 2],
                           "price": [1.0, 5.0, 7.0]})
    expected = _expected(prices, rows.rename(columns={"event_timestamp": "at"}),
                         timedelta(days=1))
    assert [None if pd.isna(v) else v for v in got["price"]] == expected


def test_materialize_then_online_and_incremental(shop: Path, cli: Cli) -> None:
    first = {m.view: m for m in features.materialize(project=shop)}
    assert (first["item_price"].entities, first["item_price"].written) == (3, 3)
    at = datetime(2024, 1, 1, 12, tzinfo=UTC)
    got = features.online("pricing", [{"item": "b"}, {"item": "zz"}], project=shop, at=at)
    assert got[0] == {"features": {"price": 5.0, "price_with_tax": 6.0},
                      "status": {"item_price": "present"}}
    assert got[1]["status"] == {"item_price": "missing"}
    later = features.online("pricing", [{"item": "b"}], project=shop,
                            at=at + timedelta(days=2))
    assert later[0] == {"features": {"price": None, "price_with_tax": None},
                        "status": {"item_price": "expired"}}
    # a new batch changes one item's price and repeats another's: one entity is written
    (shop / "in" / "day2.csv").write_text("item,at,price\na,2024-01-02 10:00:00,2.0\n")
    assert cli("run", "-p", shop, "-q")[0] == 0
    again = {m.view: m for m in features.materialize(project=shop)}
    assert (again["item_price"].entities, again["item_price"].written) == (3, 1)
    assert features.online("item_price.price", [{"item": "a"}], project=shop,
                           at=at + timedelta(days=1))[0]["features"] == {"price": 2.0}
    unchanged = {m.view: m for m in features.materialize(project=shop)}
    assert unchanged["item_price"].written == 0


def test_cli_list_show_training_set_materialize_get(shop: Path, cli: Cli) -> None:
    code, out, err = cli("features", "list", "price", "-p", shop, "--format", "json")
    assert code == 0, err
    assert {r["feature"] for r in json.loads(out)} >= {"item_price.price", "price_with_tax"}
    code, out, _ = cli("features", "show", "item_price", "-p", shop, "--format", "json")
    assert json.loads(out)["defined_at"] == "features/shop.yaml:4"
    (shop / "rows.csv").write_text("item,event_timestamp\nc,2024-01-01 12:00:00\n")
    code, out, err = cli("features", "training-set", "pricing", "--entities", shop / "rows.csv",
                         "-o", shop / "t.csv", "-p", shop)
    assert code == 0, err
    assert pd.read_csv(shop / "t.csv")["price"].tolist() == [7.0]
    assert cli("features", "materialize", "-p", shop)[0] == 0
    code, out, err = cli("features", "get", "item_price.price", "--entity", '{"item": "c"}',
                         "-p", shop, "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["entity"] == {"item": "c"}


# -- bad input ---------------------------------------------------------------------------


def _edit(root: Path, old: str, new: str) -> None:
    path = root / "features" / "shop.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_view_over_a_table_without_its_timestamp_names_file_and_line(shop: Path) -> None:
    _edit(shop, "timestamp: at", "timestamp: seen_at")
    with pytest.raises(ConfigError) as e:
        features.definitions(shop)
    assert (e.value.file, e.value.line) == ("features/shop.yaml", 4)
    assert "no timestamp column 'seen_at'" in e.value.message


def test_unknown_feature_and_table_say_did_you_mean(shop: Path) -> None:
    _edit(shop, "features: [item_price.price, price_with_tax]",
          "features: [item_price.prise, price_with_tax]")
    with pytest.raises(NotFound) as e:
        features.definitions(shop)
    assert "item_price.price" in e.value.hint and e.value.file == "features/shop.yaml"
    _edit(shop, "item_price.prise", "item_price.price")
    _edit(shop, "table: prices", "table: prizes")
    with pytest.raises(NotFound) as e:
        features.definitions(shop)
    assert "'prices'" in e.value.hint


def test_feature_that_is_not_a_column_names_its_line(shop: Path) -> None:
    for old, new in (("price: {type: double", "prize: {type: double"),
                     ("inputs: [item_price.price]", "inputs: [item_price.prize]"),
                     ("[item_price.price,", "[item_price.prize,")):
        _edit(shop, old, new)
    with pytest.raises(ConfigError) as e:
        features.definitions(shop)
    assert (e.value.line, e.value.hint) == (11, "did you mean 'price'?")


def test_entity_rows_without_the_key_or_timestamp_are_refused(shop: Path) -> None:
    (shop / "rows.csv").write_text("sku,event_timestamp\nc,2024-01-01 12:00:00\n")
    with pytest.raises(ConfigError, match="lack key column 'item'"):
        features.training_set("pricing", shop / "rows.csv", shop / "o.parquet", project=shop)
    with pytest.raises(ConfigError, match="no timestamp column 'when'"):
        features.training_set("pricing", shop / "rows.csv", shop / "o.parquet",
                              timestamp="when", project=shop)
    assert not (shop / "o.parquet").exists()


def test_bad_duration_and_unknown_key(shop: Path) -> None:
    _edit(shop, "ttl: 1d", "ttl: one day")
    with pytest.raises(ConfigError, match="not a duration"):
        catalog.load(features._project(shop))
    _edit(shop, "ttl: one day", "tll: 1d")
    with pytest.raises(ConfigError) as e:
        catalog.load(features._project(shop))
    assert "'ttl'" in e.value.hint and e.value.line == 8


def test_redis_down_is_a_clear_error(shop: Path) -> None:
    with (shop / "andon.yaml").open("a") as f:
        f.write("online_store: redis://127.0.0.1:1/0\n")
    with pytest.raises(AndonError, match=r"Redis online store .* failed"):
        features.materialize(project=shop)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("ANDON_TEST_REDIS_URL")
    if not url:
        if IN_CI:
            pytest.fail("ANDON_TEST_REDIS_URL is not set, and CI requires the Redis tests")
        pytest.skip("set ANDON_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    return url


def test_materialize_and_read_with_redis(make_project: ProjectFactory, cli: Cli,
                                        redis_url: str) -> None:
    import uuid

    import redis

    name = f"shop{uuid.uuid4().hex}"  # a project name of its own: its own keys
    config = SHOP["andon.yaml"].replace("name: shop", f"name: {name}").rstrip() \
        + f"\n        online_store: {redis_url}\n"
    root = unprotect(make_project({**SHOP, "andon.yaml": config}))
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    try:
        assert {m.written for m in features.materialize(project=root)} == {3}
        got = features.online("pricing", [{"item": "c"}], project=root,
                              at=datetime(2024, 1, 1, 12, tzinfo=UTC))
        assert got[0]["features"] == {"price": 7.0, "price_with_tax": 8.4}
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"andon:{name}:*"):
            client.delete(key)
        client.close()


# -- the flights example -----------------------------------------------------------------


@pytest.fixture(scope="module")
def flights_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from andon.cli import run_cli

    root = tmp_path_factory.mktemp("features") / "flights"
    init_project(root, "flights")
    assert run_cli(["run", "-p", str(root), "-q"]) == 0
    return root


def test_flights_feature_service_training_set(flights_built: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    result = features.training_set("departure_delay", "flights", out, timestamp="time_hour",
                                   project=flights_built)
    assert isinstance(result, TrainingSet)
    con = duckdb.connect()
    wh = flights_built / ".andon" / "warehouse"
    got = pd.read_parquet(out)
    published = features._schemas(features._project(flights_built), None)[1]
    files = [str(wh / f) for f in published["flights"]["files"]]
    flights = con.sql(f"SELECT flight_id FROM read_parquet({files})").df()
    assert result.rows == len(flights) and list(got["flight_id"]) == list(flights["flight_id"])
    assert result.null_key_rows == int(got["tailnum"].isna().sum())
    # weather as of departure hour, within 3 h: what merge_asof says
    wfiles = [str(wh / f) for f in published["weather"]["files"]]
    weather = con.sql(f"SELECT origin, timezone('UTC', time_hour) AS t, temp FROM "
                      f"read_parquet({wfiles})").df().sort_values("t")
    left = got[["origin", "time_hour"]].reset_index()
    left["t"] = left["time_hour"].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    weather["t"] = weather["t"].astype("datetime64[us]")
    merged = pd.merge_asof(left.sort_values("t"), weather, on="t", by="origin",
                           tolerance=pd.Timedelta(hours=3)).sort_values("index")
    assert got["temp"].fillna(-999).tolist() == merged["temp"].fillna(-999).tolist()
    assert got["plane_age_years"].dropna().between(0, 60).all()
    assert got["on_time_rate_30d"].notna().mean() > 0.9


def test_online_values_over_http(shop: Path) -> None:
    from andon.project import Project
    from tests.apikit import served

    features.materialize(project=shop)
    project = Project.load(shop)
    try:
        with served(project) as client:
            got = client.post("/api/features/online", json={
                "features": "item_price.price", "entities": [{"item": "a"}, {"item": "zz"}]})
            assert got.status_code == 200, got.text
            results = got.json()["results"]
            assert results[1] == {"features": {"price": None},
                                  "status": {"item_price": "missing"}}
            # far past its 1-day TTL now: the value is withheld and flagged
            assert results[0]["status"] == {"item_price": "expired"}
            bad = client.post("/api/features/online", json={"features": "item_price.prise",
                                                            "entities": [{"item": "a"}]})
            assert bad.status_code == 404 and "item_price.price" in bad.json()["error"]["hint"]
            listed = client.get("/api/features", params={"search": "tax"}).json()
            assert [r["feature"] for r in listed["features"]] == ["price_with_tax"]
    finally:
        project.close()


def test_monitor_records_freshness_and_drift_as_check_history(shop: Path, cli: Cli) -> None:
    features.materialize(project=shop)
    (shop / "rows.csv").write_text("item,event_timestamp\n" + "".join(
        f"{i},2024-01-01 12:00:00\n" for i in "abc" * 5))
    features.training_set("pricing", shop / "rows.csv", shop / "t.parquet", project=shop)
    noon = datetime(2024, 1, 1, 12, tzinfo=UTC).timestamp()
    rows = {r["check"]: r for r in features.monitor(shop / "t.parquet", project=shop,
                                                    now=noon)}
    fresh = rows["features.freshness.item_price"]
    assert (fresh["status"], fresh["metric"]) == ("passed", 1.0)  # newest value: 11:00
    drift = rows["features.drift.item_price.price"]
    assert drift["status"] == "passed" and drift["metric"] < 0.01  # trained on what is served
    later = {r["check"]: r for r in features.monitor(project=shop, now=noon + 2 * 86400)}
    assert later["features.freshness.item_price"]["status"] == "failed"  # past the 1-day TTL
    code, out, err = cli("checks", "history", "features.freshness.item_price", "-p", shop,
                         "--format", "json")
    assert code == 0, err
    assert [r["status"] for r in json.loads(out)] == ["passed", "failed"]


def test_materialize_is_authorised_as_running_is(shop: Path) -> None:
    from andon.access import AccessDenied
    from andon.project import Project
    from andon.service import Session

    project = Project.load(shop)
    try:
        admin = Session(project, "alice")
        admin.users_add("alice", "admin")
        admin.users_add("victor", "viewer")
        with pytest.raises(AccessDenied, match="may not materialise features"):
            Session(project, "victor").features_materialize()
        assert not (shop / ".andon" / "features").exists()  # nothing was written
        done = admin.features_materialize(["item_price"])
        assert [(m["view"], m["written"]) for m in done] == [("item_price", 3)]
    finally:
        project.close()


# -- training-serving skew ---------------------------------------------------------------


def test_skew_check_passes_when_serving_matches_and_names_a_tampered_value(shop: Path,
                                                                          cli: Cli) -> None:
    from andon.features.stores import SqliteStore

    features.materialize(project=shop)
    noon = datetime(2024, 1, 1, 12, tzinfo=UTC)
    reader = features.Online(shop, log_sample=1.0)  # log every read
    try:
        reader.get("pricing", [{"item": "a"}, {"item": "b"}, {"item": "zz"}], at=noon)
        reader.get("item_price.price", [{"item": "c"}], at=noon + timedelta(days=3))  # expired
    finally:
        reader.close()
    rows = {r["check"]: r for r in features.monitor(project=shop, now=noon.timestamp())}
    assert rows["features.skew.item_price"]["status"] == "passed"
    assert rows["features.skew.item_price"]["metric"] == 0.0
    # the online store is changed behind andon's back: b's price is no longer the table's
    store = SqliteStore(shop / ".andon" / "online.db")
    store.write("prod", "item_price", [("b", json.dumps({"price": 99.0, "__ts": 1704103200}))],
                [])
    store.close()
    with (shop / "features" / "shop.yaml").open("a") as f:
        f.write("serving: {log_sample: 1.0}\n")  # every read logged, from any face
    code, out, err = cli("features", "get", "item_price.price", "--entity", '{"item": "b"}',
                         "-p", shop, "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["status"] == {"item_price": "expired"}  # now: past its TTL
    got = features.online("item_price.price", [{"item": "b"}], project=shop, at=noon)
    assert got[0]["features"] == {"price": 99.0}
    skew = {r["check"]: r for r in features.monitor(project=shop, now=noon.timestamp())}[
        "features.skew.item_price"]
    assert skew["status"] == "failed" and skew["metric"] == round(1 / 6, 6)  # 1 of 6 values logged
    assert "features: price" in skew["message"] and "item='b'" in skew["message"]
    assert "served 99.0, offline 5.0" in skew["message"]
    code, out, err = cli("checks", "history", "features.skew.item_price", "-p", shop,
                         "--format", "json")
    assert code == 0, err
    assert [r["status"] for r in json.loads(out)] == ["passed", "failed"]


# -- a training set as a step of the pipeline ----------------------------------------------

ASKS = {
    "pipelines/shop/asks.sql": """
        SELECT * FROM (VALUES ('c', TIMESTAMP '2024-01-01 12:00:00', 1),
                              ('a', TIMESTAMP '2024-01-01 12:00:00', 2),
                              (NULL, TIMESTAMP '2024-01-01 12:00:00', 3))
            AS t(item, event_timestamp, label)
        """,
    "pipelines/shop/pricing_train.trainset": """
        features: pricing        # a feature service of features/
        entities: asks
        description: Prices as known when each item was asked for.
        """,
    "checks/train.yaml": """
        pricing_train:
          - {type: not_null, column: price, max_failing: 1}
        """,
}


def _artifact(root: Path, table: str) -> tuple[str, pd.DataFrame]:
    project = features._project(root)
    art = features._schemas(project, None)[1][table]
    wh = Path(project.warehouse)
    return str(art["fingerprint"]), pd.concat(pd.read_parquet(wh / f) for f in art["files"])


def test_a_training_set_step_is_built_reused_rebuilt_and_checked(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = unprotect(make_project({**SHOP, **ASKS}))
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    first, got = _artifact(root, "pricing_train")
    assert got["label"].tolist() == [1, 2, 3]  # entity rows, in order, null key kept
    assert [None if pd.isna(v) else v for v in got["price"]] == [7.0, 1.0, None]
    assert [None if pd.isna(v) else v for v in got["price_with_tax"]] == [8.4, 1.2, None]
    code, out, err = cli("checks", "history", "pricing_train.not_null.price", "-p", root,
                         "--format", "json")
    assert code == 0, err
    assert [r["status"] for r in json.loads(out)] == ["passed"]
    # nothing changed: the same artifact is reused
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _artifact(root, "pricing_train")[0] == first
    # a feature definition changes (a shorter TTL): rebuilt, and its check now stops the line
    _edit(root, "ttl: 1d", "ttl: 1h")
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0 and "not_null" in err
    assert _artifact(root, "pricing_train")[0] == first  # the environment was not changed
    _edit(root, "ttl: 1h", "ttl: 90m")  # a's price (10:00) is past it at 12:00
    (root / "checks" / "train.yaml").write_text(
        "pricing_train:\n  - {type: not_null, column: price, max_failing: 2}\n")
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    fp, got = _artifact(root, "pricing_train")
    assert fp != first and [None if pd.isna(v) else v for v in got["price"]] == [7.0, None, None]


def test_a_training_set_step_naming_an_unknown_feature_names_its_file(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({**SHOP, **ASKS, "pipelines/shop/pricing_train.trainset":
                         "features: [item_price.prise]\nentities: asks\n"})
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert "pricing_train.trainset" in err and "item_price.price" in err


# -- bad input: time zones, Redis down when reading, types offline vs online ---------------


def test_entity_times_with_a_zone_are_compared_in_utc(shop: Path) -> None:
    """c's price is known at 11:00 UTC; entity rows at 13:00+02:00 (= 11:00 UTC) see it,
    rows a second earlier do not, and a row without zone is UTC."""
    (shop / "rows.csv").write_text("item,event_timestamp\nc,2024-01-01 13:00:00+02:00\n"
                                   "c,2024-01-01 12:59:59+02:00\nc,2024-01-01 06:00:00-05:00\n")
    got = features.training_set("item_price.price", shop / "rows.csv", project=shop)
    assert not isinstance(got, TrainingSet)
    assert got.column("price").to_pylist() == [7.0, None, 7.0]


def test_redis_down_when_reading_is_a_clear_error_never_a_fallback(shop: Path) -> None:
    features.materialize(project=shop)  # the SQLite store has values: it must not be used
    with (shop / "andon.yaml").open("a") as f:
        f.write("online_store: redis://127.0.0.1:1/0\n")
    with pytest.raises(AndonError, match=r"Redis online store at redis://127.0.0.1:1/0 failed") \
            as e:
        features.online("item_price.price", [{"item": "a"}], project=shop)
    assert "nothing was served from elsewhere" in e.value.hint


def test_a_type_change_rewrites_the_online_store_and_a_served_type_mismatch_is_skew(
        shop: Path) -> None:
    from andon.features.stores import SqliteStore

    noon = datetime(2024, 1, 1, 12, tzinfo=UTC)
    features.materialize(project=shop)
    _edit(shop, "price: {type: double", "price: {type: integer")
    again = {m.view: m for m in features.materialize(project=shop)}
    assert again["item_price"].written == 3  # the definition changed: every entity rewritten
    got = features.online("item_price.price", [{"item": "c"}], project=shop, at=noon)
    assert got[0]["features"] == {"price": 7} and isinstance(got[0]["features"]["price"], int)
    store = SqliteStore(shop / ".andon" / "online.db")  # a value written by something else
    store.write("prod", "item_price", [("c", json.dumps({"price": "7", "__ts": 1704106800}))],
                [])
    store.close()
    reader = features.Online(shop, log_sample=1.0)
    try:
        reader.get("item_price.price", [{"item": "c"}, {"item": "b"}], at=noon)
    finally:
        reader.close()
    skew = {r["check"]: r for r in features.monitor(project=shop, now=noon.timestamp())}[
        "features.skew.item_price"]
    assert skew["status"] == "failed" and skew["metric"] == 0.5
    assert "price for item='c'" in skew["message"] and "served a str ('7'), declared integer" \
        in skew["message"]
