"""The online store: the latest value per entity of each feature view, per environment. A
SQLite file under ``.andon/`` by default, Redis for teams (``online_store: redis://…``)."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from andon.errors import ConfigError, Failed

if TYPE_CHECKING:
    from andon.features.catalog import FeatureView

SEP = "\x1f"  # between the values of a composite key


def entity_key(values: Iterable[Any]) -> str:
    return SEP.join("" if v is None else str(v) for v in values)


class OnlineStore(Protocol):
    def write(self, env: str, view: str, rows: Sequence[tuple[str, str]],
              deleted: Sequence[str]) -> None:
        """Upsert ``(entity key, JSON value)`` rows and delete ``deleted`` keys."""
        ...

    def read(self, env: str, view: str, keys: Sequence[str]) -> dict[str, str]: ...

    def close(self) -> None: ...


class SqliteStore:
    """One table; a row per (environment, view, entity key) holding the values as JSON."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._con() as con:
            con.execute("CREATE TABLE IF NOT EXISTS online (env TEXT NOT NULL, view TEXT NOT "
                        "NULL, entity_key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY "
                        "(env, view, entity_key)) WITHOUT ROWID")

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
            self._local.con = con
        return con

    def write(self, env: str, view: str, rows: Sequence[tuple[str, str]],
              deleted: Sequence[str]) -> None:
        con = self._con()
        with con:
            con.executemany("INSERT INTO online VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                            "value = excluded.value", ((env, view, k, v) for k, v in rows))
            con.executemany("DELETE FROM online WHERE env = ? AND view = ? AND entity_key = ?",
                            [(env, view, k) for k in deleted])

    def read(self, env: str, view: str, keys: Sequence[str]) -> dict[str, str]:
        if len(keys) == 1:
            row = self._con().execute("SELECT value FROM online WHERE env = ? AND view = ? AND "
                                      "entity_key = ?", (env, view, keys[0])).fetchone()
            return {keys[0]: row[0]} if row else {}
        marks = ",".join("?" * len(keys))
        found = self._con().execute(
            f"SELECT entity_key, value FROM online WHERE env = ? AND view = ? AND entity_key "
            f"IN ({marks})", (env, view, *keys)).fetchall()
        return dict(found)

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


class RedisStore:
    """A hash per environment and view: field = entity key, value = JSON."""

    def __init__(self, url: str, project: str) -> None:
        try:
            import redis
        except ImportError as e:
            raise ConfigError("the Redis online store needs the redis package",
                              hint="pip install 'andon[features]'") from e
        self.url = url
        self.prefix = f"andon:{project}"
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._call(self._redis.ping)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._errors as e:
            raise Failed(f"the Redis online store at {self.url} failed: {e}",
                         hint="start Redis or fix online_store in andon.yaml; nothing was "
                              "served from elsewhere") from e

    def _key(self, env: str, view: str) -> str:
        return f"{self.prefix}:{env}:{view}"

    def write(self, env: str, view: str, rows: Sequence[tuple[str, str]],
              deleted: Sequence[str]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        key = self._key(env, view)
        for start in range(0, len(rows), 10_000):
            pipe.hset(key, mapping=dict(rows[start:start + 10_000]))
        if deleted:
            pipe.hdel(key, *deleted)
        self._call(pipe.execute)

    def read(self, env: str, view: str, keys: Sequence[str]) -> dict[str, str]:
        values = self._call(self._redis.hmget, self._key(env, view), list(keys))
        return {k: v.decode() for k, v in zip(keys, values, strict=True) if v is not None}

    def close(self) -> None:
        self._redis.close()


def open_store(url: str, root: Path, project: str) -> OnlineStore:
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url, project)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return SqliteStore(path if path.is_absolute() else root / path)
    raise ConfigError(f"online_store {url!r} is not a SQLite or Redis URL",
                      hint="write sqlite:///.andon/online.db or redis://HOST:PORT/DB")


_raw_decode = json.JSONDecoder().raw_decode


def decode(value: str) -> dict[str, Any]:
    """The values of one entity as stored (JSON written by the engine: no outer spaces)."""
    decoded: dict[str, Any] = _raw_decode(value)[0]
    return decoded


def key_of(view: FeatureView, entities: Sequence[Mapping[str, Any]]) -> list[str]:
    """The online store's key of each entity for ``view`` (its join keys' values)."""
    names = view.join_keys
    try:
        if len(names) == 1:
            k = names[0]
            return ["" if e[k] is None else str(e[k]) for e in entities]
        return [entity_key(e[k] for k in names) for e in entities]
    except KeyError as e:
        i = next(i for i, ent in enumerate(entities) if any(k not in ent for k in names))
        raise ConfigError(f"entity {i} lacks key {e.args[0]!r} of feature view "
                          f"{view.name!r}", hint="give every join key: "
                          + ", ".join(names)) from None
