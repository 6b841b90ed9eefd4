"""HTTP JSON API sources (kind: http) against a real local HTTP server: pagination, auth
from a secret, retries on 5xx, and the answers that must stop a pull."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import andon
from andon.errors import AndonError
from andon.secrets import set_secret
from andon.sources.pull import pull
from tests.conftest import Cli, ProjectFactory

TOKEN = "Bearer s3cret-token-value"
HITS: dict[str, int] = {}


def _records(start: int, n: int) -> list[dict[str, object]]:
    return [{"id": i, "name": f"r{i}"} for i in range(start, start + n)]


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: object, ctype: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        HITS[route] = HITS.get(route, 0) + 1
        if route == "/paged":  # ?page=N: 2 records a page, 3 pages
            n = int(q.get("page", "1"))
            self._send(200, _records(2 * n - 1, 2) if n <= 3 else [])
        elif route == "/linked":
            n = int(q.get("p", "1"))
            self._send(200, {"data": _records(10 * n, 3),
                             "links": {"next": f"/linked?p={n + 1}" if n < 2 else None}})
        elif route == "/cursor":
            after = q.get("after")
            pages = {None: ("c1", 0), "c1": ("c2", 2), "c2": ("", 4)}
            nxt, start = pages[after]
            self._send(200, {"result": {"items": _records(start, 2)}, "meta": {"next": nxt}})
        elif route == "/flaky":  # two 500s, then the answer
            if HITS[route] <= 2:
                self._send(500, {"error": "try again"})
            else:
                self._send(200, _records(1, 1))
        elif route == "/down":
            self._send(503, {"error": "down"})
        elif route == "/html":
            self._send(200, "<html><body>Please sign in</body></html>", "text/html")
        elif route == "/endless":
            n = int(q.get("p", "1"))
            self._send(200, {"data": _records(n, 1), "next": f"/endless?p={n + 1}"})
        elif route == "/loop":
            self._send(200, {"data": _records(1, 1), "next": "/loop"})
        elif route == "/auth":
            if self.headers.get("Authorization") != TOKEN:
                self._send(401, {"error": "unauthorized"})
            else:
                self._send(200, {"items": _records(1, 2)})
        else:
            self._send(404, {"error": "no such route"})


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _project(make_project: ProjectFactory, settings: str) -> Path:
    body = "".join(f"    {line}\n" for line in settings.strip().splitlines())
    return make_project({
        "andon.yaml": "name: t\nsources:\n  items:\n    kind: http\n" + body
        + "    retries: 2\n    backoff: 0.01\n"
        + "    columns: {id: {type: bigint, required: true}, name: string}\n",
        "pipelines/p/n.sql": "SELECT count(*) AS n, sum(id) AS s FROM items\n",
    })


def test_page_pagination_lands_one_snapshot_and_runs(
        make_project: ProjectFactory, cli: Cli, api: str) -> None:
    root = _project(make_project, f"url: {api}/paged\npaginate: page")
    code, out, err = cli("sources", "pull", "items", "-p", root, "--format", "json")
    assert code == 0, err
    assert '"rows": 6' in out and '"pages": 4' in out
    assert cli("run", "-p", root, "-q")[0] == 0
    _, rows = andon.query(andon.Project.load(root), "SELECT n, s FROM n")
    assert rows == [(6, 21)]
    # the same answer again: the same bytes, nothing new lands
    assert pull(andon.Project.load(root), "items")["landed"] is False


def test_next_link_and_cursor_pagination(make_project: ProjectFactory, api: str) -> None:
    linked = _project(make_project, f"url: {api}/linked\npaginate: next_link\nnext: links.next")
    got = pull(andon.Project.load(linked), "items")
    assert (got["rows"], got["pages"]) == (6, 2)
    cursor = _project(make_project, f"url: {api}/cursor\npaginate: cursor\nnext: meta.next\n"
                      "page_param: after\nrecords: result.items")
    got = pull(andon.Project.load(cursor), "items")
    assert (got["rows"], got["pages"]) == (6, 3)


def test_auth_header_from_a_secret(make_project: ProjectFactory, api: str) -> None:
    root = _project(make_project, f"url: {api}/auth\nauth_secret: api_token")
    project = andon.Project.load(root)
    with pytest.raises(AndonError) as e:
        pull(project, "items")
    assert "api_token" in e.value.message  # not set yet
    set_secret(project.store, root, "api_token", "Bearer wrong", who="test")
    with pytest.raises(AndonError) as e:
        pull(project, "items")
    assert "HTTP 401" in e.value.message and "auth_secret" in (e.value.hint or "")
    set_secret(project.store, root, "api_token", TOKEN, who="test")
    assert pull(project, "items")["rows"] == 2


def test_a_500_is_retried_and_does_not_stop_the_pull(
        make_project: ProjectFactory, api: str) -> None:
    HITS.pop("/flaky", None)
    root = _project(make_project, f"url: {api}/flaky")
    assert pull(andon.Project.load(root), "items")["rows"] == 1
    assert HITS["/flaky"] == 3


@pytest.mark.parametrize(("route", "extra", "message"), [
    ("down", "", "failed 3 times (HTTP 503"),
    ("html", "", "answered HTML, not JSON: <html><body>Please sign in"),
    ("endless", "paginate: next_link\nmax_pages: 5", "more than max_pages 5 pages"),
    ("loop", "paginate: next_link", "the pagination loops"),
    ("nothing", "", "HTTP 404"),
])
def test_bad_answers_stop_the_pull_and_land_nothing(
        make_project: ProjectFactory, cli: Cli, api: str, route: str, extra: str,
        message: str) -> None:
    root = _project(make_project, f"url: {api}/{route}\n{extra}")
    code, _, err = cli("sources", "pull", "items", "-p", root)
    assert code != 0
    assert message in " ".join(err.split())
    store = andon.Project.load(root).store
    assert store.landed_files("items") == []
    assert not [p for p in (root / ".andon/pulls/items").rglob("*") if p.is_file()]
