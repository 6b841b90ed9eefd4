"""Object storage for the warehouse and the landing zone: ``warehouse: s3://bucket/prefix``.

The bucket is the system of record; a local folder under ``.andon/objectstore/`` mirrors the
keys this machine has read or written, so the engines read and write local Parquet files
exactly as with a local warehouse. What goes through the S3 API is behind ``S3Storage``
(boto3): put, conditional put (``If-None-Match: *``), get, list, copy and delete of keys
under the prefix. ``Mirror`` pairs a local folder with its bucket prefix: ``fetch`` downloads
a key missing locally, ``upload`` sends a local file.

Settings come from ``object_store:`` in andon.yaml (endpoint, region, and the NAMES of andon
secrets holding the credentials); without them boto3's standard chain applies (``AWS_*``
environment variables, ``~/.aws``). Credentials are never read from andon.yaml itself.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from andon.errors import ConfigError, WarehouseError

SCHEMES = ("s3",)
CACHE = Path(".andon") / "objectstore"  # the local mirrors, relative to the project


@dataclass(frozen=True)
class ObjectURL:
    scheme: str
    bucket: str
    prefix: str  # without leading or trailing "/"; may be empty

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def parse_url(value: str) -> ObjectURL | None:
    """The object-store location ``value`` names, or None for a local path. An unsupported
    scheme (or a URL without a bucket) raises ValueError saying what is supported."""
    if "://" not in value:
        return None
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported URL scheme {scheme!r} in {value!r}: use a local path "
                         f"or one of {', '.join(s + '://bucket/prefix' for s in SCHEMES)}")
    if not parts.netloc:
        raise ValueError(f"{value!r} names no bucket: write {scheme}://bucket/prefix")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r}: a bucket URL takes no '?' or '#' part")
    return ObjectURL(scheme, parts.netloc, parts.path.strip("/"))


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ConfigError("an s3:// warehouse or landing needs boto3",
                          hint="pip install 'andon[s3]'") from None
    return boto3


_LOADER: list[Any] = []  # botocore's loader of the S3 API's description, shared
_LOADER_LOCK = threading.Lock()


def _session() -> Any:
    """A new boto3 session (credentials resolved afresh: the environment of now) that shares
    one botocore data loader with the others, so a client costs milliseconds instead of a
    tenth of a second reading the S3 API's JSON description again (each command, each
    project loaded by the server)."""
    boto3 = _boto3()
    import botocore.session

    core = botocore.session.Session()
    with _LOADER_LOCK:
        if not _LOADER:
            _LOADER.append(core.get_component("data_loader"))
        core.register_component("data_loader", _LOADER[0])
    return boto3.session.Session(botocore_session=core)


class S3Storage:
    """Keys under one bucket prefix, through the S3 API. Keys given to its methods are
    relative to the prefix ("step/fingerprint/part.parquet")."""

    def __init__(self, url: ObjectURL, *, endpoint: str | None = None,
                 region: str | None = None, credentials: dict[str, str] | None = None,
                 timeout: float = 10.0, attempts: int = 3) -> None:
        session = _session()  # first: without boto3, the error says what to install
        from botocore.config import Config

        self.url = url
        self.bucket = url.bucket
        self._prefix = f"{url.prefix}/" if url.prefix else ""
        config = Config(connect_timeout=timeout, read_timeout=max(timeout, 30.0),
                        retries={"max_attempts": attempts, "mode": "standard"},
                        max_pool_connections=32)
        self.client = session.client(
            "s3", endpoint_url=endpoint, region_name=region or None, config=config,
            **(credentials or {}))

    def key(self, rel: str) -> str:
        return self._prefix + rel

    def _error(self, e: Exception, rel: str, what: str) -> WarehouseError:
        code = _code(e)
        where = f"{self.url}/{rel}".rstrip("/")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                    "ExpiredToken", "InvalidToken", "403"):
            hint = ("check the credentials: the secrets named in object_store: of andon.yaml, "
                    "or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        elif code in ("NoSuchBucket",):
            hint = f"create the bucket {self.bucket!r} or fix the URL in andon.yaml"
        else:
            hint = ("check that the object store is reachable (object_store: endpoint in "
                    "andon.yaml) and run again: the run resumes where it stopped")
        return WarehouseError(f"object store error while {what} {where}: {_short(e)}; "
                              "nothing published was changed", hint=hint)

    def probe(self) -> None:
        """Fail now, with what to do, when the bucket cannot be listed."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._prefix, MaxKeys=1)
        except Exception as e:
            raise self._error(e, "", "listing") from e

    def put_file(self, rel: str, path: Path) -> None:
        try:
            with path.open("rb") as f:
                self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=f)
        except OSError:
            raise
        except Exception as e:
            raise self._error(e, rel, "writing") from e

    def put_new(self, rel: str, data: bytes) -> bool:
        """Write ``rel`` only if no object has that key (``If-None-Match: *``); False when
        one already had. A store that does not implement conditional puts gets a check then
        a put: two runs committing the same fingerprint at the same moment then both write
        it, which is harmless for a content-addressed artifact (the same step output)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data,
                                   IfNoneMatch="*")
        except Exception as e:
            code = _code(e)
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            if code not in ("NotImplemented", "501"):
                raise self._error(e, rel, "committing") from e
            if self.get_bytes(rel) is not None:
                return False
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=data)
            except Exception as e2:
                raise self._error(e2, rel, "committing") from e2
        return True

    def get_bytes(self, rel: str) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"]
            return bytes(body.read())
        except Exception as e:
            if _code(e) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._error(e, rel, "reading") from e

    def get_file(self, rel: str, path: Path) -> bool:
        """Download ``rel`` to ``path`` (atomically: a temporary name renamed when complete);
        False when there is no such key."""
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key(rel))
            path.parent.mkdir(parents=True, exist_ok=True)  # only for a key that exists
            with tmp.open("wb") as f:
                for chunk in resp["Body"].iter_chunks(1 << 20):
                    f.write(chunk)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        except Exception as e:
            tmp.unlink(missing_ok=True)
            if _code(e) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._error(e, rel, "reading") from e
        return True

    def listing(self, rel_prefix: str = "") -> Iterator[tuple[str, int, float]]:
        """(key relative to the prefix, size, last-modified epoch) of every key under it."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(rel_prefix))
            for page in pages:
                for obj in page.get("Contents", []):
                    yield (obj["Key"][len(self._prefix):], int(obj["Size"]),
                           obj["LastModified"].timestamp())
        except Exception as e:
            raise self._error(e, rel_prefix, "listing") from e

    def copy(self, src: str, dst: str) -> None:
        try:
            self.client.copy_object(Bucket=self.bucket, Key=self.key(dst),
                                    CopySource={"Bucket": self.bucket, "Key": self.key(src)})
        except Exception as e:
            raise self._error(e, dst, "writing") from e

    def delete(self, rels: list[str]) -> None:
        for i in range(0, len(rels), 1000):  # the API's limit per request
            batch = [{"Key": self.key(r)} for r in rels[i:i + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket,
                                           Delete={"Objects": batch, "Quiet": True})
            except Exception as e:
                raise self._error(e, rels[i], "deleting") from e


def _code(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


class Mirror:
    """A local folder that mirrors a bucket prefix key for key."""

    def __init__(self, root: Path, storage: S3Storage) -> None:
        self.root = root
        self.storage = storage

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def fetch(self, rel: str) -> bool:
        """True when ``rel`` is (now) in the local folder: downloaded if only the bucket has
        it."""
        if (self.root / rel).exists():
            return True
        return self.storage.get_file(rel, self.root / rel)

    def upload(self, rel: str) -> None:
        self.storage.put_file(rel, self.root / rel)


# Which local folders mirror a bucket: filled when a project resolves its warehouse and
# landing (Project.warehouse), read by Warehouse and the landing zone. The storage is made on
# first use: commands that never touch the bucket need no credentials.
_FACTORIES: dict[Path, Callable[[], S3Storage]] = {}
_MIRRORS: dict[Path, Mirror] = {}
_LOCK = threading.Lock()


def mirror_for(root: Path) -> Mirror | None:
    """The mirror whose local folder is ``root``, or None for a plain local folder."""
    with _LOCK:
        if root in _MIRRORS:
            return _MIRRORS[root]
        factory = _FACTORIES.get(root)
        if factory is None:
            return None
        mirror = _MIRRORS[root] = Mirror(root, factory())
        return mirror


def resolve(project_root: Path, value: str, settings: Any,
            secret: Callable[[str], str]) -> Path:
    """The local folder for a ``warehouse:`` or ``landing:`` setting: the path itself, or for
    an object-store URL its local mirror (registered so that ``mirror_for`` finds it).
    ``settings`` is the ``object_store:`` block; ``secret`` reads an andon secret by name."""
    url = parse_url(value)
    if url is None:
        return (project_root / value).resolve()
    digest = hashlib.sha256(f"{settings.endpoint or ''}|{url}".encode()).hexdigest()[:8]
    local = (project_root / CACHE / f"{url.bucket}-{digest}" / url.prefix).resolve()

    def make() -> S3Storage:
        creds: dict[str, str] = {}
        names = (("aws_access_key_id", settings.access_key_id_secret),
                 ("aws_secret_access_key", settings.secret_access_key_secret),
                 ("aws_session_token", settings.session_token_secret))
        for arg, name in names:
            if name:
                creds[arg] = secret(name)
        return S3Storage(url, endpoint=settings.endpoint, region=settings.region,
                         credentials=creds, timeout=settings.timeout,
                         attempts=settings.attempts)

    with _LOCK:  # a project loaded again uses the settings and secrets of now
        _FACTORIES[local] = make
        _MIRRORS.pop(local, None)
    return local
