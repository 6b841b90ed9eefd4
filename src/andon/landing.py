"""The landing zone: raw files exactly as received, per source and arrival time, with sha256.

Files are copied, never moved, modified or deleted at their origin. The same bytes arriving
twice for a source land once.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from andon.config import SourceConfig
from andon.errors import SourceError
from andon.ingest import check_file
from andon.objectstore import mirror_for
from andon.store import Row, Store
from andon.warehouse import os_error

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_LOADED_CACHES: set[Path] = set()
HASH_CACHE_FILE = Path(".andon") / "file-hashes.json"


def _load_hash_cache(root: Path) -> None:
    """Hashes of files seen before, keyed by path, size and modification time (as git and
    rsync do): a re-run does not re-read unchanged incoming files."""
    path = root / HASH_CACHE_FILE
    if path in _LOADED_CACHES:
        return
    _LOADED_CACHES.add(path)
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for item in entries if isinstance(entries, list) else []:
        if isinstance(item, list) and len(item) == 4:
            _HASH_CACHE[(str(item[0]), int(item[1]), int(item[2]))] = str(item[3])


def _save_hash_cache(root: Path) -> None:
    prefix = str(root)
    entries = [[k[0], k[1], k[2], v] for k, v in _HASH_CACHE.items()
               if k[0].startswith(prefix)]
    target = root / HASH_CACHE_FILE
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)  # a cache that cannot be written only costs time


PULLS = ".andon/pulls"  # where database and HTTP sources write a pull before it lands


@dataclass(frozen=True)
class Arrival:
    """A file found in a source's folder that has not landed yet."""

    path: Path
    sha256: str
    bytes: int
    # the contract it must meet: checked before the file lands, so that a file that cannot be
    # ingested at all (empty, no header) never lands and can simply be replaced
    source: SourceConfig | None = field(default=None, compare=False, repr=False)
    # andon wrote and hashed it (a pull of andon.sources): it moves in instead of being copied
    owned: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Duplicate:
    path: Path
    landed_as: str
    arrived_at: float


@dataclass(frozen=True)
class LandingState:
    landed: tuple[Row, ...]
    arrivals: tuple[Arrival, ...]
    duplicates: tuple[Duplicate, ...]
    present: frozenset[str] = frozenset()  # sha256 of the files now in the source's folder


def sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    cached = _HASH_CACHE.get(key)
    if cached:
        return cached
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _HASH_CACHE[key] = digest
    return digest


def discover(root: Path, name: str, source: SourceConfig, config_file: Path) -> list[Path]:
    """Files matching the source's path; a missing folder is an error, no match is not."""
    pattern = source.path if os.path.isabs(source.path) else str(root / source.path)
    if not glob.has_magic(pattern):
        path = Path(pattern)
        if not path.exists():
            raise SourceError(
                f"source {name!r}: file {source.path!r} does not exist",
                file=config_file,
                step=name,
                hint="create it, or fix 'path:' of the source in andon.yaml",
            )
        return [path]
    folder = Path(pattern)
    while glob.has_magic(str(folder)):
        folder = folder.parent
    if not folder.is_dir():
        if source.path.startswith(PULLS + "/"):  # nothing pulled yet: the puller creates it
            return []
        raise SourceError(
            f"source {name!r}: folder {os.path.relpath(folder, root)!r} does not exist",
            file=config_file,
            step=name,
            hint="create the folder (files arrive there), or fix 'path:' in andon.yaml",
        )
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())


def landing_state(
    store: Store, root: Path, name: str, source: SourceConfig, config_file: Path
) -> LandingState:
    """What has landed for a source, and which files are new.

    A withdrawn file is left out of ``landed`` (the source no longer reads it) and its bytes
    do not land again while they stay in the folder."""
    _load_hash_cache(root)
    known = len(_HASH_CACHE)
    every = store.landed_files(name)
    landed = [r for r in every if r.get("withdrawn_at") is None]
    by_sha = {r["sha256"]: r for r in every}
    arrivals: list[Arrival] = []
    duplicates: list[Duplicate] = []
    seen: dict[str, Path] = {}
    present: set[str] = set()
    for path in discover(root, name, source, config_file):
        digest = sha256_file(path)
        present.add(digest)
        if digest in by_sha:
            prior = by_sha[digest]
            if (Path(prior["original_path"]).name != path.name
                    and prior.get("withdrawn_at") is None):
                duplicates.append(Duplicate(path, prior["original_path"], prior["arrived_at"]))
            continue
        if digest in seen:  # the same bytes twice in one batch: the first one lands
            duplicates.append(Duplicate(path, str(seen[digest]), time.time()))
            continue
        seen[digest] = path
        arrivals.append(Arrival(path, digest, path.stat().st_size, source))
    if len(_HASH_CACHE) != known:
        _save_hash_cache(root)
    return LandingState(tuple(landed), tuple(arrivals), tuple(duplicates),
                        frozenset(present))


def land(
    store: Store, landing_root: Path, name: str, arrivals: tuple[Arrival, ...],
    run_id: int | None
) -> list[Row]:
    """Copy new files into the landing zone (read-only) and record them.

    Every file is checked first (``check_file``): when one cannot be ingested at all, none of
    the batch lands, so that the sender can replace it. Each file is hashed while it is copied
    (it is read once), and the batch is recorded in one transaction. Returns the landed rows
    of all ``arrivals``, in order, including files another run landed meanwhile.
    """
    from andon.sources import evolution  # schema changes of the batch (evolve:)

    for a in arrivals:
        if a.source is not None:
            check_file(a.source, a.path, a.path.name, name)
    changes = evolution.review(store, name, [(a.path, a.path.name, a.source)
                                             for a in arrivals if a.source is not None])
    rows: list[Row] = []
    remote = mirror_for(landing_root)
    try:
        for a in arrivals:
            rows.append(_copy_in(landing_root, name, a, run_id))
            if remote is not None:  # in the bucket before the store says it landed
                remote.upload(rows[-1]["landed_path"])
        recorded = store.add_landed_files(rows)
        evolution.record(store, name, *evolution.kept(rows, recorded, changes))
    except BaseException:
        for row in rows:
            shutil.rmtree((landing_root / row["landed_path"]).parent, ignore_errors=True)
        raise
    for row, kept in zip(rows, recorded, strict=True):
        if kept is not row:  # the same bytes landed meanwhile (a run of another environment)
            shutil.rmtree((landing_root / row["landed_path"]).parent, ignore_errors=True)
            if remote is not None:
                remote.storage.delete([row["landed_path"]])
    return recorded


def landed_file(landing_root: Path, landed_path: str) -> Path:
    """The local file of a landed row; with ``landing: s3://`` downloaded from the bucket
    when this machine does not have it yet."""
    remote = mirror_for(landing_root)
    if remote is not None and not remote.fetch(landed_path):
        raise SourceError(f"landed file {landed_path} is missing from {remote.storage.url}",
                          hint="restore it in the bucket from a backup, or withdraw it "
                               "(andon landing withdraw)")
    return landing_root / landed_path


def _move(path: Path, target: Path) -> bool:
    """Move a file andon owns (False when it is on another file system: it is copied)."""
    try:
        os.replace(path, target)
    except OSError:
        return False
    return True


def _copy_in(landing_root: Path, name: str, a: Arrival, run_id: int | None) -> Row:
    """Copy one file into its own folder of the landing zone, read-only, checking that the
    bytes copied are the bytes hashed when it was found."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:]
    folder = landing_root / name / f"{stamp.replace('.', '_')}-{a.sha256[:8]}"
    target = folder / a.path.name
    tmp = folder / f".{a.path.name}.part"
    h: hashlib._Hash | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if a.owned and _move(a.path, tmp):
            h = None
        else:
            copied = hashlib.sha256()
            with a.path.open("rb") as src, tmp.open("wb") as dst:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    copied.update(chunk)
                    dst.write(chunk)
            h = copied
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)
        raise os_error(e, folder, name) from e
    if h is not None and h.hexdigest() != a.sha256:
        shutil.rmtree(folder, ignore_errors=True)
        raise SourceError(
            f"file changed while it was being landed: {a.path}",
            step=name,
            hint="wait until the file is completely written, then run again",
        )
    return {
        "source": name,
        "sha256": a.sha256,
        "original_path": str(a.path),
        "landed_path": target.relative_to(landing_root).as_posix(),
        "bytes": a.bytes,
        "arrived_at": now,
        "run_id": run_id,
    }
