"""Table pages by commit: a commit and its artifacts never change once sealed, so the schema,
sample rows and profile of a table page are read once per commit (the project's steps are
fixed while the server runs), and only its check results are read on every request."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

Key = tuple[Any, ...]  # (table, environment, commit, rows, profile)


class ArtifactPages:
    """A small LRU of table pages keyed by the commit they show."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._pages: OrderedDict[Key, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: Key, page: dict[str, Any]) -> None:
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
