"""Pull a database or HTTP source: write its snapshot and land it."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from andon.config import (
    DatabaseSourceConfig,
    HttpSourceConfig,
    PulledSource,
    SourceConfig,
    SourceSpec,
)
from andon.errors import ConfigError, SourceError, did_you_mean
from andon.landing import PULLS, Arrival, land, sha256_file
from andon.project import Project
from andon.steps import Step, files_source_step
from andon.store import Row
from andon.store.sources import SourceRepository

# what of a pulled source's settings changes the data it reads (not its secrets)
_DATA_KEYS = {"database": ("url", "table", "query", "cursor"),
              "http": ("url", "records", "paginate", "next", "page_param")}


def snapshot_format(spec: PulledSource) -> str:
    return "parquet" if isinstance(spec, DatabaseSourceConfig) else "jsonl"


def _mode(spec: PulledSource) -> str:
    """Where its snapshots go: full ones supersede each other, incremental ones add up (a
    source switched from one to the other reads only the snapshots of its mode)."""
    incremental = isinstance(spec, DatabaseSourceConfig) and spec.cursor is not None
    return "incremental" if incremental else "full"


def as_files(name: str, spec: PulledSource) -> SourceConfig:
    """The files source a pulled source's snapshots are ingested as."""
    fmt = snapshot_format(spec)
    return SourceConfig(
        path=f"{PULLS}/{name}/{_mode(spec)}/*.{fmt}",
        format="parquet" if fmt == "parquet" else "jsonl",
        columns=spec.columns, description=spec.description, owner=spec.owner,
        tags=spec.tags, zone=spec.zone, checks=spec.checks, evolve=spec.evolve,
        max_reject_pct=spec.max_reject_pct)


def pulled_source_step(name: str, source: SourceSpec, config_file: Path) -> Step:
    """The step of a database or HTTP source: it ingests the snapshots its pulls landed."""
    if not isinstance(source, PulledSource):
        raise ConfigError(f"source {name!r} of kind {source.kind!r} is not pulled by andon",
                          file=config_file)
    step = files_source_step(name, as_files(name, source), config_file)
    settings = {k: getattr(source, k) for k in _DATA_KEYS[source.kind]}
    extra = json.dumps({"kind": source.kind, **settings}, sort_keys=True)
    return dataclasses.replace(step, code=f"{step.code}\n{extra}")


def pulled_sources(project: Project) -> list[str]:
    return sorted(n for n, s in project.config.sources.items() if isinstance(s, PulledSource))


def pull_for_run(project: Project, selection: Sequence[str], *, user: str) -> list[Row]:
    """The pulls a run starts with (its land stage): every database and HTTP source among
    the selected steps, in name order. The first that fails stops the run."""
    return [pull(project, n, user=user) for n in pulls_planned(project, selection)]


def pulls_planned(project: Project, selection: Sequence[str]) -> list[str]:
    """The sources ``andon run`` would pull first (``andon plan`` pulls nothing)."""
    names = pulled_sources(project)
    chosen = set(project.dag.select(selection)) if names and selection else set(names)
    return [n for n in names if n in chosen]


def pull(project: Project, name: str, *, user: str | None = None) -> Row:
    """Pull one source now: land a snapshot of what is new, record the pull (and the cursor
    reached). A failed pull (database down, wrong password, an HTTP error, a schema change
    its policy refuses) changes nothing."""
    spec = project.config.sources.get(name)
    if not isinstance(spec, PulledSource):
        names = pulled_sources(project)
        hint = did_you_mean(name, names) if spec is None else \
            f"{name!r} is a {spec.kind} source: its files arrive in its folder"
        raise SourceError(f"no database or HTTP source named {name!r}",
                          hint=hint or f"pulled sources: {', '.join(names) or 'none'}")
    store = project.store
    repo = SourceRepository(store.engine)
    folder = project.root / PULLS / name / _mode(spec)
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[2:]
    incremental = _mode(spec) == "incremental"
    fmt = snapshot_format(spec)
    target = folder / (f"{name}-{stamp}.{fmt}" if incremental else f"{name}.{fmt}")
    tmp = folder / f".{target.name}.{os.getpid()}.part"
    before = repo.last_cursor(name) if incremental else None
    try:
        rows, pages, cursor, reader = _write(project, name, spec, tmp, before)
        if incremental and rows == 0:
            repo.add_pull(name, sha256=None, rows=0, pages=pages, cursor=before, at=now,
                          by=user)
            return _result(name, None, 0, pages, before, reader, landed=False)
        os.replace(tmp, target)
        sha = sha256_file(target)
        known = store.landed_file(name, sha)
        step = project.dag.steps[name]
        assert step.source is not None
        if known is None:
            arrival = Arrival(target, sha, target.stat().st_size, step.source, owned=True)
            land(store, project.landing, name, (arrival,), None)
        repo.add_pull(name, sha256=sha, rows=rows, pages=pages,
                      cursor=cursor if incremental else None, at=now, by=user)
        return _result(name, sha, rows, pages, cursor if incremental else None, reader,
                       landed=known is None)
    finally:
        tmp.unlink(missing_ok=True)
        target.unlink(missing_ok=True)  # the landing zone holds it now (or it failed)


def _result(name: str, sha: str | None, rows: int, pages: int | None, cursor: Any,
            reader: str, *, landed: bool) -> Row:
    return {"source": name, "landed": landed, "sha256": sha, "rows": rows, "pages": pages,
            "cursor": cursor, "reader": reader}


def _write(project: Project, name: str, spec: PulledSource, out: Path,
           after: Any) -> tuple[int, int | None, Any, str]:
    """Write the snapshot to ``out``: (rows, pages, largest cursor value, what read it)."""
    if isinstance(spec, DatabaseSourceConfig):
        from andon.engines.dbscan import copy_to_parquet

        password = _secret(project, spec.password_secret, name)
        copied = copy_to_parquet(spec.url, out, source=name, table=spec.table,
                                 query=spec.query, cursor=spec.cursor, after=after,
                                 password=password, base=project.root)
        return copied.rows, None, copied.cursor, copied.reader
    assert isinstance(spec, HttpSourceConfig)
    from andon.sources.http import pages

    secret = _secret(project, spec.auth_secret, name)
    rows = count = 0
    with out.open("w", encoding="utf-8") as f:
        for page in pages(spec, name, secret):
            count = page.number
            for record in page.records:
                f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                f.write("\n")
            rows += len(page.records)
    return rows, count, None, "http"


def _secret(project: Project, secret: str | None, name: str) -> str | None:
    if secret is None:
        return None
    from andon.secrets import get_secret

    env = project.environment or project.config.default_environment
    return get_secret(project.store, project.root, secret, env, step=name)


def expired_snapshots(project: Project, now: float) -> list[tuple[str, Row, Path]]:
    """Snapshots of the temporal zone past their source's ``keep_snapshots`` that the
    source no longer reads (a later full pull superseded them): (source, landed row, file).
    The snapshots an incremental source reads are its data: they are never expired."""
    from andon.checks.types import parse_age
    from andon.plan import active_landed

    out: list[tuple[str, Row, Path]] = []
    for name, spec in sorted(project.config.sources.items()):
        if not isinstance(spec, PulledSource) or spec.keep_snapshots is None:
            continue
        try:
            cutoff = now - parse_age(spec.keep_snapshots)
        except ValueError as e:
            raise ConfigError(f"source {name!r}: keep_snapshots: {e}",
                              file=project.root / "andon.yaml") from None
        rows = [r for r in project.store.landed_files(name) if r.get("withdrawn_at") is None]
        read = {r["sha256"] for r in active_landed(rows, as_files(name, spec).path)}
        out += [(name, r, project.landing / r["landed_path"]) for r in rows
                if r["sha256"] not in read and r["arrived_at"] < cutoff]
    return out


def expire_snapshots(project: Project, now: float, *, dry_run: bool) -> tuple[int, int]:
    """Delete the expired snapshots (``expired_snapshots``); each stays recorded, withdrawn
    by andon gc. Returns (files, bytes)."""
    import shutil

    found = expired_snapshots(project, now)
    size = sum(p.stat().st_size for _, _, p in found if p.exists())
    if not dry_run:
        for name, row, path in found:
            project.store.withdraw_landed_file(
                name, row["sha256"], who="andon gc",
                why="temporal zone retention (keep_snapshots), superseded by a later pull")
            shutil.rmtree(path.parent, ignore_errors=True)
    return len(found), size
