"""Statistical process control: control limits from history and the Western Electric rules."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from andon.checks.model import SpcSpec


@dataclass(frozen=True)
class SpcOutcome:
    judged: bool  # False while history is too short
    mean: float | None
    sigma: float | None
    lower: float | None
    upper: float | None
    violations: tuple[str, ...]
    history: int

    def to_dict(self) -> dict[str, Any]:
        return {"judged": self.judged, "mean": self.mean, "sigma": self.sigma,
                "lower": self.lower, "upper": self.upper,
                "violations": list(self.violations), "history": self.history}


RULE_TEXT = {
    "1_beyond_3s": "one point beyond {k}σ",
    "2_of_3_beyond_2s": "2 of 3 points beyond 2σ on one side",
    "4_of_5_beyond_1s": "4 of 5 points beyond 1σ on one side",
    "8_one_side": "8 points in a row on one side of the mean",
}


def judge(spec: SpcSpec, history: Sequence[tuple[float, float]], value: float,
          at: float) -> SpcOutcome:
    """Judge ``value`` (at time ``at``) against ``history`` of (time, metric), oldest first.

    History excludes incidents already (unless acknowledged as expected).
    """
    points = list(history)
    if spec.seasonality == "day_of_week":
        dow = datetime.fromtimestamp(at).weekday()
        points = [p for p in points if datetime.fromtimestamp(p[0]).weekday() == dow]
    baseline = [v for _, v in points[-spec.window:]]
    if len(baseline) < spec.min_history:
        return SpcOutcome(False, None, None, None, None, (), len(baseline))
    mean = statistics.fmean(baseline)
    sigma = statistics.stdev(baseline) if len(baseline) > 1 else 0.0
    lower, upper = mean - spec.k * sigma, mean + spec.k * sigma
    recent = [*baseline[-7:], value]  # the new point and its predecessors, for run rules
    z = [(v - mean) / sigma if sigma > 0 else (0.0 if v == mean else float("inf") * (v - mean))
         for v in recent]
    violations: list[str] = []
    rules = set(spec.rules)
    if "1_beyond_3s" in rules and abs(z[-1]) > spec.k:
        violations.append(RULE_TEXT["1_beyond_3s"].format(k=spec.k))
    if "2_of_3_beyond_2s" in rules and len(z) >= 3 and _n_of_m(z, 2, 3, 2.0):
        violations.append(RULE_TEXT["2_of_3_beyond_2s"])
    if "4_of_5_beyond_1s" in rules and len(z) >= 5 and _n_of_m(z, 4, 5, 1.0):
        violations.append(RULE_TEXT["4_of_5_beyond_1s"])
    if "8_one_side" in rules and len(z) >= 8 and (
        all(v > 0 for v in z[-8:]) or all(v < 0 for v in z[-8:])
    ):
        violations.append(RULE_TEXT["8_one_side"])
    return SpcOutcome(True, mean, sigma, lower, upper, tuple(violations), len(baseline))


def _n_of_m(z: list[float], n: int, m: int, limit: float) -> bool:
    """At least n of the last m points beyond ``limit`` σ on one side, the newest among them."""
    window = z[-m:]
    if abs(z[-1]) <= limit:
        return False
    side = 1 if z[-1] > 0 else -1
    return sum(1 for v in window if v * side > limit) >= n
