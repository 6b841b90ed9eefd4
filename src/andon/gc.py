"""``andon gc``: delete artifacts nobody can read any more. Never deletes what an environment,
a ref-log entry inside the retention period, a recent artifact or a running build refers to.
In the landing zone, only snapshots of pulled sources past their ``keep_snapshots`` that
no source reads any more (andon.sources.pull)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from andon.checks.types import parse_age
from andon.errors import AndonError, ConfigError
from andon.objectstore import Mirror
from andon.project import Project
from andon.store import Row
from andon.warehouse import MANIFEST, STAGING, Warehouse

PARTS = "_parts"
LEFTOVER_AGE = 86400.0  # s3: staging keys and uncommitted files older than this are leftovers


@dataclass(frozen=True)
class GcReport:
    artifacts: tuple[str, ...]  # step/fingerprint folders deleted (or that would be)
    files: int
    bytes: int
    kept_artifacts: int
    dry_run: bool
    engine_objects: tuple[str, ...] = ()  # what the engine dropped (PostgreSQL: tables)
    snapshots: int = 0  # expired snapshots of pulled sources (keep_snapshots: andon.sources)
    prediction_hours: int = 0  # hours of the prediction log past models.prediction_log.keep

    def to_dict(self) -> dict[str, object]:
        return {"deleted_artifacts": len(self.artifacts), "deleted_files": self.files,
                "freed_bytes": self.bytes, "kept_artifacts": self.kept_artifacts,
                "dry_run": self.dry_run, "artifacts": list(self.artifacts),
                "engine_objects": list(self.engine_objects),
                "expired_snapshots": self.snapshots,
                "expired_prediction_hours": self.prediction_hours}


def live_commits(project: Project, cutoff: float) -> set[str]:
    store = project.store
    out = {e.commit_id for e in store.envs.all() if e.commit_id}
    out |= store.envs.commits_moved_since(cutoff)
    # where each environment pointed when the retention window began
    for env in store.envs.logged_environments():
        last = store.envs.last_move_before(env, cutoff, inclusive=False)
        if last is not None and last.to_commit:
            out.add(last.to_commit)
    return out


def collect(project: Project, *, dry_run: bool = False, now: float | None = None) -> GcReport:
    try:
        retention = parse_age(project.config.retention)
    except ValueError as e:
        raise ConfigError(f"retention: {e}", file=project.root / "andon.yaml") from None
    now = now or time.time()
    cutoff = now - retention
    log_cutoff = now - _prediction_keep(project)  # a bad setting fails before any deletion
    from andon.models.predlog import expire as expire_predictions
    store = project.store
    commits = live_commits(project, cutoff)
    live_fps: set[str] = set()
    for cid in commits:
        live_fps |= set(store.commit_steps(cid).values())
    running = set(store.running_run_ids())
    holders = store.lease_holders()
    if holders and not dry_run:
        # a run in progress may have planned to reuse any sealed artifact, referenced or not
        raise AndonError(
            f"{len(holders)} run(s) or promotion(s) in progress ({holders[0]}); "
            "nothing was deleted",
            hint="run andon gc when they have finished (andon gc --dry-run works meanwhile)",
        )
    rows = store.all_artifacts()
    kept = {r["fingerprint"] for r in rows if r["fingerprint"] in live_fps
            or r["created_at"] >= cutoff or r["run_id"] in running}
    keep = [r for r in rows if r["fingerprint"] in kept]
    dead = [r for r in rows if r["fingerprint"] not in kept]
    wh = Warehouse(project.warehouse)
    live_files = {f for r in keep for f in r["files"]}
    if wh.remote is not None:
        report = _collect_remote(project, wh, wh.remote, dead, keep, live_files, cutoff,
                                 now - LEFTOVER_AGE, dry_run)
        from andon.sources.pull import expire_snapshots

        expired, _ = expire_snapshots(project, now, dry_run=dry_run)
        hours, logged, logged_bytes = expire_predictions(project, log_cutoff, dry_run=dry_run)
        return dataclasses.replace(report, engine_objects=tuple(
            _collect_engine(project, wh, keep, dry_run=dry_run)), snapshots=expired,
            files=report.files + logged, bytes=report.bytes + logged_bytes,
            prediction_hours=hours)
    dead_dirs = [wh.path(r["path"]) for r in dead]
    # files shared into live artifacts stay even when their own artifact goes
    doomed_files: list[Path] = []
    for d in dead_dirs:
        if d.is_dir():
            doomed_files += [p for p in d.iterdir() if p.name != MANIFEST
                             and wh.rel(p) not in live_files]
    parts_root = wh.root / PARTS
    if parts_root.is_dir():
        for p in parts_root.rglob("*.parquet"):
            if wh.rel(p) not in live_files and p.stat().st_mtime < cutoff:
                doomed_files.append(p)
                info = p.with_suffix(".json")
                if info.exists():
                    doomed_files.append(info)
    size = sum(p.stat().st_size for p in doomed_files if p.exists())
    doomed = set(doomed_files)
    deleted: list[str] = []
    for r, d in zip(dead, dead_dirs, strict=True):
        remaining = [p for p in d.iterdir() if p not in doomed] if d.is_dir() else []
        if any(p.name != MANIFEST for p in remaining):
            continue  # still holds files a live artifact shares: keep it readable
        deleted.append(f"{r['step']}/{r['fingerprint']}")
        if not dry_run and d.is_dir():
            for p in d.iterdir():
                if p in doomed:
                    p.unlink(missing_ok=True)
            shutil.rmtree(d, ignore_errors=True)
    if not dry_run:
        for p in doomed_files:  # source parts nobody reads
            p.unlink(missing_ok=True)
        store.delete_artifacts([d.split("/", 1)[1] for d in deleted])
    engine_objects = _collect_engine(project, wh, keep, dry_run=dry_run)
    from andon.sources.pull import expire_snapshots  # the temporal zone's own retention

    snapshots, snapshot_bytes = expire_snapshots(project, now, dry_run=dry_run)
    hours, logged, logged_bytes = expire_predictions(project, log_cutoff, dry_run=dry_run)
    return GcReport(tuple(deleted), len(doomed_files) + snapshots + logged,
                    size + snapshot_bytes + logged_bytes, len(keep), dry_run,
                    tuple(engine_objects), snapshots, hours)


def _prediction_keep(project: Project) -> float:
    """Seconds the prediction log keeps its hours (``models: prediction_log: keep``)."""
    try:
        return parse_age(project.config.models.prediction_log.keep)
    except ValueError as e:
        raise ConfigError(f"models: prediction_log: keep: {e}",
                          file=project.root / "andon.yaml") from None


def _collect_engine(project: Project, wh: Warehouse, keep: list[Row], *, dry_run: bool
                    ) -> list[str]:
    """What the engine keeps for artifacts (PostgreSQL: their tables) that no kept
    artifact uses."""
    from andon.engines.base import Location
    from andon.execution.checking import open_engine

    live = [Location(format=str(r.get("format") or "parquet"), files=tuple(r["files"]))
            for r in keep]
    engine = open_engine(project, wh)
    try:
        return engine.collect(live, dry_run=dry_run)
    finally:
        engine.close()


def _collect_remote(project: Project, wh: Warehouse, remote: Mirror, dead: list[Row],
                    keep: list[Row], live_files: set[str], cutoff: float, stale: float,
                    dry_run: bool) -> GcReport:
    """gc of a warehouse in a bucket: the same rules over its keys, plus the leftovers of
    runs that stopped before committing (staging keys, files of a never-committed
    artifact) once older than ``stale``: no run of this store holds a lease (checked
    before), and the age spares a run of another store sharing the bucket."""
    keys = {k: (size, mtime) for k, size, mtime in remote.storage.listing()}
    known = {r["path"] for r in dead} | {r["path"] for r in keep}
    by_dir: dict[str, list[str]] = {}
    for k in keys:
        by_dir.setdefault(k.rsplit("/", 1)[0], []).append(k)
    doomed: list[str] = [k for k, (_, t) in keys.items()
                         if k.startswith(STAGING + "/") and t < stale]
    for folder, names in by_dir.items():
        if (folder.split("/", 1)[0] not in (STAGING, PARTS) and folder not in known
                and f"{folder}/{MANIFEST}" not in keys
                and all(keys[k][1] < stale for k in names)):
            doomed += names  # uploaded by a run that never committed its manifest
    for k, (_, mtime) in keys.items():
        if (k.startswith(PARTS + "/") and k.endswith(".parquet") and k not in live_files
                and mtime < cutoff):
            doomed.append(k)
            info = k[: -len(".parquet")] + ".json"
            if info in keys:
                doomed.append(info)
    deleted: list[str] = []
    for r in dead:
        names = by_dir.get(r["path"], [])
        own = [k for k in names if not k.endswith("/" + MANIFEST)]
        doomed += [k for k in own if k not in live_files]
        if any(k in live_files for k in own):
            continue  # still holds files a live artifact shares: keep it readable
        doomed += [k for k in names if k not in own]
        deleted.append(f"{r['step']}/{r['fingerprint']}")
    doomed = sorted(set(doomed))
    size = sum(keys[k][0] for k in doomed)
    if not dry_run:
        remote.storage.delete(doomed)
        for k in doomed:  # the mirror's local copies go too
            wh.root.joinpath(k).unlink(missing_ok=True)
        for d in deleted:
            shutil.rmtree(wh.root / d, ignore_errors=True)
        project.store.delete_artifacts([d.split("/", 1)[1] for d in deleted])
    return GcReport(tuple(deleted), len(doomed), size, len(keep), dry_run)
