"""The hot endpoints (online features, predictions) answered without FastAPI's routing and
dependency solving: a valid request never reaches FastAPI, and every request gets the same
answer as FastAPI alone gives (status, body, headers), errors included."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from andon import features
from andon.project import Project
from andon.server import create_app
from andon.server.hot import HotPaths
from andon.service import Session
from tests.conftest import unprotect

FILES = {
    "andon.yaml": "name: hot\n",
    "pipelines/p/raw.sql": """
        SELECT i AS id, (i * 37 % 100) / 100.0 AS x1, (i * 53 % 100) / 100.0 AS x2,
               CAST((i * 37 % 100) + (i * 53 % 100) > 100 AS INTEGER) AS label
        FROM range(400) t(i)
        """,
    "pipelines/p/clf.py": """
        import andon.models
        import pandas as pd
        from sklearn.linear_model import LogisticRegression


        @andon.models.model(label="label", features=["x1", "x2"], validation=0.25, seed=1)
        def clf(raw: pd.DataFrame) -> LogisticRegression:
            return LogisticRegression()
        """,
    "pipelines/p/prices.sql": """
        SELECT * FROM (VALUES ('a', TIMESTAMP '2024-01-01 10:00:00', 1.5),
                              ('b', TIMESTAMP '2024-01-01 11:00:00', 5.0)) t(item, ts, price)
        """,
    "features/shop.yaml": """
        entities:
          item: {join_keys: [item]}
        views:
          item_price:
            table: prices
            entities: [item]
            timestamp: ts
            features:
              price: {type: double}
        services:
          pricing:
            features: [item_price.price]
        """,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    import textwrap

    root = tmp_path_factory.mktemp("hot") / "hot"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    unprotect(root)
    built = Project.load(root)
    result = Session(built, "tester").run("prod")
    assert result.ok, result.error
    built.close()
    features.materialize(project=root)
    loaded = Project.load(root)
    yield loaded
    loaded.close()


class Client:
    """Requests to an app, in-process."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://127.0.0.1") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(send())

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)


@pytest.fixture(scope="module")
def clients(project: Project) -> tuple[Client, Client]:
    """The app as served, and the same app with FastAPI answering every request."""
    plain = create_app(project)
    plain.user_middleware = [m for m in plain.user_middleware
                           if cast(Any, m.cls) is not HotPaths]
    return Client(create_app(project)), Client(plain)


ONLINE = "/api/features/online"
PREDICT = "/api/models/clf/predict"
ROWS = {"rows": [{"x1": 0.9, "x2": 0.95}, {"x1": 0.1, "x2": 0.0}]}
JSON = {"Content-Type": "application/json"}

CASES: list[tuple[str, dict[str, Any]]] = [
    (ONLINE, {"json": {"features": "pricing", "entities": [{"item": "a"}, {"item": "zz"}]}}),
    (ONLINE, {"json": {"features": ["item_price.price"], "entities": [{"item": "b"}],
                       "environment": "prod"}}),
    (ONLINE, {"content": json.dumps({"features": "pricing", "entities": [{"item": "a"}]}),
              "headers": {"Content-Type": "application/json; charset=utf-8"}}),
    (ONLINE, {"json": {"features": "item_price.prise", "entities": [{"item": "a"}]}}),
    (ONLINE, {"json": {"features": "pricing", "entities": [{"item": "a"}], "more": 1}}),
    (ONLINE, {"json": {"features": 3, "entities": [{"item": "a"}]}}),
    (ONLINE, {"json": {"features": "pricing", "entities": []}}),
    (ONLINE, {"json": None}),
    (ONLINE, {"content": "{", "headers": JSON}),
    (ONLINE, {"content": ""}),
    (ONLINE, {"content": json.dumps({"features": "pricing", "entities": [{"item": "a"}]})}),
    (ONLINE, {"content": json.dumps({"features": "pricing", "entities": [{"item": "a"}]}),
              "headers": {"Content-Type": "text/plain"}}),
    (ONLINE, {"json": {"features": "pricing", "entities": [{"item": "a"}]},
              "headers": {"Authorization": "Basic eHl6"}}),
    (ONLINE, {"json": {"features": "pricing", "entities": [{"item": "a"}]},
              "headers": {"Authorization": "Bearer andon_unknown"}}),
    (PREDICT, {"json": ROWS}),
    (PREDICT + "?version=1", {"json": ROWS}),
    (PREDICT + "?version=1&version=9", {"json": ROWS}),
    (PREDICT + "?version=007", {"json": ROWS}),
    (PREDICT + "?version=99", {"json": ROWS}),
    (PREDICT + "?version=one", {"json": ROWS}),
    (PREDICT + "?version=-1", {"json": ROWS}),
    (PREDICT + "?alias=champion", {"json": ROWS}),
    (PREDICT + "?environment=nowhere", {"json": ROWS}),
    (PREDICT, {"json": {"rows": [{"x1": 0.9}]}}),
    (PREDICT, {"json": {"rows": [{"x1": 0.9, "x2": "high"}]}}),
    (PREDICT, {"json": {"rows": "x"}}),
    (PREDICT, {"json": {"rows": [], "extra": True}}),
    (PREDICT, {"content": "[1, 2", "headers": JSON}),
    ("/api/models/nope/predict", {"json": ROWS}),
    ("/api/models/a..b/predict", {"json": ROWS}),
    ("/api/models//predict", {"json": ROWS}),
    ("/api/models/clf/x/predict", {"json": ROWS}),
]


@pytest.mark.parametrize(("url", "request_"), CASES)
def test_every_request_is_answered_as_fastapi_answers_it(
        clients: tuple[Client, Client], url: str, request_: dict[str, Any]) -> None:
    fast, slow = clients
    got, want = fast.post(url, **request_), slow.post(url, **request_)
    assert got.status_code == want.status_code, (got.text, want.text)
    assert got.json() == want.json()
    for header in ("content-type", "www-authenticate"):
        assert got.headers.get(header) == want.headers.get(header)


def test_the_answers_are_the_features_and_predictions(
        clients: tuple[Client, Client]) -> None:
    fast, _ = clients
    got = fast.post(ONLINE, json={"features": "pricing", "entities": [{"item": "b"}]})
    assert got.status_code == 200 and got.json()["results"][0]["features"] == {"price": 5.0}
    answer = fast.post(PREDICT, json=ROWS).json()
    assert (answer["model"], answer["version"], answer["predictions"]) == ("clf", 1, [1, 0])


class FastAPIBehind:
    """An ASGI app standing for FastAPI behind ``HotPaths``: notes what reaches it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def call(app: FastAPI, behind: FastAPIBehind, path: str, body: bytes) -> int:
    chunks = [body[:5], body[5:]]  # a body in two messages, as a client may send it
    sent: list[Message] = []

    async def receive() -> Message:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "scheme": "http", "app": app,
             "headers": [(b"content-type", b"application/json")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(HotPaths(behind)(scope, receive, send))
    status: int = sent[0]["status"]
    return status


def test_a_valid_request_never_reaches_fastapi_and_any_other_does_with_its_body(
        project: Project) -> None:
    app, behind = create_app(project), FastAPIBehind()
    valid = json.dumps({"features": "pricing", "entities": [{"item": "a"}]}).encode()
    assert call(app, behind, ONLINE, valid) == 200
    assert call(app, behind, PREDICT, json.dumps(ROWS).encode()) == 200
    assert behind.bodies == []
    refused = json.dumps({"features": "pricing", "entities": [], "more": 1}).encode()
    assert call(app, behind, ONLINE, refused) == 299
    assert behind.bodies == [refused]  # replayed whole, for FastAPI to judge
    assert call(app, behind, "/api/runs", b"{}") == 299  # any other endpoint: FastAPI's


def test_the_openapi_description_still_has_the_hot_endpoints(
        clients: tuple[Client, Client]) -> None:
    fast, slow = clients
    described = fast.get("/openapi.json").json()
    assert described == slow.get("/openapi.json").json()
    body = described["paths"][ONLINE]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/OnlineRequest")
    params = {p["name"] for p in described["paths"]["/api/models/{name}/predict"]["post"]
              ["parameters"]}
    assert params == {"name", "environment", "version", "alias", "shadow"}


def test_the_hot_paths_are_in_front_of_every_other_middleware(project: Project) -> None:
    app = create_app(project)
    assert cast(Any, app.user_middleware[0].cls) is HotPaths


def test_hot_paths_take_no_other_route() -> None:
    from andon.server.hot import _route

    def scope(method: str, path: str, root_path: str = "") -> Scope:
        return {"type": "http", "method": method, "path": path, "root_path": root_path}

    assert _route(scope("POST", ONLINE)) is not None
    assert _route(scope("POST", PREDICT)) is not None
    for other in (scope("GET", ONLINE), scope("POST", ONLINE + "/"),
                  scope("POST", "/api/models/predict"), scope("POST", "/api/models/a/b/predict"),
                  scope("POST", ONLINE, "/behind-a-proxy"), {"type": "websocket", "path": ONLINE}):
        assert _route(other) is None
