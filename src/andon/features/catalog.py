"""Feature definitions: entities, feature views, on-demand features and feature services,
read from the YAML files under the project's ``features/`` folder (project code)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import ConfigError, NotFound, did_you_mean
from andon.yamlfile import YamlDoc, load_yaml

if TYPE_CHECKING:
    from andon.project import Project

FOLDER = "features"
TYPES = {"boolean": "BOOLEAN", "integer": "BIGINT", "double": "DOUBLE", "string": "VARCHAR",
         "date": "DATE", "timestamp": "TIMESTAMP"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Where:
    file: str
    line: int | None


@dataclass(frozen=True)
class Entity:
    name: str
    join_keys: tuple[str, ...]
    description: str
    where: Where


@dataclass(frozen=True)
class Feature:
    name: str
    view: str
    type: str  # one of TYPES
    expr: str  # SQL over the view's table: the column of the same name by default
    description: str
    tags: tuple[str, ...]
    where: Where

    @property
    def sql_type(self) -> str:
        return TYPES[self.type]


@dataclass(frozen=True)
class FeatureView:
    """Features of a table, keyed by its entities' join keys, as of an event timestamp. A view
    without ``timestamp`` holds reference values valid at any time (never expire)."""

    name: str
    table: str
    entities: tuple[str, ...]
    join_keys: tuple[str, ...]
    timestamp: str | None
    created: str | None
    available_after: timedelta  # a value is known this long after its event timestamp
    ttl: timedelta | None
    features: tuple[Feature, ...]
    description: str
    owner: str | None
    tags: tuple[str, ...]
    where: Where

    def fingerprint(self) -> str:
        """Changes when what the view stores online changes (then materialising starts over)."""
        text = json.dumps([self.table, self.join_keys, self.timestamp, self.created,
                           self.available_after.total_seconds(),
                           [(f.name, f.type, f.expr) for f in self.features]])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class OnDemand:
    """A Python function computing a feature per row from other features and the request
    (its entity row): called with one list per input, returns one list of values."""

    name: str
    type: str
    inputs: tuple[str, ...]  # feature names, or columns of the request/entity row
    function: Callable[..., Sequence[Any]]
    description: str
    where: Where


@dataclass(frozen=True)
class FeatureService:
    name: str
    features: tuple[str, ...]  # "view.feature" and on-demand names, in order
    description: str
    owner: str | None
    where: Where


@dataclass(frozen=True)
class Serving:
    """How online reads are watched (``serving:`` in a features file): the share of reads
    whose vectors are logged for the training-serving skew check, and the share of logged
    values that may differ from the offline ones before the check fails."""

    log_sample: float = 0.01
    skew_max_share: float = 0.0
    where: Where | None = None


@dataclass
class Definitions:
    entities: dict[str, Entity] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand: dict[str, OnDemand] = field(default_factory=dict)
    services: dict[str, FeatureService] = field(default_factory=dict)
    serving: Serving = field(default_factory=Serving)

    def feature(self, ref: str, where: Where | None = None) -> Feature | OnDemand:
        """A feature by ``view.feature``, its bare name when unique, or an on-demand name."""
        if ref in self.on_demand:
            return self.on_demand[ref]
        view, _, name = ref.rpartition(".")
        candidates = [f for v in self.views.values() for f in v.features
                      if (f.name == name and (not view or v.name == view))]
        if len(candidates) == 1:
            return candidates[0]
        known = [f"{v.name}.{f.name}" for v in self.views.values() for f in v.features]
        known += list(self.on_demand)
        if len(candidates) > 1:
            raise ConfigError(f"feature {ref!r} is in several views",
                              file=where.file if where else None,
                              line=where.line if where else None,
                              hint="name it with its view: " + ", ".join(
                                  f"{c.view}.{c.name}" for c in candidates))
        hint = did_you_mean(ref, known) or did_you_mean(name, [k.rpartition(".")[2]
                                                             for k in known])
        raise NotFound(f"unknown feature {ref!r}", file=where.file if where else None,
                       line=where.line if where else None,
                       hint=hint or "list them: andon features list")

    def service(self, name: str) -> FeatureService:
        if name not in self.services:
            raise NotFound(f"no feature service named {name!r}",
                           hint=did_you_mean(name, self.services)
                           or "list them: andon features list")
        return self.services[name]

    def resolve(self, refs: Sequence[str]) -> list[Feature | OnDemand]:
        """Features for a service name or a list of feature references (on-demand inputs
        that are features are added before the on-demand feature, not returned twice)."""
        if len(refs) == 1 and refs[0] in self.services:
            service = self.services[refs[0]]
            return [self.feature(r, service.where) for r in service.features]
        return [self.feature(r) for r in refs]


def duration(text: Any, where: Where, what: str) -> timedelta:
    match = _DURATION.match(str(text))
    if match is None:
        raise ConfigError(f"{what}: {text!r} is not a duration", file=where.file,
                          line=where.line, hint="write a number and a unit: 90s, 15m, 2h, 7d, 1w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def load(project: Project) -> Definitions:
    """Every definition under ``features/``; errors name the file and line."""
    return load_folder(project.root)


def load_folder(root: Path) -> Definitions:
    """The definitions under ``root/features/`` (``root``: a project's folder)."""
    folder = root / FOLDER
    defs = Definitions()
    if not folder.is_dir():
        return defs
    for path in sorted(folder.glob("*.y*ml")):
        _load_file(root, path, load_yaml(path), defs)
    _link(defs)
    return defs


def _mapping(doc: YamlDoc, loc: tuple[str | int, ...], value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{what} must be a mapping", file=doc.file, line=doc.line_of(loc))
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


_ALLOWED = {
    "file": {"entities", "views", "on_demand", "services", "serving"},
    "serving": {"log_sample", "skew_max_share"},
    "entity": {"join_keys", "description"},
    "view": {"table", "entities", "timestamp", "created", "available_after", "ttl", "features",
             "description", "owner", "tags"},
    "feature": {"type", "expr", "description", "tags"},
    "on_demand": {"type", "inputs", "function", "description"},
    "service": {"features", "description", "owner"},
}


def _keys(doc: YamlDoc, loc: tuple[str | int, ...], value: dict[str, Any], what: str) -> None:
    for key in value:
        if key not in _ALLOWED[what]:
            raise ConfigError(f"unknown key {key!r} in a {what.replace('_', '-')} definition",
                              file=doc.file, line=doc.line_of((*loc, key)),
                              hint=did_you_mean(key, _ALLOWED[what])
                              or "allowed: " + ", ".join(sorted(_ALLOWED[what])))


def _load_file(root: Path, path: Path, doc: YamlDoc, defs: Definitions) -> None:
    rel = str(path.relative_to(root))
    data = _mapping(doc, (), doc.data, "a features file")
    _keys(doc, (), data, "file")

    def where(*loc: str | int) -> Where:
        return Where(rel, doc.line_of(loc))

    def new_name(kind: str, name: str, taken: Mapping[str, Any], loc: tuple[str, ...]) -> None:
        if not _NAME.match(name):
            raise ConfigError(f"{kind} name {name!r} is not an identifier", file=rel,
                              line=doc.line_of(loc), hint="use letters, digits and _")
        if name in taken:
            raise ConfigError(f"{kind} {name!r} is defined twice", file=rel,
                              line=doc.line_of(loc), hint="rename one of them")

    for name, spec in _mapping(doc, ("entities",), data.get("entities"), "entities").items():
        loc = ("entities", name)
        new_name("entity", name, defs.entities, loc)
        spec = _mapping(doc, loc, spec, f"entity {name!r}")
        _keys(doc, loc, spec, "entity")
        keys = _strings(spec.get("join_keys", name))
        defs.entities[name] = Entity(name, keys, str(spec.get("description") or ""), where(*loc))
    for name, spec in _mapping(doc, ("views",), data.get("views"), "views").items():
        loc = ("views", name)
        new_name("feature view", name, defs.views, loc)
        spec = _mapping(doc, loc, spec, f"feature view {name!r}")
        _keys(doc, loc, spec, "view")
        if not spec.get("table"):
            raise ConfigError(f"feature view {name!r} names no table", file=rel,
                              line=doc.line_of(loc), hint="add table: TABLE (an andon table)")
        features = []
        for fname, fspec in _mapping(doc, (*loc, "features"), spec.get("features"),
                                     "features").items():
            floc = (*loc, "features", fname)
            fspec = _mapping(doc, floc, fspec, f"feature {fname!r}")
            _keys(doc, floc, fspec, "feature")
            ftype = str(fspec.get("type", "double"))
            if ftype not in TYPES:
                raise ConfigError(f"feature {name}.{fname}: unknown type {ftype!r}", file=rel,
                                  line=doc.line_of((*floc, "type")),
                                  hint=did_you_mean(ftype, TYPES) or "types: " + ", ".join(TYPES))
            features.append(Feature(fname, name, ftype, str(fspec.get("expr") or f'"{fname}"'),
                                    str(fspec.get("description") or ""),
                                    _strings(fspec.get("tags")), where(*floc)))
        if not features:
            raise ConfigError(f"feature view {name!r} has no features", file=rel,
                              line=doc.line_of(loc), hint="add features: {NAME: {type: double}}")
        ttl = spec.get("ttl")
        defs.views[name] = FeatureView(
            name=name, table=str(spec["table"]), entities=_strings(spec.get("entities")),
            join_keys=(), timestamp=spec.get("timestamp"), created=spec.get("created"),
            available_after=duration(spec.get("available_after", "0s"), where(*loc),
                                     f"feature view {name!r}: available_after"),
            ttl=None if ttl is None else duration(ttl, where(*loc, "ttl"),
                                                  f"feature view {name!r}: ttl"),
            features=tuple(features), description=str(spec.get("description") or ""),
            owner=spec.get("owner"), tags=_strings(spec.get("tags")), where=where(*loc))
    for name, spec in _mapping(doc, ("on_demand",), data.get("on_demand"), "on_demand").items():
        loc = ("on_demand", name)
        new_name("on-demand feature", name, defs.on_demand, loc)
        spec = _mapping(doc, loc, spec, f"on-demand feature {name!r}")
        _keys(doc, loc, spec, "on_demand")
        ftype = str(spec.get("type", "double"))
        if ftype not in TYPES:
            raise ConfigError(f"on-demand feature {name!r}: unknown type {ftype!r}", file=rel,
                              line=doc.line_of((*loc, "type")), hint="types: " + ", ".join(TYPES))
        fn = _function(root, str(spec.get("function") or ""), where(*loc, "function"))
        defs.on_demand[name] = OnDemand(name, ftype, _strings(spec.get("inputs")), fn,
                                        str(spec.get("description") or ""), where(*loc))
    if data.get("serving") is not None:
        _serving(doc, data["serving"], defs, where("serving"))
    for name, spec in _mapping(doc, ("services",), data.get("services"), "services").items():
        loc = ("services", name)
        new_name("feature service", name, defs.services, loc)
        spec = _mapping(doc, loc, spec, f"feature service {name!r}")
        _keys(doc, loc, spec, "service")
        defs.services[name] = FeatureService(name, _strings(spec.get("features")),
                                             str(spec.get("description") or ""),
                                             spec.get("owner"), where(*loc, "features"))


def _serving(doc: YamlDoc, value: Any, defs: Definitions, at: Where) -> None:
    spec = _mapping(doc, ("serving",), value, "serving")
    _keys(doc, ("serving",), spec, "serving")
    if defs.serving.where is not None:
        raise ConfigError("serving: is set in two features files", file=at.file, line=at.line,
                          hint=f"keep one (the other is {defs.serving.where.file})")
    shares = {}
    for key, default in (("log_sample", Serving.log_sample),
                         ("skew_max_share", Serving.skew_max_share)):
        raw = spec.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1:
            raise ConfigError(f"serving: {key} must be a share between 0 and 1, not {raw!r}",
                              file=at.file, line=doc.line_of(("serving", key)),
                              hint=f"e.g. {key}: {default}")
        shares[key] = float(raw)
    defs.serving = Serving(shares["log_sample"], shares["skew_max_share"], at)


def _function(root: Path, ref: str, where: Where) -> Callable[..., Sequence[Any]]:
    """``file.py:function`` under ``features/``."""
    file, _, name = ref.partition(":")
    path = (root / FOLDER / file).resolve()
    if not name or not file.endswith(".py") or not path.is_file() \
            or (root / FOLDER).resolve() not in path.parents:
        raise ConfigError(f"on-demand function {ref!r} not found", file=where.file,
                          line=where.line, hint="write function: FILE.py:NAME, a Python file in "
                                                "the features/ folder")
    spec = importlib.util.spec_from_file_location(f"andon_features_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's code: any error it raises is reported with its file
        raise ConfigError(f"{file} failed to import: {type(e).__name__}: {e}", file=where.file,
                          line=where.line, hint="fix the Python file") from e
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"{file} has no function {name!r}", file=where.file, line=where.line,
                          hint=did_you_mean(name, [n for n in vars(module) if
                                                   callable(vars(module)[n])]))
    return fn  # type: ignore[no-any-return]


def _link(defs: Definitions) -> None:
    """Resolve entities of views, and every feature a service or on-demand feature names."""
    for name, view in list(defs.views.items()):
        keys: list[str] = []
        for ent in view.entities:
            if ent not in defs.entities:
                raise NotFound(f"feature view {name!r}: unknown entity {ent!r}",
                               file=view.where.file, line=view.where.line,
                               hint=did_you_mean(ent, defs.entities)
                               or "define it under entities:")
            keys += defs.entities[ent].join_keys
        if not keys:
            raise ConfigError(f"feature view {name!r} has no entities", file=view.where.file,
                              line=view.where.line, hint="add entities: [ENTITY]")
        defs.views[name] = replace(view, join_keys=tuple(keys))
    for view in defs.views.values():
        for f in view.features:
            if f.name in defs.on_demand:
                raise ConfigError(f"feature {view.name}.{f.name} has the name of an on-demand "
                                  "feature", file=f.where.file, line=f.where.line,
                                  hint="rename one of them")
    for service in defs.services.values():
        seen: set[str] = set()
        for ref in service.features:
            feature = defs.feature(ref, service.where)
            if feature.name in seen:
                raise ConfigError(f"feature service {service.name!r} names {feature.name!r} "
                                  "twice", file=service.where.file, line=service.where.line,
                                  hint="output columns are feature names: keep one")
            seen.add(feature.name)


def check_tables(defs: Definitions, schemas: Mapping[str, Sequence[tuple[str, str]]],
                 steps: Sequence[str]) -> None:
    """A view over a table that is not an andon table, or that lacks its key, timestamp or
    created column, is an error naming the view's file and line. ``schemas``: the columns of
    the tables the environment publishes."""
    for view in defs.views.values():
        if view.table not in schemas:
            if view.table in steps:
                continue  # not built yet: checked once a run publishes it
            raise NotFound(f"feature view {view.name!r}: no table named {view.table!r}",
                           file=view.where.file, line=view.where.line,
                           hint=did_you_mean(view.table, list(schemas) + list(steps))
                           or "name a table of the project: andon tables")
        columns = [c for c, _ in schemas[view.table]]
        needed = [("key", k) for k in view.join_keys]
        needed += [("timestamp", view.timestamp)] if view.timestamp else []
        needed += [("created timestamp", view.created)] if view.created else []
        for what, col in needed:
            if col not in columns:
                raise ConfigError(
                    f"feature view {view.name!r}: table {view.table!r} has no {what} column "
                    f"{col!r}", file=view.where.file, line=view.where.line,
                    hint=did_you_mean(col, columns) or "columns: " + ", ".join(columns))
        for f in view.features:
            if f.expr == f'"{f.name}"' and f.name not in columns:
                raise ConfigError(
                    f"feature {view.name}.{f.name}: table {view.table!r} has no column "
                    f"{f.name!r}", file=f.where.file, line=f.where.line,
                    hint=did_you_mean(f.name, columns)
                    or "name a column, or compute it with expr: SQL")
