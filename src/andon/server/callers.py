"""What the server remembers about who calls it: the local user (read once: the process's
user does not change while it runs), whether users are configured, and the record of each
token by its sha256.

On a SQLite store the answers are kept while the store is unchanged (``andon.store.changes``
tells in microseconds whether anything was committed since, by any process): a token revoked,
a user added or a role changed anywhere is seen by the next request. A store that cannot
tell (PostgreSQL) keeps them in the server's ``recent`` answers: a second at most, and
forgotten at once when a request through this server may have changed something."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from andon.server.recent import Recent, Uncached
from andon.service import local_user
from andon.store.changes import Changes

if TYPE_CHECKING:
    from andon.project import Project
    from andon.store.tokens import TokenRecord

SIZE = 4096  # tokens remembered (unknown ones too: a client retrying a bad token)


class Callers:
    """Answers about callers, each read from the store at most once per store version."""

    def __init__(self, project: Project, recent: Recent) -> None:
        self.project = project
        self.local_user = local_user()
        self._recent = recent
        self._changes: Changes | None = None  # the store is opened by the first request
        self._kept: dict[Hashable, tuple[int, Any]] = {}
        self._lock = threading.Lock()

    @property
    def changes(self) -> Changes:
        if self._changes is not None:
            return self._changes
        with self._lock:
            if self._changes is None:
                self._changes = Changes(self.project.store.engine)
            return self._changes

    def users_exist(self, *, io: bool) -> bool:
        """Whether users are configured. With ``io=False`` raise ``Uncached`` rather than
        read a networked store (a SQLite file is read in a fraction of a millisecond)."""
        if not self.changes.exact:
            if self._recent.peek(("users exist",))[0]:
                return True
            if not io:
                raise Uncached("whether users exist")
            exist = self.project.store.users.any()  # "none" is never kept: the first counts
            if exist:
                self._recent.put(("users exist",), True)
            return exist
        return bool(self._answer(("users exist",), self.project.store.users.any, io=True))

    def token(self, token_hash: str, *, io: bool) -> TokenRecord | None:
        """The record of the token with this sha256 (None: unknown or revoked). With
        ``io=False`` raise ``Uncached`` rather than read the store (reading may note the
        token's last use: a write, never on the event loop)."""
        def find() -> TokenRecord | None:
            return self.project.store.tokens.find_digest(token_hash)

        if not self.changes.exact:
            return self._recent.get(("token", token_hash), find, io=io)
        found: TokenRecord | None = self._answer(("token", token_hash), find, io=io)
        return found

    def _answer(self, key: Hashable, read: Callable[[], Any], *, io: bool) -> Any:
        version = self.changes.version()  # first: what is read next is at least this new
        assert version is not None
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]
        if not io:
            raise Uncached(repr(key))
        answer = read()
        with self._lock:
            if len(self._kept) >= SIZE:
                self._kept.clear()
            self._kept[key] = (version, answer)
        return answer

    def close(self) -> None:
        if self._changes is not None:
            self._changes.close()


__all__ = ["Callers"]
