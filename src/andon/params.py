"""Parameters: typed, validated, in named sets, overridden per environment and on the command
line. Resolution order: defaults < environment < ``--params SET`` (in order) < ``--param K=V``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from andon.config import ProjectConfig
from andon.errors import ConfigError, did_you_mean

TYPES = ("integer", "number", "string", "boolean", "date", "timestamp", "any")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    description: str = ""


def _infer(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, str):
        return "string"
    return "any"


def specs(config: ProjectConfig, file: str = "andon.yaml") -> dict[str, ParamSpec]:
    """``params: {n: 15}`` declares n as an integer defaulting to 15; the long form is
    ``{type: integer, default: 15, min: 0, max: 120, choices: [...], description: ...}``."""
    out: dict[str, ParamSpec] = {}
    for name, raw in config.params.items():
        if isinstance(raw, dict) and ("type" in raw or "default" in raw):
            unknown = set(raw) - {"type", "default", "min", "max", "choices", "description"}
            if unknown:
                key = sorted(unknown)[0]
                hint = did_you_mean(key, ["type", "default", "min", "max", "choices",
                                          "description"])
                raise ConfigError(f"unknown key {key!r} in parameter {name!r}", file=file,
                                  hint=hint)
            ptype = str(raw.get("type") or _infer(raw.get("default")))
            if ptype not in TYPES:
                hint = did_you_mean(ptype, TYPES)
                raise ConfigError(f"parameter {name!r} has unknown type {ptype!r}", file=file,
                                  hint=hint or f"types: {', '.join(TYPES)}")
            spec = ParamSpec(name, ptype, None, raw.get("min"), raw.get("max"),
                             tuple(raw.get("choices") or ()), str(raw.get("description", "")))
            default = raw.get("default")
            out[name] = ParamSpec(**{**spec.__dict__, "default": None if default is None
                                     else coerce(spec, default, file)})
        else:
            out[name] = ParamSpec(name, _infer(raw), raw)
    return out


def coerce(spec: ParamSpec, value: Any, where: str) -> Any:
    """The value as the parameter's type, or a ConfigError saying what is expected."""
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"parameter {spec.name!r}: {value!r} is not {expected}", file=where,
                           hint=spec.description or f"give {spec.name}={_example(spec)}")

    t = spec.type
    if isinstance(value, CliText):
        value = str(value) if t in ("string", "date", "timestamp") else value.decoded()
    v: Any = value
    try:
        if t == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise bad("an integer")
            v = int(value)
        elif t == "number":
            if isinstance(value, bool):
                raise bad("a number")
            v = float(value)
        elif t == "boolean":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise bad("true or false")
                v = value.lower() in ("true", "yes", "1")
            else:
                v = bool(value)
        elif t == "date":
            v = (value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)))
            v = v.isoformat()
        elif t == "timestamp":
            v = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(
                str(value))
            v = v.isoformat()
        elif t == "string":
            v = str(value)
    except (TypeError, ValueError):
        raise bad(f"a valid {t}") from None
    if spec.min is not None and isinstance(v, int | float) and v < spec.min:
        raise bad(f">= {spec.min}")
    if spec.max is not None and isinstance(v, int | float) and v > spec.max:
        raise bad(f"<= {spec.max}")
    if spec.choices and v not in spec.choices:
        raise bad("one of " + ", ".join(map(str, spec.choices)))
    return v


def _example(spec: ParamSpec) -> str:
    return {"integer": "15", "number": "1.5", "boolean": "true", "date": "2013-03-01",
            "timestamp": "2013-03-01T12:00"}.get(spec.type, "value")


class CliText(str):
    """A ``--param`` value as typed: a string parameter keeps it verbatim (``1.10`` stays
    ``1.10``), other types read it as JSON (``15``, ``true``, ``[1, 2]``) or as text."""

    def decoded(self) -> Any:
        try:
            return json.loads(self)
        except json.JSONDecodeError:
            return str(self)


def parse_cli(values: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise ConfigError(f"bad --param {item!r}", hint="write --param NAME=VALUE")
        key, value = item.split("=", 1)
        if not key.strip():
            raise ConfigError(f"bad --param {item!r}", hint="write --param NAME=VALUE")
        out[key.strip()] = CliText(value)
    return out


def resolve(config: ProjectConfig, environment: str | None, sets: Sequence[str] = (),
            overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    declared = specs(config)
    values = {n: s.default for n, s in declared.items()}

    def apply(layer: Mapping[str, Any], where: str) -> None:
        for key, value in layer.items():
            if key not in declared:
                hint = did_you_mean(key, declared)
                raise ConfigError(f"unknown parameter {key!r} ({where})",
                                  hint=hint or "declare it under 'params:' in andon.yaml")
            values[key] = coerce(declared[key], value, where)

    if environment and environment in config.environments:
        apply(config.environments[environment].params, f"environment {environment}")
    for name in sets:
        if name not in config.param_sets:
            hint = did_you_mean(name, config.param_sets)
            raise ConfigError(f"unknown parameter set {name!r}",
                              hint=hint or f"sets: {', '.join(config.param_sets) or 'none'} "
                                           "(declare them under 'param_sets:')")
        apply(config.param_sets[name], f"parameter set {name}")
    apply(overrides or {}, "--param")
    return values
