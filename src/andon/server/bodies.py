"""Request bodies of the API (pydantic, at the edge): unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRequest(Body):
    """What to run (or plan): as ``andon run [SELECTION] --env --params SET --param K=V``."""

    environment: str | None = Field(None, description="default: prod")
    selection: list[str] = Field(default_factory=list,
                                 description="NAME, +NAME, NAME+, tag:T (default: everything)")
    params: dict[str, Any] = Field(default_factory=dict, description="parameter overrides")
    param_sets: list[str] = Field(default_factory=list, description="named parameter sets")


class EnvCreate(Body):
    name: str
    source: str | None = Field(None, description="ENV, ENV@TIME or ENV@COMMIT (default: prod)")
    empty: bool = False


class Promote(Body):
    target: str = "prod"
    dry_run: bool = False


class Reset(Body):
    to: str = Field(description="a commit or a time to point at")


class Ack(Body):
    result_id: int | None = Field(None, description="default: the latest result")
    note: str = ""


class Query(Body):
    sql: str = Field(description="one SELECT over the environment's tables")
    environment: str | None = None
    limit: int = Field(1000, ge=1, le=100_000)
    as_of: str | None = None
    commit: str | None = None


class TokenCreate(Body):
    name: str
    role: str
    user: str | None = Field(None, description="the user it acts as (default: its name)")
    expires: str | None = Field(None, description="e.g. 30d, 12h (default: until revoked)")
