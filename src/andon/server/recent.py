"""Answers the server may reuse for a second: who a token is, whether users are configured,
a table's rendered JSON. Reading them from the store on every request would cost more than
serving the request; a second's delay is what a change made elsewhere (the CLI, another
server) takes to show, and a change made through this server clears them at once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

T = TypeVar("T")
SECONDS = 1.0


class Uncached(Exception):
    """The answer is not cached and the caller asked not to read the store for it."""


class Recent:
    """A small map of answers, each kept ``ttl`` seconds (least recently used beyond
    ``size``); safe to use from the event loop and the thread pool at once."""

    def __init__(self, ttl: float = SECONDS, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._kept: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, answer)`` while ``key``'s answer is fresh, else ``(False, None)``."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or time.monotonic() - kept[0] > self.ttl:
                return False, None
            self._kept.move_to_end(key)
            return True, kept[1]

    def put(self, key: Hashable, answer: Any) -> None:
        with self._lock:
            self._kept[key] = (time.monotonic(), answer)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def get(self, key: Hashable, compute: Callable[[], T], *, io: bool = True) -> T:
        """The fresh answer for ``key``, else ``compute()`` kept for next time; with
        ``io=False`` raise ``Uncached`` rather than compute (for the event loop)."""
        hit, answer = self.peek(key)
        if hit:
            return cast(T, answer)
        if not io:
            raise Uncached(repr(key))
        computed = compute()
        self.put(key, computed)
        return computed

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
