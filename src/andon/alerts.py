"""Alerts on warn and error check results: a webhook (Slack-compatible JSON), email over
SMTP, or a command. One message per run, grouped by step; a failing channel is logged and
never fails the run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shlex
import smtplib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

from andon.checks.model import CheckResult
from andon.config import AlertConfig
from andon.events import RunResult
from andon.masking import mask_rows, mask_text
from andon.project import Project

log = logging.getLogger("andon.alerts")


def build_message(project: Project, run: RunResult, results: Sequence[CheckResult],
                  min_severity: str = "warn") -> dict[str, Any] | None:
    levels = ("error",) if min_severity == "error" else ("error", "warn")
    alerting = [_masked(project, r) for r in results if r.alerts and r.severity in levels]
    if not alerting:
        return None
    by_step: dict[str, list[CheckResult]] = {}
    for r in alerting:
        by_step.setdefault(r.table, []).append(r)
    failed = [r for r in alerting if r.status == "failed"]
    errors = sum(1 for r in failed if r.severity == "error")
    head = (f"andon {project.name}: run {run.run_id} in {run.environment} {run.status}: "
            f"{errors} error, {len(failed) - errors} warning check(s) failed")
    if len(failed) < len(alerting):  # a check that could not run is a defect of the pipeline
        head += f"; {len(alerting) - len(failed)} check(s) could not run"
    lines = [head]
    steps = []
    for step, rs in sorted(by_step.items()):
        s = project.dag.steps.get(step)
        owner = s.config.owner if s else None
        lines.append(f"• {step}" + (f" (owner {owner})" if owner else ""))
        for r in rs:
            what = " could not run" if r.status == "error" else ""
            lines.append(f"    [{r.severity}] {r.name}{what}: {r.message}")
        steps.append({"step": step, "owner": owner,
                      "checks": [r.to_dict() for r in rs]})
    return {"text": "\n".join(lines), "project": project.name, "run": run.run_id,
            "environment": run.environment, "status": run.status, "steps": steps}


def _masked(project: Project, r: CheckResult) -> CheckResult:
    """The result as an alert may show it: its message and failing rows with the values of
    the table's PII columns masked (the check masked them already; this holds for results
    judged before and for every channel alike)."""
    from andon.catalog import known_pii

    pii = known_pii(project, r.table, r.fingerprint)
    return dataclasses.replace(r, message=mask_text(r.message),
                               sample=tuple(mask_rows(r.sample, pii)))


def send_alerts(project: Project, run: RunResult, results: Sequence[CheckResult]) -> list[str]:
    """Send through every configured channel; returns the failures (also logged)."""
    failures: list[str] = []
    for channel in project.config.alerts:
        try:  # composing the message is inside too: nothing here may fail the run
            message = build_message(project, run, results, channel.min_severity)
            if message is None:
                continue
            _send(channel, message)
        except Exception as e:  # a broken channel must never fail the run
            text = f"alert via {channel.type} failed: {type(e).__name__}: {e}"
            log.warning(text)
            failures.append(text)
            with contextlib.suppress(Exception):  # a store that is down is reported elsewhere
                project.store.record(logs=[{"run_id": run.run_id, "step": None,
                                            "at": time.time(), "level": "warning",
                                            "message": text}])
    return failures


def send_notice(project: Project, message: dict[str, Any], severity: str = "error"
                ) -> list[str]:
    """Send a message that is not about one run (a late table: ``andon.schedule.sla``)
    through every channel whose ``min_severity`` admits ``severity``. ``message`` has
    ``text`` and ``steps`` (``[{"step", "owner"}]``: owners with an email address get the
    email). Returns the failures (also logged); never raises."""
    failures: list[str] = []
    for channel in project.config.alerts:
        if channel.min_severity == "error" and severity != "error":
            continue
        try:
            _send(channel, message)
        except Exception as e:  # a broken channel must not stop the caller
            text = f"alert via {channel.type} failed: {type(e).__name__}: {e}"
            log.warning(text)
            failures.append(text)
    return failures


def _send(channel: AlertConfig, message: dict[str, Any]) -> None:
    if channel.type == "webhook":
        assert channel.url
        body = json.dumps({"text": message["text"], "andon": message}, default=str).encode()
        req = urllib.request.Request(channel.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=channel.timeout) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"HTTP {resp.status}")
    elif channel.type == "email":
        owners = [s["owner"] for s in message["steps"] if s["owner"] and "@" in s["owner"]]
        to = sorted(set(channel.to) | set(owners))
        if not to:
            raise RuntimeError("no recipients: set 'to:' or step owners with email addresses")
        mail = EmailMessage()
        mail["Subject"] = message["text"].splitlines()[0]
        mail["From"] = channel.sender
        mail["To"] = ", ".join(to)
        mail.set_content(message["text"])
        with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=channel.timeout) as smtp:
            smtp.send_message(mail)
    else:
        assert channel.command
        done = subprocess.run(shlex.split(channel.command), input=json.dumps(message,
                              default=str), text=True, capture_output=True,
                              timeout=channel.timeout)
        if done.returncode != 0:
            raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[:200]}")
