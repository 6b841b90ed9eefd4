"""The model registry read and moved: the models an environment publishes (a model step's
artifact in its commit), versions, aliases with their history, tags, diffs, and loading the
model a name, version, alias or environment designates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, NotFound, did_you_mean

if TYPE_CHECKING:
    from andon.models.artifact import LoadedModel
    from andon.project import Project
    from andon.store.models import ModelVersion

ALIAS_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def published(project: Project, environment: str | None = None) -> dict[str, str]:
    """Model step → fingerprint of its artifact, in what ``environment`` publishes."""
    from andon.published import env_tables

    steps = project.dag.steps
    return {name: str(row["fingerprint"]) for name, row in env_tables(project, environment)
            .items() if name in steps and steps[name].kind in ("model", "sqlmodel")}


def models(project: Project, environment: str | None = None) -> list[dict[str, Any]]:
    """Each model the environment publishes: its version, metrics and aliases."""
    out = []
    store = project.store.models
    for name, fp in published(project, environment).items():
        v = store.by_fingerprint(name, fp)
        aliases = store.aliases(name)
        out.append({"name": name, "version": v.version if v else None, "fingerprint": fp,
                    "metrics": v.metrics if v else {},
                    "aliases": sorted(a for a, n in aliases.items() if v and n == v.version),
                    "created_at": v.created_at if v else None})
    return out


def resolve(project: Project, name: str, *, environment: str | None = None,
            version: int | None = None, alias: str | None = None) -> ModelVersion:
    """The version designated by number, alias, or (default) what the environment
    publishes."""
    store = project.store.models
    known = sorted({v.name for v in store.versions()})
    if name not in known:
        raise NotFound(f"no model named {name!r}",
                       hint=did_you_mean(name, known) or (
                           f"models: {', '.join(known)}" if known else
                           "mark a step @andon.models.model(label=...) and run it"))
    if alias is not None:
        number = store.aliases(name).get(alias)
        if number is None:
            raise NotFound(f"model {name!r} has no alias {alias!r}",
                           hint=f"set it: andon models alias {name} {alias} VERSION")
        version = number
    if version is None:
        fp = published(project, environment).get(name)
        if fp is None:
            raise NotFound(f"environment {environment or project.config.default_environment!r} "
                           f"publishes no model {name!r}", hint="run the pipeline there first")
        found = store.by_fingerprint(name, fp)
    else:
        found = store.get(name, version)
    if found is None:
        raise NotFound(f"model {name!r} has no version {version}",
                       hint=f"versions: andon models show {name}")
    return found


def show(project: Project, name: str, *, environment: str | None = None,
         version: int | None = None, alias: str | None = None) -> dict[str, Any]:
    """A version (default: the environment's) with every version and the aliases' history."""
    v = resolve(project, name, environment=environment, version=version, alias=alias)
    store = project.store.models
    return {**v.as_dict(), "aliases": store.aliases(name),
            "alias_history": [m.as_dict() for m in store.alias_history(name)],
            "versions": [{"version": o.version, "fingerprint": o.fingerprint,
                          "created_at": o.created_at, "metrics": o.metrics, "tags": o.tags}
                         for o in store.versions(name)]}


def diff(project: Project, name: str, a: int, b: int) -> dict[str, Any]:
    """Two versions side by side: metrics, parameters and lineage, and what differs."""
    va, vb = (resolve(project, name, version=n) for n in (a, b))
    rows = []
    for section, left, right in (("metric", va.metrics, vb.metrics),
                                 ("param", va.info.get("params", {}), vb.info.get("params", {})),
                                 ("input", va.info.get("lineage", {}).get("inputs", {}),
                                  vb.info.get("lineage", {}).get("inputs", {}))):
        for key in sorted(set(left) | set(right)):
            x, y = left.get(key), right.get(key)
            rows.append({"kind": section, "name": key, "a": x, "b": y, "changed": x != y})
    git = [v.info.get("lineage", {}).get("git_sha") for v in (va, vb)]
    rows.append({"kind": "lineage", "name": "git_sha", "a": git[0], "b": git[1],
                 "changed": git[0] != git[1]})
    return {"model": name, "a": a, "b": b, "rows": rows}


def set_alias(project: Project, name: str, alias: str, version: int | None, *,
              who: str, note: str | None = None) -> dict[str, Any]:
    """Point ``alias`` at ``version`` (None: remove it); the move is kept in its history."""
    if not alias or not set(alias) <= ALIAS_CHARS:
        raise AndonError(f"bad alias {alias!r}",
                         hint="use lower-case letters, digits, _ and -, e.g. champion")
    if version is not None:
        resolve(project, name, version=version)
    elif alias not in project.store.models.aliases(name):
        raise NotFound(f"model {name!r} has no alias {alias!r} to remove")
    project.store.models.move_alias(name, alias, version, who=who, note=note)
    return {"model": name, "alias": alias, "version": version}


def set_tags(project: Project, name: str, version: int, tags: dict[str, str]) -> dict[str, Any]:
    v = resolve(project, name, version=version)
    merged = {**v.tags, **tags}
    project.store.models.set_tags(name, version, {k: x for k, x in merged.items() if x})
    return {"model": name, "version": version, "tags": merged}


def load(project: Project, name: str, *, environment: str | None = None,
         version: int | None = None, alias: str | None = None) -> LoadedModel:
    """The model ready to predict (loaded safely from its artifact)."""
    from andon.models import artifact
    from andon.warehouse import Warehouse

    v = resolve(project, name, environment=environment, version=version, alias=alias)
    warehouse = Warehouse(project.warehouse)
    manifest = warehouse.read_manifest(name, v.fingerprint)
    if manifest is None:
        raise NotFound(f"the artifact of model {name!r} version {v.version} is no longer in "
                       "the warehouse", hint=f"run the pipeline to rebuild it: andon run {name}")
    return artifact.load(warehouse, manifest, v.version)
