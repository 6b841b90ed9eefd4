"""Checks as data: the YAML/header form (``CheckSpec``, pydantic) and the frozen ``Check``."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NUMBER_RE = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
Severity = Literal["error", "warn", "info"]
Rule = Literal["1_beyond_3s", "2_of_3_beyond_2s", "4_of_5_beyond_1s", "8_one_side"]
RULES: tuple[Rule, ...] = ("1_beyond_3s", "2_of_3_beyond_2s", "4_of_5_beyond_1s", "8_one_side")
SEVERITIES = ("error", "warn", "info")


class SpcSpec(BaseModel):
    """Statistical process control of a check's metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(default=30, ge=3, description="how many past results set the limits")
    k: float = Field(default=3.0, gt=0, description="limits at mean ± k·σ")
    min_history: int = Field(default=8, ge=2, description="results needed before judging")
    rules: list[Rule] = Field(default_factory=lambda: list(RULES))
    seasonality: Literal["none", "day_of_week"] = "none"


class CheckSpec(BaseModel):
    """One check as written in YAML. Which fields apply depends on ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = None
    severity: Severity = "error"
    description: str = ""
    column: str | None = None
    columns: list[str] | None = None
    values: list[Any] | None = None
    # numbers; between also takes dates, timestamps and strings (checked against the column)
    min: float | str | None = None
    max: float | str | None = None
    pattern: str | None = None
    expr: str | None = None
    to: str | None = None
    q: float | None = Field(default=None, ge=0, le=1)
    max_age: str | None = None
    max_change_pct: float | None = Field(default=None, ge=0)
    start: str | None = None
    end: str | None = None
    allow_future: bool = True
    expected: dict[str, str] | None = None
    other: str | None = None
    other_expr: str | None = None
    other_env: str | None = None
    plus_rejects: bool = False
    tolerance: float = Field(default=0, ge=0)
    method: Literal["psi", "ks"] | None = None
    bins: int = Field(default=10, ge=2, le=100)
    baseline: str | None = None
    sql: str | None = None
    metric: bool = False  # sql checks: the query returns one number, judged by min/max
    max_failing: int | None = Field(default=None, ge=0)
    max_failing_pct: float | None = Field(default=None, ge=0, le=100)
    spc: SpcSpec | None = None
    owner: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("a check name cannot be empty")
        return v

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound(cls, v: Any) -> Any:
        if isinstance(v, date | datetime):  # YAML reads 2024-01-01 as a date
            return v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()
        if isinstance(v, str) and _NUMBER_RE.match(v):
            return float(v)
        return v

    @field_validator("max_failing_pct", "max_change_pct", mode="before")
    @classmethod
    def _percent(cls, v: Any) -> Any:
        # '5' and '5%' both mean five percent
        if isinstance(v, str) and _NUMBER_RE.match(v.strip().removesuffix("%")):
            return float(v.strip().removesuffix("%"))
        return v

    @model_validator(mode="after")
    def _ranges(self) -> CheckSpec:
        for key in ("min", "max"):
            v = getattr(self, key)
            if isinstance(v, str) and self.type != "between":
                raise ValueError(f"{key} must be a number for check type {self.type!r}, "
                                 f"not {v!r}")
            if self.type == "length_between" and isinstance(v, float) and not v.is_integer():
                raise ValueError(f"{key} of length_between is a whole number of characters, "
                                 f"not {v}")
        lo, hi = self.min, self.max
        if (isinstance(lo, float) and isinstance(hi, float) and lo > hi) or (
                isinstance(lo, str) and isinstance(hi, str) and lo > hi):
            raise ValueError(f"min ({lo}) is greater than max ({hi})")
        return self


@dataclass(frozen=True)
class Check:
    """A check attached to one table, ready to run."""

    name: str
    table: str
    spec: CheckSpec
    file: Path
    line: int | None = None
    function: Any = field(default=None, compare=False, repr=False)  # Python checks
    code: str = ""  # Python checks: canonical source

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def severity(self) -> str:
        return self.spec.severity

    @property
    def columns(self) -> list[str]:
        if self.spec.columns:
            return list(self.spec.columns)
        return [self.spec.column] if self.spec.column else []

    @property
    def check_hash(self) -> str:
        body = json.dumps([self.table, self.spec.model_dump(mode="json"), self.code],
                          sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one artifact."""

    name: str
    table: str
    type: str
    severity: str
    status: str  # passed|failed|recorded|error (the check itself could not run)
    metric: float | None
    threshold: dict[str, Any]
    message: str
    failing: int | None = None
    sample: tuple[dict[str, Any], ...] = ()
    fingerprint: str = ""
    check_hash: str = ""
    spc: dict[str, Any] | None = None
    reused: bool = False  # judged by an earlier run on the same artifact, not news here

    @property
    def stops_the_line(self) -> bool:
        return self.severity == "error" and self.status in ("failed", "error")

    @property
    def alerts(self) -> bool:
        return self.status in ("failed", "error") and self.severity in ("error", "warn")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "type": self.type,
            "severity": self.severity,
            "status": self.status,
            "metric": self.metric,
            "failing": self.failing,
            "threshold": self.threshold,
            "message": self.message,
            "sample": list(self.sample),
            "spc": self.spc,
            "reused": self.reused,
        }
