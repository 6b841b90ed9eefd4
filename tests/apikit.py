"""The API served for real: uvicorn in a thread on a free port, and an httpx client for it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from andon.project import Project
from andon.server import create_app

ERROR_FIELDS = {"kind", "type", "message", "file", "line", "column", "step", "hint", "detail"}


@contextmanager
def served(project: Project, *, host: str = "127.0.0.1") -> Iterator[httpx.Client]:
    """``create_app(project, host=host)`` listening on ``host`` (port chosen by the OS); the
    client talks to it over loopback."""
    config = uvicorn.Config(create_app(project, host=host), host=host, port=0,
                            log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error of a response, asserting its status and the one error shape."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= ERROR_FIELDS, body
    error: dict[str, Any] = body["error"]
    return error


def events(client: httpx.Client, url: str, **headers: str) -> list[tuple[str, dict[str, Any]]]:
    """Every server-sent event of ``url`` until the server ends the stream."""
    out: list[tuple[str, dict[str, Any]]] = []
    kind, data = "message", ""
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and data:
                out.append((kind, json.loads(data)))
                kind, data = "message", ""
    return out
