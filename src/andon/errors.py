"""One exception tree for andon. Every error says where (file, line, step) and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

Kind = Literal["invalid", "not_found", "conflict", "forbidden", "failed"]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A "did you mean …?" hint, or an empty string when nothing is close."""
    by_lower: dict[str, str] = {}
    for c in sorted(set(candidates)):
        by_lower.setdefault(c.lower(), c)
    if name in by_lower.values():
        return ""
    if name.lower() in by_lower:  # only the case differs
        return f"did you mean {by_lower[name.lower()]!r}?"
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"


class AndonError(Exception):
    """Base of every error andon raises on purpose.

    ``message`` says what went wrong, ``hint`` what to do about it; ``file``, ``line``,
    ``column`` and ``step`` say where. ``kind`` sorts it for programs: ``invalid`` (fix the
    input), ``not_found``, ``conflict`` (the state does not allow it now), ``forbidden`` (the
    role or the environment does not allow it) or ``failed`` (the work itself failed). A
    subclass sets its kind; one raise may override it.
    """

    exit_code = 1
    kind: Kind = "invalid"

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        step: str | None = None,
        detail: str = "",
        kind: Kind | None = None,
    ) -> None:
        if kind is not None:
            self.kind = kind
        self.message = message
        self.hint = hint
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.step = step
        self.detail = detail
        super().__init__(self.render())

    @property
    def location(self) -> str:
        parts: list[str] = []
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.step:
            parts.append(f"step {self.step!r}")
        return ", ".join(parts)

    def render(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.detail:
            text += "\n" + self.detail
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, dict[str, object]]:
        """The one JSON shape of an error (``--format json`` and the API):
        ``{"error": {"kind", "message", "file", "line", "hint", …}}``."""
        return {"error": self.fields()}

    def fields(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "type": type(self).__name__,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "step": self.step,
            "hint": self.hint,
            "detail": self.detail,
        }


class NotFound(AndonError):
    """A table, run, commit or artifact that does not exist."""

    kind: Kind = "not_found"


class Conflict(AndonError):
    """The current state does not allow it (exists already, busy, changed meanwhile)."""

    kind: Kind = "conflict"


class Forbidden(AndonError):
    """The role of the user, or the protection of an environment, does not allow it."""

    kind: Kind = "forbidden"


class Failed(AndonError):
    """The work itself failed: a step, a check, the warehouse or the store."""

    kind: Kind = "failed"


class ConfigError(AndonError):
    """andon.yaml, a step header or a sidecar file is invalid."""


class SqlError(AndonError):
    """A SQL step does not parse or does not run."""


class DagError(AndonError):
    """Unknown tables, cycles, bad selections."""


class SourceError(AndonError):
    """A source folder, file or contract problem."""


class StepError(Failed):
    """A step failed while building."""


class WarehouseError(Failed):
    """The warehouse folder cannot be written (permissions, disk full)."""


class StoreError(Failed):
    """The metadata store cannot be opened or is from a newer andon."""


class LeaseError(Conflict):
    """Another run holds the environment."""


class EnvironmentNotFound(NotFound):
    """An environment name that does not exist."""


class ProjectInvalid(AndonError):
    """Several files of the project have problems; each is listed in ``problems``."""

    def __init__(self, problems: list[AndonError]) -> None:
        self.problems = problems
        super().__init__(
            f"{len(problems)} problems in the project; nothing was done",
            detail="\n".join("  " + p.render().replace("\n", "\n    ") for p in problems),
            hint="fix the files above (reading commands such as andon tables keep working)",
        )

    def fields(self) -> dict[str, object]:
        return {**super().fields(), "problems": [p.fields() for p in self.problems]}
