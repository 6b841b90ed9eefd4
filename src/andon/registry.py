"""A registry of named kinds, open to other packages through an entry-point group: the
built-in kinds are registered by the module that defines the registry, a plug-in's by its
entry point (loaded once, the first time a kind is looked up)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, TypeVar

from andon.errors import ConfigError, did_you_mean


class Named(Protocol):
    @property
    def name(self) -> str: ...


K = TypeVar("K", bound=Named)


class Registry(dict[str, K]):
    """Kinds by name; ``all()`` adds the entry points' on first use."""

    def __init__(self, what: str, group: str) -> None:
        super().__init__()
        self.what = what
        self.group = group
        self.plugins_loaded = False

    def register(self, kind: K) -> K:
        self[kind.name] = kind
        return kind

    def all(self) -> dict[str, K]:
        if not self.plugins_loaded:
            self.plugins_loaded = True
            for ep in entry_points(group=self.group):
                value = ep.load()
                if not isinstance(value, type(next(iter(self.values())))):
                    raise ConfigError(
                        f"entry point {ep.name!r} of group {self.group!r} is not a "
                        f"{self.what} ({ep.value})",
                        hint=f"point it at a {self.what} value, or uninstall the package "
                        "that declares it",
                    )
                self.register(value)
        return self

    def get_kind(self, name: str, *, file: Path | None = None, line: int | None = None) -> K:
        known = self.all()
        if name in known:
            return known[name]
        hint = did_you_mean(name, known)
        raise ConfigError(
            f"unknown {self.what} {name!r}",
            file=file,
            line=line,
            hint=(hint + " " if hint else "") + f"known: {', '.join(sorted(known))} (more come "
            f"from packages declaring the {self.group!r} entry point)",
        )


class Ref:
    """A function named ``module:qualname``, imported when first called."""

    __slots__ = ("_fn", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._fn: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._fn is None:
            from importlib import import_module

            module, _, qualname = self.name.partition(":")
            target: Any = import_module(module)
            for part in qualname.split("."):
                target = getattr(target, part)
            self._fn = target
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Ref({self.name!r})"
