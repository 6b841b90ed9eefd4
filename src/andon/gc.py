"""``andon gc``: delete artifacts nobody can read any more. Never deletes what an environment,
a ref-log entry inside the retention period, a recent artifact or a running build refers to;
never touches the landing zone."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select

from andon.checks.types import parse_age
from andon.errors import ConfigError
from andon.project import Project
from andon.store import schema as t
from andon.warehouse import MANIFEST, Warehouse

PARTS = "_parts"


@dataclass(frozen=True)
class GcReport:
    artifacts: tuple[str, ...]  # step/fingerprint folders deleted (or that would be)
    files: int
    bytes: int
    kept_artifacts: int
    dry_run: bool

    def to_dict(self) -> dict[str, object]:
        return {"deleted_artifacts": len(self.artifacts), "deleted_files": self.files,
                "freed_bytes": self.bytes, "kept_artifacts": self.kept_artifacts,
                "dry_run": self.dry_run, "artifacts": list(self.artifacts)}


def live_commits(project: Project, cutoff: float) -> set[str]:
    store = project.store
    out: set[str] = set()
    with store.engine.connect() as conn:
        out |= {r[0] for r in conn.execute(select(t.environments.c.commit_id)) if r[0]}
        for frm, to in conn.execute(select(t.ref_log.c.from_commit, t.ref_log.c.to_commit)
                                    .where(t.ref_log.c.at >= cutoff)):
            out |= {c for c in (frm, to) if c}
        # where each environment pointed when the retention window began
        envs = {r[0] for r in conn.execute(select(t.ref_log.c.environment).distinct())}
        for env in envs:
            row = conn.execute(select(t.ref_log.c.to_commit).where(
                t.ref_log.c.environment == env, t.ref_log.c.at < cutoff)
                .order_by(t.ref_log.c.at.desc(), t.ref_log.c.id.desc()).limit(1)).first()
            if row and row[0]:
                out.add(row[0])
    return out


def collect(project: Project, *, dry_run: bool = False, now: float | None = None) -> GcReport:
    try:
        retention = parse_age(project.config.retention)
    except ValueError as e:
        raise ConfigError(f"retention: {e}", file=project.root / "andon.yaml") from None
    now = now or time.time()
    cutoff = now - retention
    store = project.store
    commits = live_commits(project, cutoff)
    with store.engine.connect() as conn:
        live_fps: set[str] = set()
        for cid in commits:
            live_fps |= set(store.commit_steps(cid).values())
        running = {r[0] for r in conn.execute(select(t.runs.c.id).where(
            t.runs.c.status == "running"))}
        rows = [dict(r._mapping) for r in conn.execute(select(
            t.artifacts.c.fingerprint, t.artifacts.c.step, t.artifacts.c.files,
            t.artifacts.c.created_at, t.artifacts.c.run_id, t.artifacts.c.path))]
    keep = [r for r in rows if r["fingerprint"] in live_fps or r["created_at"] >= cutoff
            or r["run_id"] in running]
    dead = [r for r in rows if r not in keep]
    wh = Warehouse(project.warehouse)
    live_files = {f for r in keep for f in r["files"]}
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
    deleted: list[str] = []
    if not dry_run:
        for p in doomed_files:
            p.unlink(missing_ok=True)
        for r, d in zip(dead, dead_dirs, strict=True):
            remaining = [p for p in d.iterdir()] if d.is_dir() else []
            if d.is_dir() and all(p.name == MANIFEST for p in remaining):
                shutil.rmtree(d, ignore_errors=True)
            elif d.is_dir():  # still holds files a live artifact shares: keep it readable
                continue
            deleted.append(f"{r['step']}/{r['fingerprint']}")
        gone = [d.split("/", 1)[1] for d in deleted]
        with store.engine.begin() as conn:
            for i in range(0, len(gone), 500):
                conn.execute(delete(t.artifacts).where(
                    t.artifacts.c.fingerprint.in_(gone[i:i + 500])))
    else:
        deleted = [f"{r['step']}/{r['fingerprint']}" for r in dead]
    return GcReport(tuple(deleted), len(doomed_files), size, len(keep), dry_run)
