"""Data tests: check types (one class each, in ``andon.checks.kinds``, found through
``andon.checks.registry``), loaded from code, compiled into one scan per table, judged against
thresholds and statistical process control, kept as history."""

from andon.checks.kinds.base import CheckType
from andon.checks.load import check
from andon.checks.model import Check, CheckResult, CheckSpec

__all__ = ["Check", "CheckResult", "CheckSpec", "CheckType", "check"]
