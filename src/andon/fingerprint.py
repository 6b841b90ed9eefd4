"""Fingerprints: the content address of a step's output.

A fingerprint hashes the step's canonical code (SQL normalised by sqlglot, Python AST without
docstrings or comments, a source's contract), the parameters that change its data, its input
files (sources) and its parents' fingerprints. Equal fingerprints mean equal data, so an
artifact sealed under a fingerprint is reused instead of rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from andon.steps import Step

VERSION = "1"  # bump when the artifact format changes, to rebuild everything once


def fingerprint(
    step: Step,
    parents: Mapping[str, str],
    *,
    params: Mapping[str, Any] | None = None,
    files: Sequence[str] = (),
) -> str:
    body = {
        "v": VERSION,
        "kind": step.kind,
        "code": step.code_hash,
        "parents": sorted(parents.items()),
        "params": sorted((params or {}).items()),
        "files": list(files),
    }
    text = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def data_params(step: Step, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters that change a step's data, as its kind says (SQL steps have their
    parameters rendered into their code already)."""
    from andon.kinds import step_kind

    return step_kind(step.kind, file=step.file, line=step.line).data_params(step, params)


def python_data_params(step: Step, params: Mapping[str, Any]) -> dict[str, Any]:
    """A Python step that takes ``params`` depends on all of them."""
    if step.function is not None:
        import inspect

        if "params" in inspect.signature(step.function).parameters:
            return dict(params)
    return {}
