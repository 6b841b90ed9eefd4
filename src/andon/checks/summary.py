"""Check results counted by status and severity, as one line a reader can trust
("40 passed, 2 warn failed, 1 error-severity errored; 12 reused")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from andon.checks.model import CheckResult

# a check in status error could not run: a defect of the pipeline, shown apart from failures
_ORDER = ("passed", "recorded", "failed", "error")
_VERB = {"passed": "passed", "recorded": "recorded", "failed": "failed", "error": "errored"}
_SEVERITIES = ("info", "warn", "error")


def label(r: CheckResult) -> str:
    """How one result is counted: ``passed``, ``recorded``, ``warn failed``,
    ``error-severity errored`` ..."""
    verb = _VERB.get(r.status, r.status)
    if r.status in ("passed", "recorded"):
        return verb
    severity = "error-severity" if r.severity == "error" else r.severity
    return f"{severity} {verb}"


def counts(results: Iterable[CheckResult]) -> dict[str, int]:
    """Label → number of results, in a fixed order (passed first, errored last)."""
    found: dict[tuple[int, int], tuple[str, int]] = {}
    for r in results:
        key = (_ORDER.index(r.status) if r.status in _ORDER else len(_ORDER),
               _SEVERITIES.index(r.severity) if r.severity in _SEVERITIES else 0)
        name, n = found.get(key, (label(r), 0))
        found[key] = (name, n + 1)
    return {name: n for _, (name, n) in sorted(found.items())}


def tally(results: Iterable[CheckResult]) -> str:
    """One line: fresh results by status and severity, then the results reused unchanged
    from an earlier run (counted apart: they are not news)."""
    rs = list(results)
    fresh = [r for r in rs if not r.reused]
    reused = [r for r in rs if r.reused]
    text = ", ".join(f"{n} {k}" for k, n in counts(fresh).items())
    if reused:
        bad = {k: n for k, n in counts(reused).items() if k != "passed"}
        more = f" ({', '.join(f'{n} {k}' for k, n in bad.items())})" if bad else ""
        text += ("; " if text else "") + f"{len(reused)} reused{more}"
    return text or "none"
