"""The parse cache: what parsing a SQL step gives (canonical code, tables read, SQL with input
placeholders), kept in ``.andon/parse-cache.sqlite`` by the sha256 of the rendered SQL, so
that loading a project parses only the files that changed (once ``.andon/`` exists: loading
never creates it). A step that is a Jinja template
also keeps its rendered SQL, by the sha256 of the template and of the parameters' values, and
the checks keep which of their SQL and regular expressions were found valid (``known_valid``:
while a project loads, the cache is the current one).

An entry is a pure function of the SQL text and of the code that parsed it: the file records
andon's version, sqlglot's version and a digest of andon's parsing modules, and is emptied when
any of them differ. The cache is an optimisation only: a file that cannot be read or written
(read-only folder, another process holding the lock, a damaged file) means parsing again,
never an error, and an entry that does not decode is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from andon import __version__

FILE = Path(".andon") / "parse-cache.sqlite"
FORMAT = "1"
# entries of files that no longer exist are dropped when the cache outgrows the project
MIN_KEPT = 10_000
# the modules whose code decides what an entry holds
_PARSERS = ("steps.py", "templates.py", "engines/duckdb.py", "parsecache.py",
            "checks/load.py", "checks/bind.py")
_CURRENT: ContextVar[ParseCache | None] = ContextVar("andon_parse_cache", default=None)


@dataclass(frozen=True)
class Parsed:
    code: str
    refs: tuple[tuple[str, int | None, int | None], ...]
    bound: str


def _stamp() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _PARSERS:
        with contextlib.suppress(OSError):
            digest.update((here / name).read_bytes())
    found = []
    for package in ("sqlglot", "duckdb"):  # their versions, without importing them
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            module = __import__(package)
            found.append(f"{package} {getattr(module, '__version__', 'unknown')}")
    return f"{FORMAT} andon {__version__} {' '.join(found)} {digest.hexdigest()}"


def key(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


def known_valid(kind: str, text: str) -> bool:
    """Whether ``text`` (a check's SQL, a regular expression: ``kind``) was found valid
    before, by the cache of the project loading now."""
    cache = _CURRENT.get()
    return cache is not None and cache.rendered(f"valid {kind}", {"text": text}) == "ok"


def remember_valid(kind: str, text: str) -> None:
    cache = _CURRENT.get()
    if cache is not None:
        cache.put_rendered(f"valid {kind}", {"text": text}, "ok")


def render_key(template: str, params: Mapping[str, Any]) -> str | None:
    """The key of a rendering: the template and the parameters' values with their types
    (``1``, ``1.0``, ``'1'`` and ``true`` differ); None when a value has no stable text."""
    try:
        values = json.dumps(params, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    if " at 0x" in values:  # an object's repr naming its address says nothing of its value
        return None
    return "render " + key(f"{template}\0{values}")


class ParseCache:
    """Entries read one by one while a project loads; new ones written in one transaction."""

    def __init__(self, project_root: Path) -> None:
        self.path = project_root / FILE
        self._db: sqlite3.Connection | None = None
        self._new: dict[str, Parsed | str] = {}
        self._used = 0
        self._opened = False

    def _open(self) -> sqlite3.Connection | None:
        if self._opened:
            return self._db
        self._opened = True
        if not self.path.parent.is_dir():  # the first run creates .andon/, not a load
            return None
        try:
            db = sqlite3.connect(self.path, timeout=1.0, isolation_level=None)
            db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS parsed (key TEXT PRIMARY KEY, value TEXT)")
            stamp = _stamp()
            found = db.execute("SELECT value FROM meta WHERE name = 'stamp'").fetchone()
            if found is None or found[0] != stamp:
                with db:
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("DELETE FROM parsed")
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (stamp,))
        except (OSError, sqlite3.Error):
            return None
        self._db = db
        return db

    @contextlib.contextmanager
    def current(self) -> Iterator[ParseCache]:
        """Make this the cache ``known_valid`` uses, then save it."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)
            self.save()

    def get(self, sql: str) -> Parsed | None:
        self._used += 1
        db = self._open()
        if db is None:
            return None
        try:
            found = db.execute("SELECT value FROM parsed WHERE key = ?", (key(sql),)).fetchone()
            if found is None:
                return None
            code, refs, bound = json.loads(found[0])
            return Parsed(str(code), tuple((str(n), ln, col) for n, ln, col in refs), str(bound))
        except (sqlite3.Error, ValueError, TypeError):
            return None

    def put(self, sql: str, parsed: Parsed) -> None:
        self._new[key(sql)] = parsed

    def rendered(self, template: str, params: Mapping[str, Any]) -> str | None:
        k = render_key(template, params)
        db = self._open() if k is not None else None
        if db is None:
            return None
        try:
            found = db.execute("SELECT value FROM parsed WHERE key = ?", (k,)).fetchone()
            return None if found is None else str(json.loads(found[0]))
        except (sqlite3.Error, ValueError, TypeError):
            return None

    def put_rendered(self, template: str, params: Mapping[str, Any], sql: str) -> None:
        k = render_key(template, params)
        if k is not None:
            self._new[k] = sql

    def save(self) -> None:
        """Write the new entries (one transaction) and close; failures are ignored."""
        db = self._open() if self._new else self._db
        if db is not None and self._new:
            rows = [(k, json.dumps(p if isinstance(p, str) else [p.code, p.refs, p.bound]))
                    for k, p in self._new.items()]
            with contextlib.suppress(sqlite3.Error):
                count = db.execute("SELECT count(*) FROM parsed").fetchone()[0]
                with db:
                    db.execute("BEGIN IMMEDIATE")
                    if count + len(rows) > max(MIN_KEPT, 4 * self._used):
                        db.execute("DELETE FROM parsed")
                    db.executemany("INSERT OR REPLACE INTO parsed VALUES (?, ?)", rows)
        self._new.clear()
        if db is not None:
            db.close()
        self._db = None
        self._opened = False
