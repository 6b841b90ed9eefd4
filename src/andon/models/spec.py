"""Marking Python functions as model steps (``@andon.models.model``) and scoring steps
(``@andon.models.scoring``): the settings a model step declares, read when it is built."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelSpec:
    """What a model step declares: its label column, its features (default: every other
    column but ``exclude``), the share of rows held out for validation and the seed of that
    split."""

    label: str
    features: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    validation: float = 0.2
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    cv: int | None = None
    online: tuple[str, ...] = ()
    fallback: str | Callable[[dict[str, Any]], Any] | None = None


def _mark(func: F, kind: str, name: str | None, zone: str | None, owner: str | None,
          tags: list[str] | None, description: str | None) -> F:
    func.__andon_step__ = {  # type: ignore[attr-defined]
        "name": name or func.__name__, "zone": zone, "owner": owner, "tags": list(tags or []),
        "materialized": "full", "time_column": None,
        "description": description if description is not None else (inspect.getdoc(func) or ""),
        "lineage": {},
    }
    func.__andon_kind__ = kind  # type: ignore[attr-defined]
    return func


def model(*, label: str, features: list[str] | None = None, exclude: list[str] | None = None,
          validation: float = 0.2, seed: int = 0, params: dict[str, Any] | None = None,
          cv: int | None = None, online: str | list[str] | None = None,
          fallback: str | Callable[[dict[str, Any]], Any] | None = None,
          name: str | None = None, zone: str | None = None, owner: str | None = None,
          tags: list[str] | None = None, description: str | None = None
          ) -> Callable[[F], F]:
    """Mark a function as a model step. Its one parameter names its training table, which
    it receives as a ``pandas.DataFrame`` of the training rows (``validation`` of the rows,
    chosen by ``seed``, are held out); it returns an estimator (fitted, or andon fits it on
    ``features`` → ``label``). ``params`` are recorded with the version.

    ``cv=k``: instead of the held-out split, metrics are the mean (and ``<metric>_std``) over
    k folds of all labelled rows, and the model is fitted on all of them. ``online``: a
    feature service (or a list of features) the server looks up by the entity keys of each
    prediction request, merged with the request's fields. ``fallback``: what the server
    answers with when the model fails to load or predict: ``"previous"`` (the version
    before it) or a function of a request row returning the prediction (a rule).
    The decorator's arguments are part of the step's code: changing them retrains it."""
    if not 0 < validation < 1:
        raise ValueError("validation is the share of rows held out: between 0 and 1")
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise ValueError("cv is the number of folds: an integer of 2 or more")
    if not (fallback is None or fallback == "previous" or callable(fallback)):
        raise ValueError('fallback is "previous" or a function of a request row')
    refs = (online,) if isinstance(online, str) else tuple(online or ())
    spec = ModelSpec(label, tuple(features or ()), tuple(exclude or ()), validation, seed,
                     dict(params or {}), cv, refs, fallback)

    def mark(func: F) -> F:
        func.__andon_model__ = spec  # type: ignore[attr-defined]
        return _mark(func, "model", name, zone, owner, tags, description)

    return mark


def scoring(*, name: str | None = None, zone: str | None = None, owner: str | None = None,
            tags: list[str] | None = None, description: str | None = None,
            ) -> Callable[[F], F]:
    """Mark a function as a batch scoring step: a parameter naming a model step receives the
    model (``andon.models.LoadedModel``; ``model.score(table)`` adds its prediction and
    version to each row), the other parameters their tables (as annotated, like Python
    steps). It returns the scored table."""

    def mark(func: F) -> F:
        return _mark(func, "score", name, zone, owner, tags, description)

    return mark


Kind = Literal["model", "score"]
