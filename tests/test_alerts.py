"""Alerts on warn and error check results, against real local servers: a webhook (http.server
in a thread), email (aiosmtpd), a command; failing channels are logged and never fail the run."""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import andon
from tests.conftest import Cli, ProjectFactory

# two steps: orders (owner with an e-mail address) and customers (owner without one)
ORDERS = """\
/* ---
owner: {owner}
checks:
{checks}
--- */
SELECT i AS id, i * 10 AS amount, CASE WHEN i % 2 = 0 THEN 'EU' ELSE 'US' END AS region
FROM range(10) t(i)
"""
CUSTOMERS = """\
/* ---
owner: {owner}
checks:
{checks}
--- */
SELECT i AS customer_id, 'c' || i AS name FROM range(5) t(i)
"""
PASSING = "  - {type: not_null, column: id}"
WARN_AMOUNT = "  - {type: between, column: amount, max: 50, severity: warn}"  # 4 failing rows
ERROR_REGION = "  - {type: accepted_values, column: region, values: [EU]}"  # 5 failing rows
INFO_ROWS = "  - {type: row_count, min: 100, severity: info}"  # fails, but only records
WARN_NAME = "  - {type: regex, column: name, pattern: '[a-z]', severity: warn}"  # 5 failing


def project(make_project: ProjectFactory, alerts: list[dict[str, Any]], *,
            orders: list[str], customers: list[str] | None = None,
            orders_owner: str = "ops@example.com", customers_owner: str = "Team Data",
            extra: dict[str, str] | None = None) -> Path:
    files = {
        # JSON is YAML: the alert list is written as it is, no quoting trouble
        "andon.yaml": f"name: shop\nthreads: 2\nalerts: {json.dumps(alerts)}\n",
        "pipelines/shop/orders.sql": ORDERS.format(owner=orders_owner,
                                                   checks="\n".join(orders)),
    }
    if customers is not None:
        files["pipelines/shop/customers.sql"] = CUSTOMERS.format(
            owner=customers_owner, checks="\n".join(customers))
    files.update(extra or {})
    return make_project(files)


def run(cli: Cli, root: Path) -> tuple[int, str, int]:
    """``andon run``: exit code, output, and the run's id."""
    code, out, err = cli("run", "-p", root)
    runs = andon.Project.load(root).store.runs()
    return code, out + err, int(runs[0]["id"])


def logs(root: Path, run_id: int) -> list[dict[str, Any]]:
    return andon.Project.load(root).store.logs(run_id)


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def step_blocks(text: str) -> dict[str, list[str]]:
    """The message's text as step → its check lines (grouping as a reader sees it)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines()[1:]:
        if line.startswith("• "):
            current = blocks.setdefault(line[2:].split(" (owner")[0], [])
        else:
            assert current is not None, f"check line before any step: {line!r}"
            current.append(line.strip())
    return blocks


# --- a real webhook receiver ------------------------------------------------------------------


@dataclass
class Hook:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[Hook]:
    hook = Hook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if hook.delay:
                time.sleep(hook.delay)
            hook.requests.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                  "json": json.loads(body)})
            with contextlib.suppress(OSError):  # the client may have given up (timeout)
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/andon"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


# --- a real SMTP server -----------------------------------------------------------------------


@dataclass
class Mail:
    sender: str
    rcpt: list[str]
    message: Message


class Collect:
    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos),
                               message_from_bytes(envelope.original_content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Collect]]:
    handler = Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, handler
    controller.stop()


def body_of(m: Message) -> str:
    part = m.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode(m.get_content_charset() or "utf-8")


def command_writing_to(path: Path, exit_code: int = 0) -> str:
    code = (f"import sys; open({str(path)!r}, 'w').write(sys.stdin.read()); "
            f"sys.exit({exit_code})")
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


# --- webhook ----------------------------------------------------------------------------------


def test_webhook_gets_one_slack_message_per_run_grouped_by_step(
        make_project: ProjectFactory, cli: Cli, webhook: Hook) -> None:
    root = project(make_project, [{"type": "webhook", "url": webhook.url}],
                   orders=[PASSING, WARN_AMOUNT], customers=[WARN_NAME])
    code, out, run_id = run(cli, root)
    assert code == 0, out  # warn checks never fail the run
    assert len(webhook.requests) == 1  # one message for the run, not one per step or check
    req = webhook.requests[0]
    assert req["path"] == "/hooks/andon"
    assert req["type"] == "application/json"
    text = req["json"]["text"]  # Slack-compatible: a "text" field
    head = text.splitlines()[0]
    assert f"run {run_id}" in head and "prod" in head
    assert "0 error, 2 warning" in head
    blocks = step_blocks(text)
    assert set(blocks) == {"orders", "customers"}
    assert len(blocks["orders"]) == 1 and "orders.between.amount" in blocks["orders"][0]
    assert blocks["orders"][0].startswith("[warn]")
    assert "4 failing rows of 10" in blocks["orders"][0]
    assert len(blocks["customers"]) == 1 and "customers.regex.name" in blocks["customers"][0]
    assert "• orders (owner ops@example.com)" in text
    assert "• customers (owner Team Data)" in text
    # the passing check is not mentioned
    assert "not_null" not in text
    # the structured part names the owners per step too
    steps = {s["step"]: s for s in req["json"]["andon"]["steps"]}
    assert steps["orders"]["owner"] == "ops@example.com"
    assert [c["name"] for c in steps["orders"]["checks"]] == ["orders.between.amount"]
    assert logs(root, run_id) == []  # a delivered alert leaves no warning behind


def test_error_results_alert_and_the_run_still_fails_as_before(
        make_project: ProjectFactory, cli: Cli, webhook: Hook) -> None:
    root = project(make_project, [{"type": "webhook", "url": webhook.url}],
                   orders=[ERROR_REGION, WARN_AMOUNT])
    code, out, _ = run(cli, root)
    assert code != 0, out  # an error check stops the line
    assert len(webhook.requests) == 1
    msg = webhook.requests[0]["json"]
    assert msg["andon"]["status"] == "failed"
    assert "1 error, 1 warning" in msg["text"]
    lines = step_blocks(msg["text"])["orders"]
    assert any(li.startswith("[error] orders.accepted_values.region") for li in lines), lines
    assert any(li.startswith("[warn] orders.between.amount") for li in lines), lines


def test_checks_from_check_files_join_their_step_in_the_same_message(
        make_project: ProjectFactory, cli: Cli, webhook: Hook) -> None:
    root = project(make_project, [{"type": "webhook", "url": webhook.url}],
                   orders=[WARN_AMOUNT], extra={"checks/orders.yaml": """
                   orders:
                     - {type: row_count, max: 3, severity: warn, name: orders.not_too_many}
                   """})
    code, out, _ = run(cli, root)
    assert code == 0, out
    assert len(webhook.requests) == 1
    lines = step_blocks(webhook.requests[0]["json"]["text"])["orders"]
    assert len(lines) == 2, lines
    assert any("orders.not_too_many" in li for li in lines)


def test_no_alert_when_every_check_passes(
        make_project: ProjectFactory, cli: Cli, webhook: Hook) -> None:
    root = project(make_project, [{"type": "webhook", "url": webhook.url}],
                   orders=[PASSING, "  - {type: between, column: amount, max: 90, "
                                    "severity: warn}"])
    code, out, _ = run(cli, root)
    assert code == 0, out
    assert "warn failed" not in out
    assert webhook.requests == []


def test_info_results_never_alert(
        make_project: ProjectFactory, cli: Cli, webhook: Hook) -> None:
    root = project(make_project, [{"type": "webhook", "url": webhook.url}],
                   orders=[PASSING, INFO_ROWS])
    code, out, _ = run(cli, root)
    assert code == 0, out
    assert "1 recorded" in out  # the info check did fail: it was recorded, not alerted
    assert webhook.requests == []


def test_min_severity_error_skips_warn(
        make_project: ProjectFactory, cli: Cli, webhook: Hook, tmp_path: Path) -> None:
    both = tmp_path / "both.json"  # a second channel, default min_severity: warn
    root = project(make_project, [
        {"type": "webhook", "url": webhook.url, "min_severity": "error"},
        {"type": "command", "command": command_writing_to(both)}],
        orders=[WARN_AMOUNT])
    code, out, _ = run(cli, root)
    assert code == 0, out
    assert webhook.requests == []  # warn only: the error-level channel stays quiet
    assert "orders.between.amount" in json.loads(both.read_text())["text"]


def test_min_severity_error_sends_only_the_errors(
        make_project: ProjectFactory, cli: Cli, webhook: Hook) -> None:
    root = project(make_project, [
        {"type": "webhook", "url": webhook.url, "min_severity": "error"}],
        orders=[WARN_AMOUNT, ERROR_REGION])
    code, _, _ = run(cli, root)
    assert code != 0
    assert len(webhook.requests) == 1
    text = webhook.requests[0]["json"]["text"]
    assert "orders.accepted_values.region" in text
    assert "orders.between.amount" not in text
    assert "1 error, 0 warning" in text


# --- email ------------------------------------------------------------------------------------


def test_email_goes_to_the_step_owner_and_to(
        make_project: ProjectFactory, cli: Cli, smtp: tuple[int, Collect]) -> None:
    port, server = smtp
    root = project(make_project, [{"type": "email", "smtp_host": "127.0.0.1",
                                   "smtp_port": port, "sender": "andon@shop.test",
                                   "to": ["oncall@example.com"]}],
                   orders=[WARN_AMOUNT], customers=[WARN_NAME])
    code, out, run_id = run(cli, root)
    assert code == 0, out
    assert len(server.mails) == 1  # one message for both steps
    mail = server.mails[0]
    assert mail.sender == "andon@shop.test"
    # the owner with an address is added; "Team Data" is not an address
    assert sorted(mail.rcpt) == ["oncall@example.com", "ops@example.com"]
    assert mail.message["To"] == "oncall@example.com, ops@example.com"
    assert mail.message["From"] == "andon@shop.test"
    subject = mail.message["Subject"]
    assert f"run {run_id}" in subject and "0 error, 2 warning" in subject
    blocks = step_blocks(body_of(mail.message))
    assert set(blocks) == {"orders", "customers"}
    assert "orders.between.amount" in blocks["orders"][0]
    assert logs(root, run_id) == []


def test_email_reaches_each_owner_without_to(
        make_project: ProjectFactory, cli: Cli, smtp: tuple[int, Collect]) -> None:
    port, server = smtp
    root = project(make_project, [{"type": "email", "smtp_host": "127.0.0.1",
                                   "smtp_port": port}],
                   orders=[WARN_AMOUNT], customers=[WARN_NAME],
                   customers_owner="crm@example.com")
    code, out, _ = run(cli, root)
    assert code == 0, out
    assert len(server.mails) == 1
    assert sorted(server.mails[0].rcpt) == ["crm@example.com", "ops@example.com"]


def test_email_only_to_owners_of_steps_that_alert(
        make_project: ProjectFactory, cli: Cli, smtp: tuple[int, Collect]) -> None:
    port, server = smtp
    root = project(make_project, [{"type": "email", "smtp_host": "127.0.0.1",
                                   "smtp_port": port, "to": ["oncall@example.com"]}],
                   orders=[WARN_AMOUNT], customers=[PASSING.replace("id", "customer_id")],
                   customers_owner="crm@example.com")
    code, out, _ = run(cli, root)
    assert code == 0, out
    assert len(server.mails) == 1
    assert sorted(server.mails[0].rcpt) == ["oncall@example.com", "ops@example.com"]


# --- command ----------------------------------------------------------------------------------


def test_command_gets_the_message_on_stdin(
        make_project: ProjectFactory, cli: Cli, tmp_path: Path) -> None:
    out_file = tmp_path / "alert.json"
    root = project(make_project, [{"type": "command", "command": command_writing_to(out_file)}],
                   orders=[PASSING, WARN_AMOUNT, INFO_ROWS], customers=[WARN_NAME])
    code, out, run_id = run(cli, root)
    assert code == 0, out
    msg = json.loads(out_file.read_text())
    assert msg["run"] == run_id and msg["project"] == "shop" and msg["environment"] == "prod"
    steps = {s["step"]: s for s in msg["steps"]}
    assert set(steps) == {"orders", "customers"}
    # info and passing results are left out
    assert [c["name"] for c in steps["orders"]["checks"]] == ["orders.between.amount"]
    assert steps["orders"]["checks"][0]["failing"] == 4
    assert steps["orders"]["owner"] == "ops@example.com"
    assert set(step_blocks(msg["text"])) == {"orders", "customers"}


# --- failing channels -------------------------------------------------------------------------


def test_failing_channels_are_logged_and_never_fail_the_run(
        make_project: ProjectFactory, cli: Cli, webhook: Hook, tmp_path: Path) -> None:
    webhook.delay = 3.0  # longer than the channel's timeout
    delivered = tmp_path / "delivered.json"
    refused = free_port()
    root = project(make_project, [
        {"type": "webhook", "url": webhook.url, "timeout": 0.5},
        {"type": "webhook", "url": f"http://127.0.0.1:{refused}/hook", "timeout": 2},
        {"type": "command", "command": command_writing_to(tmp_path / "x.json", exit_code=1)},
        {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": refused, "timeout": 2,
         "to": ["oncall@example.com"]},
        {"type": "command", "command": command_writing_to(delivered)},
    ], orders=[WARN_AMOUNT])
    started = time.monotonic()
    code, out, run_id = run(cli, root)
    elapsed = time.monotonic() - started
    assert code == 0, out  # only warn checks failed: the broken channels change nothing
    assert elapsed < 15  # the slow webhook was given up after its timeout
    runs = andon.Project.load(root).store.runs()
    assert runs[0]["status"] == "succeeded"
    warnings = [r for r in logs(root, run_id) if r["level"] == "warning"]
    messages = [r["message"] for r in warnings]
    assert len(messages) == 4, messages
    assert "webhook" in messages[0] and "timed out" in messages[0].lower(), messages[0]
    assert "webhook" in messages[1] and "refused" in messages[1].lower(), messages[1]
    assert "command" in messages[2] and "exit 1" in messages[2], messages[2]
    assert "email" in messages[3] and "refused" in messages[3].lower(), messages[3]
    assert all(r["run_id"] == run_id and r["at"] > 0 for r in warnings)
    # the working channel after the broken ones still got its message
    assert "orders.between.amount" in json.loads(delivered.read_text())["text"]


def test_a_webhook_answering_an_http_error_is_logged(
        make_project: ProjectFactory, cli: Cli, webhook: Hook) -> None:
    webhook.status = 500
    root = project(make_project, [{"type": "webhook", "url": webhook.url}],
                   orders=[WARN_AMOUNT])
    code, out, run_id = run(cli, root)
    assert code == 0, out
    assert len(webhook.requests) == 1  # it was delivered, and answered 500
    messages = [r["message"] for r in logs(root, run_id)]
    assert len(messages) == 1 and "500" in messages[0], messages


def test_a_failing_channel_with_an_error_check_keeps_the_run_failure(
        make_project: ProjectFactory, cli: Cli) -> None:
    refused = free_port()
    root = project(make_project, [{"type": "webhook", "url": f"http://127.0.0.1:{refused}/",
                                   "timeout": 2}], orders=[ERROR_REGION])
    code, out, run_id = run(cli, root)
    assert code != 0
    assert "accepted_values" in out  # the check failure is what is reported, not the alert
    assert andon.Project.load(root).store.runs()[0]["status"] == "failed"
    assert any("refused" in r["message"].lower() for r in logs(root, run_id))


def test_a_bug_while_composing_the_message_is_logged_not_raised(
        make_project: ProjectFactory, cli: Cli, webhook: Hook,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise ValueError("cannot compose")

    monkeypatch.setattr("andon.alerts.build_message", broken)
    root = project(make_project, [{"type": "webhook", "url": webhook.url}],
                   orders=[WARN_AMOUNT])
    code, out, run_id = run(cli, root)
    assert code == 0, out
    assert andon.Project.load(root).store.runs()[0]["status"] == "succeeded"
    assert webhook.requests == []
    assert any("cannot compose" in r["message"] for r in logs(root, run_id))
