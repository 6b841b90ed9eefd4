"""Artifact files: staging, atomic sealing, manifests and cleanup of abandoned staging.

A sealed artifact is a folder ``<step>/<fingerprint>/`` holding ``_manifest.json`` and its own
Parquet files; its manifest may also list files of older artifacts it shares (incremental
steps, source ingests). Folders appear only by an atomic rename from ``_staging``, so a crash
never leaves a half-written artifact visible.

Sealing records each file's size and digest in the manifest (``meta["digests"]``); ``verify``
compares the files with it before their rows are trusted (reuse, ``andon test``, promotion),
so a file changed behind andon's back is reported instead of served. What a file is (its
suffix, its digest, how its schema is read) comes from the artifact's format
(``andon.kinds.ARTIFACT_FORMATS``; Parquet unless the manifest says otherwise).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.engines.base import Location
from andon.errors import Failed, WarehouseError
from andon.hosts import pid_alive
from andon.objectstore import Mirror, mirror_for

if TYPE_CHECKING:
    from andon.kinds import ArtifactFormat

MANIFEST = "_manifest.json"
STAGING = "_staging"
DIGESTS = "digests"  # meta key: {file: [size, sha256]}


class ArtifactTampered(Failed):
    """An artifact file differs from what its manifest recorded when it was sealed."""


@dataclass(frozen=True)
class Manifest:
    fingerprint: str
    step: str
    code_hash: str
    files: tuple[str, ...]  # relative to the warehouse root
    rows: int
    bytes: int
    schema: tuple[tuple[str, str], ...]
    meta: dict[str, Any]
    format: str = "parquet"  # of its files: a name in andon.kinds.ARTIFACT_FORMATS

    def to_json(self) -> str:
        d = self.__dict__ | {"files": list(self.files), "schema": [list(c) for c in self.schema]}
        return json.dumps(d, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Manifest:
        d = json.loads(text)
        return Manifest(
            fingerprint=d["fingerprint"],
            step=d["step"],
            code_hash=d["code_hash"],
            files=tuple(d["files"]),
            rows=int(d["rows"]),
            bytes=int(d["bytes"]),
            schema=tuple((str(a), str(b)) for a, b in d["schema"]),
            meta=dict(d.get("meta") or {}),
            format=str(d.get("format") or "parquet"),  # older manifests: all Parquet
        )

    @property
    def location(self) -> Location:
        """Where its data lives, in the engine's terms: files of its format."""
        return Location(format=self.format, files=self.files)

    @property
    def digests(self) -> dict[str, tuple[int, str]]:
        """Size and sha256 of each file, as sealed; empty for artifacts sealed before andon
        recorded them (those are verified by their total size only)."""
        raw = self.meta.get(DIGESTS) or {}
        return {str(f): (int(v[0]), str(v[1])) for f, v in raw.items()}


def os_error(e: OSError, where: Path, step: str | None = None) -> WarehouseError:
    """Turn a file-system error into a message that says what to do."""
    if e.errno == errno.ENOSPC or e.errno == errno.EFBIG or e.errno == errno.EDQUOT:
        return WarehouseError(
            f"no space left writing the warehouse ({os.strerror(e.errno)})",
            file=where,
            step=step,
            hint="free disk space or move 'warehouse:' in andon.yaml to a bigger disk; "
            "nothing published was changed",
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WarehouseError(
            f"the warehouse is not writable ({os.strerror(e.errno)})",
            file=where,
            step=step,
            hint="fix the folder's permissions or point 'warehouse:' in andon.yaml elsewhere; "
            "nothing published was changed",
        )
    if e.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return WarehouseError(
            f"the warehouse is not writable: a path on the way is not a folder "
            f"({os.strerror(e.errno)}: {e.filename or where})",
            file=where,
            step=step,
            hint="point 'warehouse:' in andon.yaml at a folder; nothing published was changed",
        )
    return WarehouseError(f"warehouse error: {e}", file=where, step=step)


# How DuckDB words the errors of a failed write (it raises duckdb.IOException, not OSError).
_DUCKDB_ERRNO = (
    ('"errno":"28"', errno.ENOSPC),
    ("No space left on device", errno.ENOSPC),
    ('"errno":"27"', errno.EFBIG),
    ("File too large", errno.EFBIG),
    ('"errno":"122"', errno.EDQUOT),
    ("Disk quota exceeded", errno.EDQUOT),
    ('"errno":"30"', errno.EROFS),
    ("Read-only file system", errno.EROFS),
    ('"errno":"13"', errno.EACCES),
    ("Permission denied", errno.EACCES),
)


def write_error(e: Exception, where: Path, step: str | None = None) -> WarehouseError | None:
    """A WarehouseError for an engine error that is really a failed file write, else None."""
    text = str(e)
    for needle, code in _DUCKDB_ERRNO:
        if needle in text:
            return os_error(OSError(code, os.strerror(code), str(where)), where, step)
    return None


class Warehouse:
    """Artifact files under ``root``. When ``root`` mirrors a bucket (``warehouse: s3://``,
    andon.objectstore) the bucket is the system of record: sealing uploads the files and
    commits the manifest there last, and a file missing locally is downloaded when asked
    for (``path``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_root = root / STAGING
        self._token = f"{_host()}.{os.getpid()}"
        self._mirror: Mirror | bool | None = False  # False: not looked up yet
        self._remote_keys: dict[str, set[str]] = {}  # bucket folder -> its keys, as listed

    @property
    def remote(self) -> Mirror | None:
        """The bucket this warehouse mirrors, or None for a local warehouse."""
        if self._mirror is False:
            self._mirror = mirror_for(self.root)
        assert self._mirror is not True
        return self._mirror

    def artifact_dir(self, step: str, fingerprint: str) -> Path:
        return self.root / step / fingerprint

    def path(self, rel: str) -> Path:
        """The local file of ``rel``; with a bucket, downloaded first when only the bucket
        has it."""
        remote = self.remote
        if remote is not None and not rel.startswith(STAGING + "/"):
            remote.fetch(rel)
        return self.root / rel

    def artifact_file(self, step: str, fingerprint: str, name: str) -> Path:
        """A file an artifact keeps in its folder besides its data (a model's file): local,
        fetched from the bucket first when only it has the file."""
        return self.path(f"{step}/{fingerprint}/{name}")

    def has(self, path: Path) -> bool:
        """Whether the warehouse holds the file ``path`` (fetched from the bucket if only it
        has it)."""
        remote = self.remote
        if remote is None:
            return path.exists()
        return remote.fetch(self.rel(path))

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def listing(self, folder: str, suffix: str = "") -> dict[str, float]:
        """The files directly in ``folder`` (relative to the root) whose names end with
        ``suffix``, and when each was written; with a bucket, its keys there too (at the
        bucket's time), which ``path`` then fetches."""
        found: dict[str, float] = {}
        local = self.root / folder
        if local.is_dir():
            for p in local.iterdir():
                if p.name.endswith(suffix) and not p.name.startswith(".") and p.is_file():
                    found[self.rel(p)] = p.stat().st_mtime
        remote = self.remote
        if remote is not None:
            top = folder.strip("/") + "/"
            for key, _size, modified in remote.storage.listing(top):
                if "/" not in key[len(top):] and key.endswith(suffix):
                    found[key] = modified
        return found

    def ensure(self) -> None:
        try:
            self.staging_root.mkdir(parents=True, exist_ok=True)
            probe = self.staging_root / f".probe-{self._token}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise os_error(e, self.root) from e
        if self.remote is not None:
            self.remote.storage.probe()

    @contextlib.contextmanager
    def staging(self, step: str) -> Iterator[Path]:
        """A private folder to build into; removed afterwards unless sealed (moved away)."""
        folder = self.staging_root / f"{self._token}.{step}.{uuid.uuid4().hex[:8]}"
        try:
            folder.mkdir(parents=True)
        except OSError as e:
            raise os_error(e, self.staging_root, step) from e
        try:
            yield folder
        finally:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def format_of(manifest: Manifest) -> ArtifactFormat:
        """The registered format of an artifact's files (ConfigError naming the known ones
        when no installed package provides it)."""
        from andon.kinds import artifact_format

        return artifact_format(manifest.format)

    def schema(self, manifest: Manifest) -> tuple[tuple[str, str], ...] | None:
        """The schema its format reads from its first file (None: the format leaves it to
        the engine, or the artifact has no files)."""
        if not manifest.files:
            return None
        return self.format_of(manifest).schema(self.path(manifest.files[0]))

    def seal(self, staging: Path, manifest: Manifest) -> Manifest:
        """Write the manifest and move the folder into place atomically.

        Files in the staging folder are listed in the manifest under their final path. If the
        same fingerprint was sealed meanwhile (by another run), that one is kept.
        """
        final = self.artifact_dir(manifest.step, manifest.fingerprint)
        fmt = self.format_of(manifest)  # an unknown format fails before anything moves
        own = self.rel(final) + "/"
        stray = [f for f in manifest.files if f.startswith(own) and not f.endswith(fmt.suffix)]
        if stray:
            raise WarehouseError(
                f"artifact of {manifest.step!r} lists {stray[0]!r}, which is not a "
                f"{fmt.name} file ({fmt.suffix}); nothing was sealed",
                step=manifest.step,
                hint="write the artifact's files in its format, or set the manifest's format")
        try:
            manifest = dataclasses.replace(manifest, meta={
                **manifest.meta, DIGESTS: self._digests(staging, final, manifest, fmt)})
            if self.remote is not None:
                committed = self._commit_remote(self.remote, staging, final, manifest)
                if committed is not manifest:
                    return committed
            (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                existing = (self.read_manifest(manifest.step, manifest.fingerprint)
                            if self.remote is None or (final / MANIFEST).exists() else None)
                if existing is not None:
                    return existing
                shutil.rmtree(final)  # a folder without manifest cannot come from seal()
            os.rename(staging, final)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                # another run sealed the same fingerprint between the check and the rename
                existing = self.read_manifest(manifest.step, manifest.fingerprint)
                if existing is not None:
                    return existing
            raise os_error(e, final, manifest.step) from e
        return manifest

    def _commit_remote(self, remote: Mirror, staging: Path, final: Path,
                       manifest: Manifest) -> Manifest:
        """Publish an artifact in the bucket: its files go to staging keys, are copied under
        the artifact's prefix, and its manifest is written LAST with ``If-None-Match: *``; a
        crash or an unreachable store before that leaves no manifest, so nothing is
        published (andon gc deletes the leftovers; the next run builds it again). Returns
        the manifest another run committed first, if one did, else ``manifest``."""
        storage = remote.storage
        key = self.rel(final / MANIFEST)
        existing = self._remote_manifest(remote, key)
        if existing is not None:
            return existing
        own = self.rel(final) + "/"
        stage = f"{STAGING}/{staging.name}/"
        staged: list[tuple[str, str]] = []
        try:
            # every file of the folder: its data and what else the step keeps there (a
            # model's file, its holdout)
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                name = path.relative_to(staging).as_posix()
                if name != MANIFEST:
                    storage.put_file(stage + name, path)
                    staged.append((stage + name, own + name))
            for f in manifest.files:
                if not f.startswith(own):  # a file shared with older artifacts, a part
                    self._ensure_remote(remote, f)
            for src, dst in staged:
                storage.copy(src, dst)
            if not storage.put_new(key, manifest.to_json().encode()):
                existing = self._remote_manifest(remote, key)
                if existing is not None:
                    return existing
                raise WarehouseError(  # pragma: no cover - a manifest vanished meanwhile
                    f"the manifest {key} changed while it was committed", step=manifest.step,
                    hint="run again")
        finally:
            if staged:
                with contextlib.suppress(WarehouseError):
                    storage.delete([s for s, _ in staged])
        return manifest

    def _ensure_remote(self, remote: Mirror, rel: str) -> None:
        parent = rel.rsplit("/", 1)[0]
        keys = self._remote_keys.get(parent)
        if keys is None:
            keys = {k for k, _, _ in remote.storage.listing(parent + "/")}
            self._remote_keys[parent] = keys
        if rel in keys:
            return
        remote.upload(rel)
        keys.add(rel)
        info = Path(rel).with_suffix(".json").as_posix()  # a source part's counts
        if info != rel and (self.root / info).exists() and info not in keys:
            remote.upload(info)
            keys.add(info)

    def _remote_manifest(self, remote: Mirror, key: str) -> Manifest | None:
        data = remote.storage.get_bytes(key)
        if data is None:
            return None
        try:
            return Manifest.from_json(data.decode("utf-8"))
        except (ValueError, KeyError, TypeError):
            return None

    def _digests(self, staging: Path, final: Path, manifest: Manifest,
                 fmt: ArtifactFormat) -> dict[str, list[Any]]:
        """Size and digest of every file: its own files are hashed just after being written
        (from the page cache); a shared file's come from the manifest of the artifact that
        sealed it."""
        own = self.rel(final) + "/"
        out: dict[str, list[Any]] = {}
        for f in manifest.files:
            if f.startswith(own):
                path = staging / f[len(own):]
            else:
                known = self._sealed_digest(f)
                if known is not None:
                    out[f] = known
                    continue
                path = self.path(f)
            out[f] = [path.stat().st_size, fmt.hash_file(path)]
        return out

    def _sealed_digest(self, rel: str) -> list[Any] | None:
        try:
            text = (self.path(rel).parent / MANIFEST).read_text(encoding="utf-8")
            digest = Manifest.from_json(text).digests.get(rel)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        return list(digest) if digest else None

    def verify(self, manifest: Manifest, *, full: bool) -> None:
        """Raise ``ArtifactTampered`` when a file of the artifact is not the one sealed: by
        size always, by its format's digest when ``full``. An artifact sealed before andon
        recorded digests is verified by its total size."""
        digests = manifest.digests
        fmt = self.format_of(manifest) if full and digests else None
        if not digests:
            sizes = [self._size(manifest, f) for f in manifest.files]
            if sum(sizes) != manifest.bytes:
                raise self._tampered(manifest, manifest.files[0] if manifest.files else "",
                                     f"its files hold {sum(sizes)} bytes, the manifest says "
                                     f"{manifest.bytes} (sealed without digests: verified "
                                     "by size only)")
            return
        for f in manifest.files:
            size, sha = digests.get(f, (-1, ""))
            now = self._size(manifest, f)
            if now != size:
                raise self._tampered(manifest, f, f"it has {now} bytes, the manifest says {size}")
            if fmt is not None and fmt.hash_file(self.path(f)) != sha:
                raise self._tampered(manifest, f, f"its {fmt.digest} differs from the manifest's")

    def _size(self, manifest: Manifest, rel: str) -> int:
        try:
            return self.path(rel).stat().st_size
        except OSError:
            raise self._tampered(manifest, rel, "the file is missing") from None

    def _tampered(self, manifest: Manifest, rel: str, why: str) -> ArtifactTampered:
        where = self.artifact_dir(manifest.step, manifest.fingerprint) / MANIFEST
        return ArtifactTampered(
            f"artifact {manifest.fingerprint[:12]} of table {manifest.step!r} was changed "
            f"after it was sealed: {why}; nothing was published",
            file=self.path(rel) if rel else where,
            step=manifest.step,
            hint=f"restore the file from a backup (its size and digest are in {where}); "
                 "until then no run, test or promotion will use this artifact",
        )

    def read_manifest(self, step: str, fingerprint: str) -> Manifest | None:
        path = self.artifact_dir(step, fingerprint) / MANIFEST
        remote = self.remote
        fetched = remote is not None and not path.exists() and remote.fetch(self.rel(path))
        try:
            manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError):
            return None
        local = [f for f in manifest.files if not (self.root / f).exists()]
        if remote is None or (not local and not fetched):
            return None if local else manifest
        own = self.rel(path.parent)
        listed: set[str] = set()
        for parent in sorted({f.rsplit("/", 1)[0] for f in local} | {own}):
            listed |= {k for k, _, _ in remote.storage.listing(parent + "/")}
        if fetched:  # what else the step keeps in its folder: small, read without its path
            for k in listed:
                if k.startswith(own + "/") and k not in manifest.files:
                    remote.fetch(k)
        return manifest if all(f in listed for f in local) else None

    def clean_staging(self) -> list[str]:
        """Remove staging folders left by processes of this host that no longer run."""
        removed: list[str] = []
        if not self.staging_root.is_dir():
            return removed
        host = _host()
        for entry in self.staging_root.iterdir():
            parts = entry.name.split(".")
            if len(parts) < 3 or parts[0] != host or not parts[1].isdigit():
                continue
            if int(parts[1]) != os.getpid() and not pid_alive(int(parts[1])):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed


def _host() -> str:
    return socket.gethostname().replace(".", "-")



