"""The landed files of a source as an operator sees them: listed with their status, and
withdrawn (kept in the landing zone for audit, no longer read by the source)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from andon import access
from andon.build import PARTS  # one typed part per landed file, with its counts in JSON
from andon.errors import AndonError, NotFound, SourceError, did_you_mean
from andon.landing import LandingState, landing_state
from andon.plan import active_landed
from andon.project import CONFIG_FILE, Project
from andon.steps import Step
from andon.store import Row
from andon.warehouse import Warehouse


def source_step(project: Project, source: str) -> Step:
    step = project.dag.steps.get(source)
    if step is None or step.source is None:
        hint = did_you_mean(source, project.config.sources)
        raise NotFound(f"no source named {source!r}",
                       hint=hint or f"sources: {', '.join(project.config.sources) or 'none'}")
    return step


def _ingested(project: Project, source: str) -> dict[str, dict[str, Any]]:
    """sha256 → rows and rejects of its latest ingest (files never ingested are absent);
    with a bucket warehouse, read from the bucket what this machine does not have."""
    out: dict[str, tuple[float, dict[str, Any]]] = {}
    wh = Warehouse(project.warehouse)
    for info, when in wh.listing(f"{PARTS}/{source}", ".json").items():
        try:
            data = json.loads(wh.path(info).read_text())
        except (OSError, ValueError):
            continue
        sha = data.get("sha256") if isinstance(data, dict) else None
        if isinstance(sha, str) and (sha not in out or out[sha][0] < when):
            out[sha] = (when, data)
    return {sha: data for sha, (_, data) in out.items()}


def landed_list(project: Project, source: str | None = None) -> list[Row]:
    """Every landed file of one source (or all): file, arrival, sha256, size, rows, rejects,
    whether its bytes are still in the source's folder, and its status:

    - ``active``: the source reads it;
    - ``superseded``: a later arrival under the same name replaced it;
    - ``withdrawn``: taken out with ``andon landing withdraw`` (by whom, when, why);
    - ``other path``: it came from a path this environment's source does not read.
    """
    names = [source] if source else sorted(project.config.sources)
    out: list[Row] = []
    for name in names:
        step = source_step(project, name)
        assert step.source is not None
        store = project.store
        try:
            state = landing_state(store, project.root, name, step.source,
                                  project.root / CONFIG_FILE)
        except SourceError:  # no folder (any more): what landed is still listed
            live = tuple(r for r in store.landed_files(name) if r.get("withdrawn_at") is None)
            state = LandingState(live, (), ())
        active = {r["sha256"] for r in active_landed(list(state.landed), step.source.path,
                                                     state.present)}
        counts = _ingested(project, name)
        for r in store.landed_files(name):
            sha = r["sha256"]
            status = ("withdrawn" if r.get("withdrawn_at") is not None
                      else "active" if sha in active
                      else "superseded" if _superseded(r, state.landed)
                      else "other path")
            info = counts.get(sha, {})
            out.append({
                "source": name,
                "file": Path(r["original_path"]).name,
                "arrived_at": _ts(r["arrived_at"]),
                "sha256": sha,
                "bytes": r["bytes"],
                "rows": info.get("rows"),
                "rejects": info.get("rejects"),
                "in_folder": sha in state.present,
                "status": status,
                "withdrawn_by": r.get("withdrawn_by"),
                "withdrawn_at": _ts(r.get("withdrawn_at")),
                "reason": r.get("withdrawn_reason"),
                "landed_path": r["landed_path"],
            })
    return out


def _superseded(row: Row, landed: tuple[Row, ...]) -> bool:
    name = Path(row["original_path"]).name
    return any(Path(o["original_path"]).name == name and
               (o["arrived_at"], o.get("id") or 0) > (row["arrived_at"], row.get("id") or 0)
               for o in landed)


def withdraw(project: Project, source: str, file: str, *, reason: str, user: str) -> Row:
    """Take a landed file out of its source. It stays in the landing zone, marked with who,
    when and why; the source's next build no longer reads it (its fingerprint changes)."""
    step = source_step(project, source)
    if not reason.strip():
        raise AndonError("say why the file is withdrawn",
                         hint='pass --reason "..." (it is kept with the file for audit)')
    store = project.store
    _require_role(project, user, source)
    rows = store.landed_files(source)
    matches = _match(rows, file)
    if not matches:
        names = [Path(r["original_path"]).name for r in rows]
        hint = did_you_mean(file, names)
        raise NotFound(
            f"no landed file {file!r} in source {source!r}", step=step.name,
            hint=hint or f"list them with: andon landing list {source}")
    live = [r for r in matches if r.get("withdrawn_at") is None]
    if not live:
        done = matches[-1]
        raise AndonError(
            f"{file!r} of source {source!r} was withdrawn already by {done['withdrawn_by']} "
            f"at {_ts(done['withdrawn_at'])}: {done['withdrawn_reason']}", step=step.name)
    if len(live) > 1:
        shas = ", ".join(r["sha256"][:12] for r in live)
        raise AndonError(
            f"{len(live)} arrivals of {file!r} landed in source {source!r} ({shas})",
            step=step.name,
            hint=f"name one by its sha256 (or its first 8+ characters): andon landing withdraw "
                 f"{source} {live[-1]['sha256'][:12]} --reason \"...\"")
    target = live[0]
    store.withdraw_landed_file(source, target["sha256"], who=user, why=reason.strip())
    return next(r for r in landed_list(project, source) if r["sha256"] == target["sha256"])


def _match(rows: list[Row], file: str) -> list[Row]:
    """Landed files named ``file`` (as sent, or their path in the landing zone), or whose
    sha256 starts with it (8 characters at least)."""
    by_name = [r for r in rows if Path(r["original_path"]).name == file
               or r["landed_path"] == file or r["original_path"] == file]
    if by_name:
        return by_name
    key = file.lower()
    if len(key) >= 8:
        return [r for r in rows if r["sha256"].startswith(key)]
    return []


def _require_role(project: Project, user: str, source: str) -> None:
    """Every environment reading the source sees the change at its next run: a project with
    a protected environment (prod by default) needs an operator or an admin."""
    envs = {e["name"] for e in project.store.environments()}
    envs |= set(project.config.environments) | {project.config.default_environment}
    protected = sorted(e for e in envs if project.is_protected(e))
    # the roles of running in those environments: a withdrawal changes what their next run reads
    if protected:
        access.require(project.store, user, "run_protected",
                       f"withdraw a landed file of source {source!r} (read by protected "
                       f"environment {', '.join(protected)})")
    else:
        access.require(project.store, user, "run",
                       f"withdraw a landed file of {source!r}")


def _ts(t: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) if t else None
