"""Data tests: a catalog of check types, loaded from code, compiled into one scan per table,
judged against thresholds and statistical process control, kept as history."""

from andon.checks.load import check
from andon.checks.model import Check, CheckResult, CheckSpec

__all__ = ["Check", "CheckResult", "CheckSpec", "check"]
