"""Cancelling a run: one token shared by whoever may stop it (Ctrl-C, another thread, the
heartbeat that reads a cancel request from the store) and everything that does its work."""

from __future__ import annotations

import threading
from collections.abc import Callable

from andon.errors import AndonError


class RunCancelled(AndonError):
    """The run was cancelled before it finished; nothing was published."""

    kind = "conflict"
    exit_code = 130


class CancelToken:
    """Thread-safe: ``cancel(reason)`` from any thread; the run polls ``cancelled`` between
    steps and registered callbacks (``on_cancel``: interrupt the SQL in flight) run at once,
    in the cancelling thread. Cancelling twice keeps the first reason."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self, reason: str = "cancelled") -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._reason = reason
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        return self._reason

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise RunCancelled(f"run cancelled ({self._reason}); the environment was not "
                               "changed", hint="run again: every artifact already sealed is "
                                               "reused")

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when the token is cancelled (now, if it already is). Returns a
        function that unregisters it."""
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._callbacks.append(callback)
        if already:
            callback()

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; True if cancelled."""
        return self._event.wait(timeout)
