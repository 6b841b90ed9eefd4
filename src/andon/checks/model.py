"""Checks as data: the fields common to every check type (``CheckSpec`` and its mixins,
pydantic), the frozen ``Check`` and its ``CheckResult``."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from andon.checks.kinds.base import CheckType

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
    """The fields every check has; each check type extends it with its own (``type`` is the
    discriminator: see ``andon.checks.registry``)."""

    # validators are built when a type is first used: start-up pays only for those in use
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    type: str
    name: str | None = None
    severity: Severity = "error"
    description: str = ""
    owner: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("a check name cannot be empty")
        return v


def percent(v: Any) -> Any:
    """A percentage written ``5`` or ``'5%'`` (for spec validators)."""
    if isinstance(v, str) and _NUMBER_RE.match(v.strip().removesuffix("%")):
        return float(v.strip().removesuffix("%"))
    return v


class WithSpc(CheckSpec):
    """A check whose metric may be watched by statistical process control."""

    spc: SpcSpec | None = None


class WithFailing(WithSpc):
    """A check counting failing rows, passed within ``max_failing`` / ``max_failing_pct``."""

    max_failing: int | None = Field(default=None, ge=0)
    max_failing_pct: float | None = Field(default=None, ge=0, le=100)

    @field_validator("max_failing_pct", mode="before")
    @classmethod
    def _pct(cls, v: Any) -> Any:
        return percent(v)


class WithRange(WithSpc):
    """A check judging a metric against [min, max] (numbers unless ``text_bounds``)."""

    text_bounds: ClassVar[bool] = False  # between: dates, timestamps and strings too
    whole_bounds: ClassVar[bool] = False  # length_between: whole numbers of characters

    min: float | str | None = None
    max: float | str | None = None

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound(cls, v: Any) -> Any:
        if isinstance(v, date | datetime):  # YAML reads 2024-01-01 as a date
            return v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()
        if isinstance(v, str) and _NUMBER_RE.match(v):
            return float(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        return v

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        for key in ("min", "max"):
            v = getattr(self, key)
            if isinstance(v, str) and not self.text_bounds:
                raise ValueError(f"{key} must be a number for check type {self.type!r}, "
                                 f"not {v!r}")
            if self.whole_bounds and isinstance(v, float) and not v.is_integer():
                raise ValueError(f"{key} of {self.type} is a whole number of characters, "
                                 f"not {v}")
        lo, hi = self.min, self.max
        if (isinstance(lo, float) and isinstance(hi, float) and lo > hi) or (
                isinstance(lo, str) and isinstance(hi, str) and lo > hi):
            raise ValueError(f"min ({lo}) is greater than max ({hi})")
        return self

    def bounds(self) -> tuple[float | None, float | None]:
        """Numeric bounds (text bounds of ``between`` are compared in SQL only)."""
        lo, hi = self.min, self.max
        return (lo if isinstance(lo, float) else None, hi if isinstance(hi, float) else None)


@dataclass(frozen=True)
class Check:
    """A check attached to one table, ready to run."""

    name: str
    table: str
    spec: CheckSpec
    file: Path
    kind: CheckType[Any] = field(compare=False, repr=False)  # its type, from the registry
    line: int | None = None
    function: Any = field(default=None, compare=False, repr=False)  # Python checks
    code: str = ""  # Python checks: canonical source

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def spc(self) -> SpcSpec | None:
        return self.spec.spc if isinstance(self.spec, WithSpc) else None

    @property
    def reads(self) -> list[str]:
        """The tables besides its own that the check reads."""
        return self.kind.reads(self.spec, self.table)

    @property
    def target(self) -> str | None:
        """The other table whose columns the check names (relationship's ``to``)."""
        return self.kind.target(self.spec)

    @property
    def severity(self) -> str:
        return self.spec.severity

    @property
    def columns(self) -> list[str]:
        """The columns of its table that the check names."""
        return self.kind.columns(self.spec)

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
