"""A run's hold on its environment: the lease (one writer per environment), the heartbeat
that keeps it fresh, and the cancel requests another process leaves in the store."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from pathlib import Path

from andon.errors import LeaseError
from andon.execution.cancel import CancelToken
from andon.store import Store

HEARTBEAT_EVERY = 30.0
CANCEL_POLL_EVERY = 1.0  # seconds between reads of the run's cancel flag


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """The git commit of the project and whether its tree has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def acquire(store: Store, environment: str, run_id: int, wait_for: float,
            token: CancelToken) -> None:
    """Take the environment's lease, waiting up to ``wait_for`` seconds for its holder; a
    cancel (token or store flag) while waiting ends the wait."""
    deadline = time.monotonic() + wait_for
    while True:
        token.raise_if_cancelled()
        try:
            store.acquire_lease(environment, run_id)
            return
        except LeaseError:
            if time.monotonic() >= deadline:
                raise
            who = store.cancel_requested(run_id)
            if who is not None:
                token.cancel(cancel_reason(who))
            token.wait(0.5)


def cancel_reason(who: str) -> str:
    return f"by {who}"


class Heartbeat:
    """A daemon thread for the run's life: refreshes the lease every ``HEARTBEAT_EVERY``
    seconds and turns a cancel request found in the store into ``token.cancel``."""

    def __init__(self, store: Store, environment: str, run_id: int, token: CancelToken, *,
                 beat_every: float = HEARTBEAT_EVERY, poll_every: float = CANCEL_POLL_EVERY
                 ) -> None:
        self.store = store
        self.environment = environment
        self.run_id = run_id
        self.token = token
        self.beat_every = beat_every
        self.poll_every = poll_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"andon-heartbeat-{run_id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(self.poll_every):
            # a failed read or beat only delays the cancel or makes the lease look older
            with contextlib.suppress(Exception):
                if not self.token.cancelled:
                    who = self.store.cancel_requested(self.run_id)
                    if who is not None:
                        self.token.cancel(cancel_reason(who))
            if time.monotonic() - last_beat >= self.beat_every:
                last_beat = time.monotonic()
                with contextlib.suppress(Exception):
                    self.store.heartbeat(self.environment, self.run_id)
