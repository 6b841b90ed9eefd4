"""One exception tree for andon. Every error says where (file, line, step) and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


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
    ``column`` and ``step`` say where.
    """

    exit_code = 1

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
    ) -> None:
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

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "step": self.step,
        }


class ConfigError(AndonError):
    """andon.yaml, a step header or a sidecar file is invalid."""


class SqlError(AndonError):
    """A SQL step does not parse or does not run."""


class DagError(AndonError):
    """Unknown tables, cycles, bad selections."""


class SourceError(AndonError):
    """A source folder, file or contract problem."""


class StepError(AndonError):
    """A step failed while building."""


class WarehouseError(AndonError):
    """The warehouse folder cannot be written (permissions, disk full)."""


class StoreError(AndonError):
    """The metadata store cannot be opened or is from a newer andon."""


class LeaseError(AndonError):
    """Another run holds the environment."""


class EnvironmentNotFound(AndonError):
    """An environment name that does not exist."""


class NotFound(AndonError):
    """A table, run or artifact that does not exist."""
