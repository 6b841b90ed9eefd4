"""The ``schedules:`` and ``sensors:`` sections of ``andon.yaml`` (pydantic, checked at load).

A cron expression or time zone that does not parse is a config error naming the line."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from andon.errors import ConfigError, did_you_mean

CRON_HINT = "five fields: minute hour day-of-month month day-of-week, e.g. '30 2 * * *'"
MAX_CATCH_UP = 100  # a scheduler down for a year must not queue a year of runs


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_cron(expression: str) -> str:
    """The expression if it parses as cron, else ValueError saying what is wrong."""
    from datetime import UTC, datetime

    cronsim = require_cronsim()
    try:
        cronsim.CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except cronsim.CronSimError as e:
        raise ValueError(f"bad cron expression {expression!r}: {e} ({CRON_HINT})") from None
    return expression


def require_cronsim() -> Any:
    """The cron library (an optional dependency: the ``server`` extra)."""
    try:
        import cronsim
    except ImportError:
        raise ConfigError("schedules need the cron library cronsim",
                          hint="pip install 'andon[server]'") from None
    return cronsim


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``, or ValueError with a suggestion."""
    try:
        if name and "/.." not in name and not name.startswith(("/", ".")):
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    hint = did_you_mean(name, _zone_names())
    raise ValueError(f"unknown time zone {name!r}" + (f"; {hint}" if hint else "")
                     + " (an IANA name such as UTC, Europe/Paris or America/Chicago)")


class ScheduleConfig(_Model):
    """One schedule: run ``select`` in ``environment`` at each cron tick, in ``timezone``."""

    cron: str = Field(description="cron expression, e.g. '30 2 * * *' (02:30 every day)")
    timezone: str = Field(default="UTC", description="IANA time zone of the cron expression")
    environment: str | None = Field(default=None, description="default: the default "
                                    "environment")
    select: list[str] = Field(default_factory=list, description="steps (default: all)")
    params: str | None = Field(default=None, description="a named parameter set (param_sets)")
    catch_up: bool = Field(default=False, description="run ticks missed while no scheduler "
                           "ran (the newest max_catch_up of them); off: only the latest")
    max_catch_up: int = Field(default=3, ge=1, le=MAX_CATCH_UP)
    description: str = ""

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return check_cron(v.strip())

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)
        return v

    @field_validator("select", mode="before")
    @classmethod
    def _one_selector(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @property
    def spec(self) -> str:
        """What identifies the timing: changing it makes the schedule count from now."""
        return f"{self.cron} {self.timezone}"


class SensorConfig(_Model):
    """A file-arrival sensor: new files in ``source``'s folder start a run of the source and
    its descendants in ``environment``."""

    source: str = Field(description="a source of andon.yaml whose folder is watched")
    environment: str | None = None
    select: list[str] = Field(default_factory=list, description="default: SOURCE+ (the "
                              "source and everything downstream)")
    params: str | None = None
    settle_seconds: float = Field(default=0.5, ge=0, description="a file counts once it has "
                                  "not changed for this long (still being written)")
    description: str = ""

    @field_validator("select", mode="before")
    @classmethod
    def _one_selector(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _source_name(self) -> SensorConfig:
        if not self.source.strip():
            raise ValueError("a sensor needs the name of a source")
        return self


_CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class SlaConfig(_Model):
    """When a table must be fresh: refreshed by a successful run since the start of the day
    by ``fresh_by`` (local time in ``timezone``), or at most ``max_age`` ago."""

    fresh_by: str | None = Field(default=None, description="HH:MM: refreshed today by then")
    timezone: str = Field(default="UTC", description="IANA time zone of fresh_by")
    max_age: str | None = Field(default=None, description="e.g. 26h, 90m, 2d")
    environment: str | None = Field(default=None, description="default: the default "
                                    "environment")
    severity: Literal["warn", "error"] = Field(default="error", description="alert channels "
                                               "with min_severity: error get only error SLAs")
    description: str = ""

    @field_validator("fresh_by", mode="before")
    @classmethod
    def _clock(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            # YAML 1.1 reads an unquoted 06:00 as the sexagesimal number 360
            v = f"{v // 60:02d}:{v % 60:02d}"
        if v is not None and not (isinstance(v, str) and _CLOCK_RE.match(v.strip())):
            raise ValueError(f"bad time of day {v!r}: write HH:MM, e.g. \"06:00\"")
        return v.strip() if isinstance(v, str) else v

    @field_validator("max_age")
    @classmethod
    def _age(cls, v: str | None) -> str | None:
        if v is not None:
            from andon.checks.types import parse_age

            if parse_age(v) <= 0:
                raise ValueError(f"max_age {v!r} must be longer than nothing")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)
        return v

    @model_validator(mode="after")
    def _one_rule(self) -> SlaConfig:
        if self.fresh_by is None and self.max_age is None:
            raise ValueError("an SLA needs fresh_by (e.g. \"06:00\") or max_age (e.g. 26h)")
        return self
