"""Whether anything was committed to the store since it was last asked, in microseconds: a
server reuses the answers it gives on every request (who a token is, whether users exist)
while the store is unchanged, and reads them again after any commit by any process.

SQLite counts commits itself (``PRAGMA data_version`` on a connection kept for this and
never written through: its value changes whenever another connection commits). A
PostgreSQL store has no such counter: ``version`` answers None and callers fall back to a
time-bounded cache."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine


class Changes:
    """The store's commit counter, read through one connection of its own."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Any = None
        self._lock = threading.Lock()
        self.exact = engine.dialect.name == "sqlite"

    def version(self) -> int | None:
        """A number that changes whenever anything is committed to the store (None: the store
        cannot tell cheaply). Read it BEFORE reading what it guards: an answer read after
        the version is at least as new as that version."""
        if not self.exact:
            return None
        with self._lock:  # one sqlite3 connection, used from the event loop and threads
            if self._conn is None:
                raw = self._engine.raw_connection()  # with the store's pragmas (WAL)
                raw.detach()  # kept by this object, not lent back to the pool
                self._conn = raw
            row = self._conn.cursor().execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


__all__ = ["Changes"]
