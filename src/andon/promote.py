"""Promotion: move a target environment to its head plus a branch's changes, only after every
check passes on exactly that candidate. Nothing is rebuilt: the target ends up pointing at the
artifacts the branch built."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from andon.checks.model import CheckResult
from andon.environments import merge_base, require
from andon.errors import AndonError
from andon.execution.artifacts import manifest_of
from andon.execution.checking import check_artifacts, flatten, show_environment
from andon.project import Project
from andon.stages import BuildStage, CheckStage, PlannedCheck, Stage, publish_stage
from andon.store import Row, Store
from andon.warehouse import Manifest, Warehouse


class PromotionRefused(AndonError):
    """Conflicts, stale branch artifacts or failing checks: the target was not changed."""

    kind = "conflict"


@dataclass(frozen=True)
class Promotion:
    id: int | None  # a dry run is not recorded and takes no number
    source: str
    target: str
    status: str  # promoted|dry-run
    base_commit: str | None
    candidate_commit: str | None
    changed: dict[str, str]
    removed: list[str]
    checks: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    stages: tuple[Stage, ...] = ()  # the candidate's steps, their checks, and publish

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "target": self.target,
                "status": self.status, "base_commit": self.base_commit,
                "commit": self.candidate_commit, "changed": sorted(self.changed),
                "removed": self.removed, "seconds": round(self.seconds, 3),
                "checks": [c.to_dict() for c in self.checks],
                "stages": [s.to_dict() for s in self.stages]}


def _record(store: Store, **values: Any) -> int:
    return store.promotions.start(**values)


def _update(store: Store, pid: int | None, **values: Any) -> None:
    if pid is None:  # a dry run writes nothing
        return
    store.promotions.update(pid, **values)


def promote(project: Project, source: str, target: str, *, dry_run: bool = False,
            user: str) -> Promotion:
    """``user`` is recorded as the one who promoted; who may promote is decided by the
    caller (``andon.Session``)."""
    started = time.perf_counter()
    project.require_valid()  # the candidate is checked with every check of the project
    store = project.store
    who = user
    if source == target:
        raise PromotionRefused(f"cannot promote {source!r} into itself",
                               hint="promote a branch environment: andon promote dev --to "
                                    f"{target}")
    require(store, source)
    require(store, target)
    pid = None if dry_run else _record(store, source=source, target=target, status="running",
                                       who=who)
    holder = None
    try:
        if pid is not None:
            holder = store.acquire_lease(target, None, what=f"promotion {pid} of {source}")
        src, dst = require(store, source), require(store, target)  # heads, under the lease
        base = merge_base(store, src["commit_id"], dst["commit_id"])
        base_map = store.commit_steps(base)
        src_map = store.commit_steps(src["commit_id"])
        dst_map = store.commit_steps(dst["commit_id"])
        base_code = _code(store, base)
        src_code, dst_code = _code(store, src["commit_id"]), _code(store, dst["commit_id"])
        # a step changed when its artifact did, or its code did (a reformat builds nothing
        # new but is still a change of code); a base that predates code maps compares by
        # artifact only
        changed = {s: fp for s, fp in src_map.items() if base_map.get(s) != fp
                   or (s in base_code and src_code.get(s) not in (None, base_code[s]))}
        removed = sorted(s for s in base_map if s not in src_map)
        conflicts = sorted(
            s for s in set(changed) | set(removed)
            if dst_map.get(s) != base_map.get(s) and dst_map.get(s) != src_map.get(s)
        )
        common = dict(source=source, target=target, base_commit=base,
                      source_commit=src["commit_id"], target_commit=dst["commit_id"],
                      changed=sorted(changed))
        if conflicts:
            _update(store, pid, status="conflict", message=", ".join(conflicts), **common)
            raise PromotionRefused(
                f"conflict: {', '.join(conflicts)} changed in both {source!r} and {target!r} "
                "since they diverged; nothing was changed",
                hint=f"bring {source} up to date with {target} (andon env create / run) and "
                     "choose one version of each step",
            )
        candidate = {**dst_map, **changed}
        for s in removed:
            candidate.pop(s, None)
        rows = store.artifacts(candidate.values())
        manifests = {s: manifest_of(rows[fp]) for s, fp in candidate.items() if fp in rows}
        stale = sorted(
            s for s, m in manifests.items()
            if any(candidate.get(p) != fp for p, fp in (m.meta.get("parents") or {}).items())
        )
        if stale:
            _update(store, pid, status="refused", message="stale: " + ", ".join(stale), **common)
            raise PromotionRefused(
                f"{', '.join(stale)} in the candidate were built on inputs that {target!r} no "
                "longer has; nothing was changed",
                hint=f"rebuild the branch on the current data: andon run --env {source}",
            )
        warehouse = Warehouse(project.warehouse)
        full = project.is_protected(target)  # a protected environment gets hashed files
        for m in manifests.values():
            warehouse.verify(m, full=full)
        results = _check(project, target, manifests, dst_map, record=not dry_run)
        failed = [r for r in results if r.stops_the_line]
        summary = {"passed": sum(1 for r in results if r.status == "passed"),
                   "failed": [r.name for r in failed],
                   "warned": [r.name for r in results if r.status == "failed"
                              and r.severity == "warn"]}
        if failed:
            _update(store, pid, status="refused", checks=summary,
                    message="checks failed: " + ", ".join(r.name for r in failed), **common)
            detail = "\n".join(f"  {r.name} ({r.table}): {r.message}" for r in failed)
            raise PromotionRefused(
                f"{len(failed)} error check(s) failed on the candidate; {target!r} was not "
                "changed", detail=detail, hint=f"fix them in {source}, run it, and promote again",
                kind="failed",
            )
        commit_id: str | None = None
        code = {**dst_code, **{s: src_code[s] for s in changed if s in src_code}}
        for s in removed:
            code.pop(s, None)
        if not dry_run:
            if candidate == dst_map and not changed:
                commit_id = dst["commit_id"]
            else:
                commit_id = store.publish(
                    target, expected_commit=dst["commit_id"], steps=candidate, author=who,
                    git_sha=None, params={}, message=f"promotion {pid} of {source}",
                    run_id=None, code=code, merge_parent=src["commit_id"])
            show_environment(project, target)  # after the compare-and-swap
        status = "dry-run" if dry_run else "promoted"
        _update(store, pid, status=status, candidate_commit=commit_id, checks=summary,
                **common)
        publish = publish_stage(target, dst["commit_id"], dst_map, dst_code, candidate, code)
        stages = (*_step_stages(project, source, candidate, changed, results),
                  replace(publish, commit=commit_id))
        return Promotion(pid, source, target, status, base, commit_id, changed, removed,
                         results, time.perf_counter() - started, stages)
    except PromotionRefused:
        raise
    except Exception as e:
        _update(store, pid, status="failed", message=str(e)[:2000])
        raise
    finally:
        if holder is not None:
            store.release_lease(target, None, holder=holder)


def _code(store: Store, commit_id: str | None) -> dict[str, str]:
    row = store.commit(commit_id) if commit_id else None
    return dict((row or {}).get("code") or {})


def _check(project: Project, target: str, manifests: dict[str, Manifest],
           dst_map: dict[str, str], *, record: bool = True) -> list[CheckResult]:
    """The check stage on exactly the candidate: every check of the project; history checks
    compare with the target's current artifacts. A dry run (``record=False``) leaves no check
    history."""
    dst_rows = project.store.artifacts(dst_map.values())
    previous: dict[str, Manifest | None] = {
        s: manifest_of(dst_rows[fp]) for s, fp in dst_map.items()
        if fp in dst_rows and s in manifests and manifests[s].fingerprint != fp}
    return flatten(check_artifacts(project, target, manifests, previous=previous,
                                   record=record))


def _step_stages(project: Project, source: str, candidate: dict[str, str],
                 changed: dict[str, str], results: list[CheckResult]) -> list[Stage]:
    """Each step of the candidate: its artifact (taken from ``source``, or kept) and the
    checks it got."""
    by_table: dict[str, list[CheckResult]] = {}
    for r in results:
        by_table.setdefault(r.table, []).append(r)
    out: list[Stage] = []
    for name in project.dag.order:
        if name not in candidate:
            continue
        if name in changed:
            out.append(BuildStage(name, "reuse", f"changed in {source}: its artifact, not "
                                                 "rebuilt", candidate[name]))
        else:
            out.append(BuildStage(name, "keep", "unchanged", candidate[name]))
        if by_table.get(name):
            out.append(CheckStage(name, tuple(
                PlannedCheck(r.name, r.type, r.severity, "reused" if r.reused else "fresh",
                             status=r.status) for r in by_table[name])))
    return out


def promotions(store: Store, limit: int = 50) -> list[Row]:
    return [p.as_dict() for p in store.promotions.latest(limit)]
