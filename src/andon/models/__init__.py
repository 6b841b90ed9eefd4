"""Models as steps: train with ``@andon.models.model`` (the artifact is the model in skops,
its signature, metrics on a holdout, parameters and lineage), gate with checks, keep versions
and aliases in the registry, score in batch (``@andon.models.scoring``) or serve over HTTP.
See docs/models.md."""

from __future__ import annotations

from andon.models.artifact import LoadedModel, ModelLoadError, RequestInvalid
from andon.models.registry import load
from andon.models.spec import ModelSpec, model, scoring

__all__ = ["LoadedModel", "ModelLoadError", "ModelSpec", "RequestInvalid", "load", "model",
           "scoring"]
